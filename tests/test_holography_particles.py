"""find_particles on synthetic volumes and on back-propagated simulated holograms."""
import warnings

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
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # pure noise: nothing found, nothing to warn
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


# --- realistic fields (diffimaging.holography.realistic): default settings throughout ---

from diffimaging.holography import realistic as R  # noqa: E402

ZS_REAL = np.linspace(0.8e-3, 5.2e-3, 45)   # the particles' 1-5 mm with a 0.2 mm margin, 100 um apart
AX_TOL = 200e-6                              # 2 planes; the depth of field of a 10 um particle


@pytest.fixture(scope="module")
def realistic_1e3():
    """256^2, 1e-3 particles per pixel (66 particles, 5-30 um, 20 % partly transparent),
    beam + fringes, dust, defects, 12-bit camera; a single frame, background by the
    default low-pass division."""
    frame = R.simulate_field(R.RealisticField(shape=(256, 256), ppp=1e-3, seed=7))
    raw = frame.raw.astype(np.float32) - np.float32(frame.dark)
    h, _ = H.preprocess(raw, crop=False)
    return h.astype(np.float32), frame.truth.select(frame.truth.visible)


def test_realistic_field_dh_meets_the_target(realistic_1e3):
    """∂H (100 iterations) then find_particles with default settings: precision and
    recall >= 0.9 (this case: 0.98/0.96, 68 found for 66 particles; before: recall
    0.95, precision 0.68, 92 found)."""
    h, truth = realistic_1e3
    rec = H.reconstruct(h, ZS_REAL, wavelength=LAM, pixel_size=PX, method="dh")
    f = H.find_particles(rec)
    m = H.match(f, truth, 2 * PX, AX_TOL)
    assert m.recall >= 0.9 and m.precision >= 0.9, m
    assert m.lateral_rmse < 0.7 * PX and m.axial_rmse < 60e-6, m
    # the estimated diameter is an apparent one (the sparse ∂H image is narrower than
    # the particle) but of the particle's order, and the axial window spans planes
    assert 2e-6 < f.diameter < 20e-6 and f.axial_extent >= 3


def test_realistic_field_backprop_does_not_over_detect(realistic_1e3):
    """Back-propagated intensity (and its projections): the automatic threshold and the
    shape filter keep precision high; recall is limited by the small, far particles
    (the 0.9/0.9 target is met by ∂H only: see benchmarks/bench_particles_realistic.py).
    This case: recall/precision 0.64/0.95 (projections 0.52/0.92); before 0.38/0.81
    (projections 0.33/0.85)."""
    h, truth = realistic_1e3
    rec = H.reconstruct(h, ZS_REAL, wavelength=LAM, pixel_size=PX, method="backprop")
    f = H.find_particles(rec)
    m = H.match(f, truth, 2 * PX, AX_TOL)
    assert m.precision >= 0.9 and m.recall >= 0.55, m
    assert len(f) <= len(truth)
    # the diameter estimated from the data (particles 12 um median): in-focus images
    assert 8e-6 < f.diameter < 20e-6
    proj = H.reconstruct(h, ZS_REAL, wavelength=LAM, pixel_size=PX, method="backprop",
                         output="projections")
    fp = H.find_particles(proj)
    mp = H.match(fp, truth, 2 * PX, AX_TOL)
    assert mp.precision >= 0.8 and mp.recall >= 0.4 and len(fp) <= len(truth), mp


def test_find_particles_memory_is_bounded():
    """A 64 x 512^2 float32 volume (64 MiB): find_particles allocates less than half of
    it on top (no float64 copy, no full-size temporaries; the search runs a few planes
    at a time)."""
    import tracemalloc

    rng = np.random.default_rng(5)
    v = rng.normal(0.0, 0.01, (64, 512, 512)).astype(np.float32)
    for _ in range(40):
        k, i, j = rng.integers(3, 61), rng.integers(3, 509), rng.integers(3, 509)
        v[k - 1:k + 2, i - 1:i + 2, j - 1:j + 2] += 1.0
    zs = np.arange(64) * 50e-6 + 1e-3
    tracemalloc.start()
    f = H.find_particles(v, zs, pixel_size=PX)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert 30 <= len(f) <= 40
    assert peak < 0.5 * v.nbytes, peak / 2 ** 20


def test_find_particles_new_arguments_are_checked():
    v = np.zeros((4, 8, 8), dtype=np.float32)
    zs = np.arange(4) * 1e-5 + 1e-3
    with pytest.raises(ValueError, match="n_medium"):
        H.find_particles(v, zs, pixel_size=PX, n_medium=0.5)
    with pytest.raises(ValueError, match="max_elongation"):
        H.find_particles(v, zs, pixel_size=PX, max_elongation=0.5)
    with pytest.raises(ValueError, match="max_size"):
        H.find_particles(v, zs, pixel_size=PX, max_size=float("nan"))
    with pytest.raises(ValueError, match="diameter"):
        H.find_particles(v, zs, pixel_size=PX, diameter=0.5)
    bad = v.copy()
    bad[2, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        H.find_particles(bad, zs, pixel_size=PX)



# --- the automatic threshold's rule on peak heights (analysis.particles._peak_threshold) ---

def _heights(n_residue, n_particles, particle_level, seed=0):
    """Residue heights decaying from 0.03 (log-normal, skewed up) plus particles
    log-normal around ``particle_level`` (0.15 decade spread)."""
    rng = np.random.default_rng(seed)
    res = 0.03 * np.exp(np.abs(rng.normal(0, 0.35, n_residue)))
    par = particle_level * 10 ** rng.normal(0, 0.15, n_particles)
    return res, par


def test_peak_threshold_keeps_particles_above_a_valley():
    from diffimaging.holography.analysis.particles import _peak_threshold

    res, par = _heights(400, 60, 0.3)
    t = _peak_threshold(np.concatenate([res, par]))
    assert np.mean(par > t) >= 0.95 and np.mean(res > t) <= 0.01, t


def test_peak_threshold_on_a_dense_field_is_the_knee_not_nothing():
    """Particles as a shoulder on the residue's tail (no valley, as at 5e-3 ppp): the
    knee keeps most particles; the former rule (residue median + 6 sigma) kept none."""
    from diffimaging.holography.analysis.particles import _peak_threshold

    res, par = _heights(2500, 300, 0.12, seed=1)
    t = _peak_threshold(np.concatenate([res, par]))
    assert 0 < t < par.max()
    assert np.mean(par > t) >= 0.6 and np.sum(res > t) <= 0.5 * np.sum(par > t), t


def test_peak_threshold_keeps_one_mode_of_particles():
    from diffimaging.holography.analysis.particles import _peak_threshold

    _, par = _heights(0, 40, 0.3, seed=2)
    assert _peak_threshold(par) == 0.0
    assert _peak_threshold(par[:5]) == 0.0          # too few to read a density


def test_no_peak_above_the_noise_floor_warns():
    """A dense field (2e-3 ppp) in back-propagated intensity: the fringes raise the
    measured sigma above every particle's dip; nothing is found, and a warning says
    why and what to try.  Pure noise (above) finds nothing without a warning."""
    frame = R.simulate_field(R.RealisticField(shape=(256, 256), ppp=2e-3, seed=7))
    h, _ = H.preprocess(frame.raw.astype(np.float32) - np.float32(frame.dark), crop=False)
    rec = H.reconstruct(h.astype(np.float32), ZS_REAL, wavelength=LAM, pixel_size=PX,
                        method="backprop")
    with pytest.warns(UserWarning, match="noise floor.*method='dh'"):
        f = H.find_particles(rec)
    assert len(f) == 0


def test_find_particles_takes_arrays_of_other_libraries():
    """A volume or projections from another array library (here torch tensors, one
    carrying autograd state, which numpy cannot take directly) are searched on the
    host and give the numpy result."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    shape = (24, 48, 48)
    zs = np.linspace(1e-3, 2e-3, shape[0])
    truth = _separated(rng, 8, np.array([4, 4, 4]), np.array(shape) - 5, 6.0)
    v = _blob_volume(rng, truth, shape).astype(np.float32)
    ref = H.find_particles(v, zs, pixel_size=PX)
    got = H.find_particles(torch.tensor(v, requires_grad=True), zs, pixel_size=PX)
    assert len(ref) == 8 and np.array_equal(got.positions, ref.positions)
    proj = {"max": v.max(axis=0), "argmax_z": v.argmax(axis=0)}
    ref = H.find_particles(proj, pixel_size=PX, neighborhood=(5, 5))
    got = H.find_particles({k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in proj.items()},
                           pixel_size=PX, neighborhood=(5, 5))
    assert len(ref) >= 6 and np.array_equal(got.positions, ref.positions)
