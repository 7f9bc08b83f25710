"""Forward models: Param, stages, Model and their explicit VJPs."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging.model import noll_to_nm

from conftest import crandn, rand, vdot

LAM, PX = 532e-9, 2e-6


def _fd_check(model, x, rng, names=None, h=1e-6, hz=1e-9, rtol=1e-6, params=None):
    """Directional finite differences of L = Re<w, model(x)> in x and in every parameter."""
    y, pb = di.vjp(model, x, params)
    w = rand(rng, y.shape, y.dtype)
    gx, gp = pb(w)
    assert gx.shape == x.shape and gx.dtype == x.dtype

    def loss(xx, over=None):
        merged = dict(params or {})
        merged.update(over or {})
        return float(np.real(vdot(w, model(xx, merged))))

    d = rand(rng, x.shape, x.dtype)
    fd = (loss(x + h * d) - loss(x - h * d)) / (2 * h)
    assert fd == pytest.approx(float(np.real(vdot(gx, d))), rel=rtol, abs=1e-9 * max(1.0, abs(fd)))
    values = {k: (params or {}).get(k, p.value) for k, p in model.params.items()}
    for name in names if names is not None else values:
        v = np.asarray(values[name], dtype=np.float64)
        step = hz if "z" in name.split(".")[-1] else h
        dv = rng.standard_normal(v.shape)
        fdp = (loss(x, {name: v + step * dv}) - loss(x, {name: v - step * dv})) / (2 * step)
        an = float(np.sum(np.asarray(gp[name], dtype=np.float64) * dv))
        assert np.shape(gp[name]) == v.shape, name
        assert fdp == pytest.approx(an, rel=rtol * 10, abs=1e-7 * max(1.0, abs(fdp))), name
    return gx, gp


def test_param_basics():
    p = di.Param(3e-3, bounds=(1e-3, 5e-3))
    assert p.scale == pytest.approx(4e-3) and not p.fixed
    assert p.project(9e-3) == 5e-3 and p.project(-1.0) == 1e-3
    np.testing.assert_array_equal(p.project(np.array([0.0, 2e-3, 1.0])), [1e-3, 2e-3, 5e-3])
    assert di.Param(np.array([2.0, -4.0])).scale == 4.0
    assert di.Param(0.0).scale == 1.0
    with pytest.raises(ValueError, match="lo <= hi"):
        di.Param(1.0, bounds=(2.0, 1.0))
    with pytest.raises(TypeError):
        di.Param(1j)
    with pytest.raises(ValueError, match="scale"):
        di.Param(1.0, scale=-1)


def test_model_names_overrides_and_errors():
    m = di.Model(di.Propagate(di.Param(1e-3), LAM, PX), di.Propagate(2e-3, LAM, PX), di.Intensity())
    assert list(m.params) == ["propagate.z", "propagate_1.z"]
    assert m.params["propagate_1.z"].fixed and not m.params["propagate.z"].fixed
    x = crandn(np.random.default_rng(0), (16, 16))
    a = m(x, {"propagate.z": 1.5e-3})
    b = di.intensity(di.propagate(di.propagate(x, 1.5e-3, wavelength=LAM, pixel_size=PX, carrier=False),
                                  2e-3, wavelength=LAM, pixel_size=PX, carrier=False))
    np.testing.assert_allclose(a, b, atol=1e-12)
    with pytest.raises(KeyError, match="unknown parameter"):
        m(x, {"propagate.zz": 1.0})
    with pytest.raises(TypeError, match="Stage"):
        di.Model(di.Intensity(), lambda x: x)
    with pytest.raises(ValueError):
        di.Model()


def test_propagate_stage_vjp_single_stack_batch(rng):
    x = crandn(rng, (12, 14))
    m = di.Model(di.Propagate(di.Param(4e-5), LAM, 1e-6), di.Intensity())
    _fd_check(m, x, rng)
    # stack: one object, K distances -> K planes
    ms = di.Model(di.Propagate(di.Param(np.array([2e-5, 5e-5, 7e-5])), LAM, 1e-6), di.Intensity())
    assert ms(x).shape == (3, 12, 14)
    _fd_check(ms, x, rng)
    # batch: K inputs, each with its own distance
    xb = crandn(rng, (3, 12, 14))
    mb = di.Model(di.Propagate(di.Param(np.array([2e-5, 5e-5, 7e-5])), LAM, 1e-6, mode="batch"),
                  di.Intensity())
    yb = mb(xb)
    assert yb.shape == (3, 12, 14)
    np.testing.assert_allclose(yb[1], di.intensity(di.propagate(xb[1], 5e-5, wavelength=LAM,
                                                                pixel_size=1e-6, carrier=False)))
    _fd_check(mb, xb, rng)
    with pytest.raises(ValueError, match="leading axis"):
        di.Model(di.Propagate(np.array([1e-5, 2e-5]), LAM, 1e-6, mode="batch"))(x)


def test_super_resolution_model_all_parameters(rng):
    """Pixel super-resolution: one object, K captures with their own distance and
    sensor shift, binned, with a per-capture gain."""
    K = 3
    x = np.stack([0.2 * rng.random((16, 16)), rng.standard_normal((16, 16))])
    m = di.Model(
        di.AbsorptionPhase(),
        di.Propagate(di.Param(np.array([3e-5, 4e-5, 6e-5])), LAM, 1e-6),
        di.Intensity(),
        di.Bin(2, di.Param(rng.uniform(-0.4, 0.4, (K, 2)))),
        di.Gain(di.Param(np.array([1.0, 0.9, 1.1]).reshape(K, 1, 1)), di.Param(0.05)),
    )
    y = m(x)
    assert y.shape == (K, 8, 8)
    _fd_check(m, x, rng)


@pytest.mark.parametrize("shape", [(9, 11), (2, 8, 8)])
def test_shift_stage(rng, shape):
    x = crandn(rng, shape)
    s = rng.uniform(-1, 1, (2,)) if len(shape) == 2 else rng.uniform(-1, 1, (2, 2))
    _fd_check(di.Model(di.Shift(di.Param(s)), di.Intensity()), x, rng)


def test_noll_indices_and_orthonormality():
    table = {1: (0, 0), 2: (1, 1), 3: (1, -1), 4: (2, 0), 5: (2, -2), 6: (2, 2), 7: (3, -1),
             8: (3, 1), 9: (3, -3), 10: (3, 3), 11: (4, 0), 12: (4, 2), 13: (4, -2), 14: (4, 4),
             15: (4, -4), 16: (5, 1), 17: (5, -1), 22: (6, 0)}
    for j, nm in table.items():
        assert noll_to_nm(j) == nm, j
    with pytest.raises(ValueError):
        noll_to_nm(0)
    n = 801
    t = (np.arange(n) - n // 2) / (n // 2)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    rho, th = np.hypot(yy, xx), np.arctan2(yy, xx)
    inside = rho <= 1
    Z = np.stack([di.zernike_noll(j, rho, th) for j in range(1, 12)])[:, inside]
    gram = Z @ Z.T / inside.sum()
    np.testing.assert_allclose(gram, np.eye(11), atol=2e-2)
    # defocus: Z4 = sqrt(3) (2 rho^2 - 1)
    np.testing.assert_allclose(di.zernike_noll(4, rho, th)[inside],
                               np.sqrt(3) * (2 * rho[inside] ** 2 - 1), atol=1e-12)


def test_pupil_stage(rng):
    x = crandn(rng, (16, 18))
    pup = di.Pupil(0.3, LAM, 0.5e-6, zernike=di.Param(rng.normal(0, 0.3, 6)))
    m = di.Model(pup, di.Intensity())
    _fd_check(m, x, rng)
    # without aberration the pupil is an ideal low-pass: frequencies beyond NA/lambda vanish
    y = di.Model(di.Pupil(0.3, LAM, 0.5e-6))(x)
    Y = np.fft.fft2(y)
    f = np.hypot(np.fft.fftfreq(16, 0.5e-6)[:, None], np.fft.fftfreq(18, 0.5e-6)[None, :])
    assert np.abs(Y[f > 0.3 / LAM]).max() < 1e-10 * np.abs(Y).max()
    np.testing.assert_allclose(Y[f <= 0.3 / LAM], np.fft.fft2(x)[f <= 0.3 / LAM], atol=1e-10)
    # adjoint dot test of the (linear) pupil stage
    y, pb = di.vjp(di.Model(pup), x)
    v = crandn(rng, y.shape)
    assert abs(vdot(y, v) - vdot(x, pb(v)[0])) <= 1e-12 * np.linalg.norm(y) * np.linalg.norm(v)
    with pytest.raises(ValueError):
        di.Pupil(0.0, LAM, 1e-6)


def test_object_parametrisations(rng):
    x = np.stack([rng.random((10, 12)), rng.standard_normal((10, 12))])
    for stage, expected in [(di.AmplitudePhase(), x[0] * np.exp(1j * x[1])),
                            (di.AbsorptionPhase(), np.exp(-x[0] + 1j * x[1]))]:
        m = di.Model(stage, di.Propagate(3e-5, LAM, 1e-6), di.Intensity())
        np.testing.assert_allclose(di.Model(stage)(x), expected, atol=1e-14)
        _fd_check(m, x, rng)
        with pytest.raises(ValueError, match=r"\(2, \.\.\., ny, nx\)"):
            stage.forward(x[0], {})
    xc = crandn(rng, (10, 12))
    _fd_check(di.Model(di.Complex(), di.Intensity()), xc, rng)


def test_gain_saturate_quantize(rng):
    x = crandn(rng, (2, 10, 12))
    m = di.Model(di.Intensity(), di.Gain(di.Param(1.3), di.Param(0.2)), di.Saturate(di.Param(2.5)))
    y = m(x)
    assert y.max() == pytest.approx(2.5) and (y == 2.5).sum() > 5
    _fd_check(m, x, rng, h=1e-7)
    q = di.Quantize(4, full_scale=2.0)
    xr = np.linspace(-0.5, 2.5, 31)[None, :] * np.ones((2, 1))
    yq = di.Model(q)(xr)
    assert set(np.round(yq.ravel() / (2.0 / 15), 9)) <= set(range(16))
    assert yq.min() == 0.0 and yq.max() == 2.0
    g = rng.standard_normal(xr.shape)
    np.testing.assert_array_equal(di.vjp(di.Model(q), xr)[1](g)[0], g)  # straight-through
    with pytest.raises(ValueError, match="bits"):
        di.Quantize(0)


def test_custom_stage(rng):
    sq = di.Custom(lambda x, a: a * x * x, lambda x, y, g, a: (2 * a * g * x, {"a": float(np.sum(g * x * x))}),
                   params={"a": di.Param(1.5)})
    x = rng.standard_normal((6, 7))
    m = di.Model(sq)
    np.testing.assert_allclose(m(x), 1.5 * x * x)
    _fd_check(m, x, rng)
    with pytest.raises(TypeError):
        di.Custom(1, 2)


def test_model_on_torch_matches_numpy(rng):
    torch = pytest.importorskip("torch")
    x = np.stack([0.2 * rng.random((16, 16)), rng.standard_normal((16, 16))])
    m = di.Model(di.AbsorptionPhase(), di.Propagate(di.Param(4e-5), LAM, 1e-6), di.Intensity(),
                 di.Bin(2, di.Param(np.array([0.2, -0.1]))))
    y, pb = di.vjp(m, x)
    g = rng.standard_normal(y.shape)
    gx, gp = pb(g)
    xt = torch.tensor(x)
    yt, pbt = di.vjp(m, xt, {"propagate.z": torch.tensor(4e-5, dtype=torch.float64),
                             "bin.shift": torch.tensor([0.2, -0.1], dtype=torch.float64)})
    gxt, gpt = pbt(torch.tensor(g))
    assert isinstance(yt, torch.Tensor) and isinstance(gxt, torch.Tensor)
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gxt.numpy(), gx, rtol=1e-9, atol=1e-12)
    for k in gp:
        np.testing.assert_allclose(np.asarray(gpt[k]), gp[k], rtol=1e-8)


@pytest.mark.parametrize("dtype,tol", [(np.complex128, 1e-12), (np.complex64, 1e-5)])
def test_linear_model_adjoint_dot(rng, dtype, tol):
    """A linear chain (pupil, propagation of K captures, sub-pixel shifts, binning):
    its pullback is its adjoint."""
    K = 3
    m = di.Model(di.Pupil(0.4, LAM, 0.5e-6, zernike=rng.normal(0, 0.2, 5)),
                 di.Propagate(np.array([1e-5, 2e-5, 3e-5]), LAM, 0.5e-6),
                 di.Shift(rng.uniform(-1, 1, (K, 2))),
                 di.Bin(2, rng.uniform(-0.5, 0.5, (K, 2))))
    x = crandn(rng, (16, 20), dtype)
    y, pb = di.vjp(m, x)
    assert y.shape == (K, 8, 10) and y.dtype == dtype
    v = crandn(rng, y.shape, dtype)
    gx, gp = pb(v)
    assert gx.dtype == dtype and set(gp) == set(m.params)  # fixed parameters get cotangents too
    assert abs(vdot(y, v) - vdot(x, gx)) <= tol * np.linalg.norm(y) * np.linalg.norm(v)
