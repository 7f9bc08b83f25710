"""The lensless simulator: shapes, geometry, truth, noise statistics, the
modulo option, the bar target, and bad inputs."""
import numpy as np
import pytest

from diffimaging.lensless import Captures, bar_target, simulate
from diffimaging.lensless import metrics as M

SMALL = dict(n_window=64, pad=24)


def test_shapes_geometry_and_truth():
    c = simulate(factor=2, K=8, seed=3, **SMALL)
    assert isinstance(c, Captures)
    assert c.images.shape == (8, 32, 32) and c.images.dtype == np.float32
    assert c.pixel_size == pytest.approx(1.6e-6) and c.factor == 2
    assert c.truth["field"].shape == (64, 64)
    amp = np.abs(c.truth["field"])
    assert 0.5 - 1e-9 <= amp.min() and amp.max() <= 1.0 + 1e-9       # 0.5 + 0.5 camera
    ph = np.angle(c.truth["field"])
    assert 0.0 <= ph.min() and ph.max() <= np.pi / 2 + 1e-9          # (pi / 2) moon
    # nominal: sub-pixel steps on the 2 x 2 grid plus whole pixels; heights interleaved
    frac = np.mod(c.shifts / c.pixel_size, 1.0)
    np.testing.assert_allclose(np.sort(np.unique(np.round(frac, 9))), [0.0, 0.5])
    assert np.all((c.z >= 350e-6 - 1e-12) & (c.z <= 500e-6 + 1e-12))
    assert not np.all(np.diff(c.z) > 0)                               # interleaved, not sorted
    # each sub-pixel step is seen from low and high heights
    step = (np.round(frac[:, 0] * 2) * 2 + np.round(frac[:, 1] * 2)).astype(int)
    for s in range(4):
        zs = c.z[step == s]
        assert zs.max() - zs.min() > 50e-6
    # the truth is the nominal geometry plus errors of the given size
    dz = c.truth["z"] - c.z
    assert 0 < np.std(dz) < 60e-6
    ds = c.truth["shifts"] - c.shifts
    assert 0 < np.std(ds) < 2e-6


def test_errors_offset_and_seed():
    a = simulate(seed=1, shift_error=0.0, z_error=0.0, z_offset=40e-6, K=4, **SMALL)
    np.testing.assert_allclose(a.truth["z"] - a.z, 40e-6, rtol=1e-12)
    np.testing.assert_array_equal(a.truth["shifts"], a.shifts)
    b = simulate(seed=1, shift_error=0.0, z_error=0.0, z_offset=40e-6, K=4, **SMALL)
    np.testing.assert_array_equal(a.images, b.images)
    c = simulate(seed=2, shift_error=0.0, z_error=0.0, z_offset=40e-6, K=4, **SMALL)
    assert not np.array_equal(a.images, c.images)


def test_poisson_noise_statistics():
    """Residuals from the noise-free images have variance I / photons."""
    clean = simulate(seed=5, photons=None, K=4, **SMALL)
    noisy = simulate(seed=5, photons=1e3, K=4, **SMALL)
    I = clean.images.astype(np.float64)
    r = noisy.images.astype(np.float64) - I
    z = r / np.sqrt(I / 1e3)
    assert abs(np.mean(z)) < 0.05
    assert np.std(z) == pytest.approx(1.0, abs=0.05)
    # counts are whole photons
    q = noisy.images.astype(np.float64) * 1e3
    np.testing.assert_allclose(q, np.round(q), atol=2e-3 * q.max())


def test_modulo_keeps_only_subpixel_steps():
    full = simulate(seed=4, K=8, **SMALL)
    mod = simulate(seed=4, K=8, modulo=True, **SMALL)
    np.testing.assert_array_equal(full.images, mod.images)
    P = full.pixel_size
    assert np.all((mod.shifts >= 0) & (mod.shifts < P))
    np.testing.assert_allclose(np.mod(full.shifts, P), mod.shifts, atol=1e-15)
    assert np.any(np.abs(full.shifts - mod.shifts) > 0.5 * P)          # whole pixels were lost
    np.testing.assert_array_equal(full.truth["shifts"], mod.truth["shifts"])


def test_not_an_inverse_crime():
    """The simulator integrates a finer field than the reconstruction grid: the
    captures differ from the model's prediction on the truth at the same geometry."""
    from diffimaging.lensless import field_shape, model

    c = simulate(seed=6, photons=None, K=4, **SMALL)
    m = model(c.sensor_shape, c.truth["shifts"], c.truth["z"], wavelength=c.wavelength,
              pixel_size=c.pixel_size, factor=2, pad=24)
    t = np.ones(field_shape(c.sensor_shape, 2, 24), complex)
    t[24:88, 24:88] = c.truth["field"]
    pred = m(t)
    err = np.abs(pred - c.images)
    assert 1e-4 < np.mean(err) < 0.05                                # close, yet not identical


def test_bar_target_layout():
    t, targets = bar_target(256, 2, oversample=2)
    assert t.shape == (512, 512)
    gains = sorted({g["gain"] for g in targets})
    assert gains[0] == 0.5 and gains[-1] == 2.0                       # 2 sensor px .. 1 hr px
    assert {g["orientation"] for g in targets} == {"vertical", "horizontal"}
    hr = t.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    # the truth resolves every group, a blurred copy does not
    assert M.resolution_gain(hr, targets) == 2.0
    from scipy.ndimage import uniform_filter
    blurred = uniform_filter(np.abs(hr), 4)
    assert M.resolution_gain(blurred, targets) < 1.0
    t4, targets4 = bar_target(256, 4)
    assert max(g["gain"] for g in targets4) == 4.0
    assert M.resolution_gain(t4, targets4) == 4.0
    with pytest.raises(ValueError, match="too small for the bar target"):
        bar_target(64, 4)
    c = simulate(obj="bars", K=2, seed=0, n_window=128, pad=16, photons=None)
    assert c.truth["targets"] and c.truth["field"].shape == (128, 128)


def test_bad_inputs():
    with pytest.raises(ValueError, match="multiple of factor"):
        simulate(factor=3, n_window=64)
    with pytest.raises(ValueError, match="obj"):
        simulate(obj="lena", **SMALL)
    with pytest.raises(ValueError, match="photons"):
        simulate(photons=-5, **SMALL)
    with pytest.raises(ValueError, match="pad"):
        simulate(pad=4, n_window=64)
    with pytest.raises(ValueError, match="z_range"):
        simulate(z_range=(500e-6, 350e-6), **SMALL)
