"""Autofocus of in-line holograms (holography.autofocus): accuracy against simulated
truth, the global coarse stage, the noise-based uncertainty, and argument errors."""
import importlib
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from diffimaging.holography import random_particles, simulate_particles
from diffimaging.holography.autofocus import FocusResult, autofocus, estimate_noise, focus_curve
from diffimaging.holography.mie import mie_hologram

# the module itself (the package may export the function under the same name)
AFM = importlib.import_module("diffimaging.holography.autofocus")

LAM, PX = 532e-9, 2e-6
N = 128
Z_TRUE = 2.5e-3
POS = (64 * PX + 0.3e-6, 64 * PX - 0.6e-6)          # metres, off the pixel grid
ZR = (1e-3, 5e-3)
KW = dict(wavelength=LAM, pixel_size=PX)

# Noise-free bias z - z_true of each criterion for this particle (10 um opaque disk
# at 2.5 mm, 128^2 pixels of 2 um, default window = the whole hologram), as measured
# and documented in autofocus's docstring.
BIAS = {"quadrature": 0.91e-6, "min_intensity": -5.83e-6, "variance": -3.26e-6, "gradient": -2.40e-6}


def _particle(noise, seed=1):
    pos = np.array([[POS[0], POS[1], Z_TRUE]])
    h, _ = simulate_particles((N, N), (pos, [10e-6]), gaussian_noise=noise, seed=seed, **KW)
    return h


@pytest.fixture(scope="module")
def holo():
    return _particle(0.01)


@pytest.mark.parametrize("criterion", ["quadrature", "min_intensity", "variance", "gradient"])
def test_single_particle_within_bias_plus_3_sigma(holo, criterion):
    r = autofocus(holo, ZR, position=POS, criterion=criterion, **KW)
    assert isinstance(r, FocusResult) and r.criterion == criterion and r.refined
    # the uncertainty is neither vacuous nor zero (1 % noise: measured ~0.3 um)
    assert 0.1e-6 < r.z_std < 1.5e-6
    assert abs(r.z - Z_TRUE - BIAS[criterion]) <= 3 * r.z_std + 0.1e-6
    assert abs(r.z - Z_TRUE) < 30e-6


def test_default_criterion_and_result_fields(holo):
    r = autofocus(holo, ZR, position=POS, **KW)
    assert r.criterion == "quadrature"
    assert abs(r.z - Z_TRUE) <= abs(BIAS["quadrature"]) + 3 * r.z_std
    assert abs(r.z - Z_TRUE) < 30e-6
    assert r.curve_z.shape == r.curve.shape == (41,)
    np.testing.assert_allclose(r.curve_z[[0, -1]], ZR)
    assert abs(r.curve_z[np.argmin(r.curve)] - Z_TRUE) <= 50e-6          # the right coarse sample
    assert r.position == POS and r.window == (0, 0, N, N)
    assert r.noise == pytest.approx(0.01, rel=0.1)                        # estimated from the window
    # tamura is the same criterion as variance (monotonic function of std/mean)
    rt = autofocus(holo, ZR, position=POS, criterion="tamura", **KW)
    rv = autofocus(holo, ZR, position=POS, criterion="variance", **KW)
    assert rt.criterion == "variance" and rt.z == rv.z


def test_coarse_stage_finds_basin_where_local_start_fails(holo):
    def objective(z_mm):
        return focus_curve(holo, [z_mm[0] * 1e-3], position=POS, window=N * PX, **KW)[0]

    # a plain local optimiser (L-BFGS-B, finite-difference gradient) started at the edge
    # of the range stays in the flat, rippled tail of the criterion
    for start in ZR:
        local = minimize(objective, [start * 1e3], method="L-BFGS-B", bounds=[(1.0, 5.0)])
        assert abs(local.x[0] * 1e-3 - Z_TRUE) > 0.5e-3
    r = autofocus(holo, ZR, position=POS, **KW)
    assert abs(r.z - Z_TRUE) < 30e-6
    # the coarse curve is multimodal: more than one local minimum
    c = r.curve
    assert np.sum((c[1:-1] < c[:-2]) & (c[1:-1] < c[2:])) >= 2
    # refine=False: the best coarse sample, with the quantisation std
    r0 = autofocus(holo, ZR, position=POS, refine=False, **KW)
    assert not r0.refined and r0.z in r0.curve_z
    assert abs(r0.z - Z_TRUE) <= 50e-6
    assert r0.z_std == pytest.approx(100e-6 / np.sqrt(12))


def test_whole_hologram_planar_sample():
    # 8 particles (8-12 um) on one plane at 3 mm, 40 um from the edges; the sample is
    # simulated on 256^2 pixels of 2 um and binned to a 128^2 sensor of 4 um pixels
    # (so that the sensor holds the particles' diffraction cones; on a 256 um sensor
    # they are cut and every criterion focuses ~10 um too near: see the benchmark)
    tab = random_particles((256, 256), PX, count=8, margin=40e-6, seed=0)
    tab.positions[:, 2] = 3e-3
    h, _ = simulate_particles((256, 256), tab, gaussian_noise=0.01, seed=0, bin_factor=2, **KW)
    r = autofocus(h, ZR, wavelength=LAM, pixel_size=2 * PX)
    assert r.position is None and r.refined and r.criterion == "quadrature"
    assert abs(r.z - 3e-3) < 6e-6                                      # 0.2 %
    assert 0 < r.z_std < 2e-6


def test_z_std_grows_with_noise():
    stds, errs = [], []
    for noise in (0.003, 0.01, 0.03):
        r = autofocus(_particle(noise, seed=2), ZR, position=POS, **KW)
        stds.append(r.z_std)
        errs.append(r.z - Z_TRUE - BIAS["quadrature"])
    assert stds[0] < stds[1] < stds[2]
    assert 2.0 < stds[2] / stds[1] < 4.5                  # ~ proportional (3x the noise)
    assert all(abs(e) <= 3 * s + 0.1e-6 for e, s in zip(errs, stds))
    # with the noise given, z_std is exactly proportional to it (same optimum)
    h = _particle(0.01, seed=2)
    a = autofocus(h, ZR, position=POS, noise=0.01, **KW)
    b = autofocus(h, ZR, position=POS, noise=0.02, **KW)
    assert a.z == b.z and b.z_std == pytest.approx(2 * a.z_std, rel=1e-12)


def test_estimate_noise():
    rng = np.random.default_rng(3)
    assert estimate_noise(1 + 0.02 * rng.standard_normal((128, 128))) == pytest.approx(0.02, rel=0.05)
    clean = _particle(0.0)
    assert estimate_noise(clean) < 1e-3                   # fringes barely leak in
    assert estimate_noise(clean + 0.01 * rng.standard_normal(clean.shape)) == pytest.approx(0.01, rel=0.08)


@pytest.mark.parametrize("criterion", ["quadrature", "min_intensity", "variance", "gradient"])
@pytest.mark.parametrize("whole", [False, True])
def test_data_gradient_matches_finite_differences(criterion, whole):
    # dJ/dh (used by z_std) against central differences, on a small window
    rng = np.random.default_rng(4)
    pos = np.array([[32 * PX + 0.3e-6, 30 * PX - 0.6e-6, 1.5e-3]])
    h, _ = simulate_particles((48, 48), (pos, [10e-6]), gaussian_noise=0.01, seed=1, **KW)
    p = None if whole else tuple(pos[0, :2])

    def problem(hh):
        prob, _, _, _ = AFM._setup(hh, (1e-3, 2e-3), LAM, PX, p, None, criterion, "dark")
        prob.set_band(2e-3)
        return prob

    prob = problem(h)
    z = 1.52e-3
    _, spot = prob.objective(prob.field(z))
    g = prob.data_gradient(z, spot)
    dh = rng.standard_normal(h.shape)
    eps = 1e-6
    fd = (problem(h + eps * dh).value(z, spot=spot) - problem(h - eps * dh).value(z, spot=spot)) / (2 * eps)
    assert np.sum(g * dh) == pytest.approx(fd, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("kwargs,name", [
    (dict(z_range=(5e-3, 1e-3)), "z_range"),
    (dict(z_range=(2e-3, 2e-3)), "z_range"),
    (dict(z_range=(-1e-3, 5e-3)), "z_range"),
    (dict(z_range=(0.0, 5e-3)), "z_range"),
    (dict(z_range=(1e-3,)), "z_range"),
    (dict(z_range=(1.0, 5.0)), "z_range"),                      # millimetres
    (dict(window=300e-6), "window"),                            # > 256 um
    (dict(window=(100e-6, 400e-6)), "window"),
    (dict(window=64), "window"),                                # pixels, not metres
    (dict(window=10e-6), "window"),                             # too small
    (dict(position=(300e-6, 100e-6)), "position"),
    (dict(position=(64, 64)), "position"),                      # pixels, not metres
    (dict(position=(1e-4, -5e-6)), "position"),
    (dict(pixel_size=2), "pixel_size"),                         # micrometres
    (dict(pixel_size=(2e-6, 2)), "pixel_size"),
    (dict(wavelength=532), "wavelength"),                       # nanometres
    (dict(criterion="sharpness"), "criterion"),
    (dict(coarse=2), "coarse"),
    (dict(coarse=20.5), "coarse"),
    (dict(polarity="light"), "polarity"),
    (dict(noise=-0.01), "noise"),
    (dict(n_medium=0.9), "n_medium"),
    (dict(n_medium=float("inf")), "n_medium"),
])
def test_bad_inputs_name_the_argument(holo, kwargs, name):
    args = dict(z_range=ZR, wavelength=LAM, pixel_size=PX, position=POS)
    args.update(kwargs)
    zr = args.pop("z_range")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=name):
            autofocus(holo, zr, **args)


def test_bad_hologram():
    with pytest.raises(ValueError, match="hologram"):
        autofocus(np.ones((2, 64, 64)), ZR, **KW)
    with pytest.raises(TypeError, match="hologram"):
        autofocus(np.ones((64, 64), dtype=complex), ZR, **KW)
    h = np.ones((64, 64))
    h[3, 3] = np.nan
    with pytest.raises(ValueError, match="hologram"):
        autofocus(h, ZR, **KW)


def test_focus_at_range_edge_warns(holo):
    # the particle (2.5 mm) lies just outside 2.6-4 mm: the optimum sits on the range edge
    with pytest.warns(UserWarning, match="edge of z_range"):
        r = autofocus(holo, (2.6e-3, 4e-3), position=POS, coarse=15, **KW)
    assert not r.refined


# Microscope spheres (Lorenz-Mie): 256^2 objective pixels of 0.1 um, water, a neighbour
# 9 um away, a non-uniform illumination divided by a 2 %-wrong estimate, 2 % noise.
# The band max(1 um, 3 radius, 0.2 z) is the target; the old default
# ("quadrature" on the whole image) missed the silica and absorbing spheres by 5-20 um.
MIE = [(1.59, 0.6e-6, 532e-9, 12e-6), (1.45, 0.5e-6, 405e-9, 15e-6), (1.45, 0.9e-6, 660e-9, 9e-6),
       (1.59 + 0.3j, 0.7e-6, 532e-9, 14e-6)]


def _sphere(index, a, lam, z, seed=0, n=256, px=0.1e-6):
    c = n * px / 2 + 0.03e-6
    pos = np.array([[c, c, z], [c + 9e-6, c - 2e-6, 20e-6]])
    yy, xx = np.mgrid[0:n, 0:n] / n
    ill = 1 + 0.1 * np.cos(2 * np.pi * (0.6 * yy + 0.3 * xx))
    h = mie_hologram((n, n), pos, radius=[a, 0.8e-6], n_particle=[index, 1.59], n_medium=1.33,
                     wavelength=lam, pixel_size=px, illumination=ill, gaussian_noise=0.02, seed=seed)
    return h / (ill * (1 + 0.02 * np.sin(2 * np.pi * xx))), (c, c)


@pytest.mark.parametrize("index,a,lam,z", MIE)
def test_microscope_spheres_within_band_and_z_std_honest(index, a, lam, z):
    h, pos = _sphere(index, a, lam, z)
    r = autofocus(h, (3e-6, 30e-6), wavelength=lam, pixel_size=0.1e-6, position=pos, n_medium=1.33)
    assert r.criterion == "axial" and r.refined
    assert abs(r.z - z) <= max(1e-6, 3 * a, 0.2 * z)
    assert abs(r.z - z) <= 3 * r.z_std                        # honest uncertainty
    assert 0.1e-6 < r.z_std < 2e-6 and np.isfinite(r.z_std)
    # n_medium is the same as giving the wavelength in the medium
    r2 = autofocus(h, (3e-6, 30e-6), wavelength=lam / 1.33, pixel_size=0.1e-6, position=pos)
    assert r2.z == pytest.approx(r.z, abs=1e-12)


def test_microscope_window_from_optics():
    # 0.05 um pixels: the window holds the cone out to sin = 0.6 over z <= 12 um
    # (2 x 12 x 0.75 = 18 um = 360 px), not the whole 512^2 image
    h, pos = _sphere(1.59, 0.6e-6, 532e-9, 8e-6, n=512, px=0.05e-6)
    r = autofocus(h, (3e-6, 12e-6), wavelength=532e-9, pixel_size=0.05e-6, position=pos, n_medium=1.33)
    assert r.window[2] == r.window[3] == 360
    assert abs(r.z - 8e-6) <= 1.8e-6


def test_raw_counts_refused():
    h, pos = _sphere(1.59, 0.6e-6, 532e-9, 12e-6)
    with pytest.raises(ValueError, match="raw camera counts"):
        autofocus(h * 1000, (3e-6, 30e-6), wavelength=532e-9, pixel_size=0.1e-6, position=pos)


@pytest.mark.parametrize("criterion", ["quadrature", "variance", "gradient", "min_intensity", "axial"])
def test_z_std_never_inf_on_pure_noise(criterion):
    rng = np.random.default_rng(5)
    h = 1 + 0.01 * rng.standard_normal((64, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = autofocus(h, ZR, position=(64e-6, 64e-6), criterion=criterion, **KW)
    assert np.isfinite(r.z_std) and r.z_std > 0
