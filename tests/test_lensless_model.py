"""The lensless forward model: VJPs (field, heights, common offset, shifts,
gains) against central finite differences in complex128, the sensor's adjoint,
the geometry convention, and bad inputs."""
import numpy as np
import pytest

import diffimaging as d
from diffimaging.lensless.model import Heights, SensorGrid, field_shape, model

LAM, P, F = 532e-9, 1.6e-6, 2
SENSOR = (8, 10)
PAD = 8


def _geometry(K=3, seed=0):
    rng = np.random.default_rng(seed)
    shifts = rng.uniform(-2.5, 2.5, size=(K, 2)) * P
    z = np.linspace(60e-6, 90e-6, K) + rng.uniform(0, 3e-6, K)
    return shifts, z


def _field(seed=1):
    rng = np.random.default_rng(seed)
    shape = field_shape(SENSOR, F, PAD)
    return 1.0 + 0.2 * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def _model(**kw):
    shifts, z = _geometry()
    return model(SENSOR, shifts, z, wavelength=LAM, pixel_size=P, factor=F, pad=PAD, **kw)


def _loss(m, t, g, params=None):
    return float(np.sum(g * m(t, params)))


def test_shapes_and_clear_sample():
    m = _model()
    t = np.ones(field_shape(SENSOR, F, PAD), dtype=np.complex128)
    y = m(t)
    assert y.shape == (3,) + SENSOR and y.dtype == np.float64
    np.testing.assert_allclose(y, 1.0, atol=1e-12)   # clear glass: unit intensity everywhere
    assert m.oshape(t.shape) == (3,) + SENSOR
    assert set(m.params) == {"heights.z", "heights.offset", "sensor.shift"}
    y32 = m(t.astype(np.complex64))
    assert y32.dtype == np.float32


def test_vjp_field_matches_finite_differences():
    m = _model()
    t = _field()
    rng = np.random.default_rng(2)
    g = rng.standard_normal((3,) + SENSOR)
    _, pb = d.vjp(m, t)
    gt, _ = pb(g)
    v = rng.standard_normal(t.shape) + 1j * rng.standard_normal(t.shape)
    h = 1e-6
    fd = (_loss(m, t + h * v, g) - _loss(m, t - h * v, g)) / (2 * h)
    an = float(np.sum(np.real(np.conj(gt) * v)))
    assert abs(fd - an) <= 1e-7 * abs(an)


@pytest.mark.parametrize("name,index,h", [("heights.z", (1,), 1e-9), ("heights.offset", (), 1e-9),
                                          ("sensor.shift", (2, 0), 1e-10),
                                          ("sensor.shift", (0, 1), 1e-10)])
def test_vjp_geometry_matches_finite_differences(name, index, h):
    m = _model(learn=("shift", "z", "offset"))
    t = _field()
    g = np.random.default_rng(3).standard_normal((3,) + SENSOR)
    _, pb = d.vjp(m, t)
    _, gp = pb(g)
    v0 = np.array(m.params[name].value, dtype=np.float64)
    vp, vm = v0.copy(), v0.copy()
    vp[index] += h
    vm[index] -= h
    fd = (_loss(m, t, g, {name: vp}) - _loss(m, t, g, {name: vm})) / (2 * h)
    an = float(np.asarray(gp[name])[index])
    assert gp[name].shape == v0.shape if hasattr(gp[name], "shape") else v0.shape == ()
    assert abs(fd - an) <= 1e-6 * abs(an) + 1e-9 * np.sum(np.abs(g))


def test_vjp_gain_matches_finite_differences():
    m = _model(learn=("gain",))
    t = _field()
    g = np.random.default_rng(4).standard_normal((3,) + SENSOR)
    _, gp = d.vjp(m, t)[1](g)
    for name in ("gain.gain", "gain.offset"):
        v0 = np.array(m.params[name].value, dtype=np.float64)
        vp, vm = v0.copy(), v0.copy()
        vp[1] += 1e-6
        vm[1] -= 1e-6
        fd = (_loss(m, t, g, {name: vp}) - _loss(m, t, g, {name: vm})) / 2e-6
        assert abs(fd - float(gp[name][1, 0, 0])) <= 1e-7 * max(1.0, abs(fd))


def test_sensor_grid_adjoint_dot_test():
    shifts, _ = _geometry(K=4)
    s = SensorGrid(F, shifts, P / F, SENSOR, origin=PAD)
    rng = np.random.default_rng(5)
    shape = (4,) + field_shape(SENSOR, F, PAD)
    u = rng.standard_normal(shape)
    v = rng.standard_normal((4,) + SENSOR)
    Au = s(u)
    AHv = s.H(v)
    assert AHv.shape == shape
    assert abs(np.sum(Au * v) - np.sum(u * AHv)) <= 1e-12 * np.linalg.norm(Au) * np.linalg.norm(v)


def test_shift_convention_one_sensor_pixel():
    """A sensor moved by +P along x sees at pixel j what the unmoved sensor sees at j + 1."""
    t = _field()
    z = np.array([70e-6, 70e-6])
    shifts = np.array([[0.0, 0.0], [0.0, P]])
    m = model(SENSOR, shifts, z, wavelength=LAM, pixel_size=P, factor=F, pad=PAD)
    y = m(t)
    np.testing.assert_allclose(y[1, :, :-1], y[0, :, 1:], rtol=1e-12)


def test_heights_matches_direct_propagation():
    t = _field()
    z = np.array([50e-6, 80e-6])
    u = Heights(z, LAM, P / F, n_medium=1.33)(t)
    ref = 1.0 + d.propagate(t - 1.0, z, wavelength=LAM / 1.33, pixel_size=P / F, carrier=False)
    np.testing.assert_allclose(u, ref, atol=1e-12)


def test_bad_inputs():
    shifts, z = _geometry()
    with pytest.raises(ValueError, match=r"shifts must be \(K, 2\) = \(3, 2\)"):
        model(SENSOR, shifts[:2], z, wavelength=LAM, pixel_size=P, factor=F)
    with pytest.raises(ValueError, match="unknown group"):
        model(SENSOR, shifts, z, wavelength=LAM, pixel_size=P, factor=F, learn=("shifts",))
    with pytest.raises(ValueError, match="pad = 2 .* too small"):
        model(SENSOR, shifts, z, wavelength=LAM, pixel_size=P, factor=F, pad=2)
    m = model(SENSOR, shifts, z, wavelength=LAM, pixel_size=P, factor=F, pad=PAD)
    with pytest.raises(ValueError, match="do not fit"):
        m(np.ones((20, 20), complex))
