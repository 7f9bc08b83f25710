"""find_particles on synthetic volumes and on back-propagated simulated holograms."""
import numpy as np
import pytest

from diffimaging import holography as H

LAM, PX = 532e-9, 2e-6


def _separated(rng, n, lo, hi, min_dist):
    pts = []
    while len(pts) < n:
        p = rng.uniform(lo, hi)
        if all(np.linalg.norm(p - q) >= min_dist for q in pts):
            pts.append(p)
    return np.array(pts)


def _blob_volume(rng, truth, shape, noise=0.05, sz=1.5, sxy=1.0, amp=1.0):
    k, i, j = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    v = rng.normal(0, noise, shape)
    for a, b, c in truth:
        v += amp * np.exp(-((k - a) ** 2 / (2 * sz ** 2) + ((i - b) ** 2 + (j - c) ** 2) / (2 * sxy ** 2)))
    return v


@pytest.mark.parametrize("polarity", ["bright", "dark"])
def test_find_particles_in_a_volume(polarity):
    rng = np.random.default_rng(0)
    shape = (40, 64, 64)
    zs = np.linspace(1e-3, 3e-3, shape[0])
    truth = _separated(rng, 30, np.array([4, 4, 4]), np.array(shape) - 5, 6.0)
    v = _blob_volume(rng, truth, shape)
    if polarity == "dark":
        v = 1.0 - v
    f = H.find_particles(v, zs, pixel_size=PX, polarity=polarity)
    dz = zs[1] - zs[0]
    T = np.column_stack([truth[:, 1] * PX, truth[:, 2] * PX, zs[0] + truth[:, 0] * dz])
    m = H.match(f, T, lateral_tol=2 * PX, axial_tol=3 * dz)
    assert m.recall == 1.0 and m.precision == 1.0
    assert m.lateral_rmse < 0.25 * PX and m.axial_rmse < 0.25 * dz
    assert np.all(f.peak > 6) and f.noise == pytest.approx(0.05, rel=0.1)


def test_auto_threshold_rejects_pure_noise_and_manual_threshold():
    rng = np.random.default_rng(1)
    v = rng.normal(0, 1.0, (20, 48, 48))
    zs = np.linspace(1e-3, 2e-3, 20)
    assert len(H.find_particles(v, zs, pixel_size=PX)) == 0
    assert len(H.find_particles(v, zs, pixel_size=PX, threshold=2.0)) > 10


def test_find_particles_from_backpropagated_projections():
    rng = np.random.default_rng(2)
    n = 128
    yx = _separated(rng, 5, np.array([24.0, 24.0]), np.array([104.0, 104.0]), 25.0)
    z = rng.uniform(1.5e-3, 2.5e-3, 5)
    pos = np.column_stack([yx * PX, z])
    holo, truth = H.simulate_particles((n, n), (pos, np.full(5, 10e-6)), wavelength=LAM, pixel_size=PX)
    zs = np.arange(1.2e-3, 2.8e-3, 25e-6)
    proj = H.backpropagate(holo, zs, wavelength=LAM, pixel_size=PX)
    f = H.find_particles(proj, pixel_size=PX, polarity="dark", neighborhood=(9, 9))
    # within 2 pixels laterally; axially 45 um: the back-propagated intensity minimum of
    # an opaque particle sits up to ~40 um off its centre (the ∂H volume is sharper)
    m = H.match(f, truth, lateral_tol=2 * PX, axial_tol=45e-6)
    assert m.recall == 1.0, (m, f.positions, truth.positions)
    # pixel (i, j) sits at (i dy, j dx) in the simulator and in find_particles alike: no
    # half-pixel slip (which alone would give 0.71 px)
    assert m.lateral_rmse < 0.3 * PX, m


def test_find_particles_bad_input():
    with pytest.raises(ValueError, match="z"):
        H.find_particles(np.zeros((4, 8, 8)), pixel_size=PX)
    with pytest.raises(ValueError, match="depths"):
        H.find_particles(np.zeros((4, 8, 8)), np.arange(3) * 1e-5, pixel_size=PX)
    with pytest.raises(ValueError, match="polarity"):
        H.find_particles(np.zeros((4, 8, 8)), np.arange(4) * 1e-5, pixel_size=PX, polarity="up")
    with pytest.raises(ValueError, match="keys"):
        H.find_particles({"max": np.zeros((8, 8))}, pixel_size=PX)
    with pytest.raises(ValueError, match="equally spaced"):
        H.find_particles(np.zeros((3, 8, 8)), np.array([0, 1e-5, 3e-5]), pixel_size=PX)


def test_auto_threshold_on_a_sparse_volume():
    """L1-regularised reconstructions are exactly zero almost everywhere (MAD = 0):
    the automatic threshold then separates particles from weak residue (Otsu)."""
    rng = np.random.default_rng(3)
    shape = (30, 48, 48)
    zs = np.linspace(1e-3, 2e-3, shape[0])
    truth = _separated(rng, 12, np.array([4, 4, 4]), np.array(shape) - 5, 7.0)
    v = np.clip(_blob_volume(rng, truth, shape, noise=0.0) - 0.1, 0, None)  # sparse particles
    residue = (rng.random(shape) < 0.01) * rng.uniform(0.0, 0.08, shape)   # weak spurious voxels
    v = v + residue
    assert np.median(v) == 0.0
    f = H.find_particles(v, zs, pixel_size=PX)
    dz = zs[1] - zs[0]
    T = np.column_stack([truth[:, 1] * PX, truth[:, 2] * PX, zs[0] + truth[:, 0] * dz])
    m = H.match(f, T, lateral_tol=2 * PX, axial_tol=3 * dz)
    assert m.recall == 1.0 and m.precision == 1.0, m
    assert 0.08 < f.threshold < 0.9
