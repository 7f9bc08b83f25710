"""Tests of diffimaging.shift (periodic Fourier sub-pixel shift) and
diffimaging.intensity (|u|^2), forward and VJP.

Gradient convention (CONVENTIONS.md): for a real loss L of complex u the cotangent
is dL/dRe(u) + i dL/dIm(u), so the directional derivative of L along du is
Re(sum(conj(cotangent) * du)).
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import diffimaging as di
from conftest import DOT_TOL, rand as _rand

TOL = DOT_TOL




def _loss(g, out):
    """Re <g, out> = Re(sum(conj(g) * out))."""
    return float(np.real(np.vdot(g, out)))


def _bandlimited(ny, nx, shift=(0.0, 0.0), real=False, seed=0):
    """Sum of a few low-frequency plane waves, evaluated at (y - sy, x - sx)."""
    rng = np.random.default_rng(seed)
    y = np.arange(ny)[:, None] - shift[0]
    x = np.arange(nx)[None, :] - shift[1]
    out = np.zeros((ny, nx), np.float64 if real else np.complex128)
    for _ in range(5):
        p = rng.integers(-((ny - 1) // 2), (ny - 1) // 2 + 1)  # strictly below Nyquist
        q = rng.integers(-((nx - 1) // 2), (nx - 1) // 2 + 1)
        c = rng.standard_normal() + 1j * rng.standard_normal()
        ph = 2 * np.pi * (p * y / ny + q * x / nx)
        if real:
            out += np.abs(c) * np.cos(ph + np.angle(c))
        else:
            out += c * np.exp(1j * ph)
    return out


SHAPES = [(9, 11), (8, 12), (6, 15), (16, 7)]
IDS = [f"{a}x{b}" for a, b in SHAPES]


# ------------------------------------------------------------------ forward

@pytest.mark.parametrize("dtype", [np.complex128, np.complex64, np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_integer_shift_equals_roll(shape, dtype):
    rng = np.random.default_rng(1)
    u = _rand(rng, (2,) + shape, dtype)
    tol = TOL[dtype]
    for s in [(1, 0), (0, 3), (-2, 5), (shape[0] + 1, -shape[1] - 2), (0, 0)]:
        got = di.shift(u, s)
        assert got.dtype == np.dtype(dtype) and got.shape == u.shape
        want = np.roll(u, s, axis=(-2, -1))
        assert_allclose(got, want, rtol=tol, atol=10 * tol * np.abs(u).max())
        got = di.shift(u, np.asarray(s, np.float64))
        assert_allclose(got, want, rtol=tol, atol=10 * tol * np.abs(u).max())


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_shift_then_inverse_is_identity_complex(shape):
    rng = np.random.default_rng(2)
    for dtype in (np.complex128, np.complex64):
        u = _rand(rng, (3,) + shape, dtype)
        s = rng.uniform(-3, 3, (3, 2))
        back = di.shift(di.shift(u, s), -s)
        assert back.dtype == np.dtype(dtype)
        tol = TOL[dtype]
        assert_allclose(back, u, rtol=tol, atol=10 * tol * np.abs(u).max())


def test_shift_then_inverse_is_identity_real():
    rng = np.random.default_rng(3)
    # odd sizes: no Nyquist frequency, so the real shift is invertible
    u = _rand(rng, (2, 9, 13), np.float64)
    s = (0.37, -1.61)
    back = di.shift(di.shift(u, s), (-s[0], -s[1]))
    assert back.dtype == np.float64
    assert_allclose(back, u, rtol=1e-12, atol=1e-12)
    # even sizes: invertible for a field without Nyquist content
    v = _bandlimited(8, 12, real=True, seed=4)
    back = di.shift(di.shift(v, s), (-s[0], -s[1]))
    assert_allclose(back, v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_subpixel_shift_of_bandlimited_signal_complex(shape):
    ny, nx = shape
    s = (0.37, -0.37)
    u = _bandlimited(ny, nx, seed=ny * nx)
    want = _bandlimited(ny, nx, shift=s, seed=ny * nx)
    got = di.shift(u, s)
    assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(u).max())
    got = di.shift(u.astype(np.complex64), s)
    assert got.dtype == np.complex64
    assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(u).max())
    # a shift far beyond one period is the same as its wrapped value (periodicity)
    far = (0.37 + 3 * ny, -0.37 - 2 * nx)
    assert_allclose(di.shift(u, far), want, rtol=1e-9, atol=1e-9 * np.abs(u).max())


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_subpixel_shift_of_bandlimited_signal_real(shape):
    ny, nx = shape
    s = (-0.37, 1.37)
    u = _bandlimited(ny, nx, real=True, seed=ny + nx)
    want = _bandlimited(ny, nx, shift=s, real=True, seed=ny + nx)
    got = di.shift(u, s)
    assert got.dtype == np.float64
    assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(u).max())
    got = di.shift(u.astype(np.float32), s)
    assert got.dtype == np.float32
    assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(u).max())


def test_shift_direction_and_axis_order():
    # a delta at (2, 3) shifted by (sy, sx) = (1, -2) lands at (3, 1)
    u = np.zeros((8, 9), np.complex128)
    u[2, 3] = 1.0
    got = di.shift(u, (1.0, -2.0))
    want = np.zeros_like(u)
    want[3, 1] = 1.0
    assert_allclose(got, want, atol=1e-14)


def test_batched_shifts_broadcast():
    rng = np.random.default_rng(5)
    u = _rand(rng, (3, 8, 9), np.complex128)
    s = rng.uniform(-2, 2, (2, 1, 2))
    out = di.shift(u, s)
    assert out.shape == (2, 3, 8, 9)
    for a in range(2):
        for b in range(3):
            assert_allclose(out[a, b], di.shift(u[b], tuple(s[a, 0])), rtol=1e-13, atol=1e-13)
    # one field, several shifts
    out = di.shift(u[0], s[:, 0])
    assert out.shape == (2, 8, 9)
    assert_allclose(out[1], di.shift(u[0], tuple(s[1, 0])), rtol=1e-13, atol=1e-13)


def test_shift_preserves_energy_and_is_unitary_for_complex():
    rng = np.random.default_rng(6)
    u = _rand(rng, (10, 12), np.complex128)
    v = di.shift(u, (0.3, 0.9))
    assert_allclose(np.linalg.norm(v), np.linalg.norm(u), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.float32, np.float64])
def test_shift_dtype_preserved(dtype):
    u = _rand(np.random.default_rng(0), (2, 6, 7), dtype)
    for s in [(0.25, 0.5), np.array([0.25, 0.5], np.float32), np.array([[0.1, 0.2], [0.3, 0.4]])]:
        out = di.shift(u, s)
        assert out.dtype == np.dtype(dtype)
        assert isinstance(out, np.ndarray)


def test_shift_complex64_matches_complex128():
    rng = np.random.default_rng(7)
    u = _rand(rng, (2, 16, 12), np.complex128)
    s = rng.uniform(-3, 3, (2, 2))
    hi = di.shift(u, s)
    lo = di.shift(u.astype(np.complex64), s)
    assert lo.dtype == np.complex64
    assert_allclose(lo, hi, rtol=1e-5, atol=1e-5 * np.abs(hi).max())


# -------------------------------------------------------- shift: adjoint / FD

@pytest.mark.parametrize("dtype", [np.complex128, np.float64, np.complex64, np.float32])
@pytest.mark.parametrize("shift_kind", ["tuple", "per_batch", "broadcast", "field_vs_shifts"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_shift_adjoint_dot(shape, shift_kind, dtype):
    rng = np.random.default_rng(sum(shape) + len(shift_kind))
    if shift_kind == "tuple":
        u, s = _rand(rng, (2, 3) + shape, dtype), tuple(rng.uniform(-3, 3, 2))
    elif shift_kind == "per_batch":
        u, s = _rand(rng, (2, 3) + shape, dtype), rng.uniform(-3, 3, (2, 3, 2))
    elif shift_kind == "broadcast":
        u, s = _rand(rng, (2, 3) + shape, dtype), rng.uniform(-3, 3, (2, 1, 2))
    else:
        u, s = _rand(rng, shape, dtype), rng.uniform(-3, 3, (4, 2))
    out, pullback = di.vjp(di.shift, u, s)
    assert out.dtype == np.dtype(dtype)
    v = _rand(rng, out.shape, dtype)
    du, ds = pullback(v)
    assert du.shape == u.shape and du.dtype == u.dtype
    assert ds.shape == np.shape(s)
    lhs = np.vdot(v.astype(np.complex128), out.astype(np.complex128))
    rhs = np.vdot(du.astype(np.complex128), u.astype(np.complex128))
    assert abs(lhs - rhs) <= TOL[dtype] * np.linalg.norm(out) * np.linalg.norm(v), (lhs, rhs)


@pytest.mark.parametrize("dtype", [np.complex128, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_shift_field_cotangent_finite_differences(shape, dtype):
    rng = np.random.default_rng(10 + shape[0])
    u = _rand(rng, (3,) + shape, dtype)
    s = rng.uniform(-2, 2, (2, 1, 2))          # broadcasts to (2, 3)
    out, pullback = di.vjp(di.shift, u, s)
    g = _rand(rng, out.shape, dtype)
    du = pullback(g)[0]
    h = 1e-6
    for _ in range(3):
        d = _rand(rng, u.shape, dtype)
        fd = (_loss(g, di.shift(u + h * d, s)) - _loss(g, di.shift(u - h * d, s))) / (2 * h)
        an = float(np.real(np.vdot(du, d)))
        assert_allclose(an, fd, rtol=1e-7, atol=1e-9 * np.abs(fd))


@pytest.mark.parametrize("dtype", [np.complex128, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_shift_cotangent_finite_differences(shape, dtype):
    rng = np.random.default_rng(20 + shape[1])
    u = _rand(rng, (3,) + shape, dtype)
    s = rng.uniform(-2, 2, (2, 1, 2))          # batched shifts broadcast against the field batch
    out, pullback = di.vjp(di.shift, u, s)
    assert out.shape == (2, 3) + shape
    g = _rand(rng, out.shape, dtype)
    ds = pullback(g)[1]
    assert ds.shape == (2, 1, 2) and ds.dtype == np.float64
    h = 1e-5
    fd = np.zeros_like(s)
    for idx in np.ndindex(s.shape):
        sp, sm = s.copy(), s.copy()
        sp[idx] += h
        sm[idx] -= h
        fd[idx] = (_loss(g, di.shift(u, sp)) - _loss(g, di.shift(u, sm))) / (2 * h)
    assert np.abs(fd).max() > 1e-2
    assert_allclose(ds, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


def test_shift_cotangent_tuple_and_field_broadcast():
    rng = np.random.default_rng(30)
    u = _rand(rng, (1, 9, 8), np.complex128)        # field broadcast against shifts
    s = rng.uniform(-2, 2, (4, 2))
    out, pullback = di.vjp(di.shift, u, s)
    assert out.shape == (4, 9, 8)
    g = _rand(rng, out.shape, np.complex128)
    du, ds = pullback(g)
    assert du.shape == (1, 9, 8)
    want = sum(di.vjp(di.shift, u[0], tuple(s[k]))[1](g[k])[0] for k in range(4))
    assert_allclose(du[0], want, rtol=1e-12, atol=1e-12)
    # a tuple shift: float64 cotangent of shape (2,), equal to FD
    t = (0.31, -1.27)
    out, pullback = di.vjp(di.shift, u, t)
    g = _rand(rng, out.shape, np.complex128)
    ds = pullback(g)[1]
    assert isinstance(ds, np.ndarray) and ds.shape == (2,) and ds.dtype == np.float64
    h = 1e-5
    fd = [(_loss(g, di.shift(u, (t[0] + h, t[1]))) - _loss(g, di.shift(u, (t[0] - h, t[1])))) / (2 * h),
          (_loss(g, di.shift(u, (t[0], t[1] + h))) - _loss(g, di.shift(u, (t[0], t[1] - h)))) / (2 * h)]
    assert_allclose(ds, fd, rtol=1e-6)


def test_shift_cotangent_dtypes():
    rng = np.random.default_rng(31)
    u = _rand(rng, (2, 8, 8), np.complex64)
    s = np.array([[0.3, 0.1], [-0.2, 0.7]], np.float32)
    out, pullback = di.vjp(di.shift, u, s)
    du, ds = pullback(np.ones(out.shape, np.complex64))
    assert du.dtype == np.complex64 and ds.dtype == np.float32 and ds.shape == (2, 2)
    r = _rand(rng, (8, 8), np.float32)
    out, pullback = di.vjp(di.shift, r, (0.5, 0.25))
    assert out.dtype == np.float32
    du, ds = pullback(np.ones(out.shape, np.float32))
    assert du.dtype == np.float32 and ds.dtype == np.float64 and ds.shape == (2,)


def test_shift_pullback_rejects_wrong_cotangent_shape():
    _, pullback = di.vjp(di.shift, np.ones((4, 4), np.complex128), (0.5, 0.5))
    with pytest.raises(ValueError, match="cotangent"):
        pullback(np.ones((4, 5), np.complex128))


@pytest.mark.parametrize("bad, exc", [((0.1, 0.2, 0.3), ValueError), (np.zeros((2, 3)), ValueError),
                                      ((np.nan, 0.0), ValueError), (np.array([1j, 0]), TypeError)])
def test_shift_bad_shift(bad, exc):
    with pytest.raises(exc, match="shift"):
        di.shift(np.ones((4, 4), np.complex128), bad)


@pytest.mark.parametrize("field, exc", [(np.ones(8, np.complex128), ValueError),
                                        (np.ones((4, 4), np.int64), TypeError),
                                        ([[1.0, 2.0], [3.0, 4.0]], TypeError)])
def test_shift_bad_field(field, exc):
    with pytest.raises(exc, match="field"):
        di.shift(field, (0.5, 0.5))


# --------------------------------------------------------------- intensity

@pytest.mark.parametrize("dtype, rdtype", [(np.complex64, np.float32), (np.complex128, np.float64),
                                           (np.float32, np.float32), (np.float64, np.float64)])
def test_intensity_forward(dtype, rdtype):
    rng = np.random.default_rng(40)
    u = _rand(rng, (2, 3, 7, 9), dtype)
    out = di.intensity(u)
    assert out.dtype == np.dtype(rdtype) and out.shape == u.shape
    want = np.abs(u.astype(np.complex128)) ** 2
    assert_allclose(out, want, rtol=TOL[dtype], atol=0)
    # non-contiguous input (a transposed view)
    ut = np.swapaxes(u, -1, -2)
    assert_allclose(di.intensity(ut), np.swapaxes(want, -1, -2), rtol=TOL[dtype])


def test_intensity_exact_values():
    u = np.array([[3 + 4j, -1j], [0, 1 - 1j]], np.complex64)
    assert_array_equal(di.intensity(u), np.array([[25, 1], [0, 2]], np.float32))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.float32, np.float64])
def test_intensity_vjp_is_2gu(dtype):
    rng = np.random.default_rng(41)
    u = _rand(rng, (2, 5, 6), dtype)
    out, pullback = di.vjp(di.intensity, u)
    g = rng.standard_normal(out.shape).astype(out.dtype)
    (du,) = pullback(g)
    assert du.dtype == np.dtype(dtype) and du.shape == u.shape
    assert_allclose(du, 2 * g * u, rtol=TOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", [np.complex128, np.float64])
def test_intensity_vjp_finite_differences(dtype):
    rng = np.random.default_rng(42)
    u = _rand(rng, (3, 6, 5), dtype)
    out, pullback = di.vjp(di.intensity, u)
    g = rng.standard_normal(out.shape)
    (du,) = pullback(g)
    h = 1e-6
    for _ in range(4):
        d = _rand(rng, u.shape, dtype)
        fd = (np.sum(g * di.intensity(u + h * d)) - np.sum(g * di.intensity(u - h * d))) / (2 * h)
        an = float(np.real(np.vdot(du, d)))
        assert_allclose(an, fd, rtol=1e-8)
    # componentwise, for a few entries: d/dRe and d/dIm
    for idx in [(0, 0, 0), (2, 5, 4), (1, 3, 2)]:
        e = np.zeros(u.shape, dtype)
        e[idx] = 1
        fd_re = (np.sum(g * di.intensity(u + h * e)) - np.sum(g * di.intensity(u - h * e))) / (2 * h)
        assert_allclose(du[idx].real, fd_re, rtol=1e-7, atol=1e-7)
        if np.dtype(dtype).kind == "c":
            e = e * 1j
            fd_im = (np.sum(g * di.intensity(u + h * e)) - np.sum(g * di.intensity(u - h * e))) / (2 * h)
            assert_allclose(du[idx].imag, fd_im, rtol=1e-7, atol=1e-7)


def test_intensity_of_shift_chain_rule():
    """Composing pullbacks: d/ds sum(w * |shift(u, s)|^2) against FD."""
    rng = np.random.default_rng(43)
    u = _rand(rng, (8, 10), np.complex128)
    w = rng.uniform(size=(8, 10))
    s = (0.41, -0.23)
    v, pb_shift = di.vjp(di.shift, u, s)
    _, pb_int = di.vjp(di.intensity, v)
    (dv,) = pb_int(w)
    du, ds = pb_shift(dv)
    h = 1e-5
    L = lambda t: float(np.sum(w * di.intensity(di.shift(u, t))))  # noqa: E731
    fd = [(L((s[0] + h, s[1])) - L((s[0] - h, s[1]))) / (2 * h),
          (L((s[0], s[1] + h)) - L((s[0], s[1] - h))) / (2 * h)]
    assert_allclose(ds, fd, rtol=1e-6)


@pytest.mark.parametrize("field, exc", [(np.ones(5, np.complex64), ValueError),
                                        (np.ones((3, 3), np.int32), TypeError),
                                        (np.ones((3, 3), bool), TypeError),
                                        ([[1.0, 2.0], [3.0, 4.0]], TypeError)])
def test_intensity_bad_input(field, exc):
    with pytest.raises(exc, match="field"):
        di.intensity(field)
