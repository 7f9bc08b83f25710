"""propagate: adjointness, VJPs, kernels vs reference, physics oracles, bad input."""
import math
import warnings

import numpy as np
import pytest

import diffimaging as di
from diffimaging.ops import propagate as P

from conftest import crandn, vdot

LAM = 532e-9


def _lowpass(rng, shape, frac=0.25, dtype=np.complex128):
    """Random field whose spectrum lies within frac of the Nyquist band."""
    u = crandn(rng, shape)
    U = np.fft.fft2(u)
    fy = np.abs(np.fft.fftfreq(shape[-2]))[:, None]
    fx = np.abs(np.fft.fftfreq(shape[-1]))[None, :]
    U *= (fy < 0.5 * frac) & (fx < 0.5 * frac)
    return np.fft.ifft2(U).astype(dtype)


SHAPES = [(5, 7), (8, 6), (2, 9, 12), (2, 1, 6, 5)]
CASES = [
    dict(method="asm", pad=True, carrier=True),
    dict(method="asm", pad=False, carrier=False),
    dict(method="fresnel", pad=True, carrier=False),
    dict(method="fresnel", pad=False, carrier=True),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype,tol", [(np.complex128, 1e-12), (np.complex64, 1e-5)])
@pytest.mark.parametrize("z", [3e-5, np.array([2e-5, -1e-5, 4e-5])])
def test_adjoint_dot(rng, shape, case, dtype, tol, z):
    u = crandn(rng, shape, dtype)
    zz = z if np.ndim(z) == 0 else z.astype(np.float64)
    kw = dict(wavelength=LAM, pixel_size=(1e-6, 1.5e-6), **case)
    out, pullback = di.vjp(di.propagate, u, zz, **kw)
    assert out.dtype == dtype
    v = crandn(rng, out.shape, dtype)
    au_v = vdot(out, v)
    u_ahv = vdot(u, pullback(v)[0])
    scale = np.linalg.norm(out) * np.linalg.norm(v)
    assert abs(au_v - u_ahv) <= tol * scale


def _loss(u, z, w, **kw):
    return float(np.real(vdot(w, di.propagate(u, z, **kw))))


@pytest.mark.parametrize("carrier", [True, False])
@pytest.mark.parametrize("method", ["asm", "fresnel"])
@pytest.mark.parametrize("pad", [True, False])
def test_vjp_finite_differences(rng, carrier, method, pad):
    shape = (2, 10, 13)
    u = crandn(rng, shape)
    z = 4e-5
    kw = dict(wavelength=LAM, pixel_size=(1e-6, 1.2e-6), method=method, pad=pad, carrier=carrier)
    out, pullback = di.vjp(di.propagate, u, z, **kw)
    w = crandn(rng, out.shape)
    du, dz = pullback(w)
    assert du.shape == u.shape and du.dtype == np.complex128
    assert np.shape(dz) == () and np.asarray(dz).dtype == np.float64
    d = crandn(rng, shape)
    h = 1e-6
    fd = (_loss(u + h * d, z, w, **kw) - _loss(u - h * d, z, w, **kw)) / (2 * h)
    assert fd == pytest.approx(float(np.real(vdot(du, d))), rel=1e-7, abs=1e-9)
    hz = 1e-11 if carrier else 1e-9  # with the carrier, L oscillates with period lambda in z
    fdz = (_loss(u, z + hz, w, **kw) - _loss(u, z - hz, w, **kw)) / (2 * hz)
    assert fdz == pytest.approx(float(dz), rel=1e-5)


def test_vjp_stack_and_intensity_loss(rng):
    """Nonlinear loss sum(w |P(z_k) u|^2) through intensity; per-plane z cotangents."""
    u = crandn(rng, (9, 11))
    zs = np.array([1e-5, 3e-5, 6e-5])
    kw = dict(wavelength=LAM, pixel_size=1e-6, carrier=False)
    w = rng.standard_normal((3, 9, 11))

    def loss(u, zs):
        return float(np.sum(w * di.intensity(di.propagate(u, zs, **kw))))

    out, pb = di.vjp(di.propagate, u, zs, **kw)
    _, pbi = di.vjp(di.intensity, out)
    du, dz = pb(pbi(w)[0])
    assert dz.shape == (3,) and dz.dtype == np.float64
    h = 1e-9
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        fd = (loss(u, zs + e) - loss(u, zs - e)) / (2 * h)
        assert fd == pytest.approx(dz[k], rel=1e-5)
    d = crandn(rng, u.shape)
    fd = (loss(u + 1e-6 * d, zs) - loss(u - 1e-6 * d, zs)) / 2e-6
    assert fd == pytest.approx(float(np.real(vdot(du, d))), rel=1e-7)


def test_real_input_promoted_and_real_cotangent(rng):
    u = rng.standard_normal((6, 8)).astype(np.float32)
    v = di.propagate(u, 1e-5, wavelength=LAM, pixel_size=1e-6)
    assert v.dtype == np.complex64
    v64 = di.propagate(u.astype(np.float64), 1e-5, wavelength=LAM, pixel_size=1e-6)
    assert v64.dtype == np.complex128
    np.testing.assert_allclose(v, v64, atol=1e-5 * np.abs(v64).max())
    out, pb = di.vjp(di.propagate, u.astype(np.float64), 1e-5, wavelength=LAM, pixel_size=1e-6)
    w = crandn(rng, out.shape)
    du, _ = pb(w)
    assert du.dtype == np.float64 and du.shape == u.shape
    # real cotangent = Re of the complex one
    ducplx, _ = di.vjp(di.propagate, u.astype(np.complex128), 1e-5, wavelength=LAM, pixel_size=1e-6)[1](w)
    np.testing.assert_allclose(du, ducplx.real, atol=1e-12)


def test_z_cotangent_dtype_follows_z_array(rng):
    u = crandn(rng, (6, 8), np.complex64)
    for z, shape, dtype in [(1e-5, (), np.float32), (np.float64(1e-5), (), np.float32),
                            (np.array(1e-5), (), np.float64),
                            (np.array([1e-5, 2e-5], np.float32), (2,), np.float32)]:
        out, pb = di.vjp(di.propagate, u, z, wavelength=LAM, pixel_size=1e-6)
        dz = pb(np.ones_like(out))[1]
        assert np.shape(dz) == shape and np.asarray(dz).dtype == dtype


@pytest.mark.parametrize("dtype,tol", [(np.complex128, 1e-12), (np.complex64, 2e-6)])
@pytest.mark.parametrize("method", ["asm", "fresnel"])
@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("carrier", [True, False])
def test_kernel_matches_reference(rng, dtype, tol, method, pad, carrier):
    u = crandn(rng, (2, 17, 12), dtype)
    for z in (2e-4, np.array([1e-4, -3e-4, 5e-4])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", di.SamplingWarning)
            p = P.Plan.make(u, z, LAM, (1e-6, 1.3e-6), method, pad, True, carrier)
        assert p.kernel
        a = P._forward_kernel(p, u)
        b = P._forward_reference(p, u)
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * np.abs(b).max())
        g = crandn(rng, a.shape, dtype)
        du1, dz1 = P._pullback_kernel(p, u, g)
        du2, dz2 = P._pullback_reference(p, u, g)
        np.testing.assert_allclose(du1, du2, rtol=0, atol=tol * np.abs(du2).max())
        np.testing.assert_allclose(dz1, dz2, rtol=50 * tol, atol=50 * tol * np.abs(dz2).max())


def test_stack_equals_single_planes(rng):
    u = crandn(rng, (3, 16, 20), np.complex64)
    zs = np.array([1e-4, 2.5e-4, -1e-4])
    stack = di.propagate(u, zs, wavelength=LAM, pixel_size=2e-6)
    assert stack.shape == (3, 3, 16, 20) and stack.dtype == np.complex64
    for k, z in enumerate(zs):
        np.testing.assert_allclose(stack[k], di.propagate(u, float(z), wavelength=LAM, pixel_size=2e-6),
                                   atol=1e-6)


def test_forward_then_backward_is_identity(rng):
    u = _lowpass(rng, (32, 24))
    kw = dict(wavelength=LAM, pixel_size=1e-6, pad=False, band_limit=False)
    v = di.propagate(di.propagate(u, 3e-4, **kw), -3e-4, **kw)
    np.testing.assert_allclose(v, u, atol=1e-12 * np.abs(u).max())
    # z = 0 with padding: the pad and crop alone
    np.testing.assert_allclose(di.propagate(u, 0.0, wavelength=LAM, pixel_size=1e-6), u, atol=1e-13)


@pytest.mark.parametrize("method", ["asm", "fresnel"])
def test_carrier_free_form_equals_carrier_times_phase(rng, method):
    u = crandn(rng, (12, 10))
    z = 2.3e-3
    kw = dict(wavelength=LAM, pixel_size=4e-6, method=method)
    a = di.propagate(u, z, carrier=True, **kw)
    b = di.propagate(u, z, carrier=False, **kw)
    np.testing.assert_allclose(a, b * np.exp(2j * np.pi * z / LAM), atol=1e-11 * np.abs(a).max())


def test_single_precision_uses_double_phase(rng):
    """At z = 5 cm the carrier phase k z is ~6e5 rad: a float32 phase would be off by ~0.04 rad."""
    u = _lowpass(rng, (32, 32), 0.5)
    kw = dict(wavelength=LAM, pixel_size=5e-6, carrier=True)
    ref = di.propagate(u, 0.05, **kw)
    got = di.propagate(u.astype(np.complex64), 0.05, **kw)
    assert got.dtype == np.complex64
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err < 2e-6
    # the z-gradient of an intensity loss in complex64 (carrier-free) keeps single-precision accuracy
    kw = dict(wavelength=LAM, pixel_size=2e-6, carrier=False)
    w = rng.standard_normal((32, 32))
    dz = []
    for dt in (np.complex128, np.complex64):
        out, pb = di.vjp(di.propagate, u.astype(dt), 3e-3, **kw)
        _, pbi = di.vjp(di.intensity, out)
        dz.append(float(pb(pbi(w.astype(out.real.dtype))[0])[1]))
    assert dz[1] == pytest.approx(dz[0], rel=1e-4)


def _gaussian_beam(n, dx, w0, z, lam, carrier=True):
    """Closed-form paraxial propagation of exp(-r^2 / w0^2) centred at pixel (n/2, n/2):
    u = (a'/a) exp(-a' r^2) exp(i k z), 1/a' = w0^2 + i lam z / pi."""
    y = (np.arange(n) - n // 2) * dx
    r2 = y[:, None] ** 2 + y[None, :] ** 2
    a = 1 / w0 ** 2
    ap = 1 / (w0 ** 2 + 1j * lam * z / np.pi)
    u = (ap / a) * np.exp(-ap * r2)
    return u * np.exp(2j * np.pi * z / lam) if carrier else u


@pytest.mark.parametrize("method,tol", [("fresnel", 1e-9), ("asm", 2e-3)])
def test_gaussian_beam(method, tol):
    n, dx, w0, lam = 256, 2e-6, 20e-6, 0.5e-6
    u0 = _gaussian_beam(n, dx, w0, 0.0, lam)
    for z in (1e-3, 4e-3):
        expected = _gaussian_beam(n, dx, w0, z, lam)
        got = di.propagate(u0, z, wavelength=lam, pixel_size=dx, method=method)
        err = np.abs(got - expected).max() / np.abs(expected).max()
        assert err < tol, (z, err)
    # the beam widens as w(z) = w0 sqrt(1 + (z/zR)^2): check the second moment too
    z = 4e-3
    zr = np.pi * w0 ** 2 / lam
    got = np.abs(di.propagate(u0, z, wavelength=lam, pixel_size=dx, method=method)) ** 2
    y = (np.arange(n) - n // 2) * dx
    r2 = y[:, None] ** 2 + y[None, :] ** 2
    w_meas = np.sqrt(2 * np.sum(r2 * got) / np.sum(got))  # <r^2> = w^2 / 2 for |u|^2 = exp(-2 r^2/w^2)
    assert w_meas == pytest.approx(w0 * np.sqrt(1 + (z / zr) ** 2), rel=1e-3)


def test_asm_matches_rayleigh_sommerfeld_direct_sum():
    """The ASM equals the first Rayleigh-Sommerfeld integral, summed directly
    (midpoint rule) on a small, well-sampled grid; an off-centre, elliptic
    source makes any lateral (half-bin) error visible."""
    lam, dx, n, z = 0.5e-6, 0.5e-6, 48, 20e-6
    k = 2 * np.pi / lam
    yy, xx = np.meshgrid(np.arange(n) * dx, np.arange(n) * dx, indexing="ij")
    u0 = np.exp(-((yy - 10e-6) ** 2 / (3e-6) ** 2 + (xx - 13e-6) ** 2 / (2.5e-6) ** 2)) \
        * np.exp(1j * 2e5 * xx)
    got = di.propagate(u0, z, wavelength=lam, pixel_size=dx)
    # direct RS-I sum at a block of output points
    oy, ox = np.meshgrid(np.arange(8, 40, 2) * dx, np.arange(10, 44, 2) * dx, indexing="ij")
    dyy = oy[..., None] - yy.ravel()[None, None, :]
    dxx = ox[..., None] - xx.ravel()[None, None, :]
    R = np.sqrt(dyy ** 2 + dxx ** 2 + z ** 2)
    kern = (z / R) * (1 / R - 1j * k) * np.exp(1j * k * R) / R / (2 * np.pi)
    rs = (kern * u0.ravel()[None, None, :]).sum(-1) * dx * dx
    sel = got[8:40:2, 10:44:2]
    err = np.abs(sel - rs).max() / np.abs(rs).max()
    assert err < 1e-5, err
    # a half-pixel lateral error would be far outside that tolerance
    shifted = di.shift(got, (0.5, 0.0))[8:40:2, 10:44:2]
    assert np.abs(shifted - rs).max() / np.abs(rs).max() > 1e3 * err


def test_band_limit_masks_transfer_function():
    n, dx, lam, z = 64, 1e-6, LAM, 5e-3
    H = di.transfer_function((n, n), z, wavelength=lam, pixel_size=dx)
    f = np.abs(np.fft.fftfreq(n, dx))
    flim = 1 / (lam * np.sqrt((2 * z / (n * dx)) ** 2 + 1))
    inside = (f[:, None] <= flim) & (f[None, :] <= flim)
    assert np.all(H[~inside] == 0) and np.all(np.abs(np.abs(H[inside]) - 1) < 1e-12)
    H2 = di.transfer_function((n, n), z, wavelength=lam, pixel_size=dx, band_limit=False)
    assert np.all(np.abs(H2) > 0)
    # evanescent waves are dropped
    Hs = di.transfer_function((n, n), 1e-6, wavelength=3e-6, pixel_size=dx, band_limit=False)
    fs2 = f[:, None] ** 2 + f[None, :] ** 2
    assert np.all(Hs[fs2 > 1 / 3e-6 ** 2] == 0)


def test_num_threads_deterministic(rng):
    u = crandn(rng, (64, 48), np.complex64)
    a = di.propagate(u, 1e-3, wavelength=LAM, pixel_size=2e-6)
    with di.num_threads(1):
        b = di.propagate(u, 1e-3, wavelength=LAM, pixel_size=2e-6)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ bad input

GOOD = dict(wavelength=LAM, pixel_size=1e-6)


@pytest.mark.parametrize("kw,exc,word", [
    (dict(wavelength=0.0), ValueError, "wavelength"),
    (dict(wavelength=-5e-7), ValueError, "wavelength"),
    (dict(wavelength=float("nan")), ValueError, "wavelength"),
    (dict(wavelength=float("inf")), ValueError, "wavelength"),
    (dict(wavelength="532nm"), TypeError, "wavelength"),
    (dict(pixel_size=0.0), ValueError, "pixel_size"),
    (dict(pixel_size=-1e-6), ValueError, "pixel_size"),
    (dict(pixel_size=(1e-6, -1e-6)), ValueError, "pixel_size"),
    (dict(pixel_size=(1e-6,)), ValueError, "pixel_size"),
    (dict(pixel_size=float("nan")), ValueError, "pixel_size"),
    (dict(method="rayleigh"), ValueError, "method"),
])
def test_bad_parameters(kw, exc, word):
    u = np.ones((8, 8), np.complex64)
    args = {**GOOD, **kw}
    with pytest.raises(exc, match=word):
        di.propagate(u, 1e-3, **args)


@pytest.mark.parametrize("z,exc", [
    (float("nan"), ValueError), (float("inf"), ValueError), (np.array([1e-3, np.nan]), ValueError),
    (np.ones((2, 2)) * 1e-3, ValueError), (np.array([]), ValueError), (True, TypeError),
    ("1mm", TypeError), (np.array([1, 2]), TypeError), ([1e-3, 2e-3], TypeError),
])
def test_bad_z(z, exc):
    with pytest.raises(exc, match="z"):
        di.propagate(np.ones((8, 8), np.complex64), z, **GOOD)


@pytest.mark.parametrize("field,exc", [
    (np.ones(8, np.complex64), ValueError), (np.ones((8, 8), np.int32), TypeError),
    (np.ones((8, 8), bool), TypeError), (np.ones((0, 8), np.complex64), ValueError),
    ([[1.0, 2.0], [3.0, 4.0]], TypeError),
])
def test_bad_field(field, exc):
    with pytest.raises(exc, match="field"):
        di.propagate(field, 1e-3, **GOOD)


def test_bad_cotangent_shape():
    out, pb = di.vjp(di.propagate, np.ones((8, 8), np.complex64), 1e-3, **GOOD)
    with pytest.raises(ValueError, match="cotangent"):
        pb(np.ones((4, 8), np.complex64))


def test_unit_slip_warns():
    with pytest.warns(UserWarning, match="metres"):
        di.propagate(np.ones((8, 8), np.complex64), 1e-3, wavelength=LAM, pixel_size=2.0)
    with pytest.warns(UserWarning, match="metres"):
        di.propagate(np.ones((8, 8), np.complex64), 1e-3, wavelength=532.0, pixel_size=2e-6)


def test_sampling_warnings():
    u = np.ones((32, 32), np.complex64)
    with pytest.warns(di.SamplingWarning, match=r"Fresnel transfer function undersampled.*m"):
        di.propagate(u, 0.5, wavelength=LAM, pixel_size=1e-6, method="fresnel")
    with pytest.warns(di.SamplingWarning, match="paraxial"):
        di.propagate(np.ones((64, 64), np.complex64), 1.5e-5, wavelength=LAM, pixel_size=0.3e-6,
                     method="fresnel")
    with pytest.warns(di.SamplingWarning, match="aliased"):
        di.propagate(u, 0.5, wavelength=LAM, pixel_size=1e-6, band_limit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        di.propagate(u, 1e-5, wavelength=LAM, pixel_size=1e-6)  # well sampled: silent


@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("z", [1e-4, np.array([1e-4, 3e-4])])
@pytest.mark.parametrize("dtype", [np.complex64, np.float64])
def test_inputs_never_modified(rng, pad, z, dtype):
    """The kernels transform in place only in buffers they own."""
    u = crandn(rng, (2, 16, 12)).astype(dtype) if dtype != np.float64 \
        else rng.standard_normal((2, 16, 12))
    u0 = u.copy()
    out, pb = di.vjp(di.propagate, u, z, wavelength=LAM, pixel_size=1e-6, pad=pad)
    g = crandn(rng, out.shape, out.dtype)
    g0 = g.copy()
    pb(g)
    di.propagate(u, z, wavelength=LAM, pixel_size=1e-6, pad=pad)
    np.testing.assert_array_equal(u, u0)
    np.testing.assert_array_equal(g, g0)
