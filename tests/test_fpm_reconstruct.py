"""Fourier ptychography end to end: the simulator (bright-field / dark-field
split, photon scale, corrupted frames), the fidelities' gradients, the frame
weights, the coarse calibration, and recovery of object, pupil and LED
geometry on a small case (with the same loop at the nominal geometry scoring
lower), plus bad inputs."""
import math

import numpy as np
import pytest

from diffimaging import fpm
from diffimaging.fpm import losses as FL
from diffimaging.fpm import metrics
from diffimaging.fpm.imaging import Imaging

SMALL = dict(shape=(32, 32), offset=(150e-6, -100e-6), rotation=math.radians(0.4),
             height_error=1e-3, zernike=(0, 0, 0, 0.4, 0.2, 0, 0, 0.1, 0), photons=5000.0)


def _setup(**kw):
    return fpm.standard_setup(rows=9, cols=9, **kw)


@pytest.fixture(scope="module")
def small():
    return fpm.simulate(setup=_setup(), **SMALL)


@pytest.fixture(scope="module")
def recovered(small):
    return fpm.reconstruct(small, iterations=40, pad=4, calibrate=False)


def test_simulator_brightfield_darkfield_split(small):
    true = small.truth["setup"]
    means = small.images.mean(axis=(1, 2))
    bf = true.brightfield()
    assert 5 <= bf.sum() < bf.size
    # bright-field images carry the unscattered light: orders of magnitude brighter
    # (away from the pupil's edge, where the finite field of view blurs the split)
    rho = true.illumination_na() / true.na
    assert means[rho < 0.9].min() > 20 * means[rho > 1.1].max()
    assert np.median(means[bf]) > 100 * np.median(means[~bf])
    # the on-axis image holds the photons asked for
    centre = int(np.argmin(np.hypot(*true.wavevectors().T)))
    assert abs(means[centre] / 5000.0 - 1) < 0.01
    assert small.images.dtype == np.float64 and np.all(small.images == np.round(small.images))


def test_simulator_noiseless_matches_the_imaging_model():
    s = _setup()
    data = fpm.simulate(setup=s, shape=(16, 16), photons=None, margin=4, corrupted=0,
                        brightness=np.linspace(0.9, 1.1, 81))
    t = data.truth
    ts = t["setup"]
    u = s.upsampling
    img = Imaging(ts, (24 * u, 24 * u), margin=4 * u, zernike=9, led_size=0.3e-3)
    scene = fpm.sample_object("camera", (24 * u, 24 * u))
    psi = img(scene, ts.geometry(), t["zernike"])
    pred = t["brightness"][:, None, None] * np.abs(psi[:, 4:20, 4:20]) ** 2
    np.testing.assert_allclose(data.images, pred, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t["object"], scene[16:80, 16:80])
    # the truth differs from the nominal setup by the standard misalignment
    assert np.allclose(np.subtract(ts.offset, s.offset), (200e-6, -150e-6))
    assert abs(ts.height - s.height - 1.5e-3) < 1e-12


def _imaging_case():
    s = fpm.standard_setup(rows=5, cols=5, height=60e-3)
    rng = np.random.default_rng(0)
    o = (1 + 0.3 * rng.standard_normal((48, 40))) * np.exp(0.5j * rng.standard_normal((48, 40)))
    return s, o, rng


def test_imaging_uniform_sample_gives_uniform_images():
    """The mean of the object is an unbounded plane wave: a uniform sample gives
    uniform images under every LED (no ringing from the grid's edge), dark beyond
    the pupil's edge."""
    s, o, _ = _imaging_case()
    img = Imaging(s, o.shape, margin=8, led_size=0.0)
    geo = dict(offset=np.array([3e-4, -2e-4]), rotation=0.02, height=61e-3, pitch=4e-3)
    psi = img(np.full(o.shape, 0.7 + 0.1j), geo, np.zeros(9))
    amp = np.abs(psi)
    assert np.max(np.ptp(amp.reshape(25, -1), axis=1)) < 1e-12
    bf = np.hypot(*img.wavevectors(geo).T) < s.cutoff
    np.testing.assert_allclose(amp[bf], abs(0.7 + 0.1j), rtol=1e-12)
    assert np.max(amp[~bf]) < 1e-12


def test_imaging_vjp_matches_finite_differences():
    s, o, rng = _imaging_case()
    img = Imaging(s, o.shape, margin=8, zernike=9)
    # an LED on the pupil's edge: the soft edge's derivative counts
    k = img.wavevectors(s.geometry())
    h0 = s.height
    geo = dict(offset=np.array([3e-4, -2e-4]), rotation=0.02, height=h0 + 1e-3, pitch=4e-3)
    rho = np.hypot(*img.wavevectors(geo).T) / s.cutoff
    edge = int(np.argmin(np.abs(rho - 1.0)))
    assert abs(rho[edge] - 1) * s.cutoff < 2 * img._edge(geo) and k.shape == (25, 2)
    img.led_size_gradient = True
    geo["led_size"] = 0.25e-3
    z = 0.3 * rng.standard_normal(9)
    sub = [0, 3, edge, 12, 24]
    psi, res = img.forward(o, geo, z, sub)
    g = rng.standard_normal(psi.shape) + 1j * rng.standard_normal(psi.shape)

    def L(o_, geo_, z_):
        return float(np.sum(np.real(np.conj(g) * img(o_, geo_, z_, sub))))

    go, gg, gz = img.backward(res, g)
    for idx in [(3, 4), (20, 30)]:
        for dv in (1, 1j):
            e = np.zeros_like(o)
            e[idx] = 1e-6 * dv
            fd = (L(o + e, geo, z) - L(o - e, geo, z)) / 2e-6
            assert abs(fd - np.real(np.conj(dv) * go[idx])) < 1e-6 * max(1, abs(fd))
    for key, h in (("rotation", 1e-7), ("height", 1e-7), ("pitch", 1e-8), ("led_size", 1e-9)):
        gp, gm = dict(geo), dict(geo)
        gp[key] += h
        gm[key] -= h
        fd = (L(o, gp, z) - L(o, gm, z)) / (2 * h)
        assert abs(fd - gg[key]) < 1e-5 * abs(fd), key
    for i in range(2):
        gp, gm = dict(geo), dict(geo)
        gp["offset"] = geo["offset"] + np.eye(2)[i] * 1e-8
        gm["offset"] = geo["offset"] - np.eye(2)[i] * 1e-8
        fd = (L(o, gp, z) - L(o, gm, z)) / 2e-8
        assert abs(fd - gg["offset"][i]) < 1e-5 * abs(fd)
    for n in (3, 4, 7):
        zp, zm = z.copy(), z.copy()
        zp[n] += 1e-6
        zm[n] -= 1e-6
        fd = (L(o, geo, zp) - L(o, geo, zm)) / 2e-6
        assert abs(fd - gz[n]) < 1e-5 * max(1, abs(fd))


def test_imaging_explicit_background_vjp_and_default():
    """With an explicit background c the sample is w o + (1 - w) c; its VJP for o
    and c matches finite differences, and c = mean(o) reproduces the default."""
    s, o, rng = _imaging_case()
    img = Imaging(s, o.shape, margin=8, zernike=9)
    geo = s.geometry()
    z = 0.3 * rng.standard_normal(9)
    sub = [0, 5, 12, 20]
    c0 = complex(np.mean(o))
    assert np.allclose(img(o, geo, z, sub, background=c0), img(o, geo, z, sub), atol=1e-12)
    c = 0.9 * c0 + 0.05j
    psi, res = img.forward(o, geo, z, sub, background=c)
    g = rng.standard_normal(psi.shape) + 1j * rng.standard_normal(psi.shape)

    def L(o_, c_):
        return float(np.sum(np.real(np.conj(g) * img(o_, geo, z, sub, background=c_))))

    go, gg, _ = img.backward(res, g)
    for dv in (1, 1j):
        fd = (L(o, c + 1e-6 * dv) - L(o, c - 1e-6 * dv)) / 2e-6
        assert abs(fd - np.real(np.conj(dv) * gg["background"])) < 1e-6 * max(1, abs(fd))
        e = np.zeros_like(o)
        e[(5, 6)] = 1e-6 * dv
        fd = (L(o + e, c) - L(o - e, c)) / 2e-6
        assert abs(fd - np.real(np.conj(dv) * go[5, 6])) < 1e-6 * max(1, abs(fd))
    # the background is the sample beyond the grid: changing it changes the fields
    assert np.max(np.abs(img(o, geo, z, sub, background=c) - img(o, geo, z, sub))) > 1e-3


def test_simulator_corrupted_frames_are_recorded():
    data = fpm.simulate(setup=_setup(), shape=(16, 16), corrupted=3, seed=2)
    clean = fpm.simulate(setup=_setup(), shape=(16, 16), corrupted=0, seed=2)
    idx = data.truth["corrupted"]
    assert len(idx) == 3 and data.truth["corruption"] == ["stray light", "moved", "hot pixels"]
    changed = np.flatnonzero(np.any(data.images != clean.images, axis=(1, 2)))
    assert sorted(changed.tolist()) == idx


@pytest.mark.parametrize("name", FL.FIDELITIES)
def test_fidelity_gradients_match_finite_differences(name):
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.5, 30.0, (3, 5, 4))
    y = rng.poisson(mu * rng.uniform(0.5, 1.5, mu.shape)).astype(float)
    w = np.array([1.0, 0.5, 2.0])
    vals, g = FL.gradient(mu, y, name, w)
    assert vals.shape == (3,)
    h = 1e-6
    for idx in [(0, 0, 0), (1, 2, 3), (2, 4, 1)]:
        e = np.zeros_like(mu)
        e[idx] = h
        fd = (np.sum(w * FL.per_image(mu + e, y, name)) - np.sum(w * FL.per_image(mu - e, y, name)))
        assert abs(fd / (2 * h) - g[idx]) <= 1e-5 * max(1.0, abs(g[idx]))


def test_fidelities_expected_values_under_poisson_noise():
    rng = np.random.default_rng(1)
    mu = np.full((1, 200, 200), 400.0)
    y = rng.poisson(mu).astype(float)
    for name in FL.FIDELITIES:
        per_px = FL.per_image(mu, y, name)[0] / mu.size
        assert abs(per_px / FL.expected(name) - 1) < 0.05, name


def test_dispersion_flags_the_frame_that_stands_out():
    s = _setup()
    k = s.wavevectors()
    vals = np.full(81, 100.0) * (1 + 0.02 * np.random.default_rng(0).standard_normal(81))
    vals[40] *= 8.0
    phi = FL.dispersion(vals, k)
    assert phi[40] > 6 and np.all(phi >= 1) and np.median(np.delete(phi, 40)) < 1.05


def test_recovery_of_object_pupil_and_geometry(small, recovered):
    rec = recovered
    sc = metrics.score(rec, small)
    # the wave vectors closer than the nominal ones (0.39 spectral px off at most)
    k_nominal = metrics.wavevector_error(small.setup.wavevectors(), small.truth["setup"],
                                         (128, 128))
    assert k_nominal.max() > 0.35
    assert sc["k_rms"] < 0.8 * np.sqrt(np.mean(k_nominal ** 2))
    assert sc["zernike_rms"] < 0.05
    assert abs(rec.zernike[3] - 0.4) < 0.05
    assert sc["psnr"] > 28 and sc["ssim"] > 0.75
    assert rec.history["loss"][-1] < 0.2 * rec.history["loss"][2]
    assert rec.object.shape == (128, 128) and rec.pupil.shape == (32, 32)
    assert rec.brightness.shape == (81,) and rec.noise.shape == (81,)


def test_nominal_geometry_scores_lower(small, recovered):
    frozen = fpm.reconstruct(small, iterations=40, pad=4, learn=(), calibrate=False)
    a = metrics.score(recovered, small)
    b = metrics.score(frozen, small)
    assert a["psnr"] > b["psnr"] + 5
    assert frozen.history["final_loss"] > 3 * recovered.history["final_loss"]


def test_bad_inputs():
    s = _setup()
    with pytest.raises(ValueError, match="LED grid"):
        fpm.Dataset(np.ones((80, 16, 16)), s)
    with pytest.raises(ValueError, match="na"):
        _setup(na=1.0)
    with pytest.raises(TypeError, match="Dataset"):
        fpm.reconstruct(np.ones((81, 16, 16)))
    data = fpm.Dataset(np.ones((81, 16, 16)), s)
    with pytest.raises(ValueError, match="learn"):
        fpm.reconstruct(data, learn=("led",))
    with pytest.raises(ValueError, match="loss"):
        fpm.reconstruct(data, loss="l1")
    with pytest.raises(ValueError, match="images"):
        fpm.reconstruct(fpm.Dataset(np.full((81, 16, 16), np.nan), s))
    with pytest.raises(ValueError, match="shape"):
        fpm.Dataset(np.ones((81, 16)), s)


def test_reconstruct_takes_images_and_setup(small):
    """reconstruct(images, setup) is reconstruct(Dataset(images, setup)); the setup
    cannot be given twice, and images without a setup are refused."""
    a = fpm.reconstruct(small.images, small.setup, iterations=2, pad=2, calibrate=False)
    b = fpm.reconstruct(small, iterations=2, pad=2, calibrate=False)
    np.testing.assert_allclose(a.object, b.object)
    with pytest.raises(TypeError, match="setup is given twice"):
        fpm.reconstruct(small, small.setup, iterations=1)
    with pytest.raises(TypeError, match=r"reconstruct\(images, setup\)"):
        fpm.reconstruct(small.images, iterations=1)


def test_calibration_reduces_a_large_misalignment():
    """The coarse stage (bright-field spectra -> offset and rotation) brings a
    (600, -400) um, 1.5 degree misalignment closer; the height stays nominal."""
    data = fpm.simulate(offset=(600e-6, -400e-6), rotation=math.radians(1.5), height_error=0.0,
                        photons=5000.0, seed=3)
    true = data.truth["setup"]
    cal = fpm.calibrate_geometry(data.images, data.setup)
    assert cal["used"] and len(cal["measured"]["index"]) >= 15
    found = data.setup.with_geometry(offset=cal["offset"], rotation=cal["rotation"])
    before = metrics.wavevector_error(data.setup.wavevectors(), true, (256, 256))
    after = metrics.wavevector_error(found.wavevectors(), true, (256, 256))
    assert after.max() < 0.5 * before.max()
    assert np.hypot(*(cal["offset"] - true.offset)) < 0.5 * np.hypot(600e-6, 400e-6)
    assert cal["height"] == data.setup.height
