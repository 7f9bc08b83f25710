"""The ∂H volume stage: U = r (1 + sum_k P~(z_k + dz) o_k), and its linearised intensity."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging.holography import Volume

from conftest import crandn, vdot

LAM, PX = 532e-9, 2e-6


def _model(zs, dz=1e-5, linearized=False, r=1.0):
    v = Volume(zs, LAM, PX, dz=di.Param(dz), reference=di.Param(r), linearized=linearized)
    return di.Model(v) if linearized else di.Model(v, di.Intensity())


@pytest.mark.parametrize("complex_object,linearized", [(False, False), (True, False), (False, True),
                                                       (True, True)])
def test_volume_vjp_finite_differences(complex_object, linearized):
    rng = np.random.default_rng(0)
    zs = np.linspace(1e-3, 1.3e-3, 4)
    o = -(rng.random((4, 24, 20)) > 0.95).astype(float)
    if complex_object:
        o = o + 0.3j * rng.standard_normal(o.shape)
    m = _model(zs, linearized=linearized, r=1.3)
    y, pb = di.vjp(m, o)
    w = rng.standard_normal(y.shape)
    gx, gp = pb(w)
    assert gx.dtype == o.dtype and gx.shape == o.shape

    def L(oo, over=None):
        return float(np.sum(w * m(oo, over)))

    d = rng.standard_normal(o.shape) + (1j * rng.standard_normal(o.shape) if complex_object else 0)
    h = 1e-6
    assert (L(o + h * d) - L(o - h * d)) / (2 * h) == pytest.approx(float(np.real(vdot(gx, d))), rel=1e-7)
    hz = 1e-9
    fdz = (L(o, {"volume.dz": 1e-5 + hz}) - L(o, {"volume.dz": 1e-5 - hz})) / (2 * hz)
    assert fdz == pytest.approx(gp["volume.dz"], rel=1e-6)
    fdr = (L(o, {"volume.reference": 1.3 + h}) - L(o, {"volume.reference": 1.3 - h})) / (2 * h)
    assert fdr == pytest.approx(gp["volume.reference"], rel=1e-7)


def test_volume_equals_sum_of_propagations_and_adjoint():
    rng = np.random.default_rng(1)
    zs = np.array([1e-3, 1.2e-3, 1.7e-3])
    o = crandn(rng, (3, 18, 22))
    vol = di.Model(Volume(zs, LAM, PX, dz=2e-5, reference=1.0))
    u = vol(o) - 1.0
    expected = sum(di.propagate(o[k], zs[k] + 2e-5, wavelength=LAM, pixel_size=PX, carrier=False)
                   for k in range(3))
    np.testing.assert_allclose(u, expected, atol=1e-12)
    y, pb = di.vjp(vol, o)
    y = y - 1.0
    v = crandn(rng, y.shape)
    assert abs(vdot(y, v) - vdot(o, pb(v)[0])) <= 1e-12 * np.linalg.norm(y) * np.linalg.norm(v)


def test_volume_reference_path_matches_kernels():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    zs = np.linspace(1e-3, 1.3e-3, 3)
    o = -(rng.random((3, 16, 16)) > 0.9).astype(float)
    m = _model(zs)
    y, pb = di.vjp(m, o)
    w = rng.standard_normal(y.shape)
    gx, gp = pb(w)
    yt, pbt = di.vjp(m, torch.tensor(o))
    gxt, gpt = pbt(torch.tensor(w))
    np.testing.assert_allclose(yt.numpy(), y, atol=1e-12)
    np.testing.assert_allclose(gxt.numpy(), gx, atol=1e-10)
    assert float(gpt["volume.dz"]) == pytest.approx(gp["volume.dz"], rel=1e-8)
    with pytest.raises(ValueError, match="nz=3"):
        m(np.zeros((2, 16, 16)))


def test_volume_illumination_scales_scattered_light_and_gabor_limit():
    """U = r (1 + s): the hologram scales as r^2; for a weak object the linearised
    model equals |U|^2 to first order (the gap shrinks 4x when o halves)."""
    rng = np.random.default_rng(3)
    zs = np.array([1e-3, 1.4e-3])
    o = -0.2 * (rng.random((2, 20, 20)) > 0.9)
    full = lambda r, oo: di.Model(Volume(zs, LAM, PX, reference=r), di.Intensity())(oo)
    gab = lambda r, oo: di.Model(Volume(zs, LAM, PX, reference=r, linearized=True))(oo)
    np.testing.assert_allclose(full(2.0, o), 4.0 * full(1.0, o), rtol=1e-12)
    np.testing.assert_allclose(gab(2.0, o), 4.0 * gab(1.0, o), rtol=1e-12)
    e1 = np.abs(full(1.0, o) - gab(1.0, o)).max()
    e2 = np.abs(full(1.0, o / 2) - gab(1.0, o / 2)).max()
    assert 3.5 < e1 / e2 < 4.5


def test_volume_and_multislice_declare_their_output_shape():
    import diffimaging as di
    from diffimaging.holography import MultiSlice, Volume

    z = np.array([1e-3, 1.5e-3, 2e-3])
    for stage in (Volume(z, 532e-9, 2e-6), MultiSlice(z, 532e-9, 2e-6)):
        assert stage.oshape((3, 17, 24)) == (17, 24)
        m = di.Model(stage, di.Intensity())
        assert m.oshape((3, 17, 24)) == (17, 24)
        assert m(np.zeros((3, 17, 24))).shape == (17, 24)
        with pytest.raises(ValueError, match=type(stage).__name__ + r".*nz=3.*\(2, 17, 24\)"):
            stage.oshape((2, 17, 24))
