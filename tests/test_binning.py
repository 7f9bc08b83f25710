"""Tests of diffimaging.bin: exact area-integration binning with sub-pixel shifts.

Conventions (CONVENTIONS.md): output pixel (k, l) integrates the piecewise-constant
input (pixel i covers [i, i+1)) over rows [k f + sy, (k+1) f + sy) and columns
[l f + sx, (l+1) f + sx), zero outside the image; the VJP of the image is the
adjoint; the shift cotangent is real with the shift's dtype.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import diffimaging as di
from conftest import DOT_TOL, rand as _rand
from diffimaging.ops import binning

DTYPES = [np.complex128, np.float64, np.complex64, np.float32]
TOL = DOT_TOL




# ------------------------------------------------------------- brute force

def _overlap_matrix(n, m, f, s):
    """(m, n) overlap lengths of input pixel [i, i+1) with [k f + s, (k+1) f + s),
    by a plain double loop (independent of the package's vectorised code)."""
    w = np.zeros((m, n))
    for k in range(m):
        a = k * f + s
        b = a + f
        for i in range(n):
            lo = max(float(i), a)
            hi = min(float(i + 1), b)
            if hi > lo:
                w[k, i] = hi - lo
    return w


def brute_bin_loop(image, shift, f, reduce="sum"):
    """Direct double-loop area integration of a single (ny, nx) image."""
    ny, nx = image.shape
    sy, sx = (0.0, 0.0) if shift is None else shift
    wy = _overlap_matrix(ny, ny // f, f, sy)
    wx = _overlap_matrix(nx, nx // f, f, sx)
    out = np.zeros((ny // f, nx // f), dtype=np.result_type(image.dtype, np.float64))
    for k in range(ny // f):
        for l in range(nx // f):
            out[k, l] = np.sum(wy[k][:, None] * wx[l][None, :] * image)
    return out / (f * f) if reduce == "mean" else out


def brute_bin_upsample(image, shift, f, S):
    """Upsample each pixel into S x S sub-pixels (area 1/S^2 each), embed in a large
    zero canvas, offset by the (exactly representable) shift in sub-pixels and sum
    blocks of (f S) x (f S).  Exact for shifts that are multiples of 1/S."""
    ny, nx = image.shape
    my, mx = ny // f, nx // f
    sy, sx = shift
    oy, ox = int(round(sy * S)), int(round(sx * S))
    assert oy == sy * S and ox == sx * S
    up = np.repeat(np.repeat(image.astype(np.complex128), S, axis=0), S, axis=1) / S ** 2
    P = (max(ny, nx) + 4 * f + abs(oy) // S + abs(ox) // S + 2) * S
    canvas = np.zeros((ny * S + 2 * P, nx * S + 2 * P), dtype=np.complex128)
    canvas[P:P + ny * S, P:P + nx * S] = up
    win = canvas[P + oy:P + oy + my * f * S, P + ox:P + ox + mx * f * S]
    return win.reshape(my, f * S, mx, f * S).sum(axis=(1, 3))


def reshape_sum(image, f):
    ny, nx = image.shape[-2:]
    my, mx = ny // f, nx // f
    c = image[..., :my * f, :mx * f]
    return c.reshape(image.shape[:-2] + (my, f, mx, f)).sum(axis=(-3, -1))


def _reference_bwd(image, shift, factor, reduce, g):
    p = binning._make_plan(image, shift, factor, reduce)
    p.kernel = False
    return binning._bin_bwd((p, image, shift is not None), g)


def _reference_fwd(image, shift, factor, reduce):
    p = binning._make_plan(image, shift, factor, reduce)
    p.kernel = False
    return binning._forward_reference(p, image)


# ---------------------------------------------------------------- adjoint test

SHAPES = [(7, 9), (8, 12), (5, 13), (12, 6)]  # odd, even, non-square both ways
SHIFT_MODES = ["none", "per_batch", "broadcast_tuple", "broadcast_array", "image_vs_shifts",
               "mixed_broadcast"]


def _make_case(rng, shape, f, mode, dtype):
    """Image and shift for one adjoint-test configuration."""
    B = (2, 3)
    if mode == "none":
        return _rand(rng, B + shape, dtype), None
    if mode == "per_batch":
        s = rng.uniform(-0.75 * f - 0.5, 0.75 * f + 0.5, B + (2,))
        return _rand(rng, B + shape, dtype), s
    if mode == "broadcast_tuple":
        s = tuple(rng.uniform(-0.75 * f - 0.5, 0.75 * f + 0.5, 2))
        return _rand(rng, B + shape, dtype), s
    if mode == "broadcast_array":  # one shift (1, 1, 2) for the whole (2, 3) batch
        s = rng.uniform(-0.75 * f - 0.5, 0.75 * f + 0.5, (1, 1, 2))
        return _rand(rng, B + shape, dtype), s
    if mode == "image_vs_shifts":  # image (ny, nx), shifts (K, 2) -> (K, my, mx)
        s = rng.uniform(-0.75 * f - 0.5, 0.75 * f + 0.5, (4, 2))
        return _rand(rng, shape, dtype), s
    if mode == "mixed_broadcast":  # image (2, 1, ny, nx), shifts (3, 2) -> (2, 3, my, mx)
        s = rng.uniform(-0.75 * f - 0.5, 0.75 * f + 0.5, (3, 2))
        return _rand(rng, (2, 1) + shape, dtype), s
    raise AssertionError(mode)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("mode", SHIFT_MODES)
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_adjoint_dot(shape, factor, mode, reduce, dtype):
    rng = np.random.default_rng(zlib.crc32(repr((shape, factor, mode, reduce)).encode()))
    u, s = _make_case(rng, shape, factor, mode, dtype)
    out, pullback = di.vjp(di.bin, u, factor=factor, reduce=reduce) if s is None else \
        di.vjp(di.bin, u, s, factor=factor, reduce=reduce)
    my, mx = shape[0] // factor, shape[1] // factor
    expected_batch = (4,) if mode == "image_vs_shifts" else (2, 3)  # mixed: (2,1) x (3,)
    assert out.shape == expected_batch + (my, mx)
    assert out.dtype == np.dtype(dtype)
    v = _rand(rng, out.shape, dtype)
    cts = pullback(v)
    assert len(cts) == (1 if s is None else 2)
    adj = cts[0]
    assert adj.shape == u.shape and adj.dtype == u.dtype
    lhs = np.vdot(v.astype(np.complex128), out.astype(np.complex128))
    rhs = np.vdot(adj.astype(np.complex128), u.astype(np.complex128))
    scale = np.linalg.norm(out) * np.linalg.norm(v)
    assert scale > 0
    assert abs(lhs - rhs) <= TOL[dtype] * scale, (lhs, rhs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", SHIFT_MODES)
def test_adjoint_dot_reference_path(mode, dtype):
    rng = np.random.default_rng(7)
    f = 3
    u, s = _make_case(rng, (10, 8), f, mode, dtype)
    out = _reference_fwd(u, s, f, "mean")
    v = _rand(rng, out.shape, dtype)
    adj = _reference_bwd(u, s, f, "mean", v)[0]
    assert adj.shape == u.shape and adj.dtype == u.dtype
    lhs = np.vdot(v.astype(np.complex128), np.asarray(out, np.complex128))
    rhs = np.vdot(adj.astype(np.complex128), u.astype(np.complex128))
    assert abs(lhs - rhs) <= TOL[dtype] * np.linalg.norm(out) * np.linalg.norm(v)


# --------------------------------------------------------------- exactness

@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(9, 11), (8, 8), (6, 13)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_exact_vs_upsampled_brute_force(shape, factor):
    S = 8
    rng = np.random.default_rng(100 + factor)
    img = _rand(rng, shape, np.complex128)
    # shifts on the 1/8 grid: small, negative, and large enough that the window
    # leaves the image partly or entirely
    shifts = [(0.0, 0.0), (0.125, -0.375), (-0.625, 0.5), (-2.25, 1.875),
              (shape[0] - 1.5, -(shape[1] - 2.125)), (-(shape[0] - 0.75), 3.5),
              (float(shape[0] + 1), 0.25)]
    shifts += [tuple(rng.integers(-3 * factor * S, 3 * factor * S, 2) / S) for _ in range(6)]
    for s in shifts:
        got = di.bin(img, s, factor=factor)
        want = brute_bin_upsample(img, s, factor, S)
        assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(img).sum(), err_msg=f"shift {s}")
    # the same shifts as one batch of shifts, and through the reference path
    arr = np.asarray(shifts)
    got = di.bin(img, arr, factor=factor)
    want = np.stack([brute_bin_upsample(img, tuple(s), factor, S) for s in arr])
    assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(img).sum())
    assert_allclose(_reference_fwd(img, arr, factor, "sum"), want, rtol=1e-12,
                    atol=1e-12 * np.abs(img).sum())


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_exact_vs_loop_brute_force_random_shifts(factor, dtype):
    rng = np.random.default_rng(200 + factor)
    shape = (11, 9)
    img = _rand(rng, shape, dtype)
    shifts = rng.uniform(-1.3 * shape[0] / 2, 1.3 * shape[0] / 2, (8, 2))
    shifts[0] = (-0.4, 0.7)            # small, negative
    shifts[1] = (-8.3, 7.9)            # window mostly outside the image
    shifts[2] = (shape[0] - 0.2, -shape[1] + 0.6)  # only a sliver of the image inside
    for reduce in ("sum", "mean"):
        got = di.bin(img, shifts, factor=factor, reduce=reduce)
        assert got.shape == (8, shape[0] // factor, shape[1] // factor)
        for b, s in enumerate(shifts):
            want = brute_bin_loop(img, tuple(s), factor, reduce)
            assert_allclose(got[b], want, rtol=1e-12, atol=1e-13 * np.abs(img).sum(),
                            err_msg=f"shift {s}, reduce {reduce}")


def test_window_entirely_outside_gives_zero():
    rng = np.random.default_rng(3)
    img = _rand(rng, (6, 8), np.float64) + 5.0
    out = di.bin(img, (6.0, 0.0), factor=2)
    assert_array_equal(out, np.zeros((3, 4)))
    out = di.bin(img, (0.5, -9.5), factor=2)
    assert_array_equal(out, np.zeros((3, 4)))
    # a half-pixel shift beyond the last row keeps only half of the last row
    out = di.bin(img, (5.5, 0.0), factor=2)
    want = np.zeros((3, 4))
    want[0] = 0.5 * reshape_sum(img[5:6, :], 1).reshape(4, 2).sum(axis=1)
    assert_allclose(out, want, rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_zero_shift_equals_reshape_sum(factor, dtype):
    rng = np.random.default_rng(factor)
    img = _rand(rng, (2, 13, 10), dtype)   # not divisible: the remainder is dropped
    want = reshape_sum(img.astype(np.complex128), factor)
    rtol = TOL[dtype]
    for s in (None, (0.0, 0.0), np.zeros((2, 2))):
        got = di.bin(img, s, factor=factor)
        assert got.dtype == np.dtype(dtype)
        assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(img).max() * factor ** 2)
    got = di.bin(img, factor=factor, reduce="mean")
    assert_allclose(got, want / factor ** 2, rtol=rtol, atol=rtol * np.abs(img).max())


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_integer_shift_equals_padded_rolled_image(factor):
    rng = np.random.default_rng(11)
    ny, nx = 10, 9
    img = _rand(rng, (ny, nx), np.complex128)
    P = 30
    padded = np.pad(img, P)
    for dy, dx in [(1, 0), (0, -2), (3, 2), (-4, -1), (7, -5), (-10, 0)]:
        rolled = np.roll(padded, (-dy, -dx), axis=(0, 1))[P:P + ny, P:P + nx]
        want = reshape_sum(rolled, factor)
        assert_allclose(di.bin(img, (dy, dx), factor=factor), want, rtol=1e-13, atol=1e-13)
        assert_allclose(di.bin(img, (float(dy), float(dx)), factor=factor), want, rtol=1e-13,
                        atol=1e-13)
        # an integer-dtype shift array is accepted and means the same
        assert_allclose(di.bin(img, np.array([dy, dx]), factor=factor), want, rtol=1e-13,
                        atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_sum_preserved(factor, dtype):
    rng = np.random.default_rng(factor + 40)
    img = _rand(rng, (3, 4 * 3 * factor, 5 * factor), dtype)
    out = di.bin(img, factor=factor)
    rtol = TOL[dtype]
    assert_allclose(out.sum(axis=(-2, -1)), img.sum(axis=(-2, -1)), rtol=rtol,
                    atol=rtol * np.abs(img).sum())
    assert_allclose(out.sum(), img.sum(), rtol=rtol, atol=rtol * np.abs(img).sum())


def test_sum_preserved_by_subpixel_shift_inside_image():
    # a shifted window that still covers the whole non-zero support preserves the sum
    rng = np.random.default_rng(5)
    img = np.zeros((12, 12))
    img[3:9, 2:10] = rng.uniform(size=(6, 8))
    out = di.bin(img, (0.37, -0.61), factor=3)
    assert_allclose(out.sum(), img.sum(), rtol=1e-13)


def test_mean_is_sum_over_factor_squared():
    rng = np.random.default_rng(8)
    img = _rand(rng, (2, 9, 12), np.complex128)
    s = rng.uniform(-2, 2, (2, 2))
    assert_allclose(di.bin(img, s, factor=3, reduce="mean"), di.bin(img, s, factor=3) / 9,
                    rtol=1e-14)


def test_shift_is_linear_interpolation_between_integers():
    # along one axis, binning is piecewise linear in the shift: the result at
    # s = n + t is (1 - t) out(n) + t out(n + 1)
    rng = np.random.default_rng(9)
    img = _rand(rng, (8, 10), np.float64)
    t = 0.3
    for n in (-2, 0, 1):
        lo = di.bin(img, (float(n), 0.0), factor=2)
        hi = di.bin(img, (float(n + 1), 0.0), factor=2)
        assert_allclose(di.bin(img, (n + t, 0.0), factor=2), (1 - t) * lo + t * hi, rtol=1e-13,
                        atol=1e-13)
        lo = di.bin(img, (0.0, float(n)), factor=2)
        hi = di.bin(img, (0.0, float(n + 1)), factor=2)
        assert_allclose(di.bin(img, (0.0, n + t), factor=2), (1 - t) * lo + t * hi, rtol=1e-13,
                        atol=1e-13)


# --------------------------------------------------- shift cotangent vs FD

def _away_from_kinks(rng, shape, lo, hi):
    s = rng.uniform(lo, hi, shape)
    frac = s - np.floor(s)
    return np.where(frac < 0.05, s + 0.1, np.where(frac > 0.95, s - 0.1, s))


def _loss(g, out):
    return float(np.real(np.vdot(g, out)))


@pytest.mark.parametrize("path", ["kernel", "reference"])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_shift_cotangent_finite_differences(factor, dtype, reduce, path):
    rng = np.random.default_rng(300 + factor)
    img = _rand(rng, (2, 11, 10), dtype)
    shifts = _away_from_kinks(rng, (3, 1, 2), -1.2 * factor - 2, 1.2 * factor + 2)
    shifts[0, 0] = (-4.3, 5.4)  # partly outside on both axes
    fwd = (lambda s: di.bin(img, s, factor=factor, reduce=reduce)) if path == "kernel" else \
        (lambda s: _reference_fwd(img, s, factor, reduce))
    out = fwd(shifts)
    assert out.shape == (3, 2, 11 // factor, 10 // factor)
    g = _rand(rng, out.shape, dtype)
    if path == "kernel":
        _, pullback = di.vjp(di.bin, img, shifts, factor=factor, reduce=reduce)
        du, ds = pullback(g)
    else:
        du, ds = _reference_bwd(img, shifts, factor, reduce, g)
    assert ds.shape == shifts.shape and ds.dtype == np.float64
    h = 1e-6
    fd = np.zeros_like(shifts)
    for idx in np.ndindex(shifts.shape):
        sp, sm = shifts.copy(), shifts.copy()
        sp[idx] += h
        sm[idx] -= h
        fd[idx] = (_loss(g, fwd(sp)) - _loss(g, fwd(sm))) / (2 * h)
    assert np.abs(fd).max() > 1e-3
    assert_allclose(ds, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("kind", ["tuple", "array1", "array_f32"])
def test_shift_cotangent_broadcast_shift_fd(kind):
    """One shift for a whole batch: its cotangent is the sum over the batch."""
    rng = np.random.default_rng(17)
    img = _rand(rng, (3, 9, 12), np.float64)
    base = np.array([0.43, -1.71])
    if kind == "tuple":
        make = lambda v: (float(v[0]), float(v[1]))  # noqa: E731
    elif kind == "array1":
        make = lambda v: np.asarray(v, np.float64).reshape(1, 2)  # noqa: E731
    else:
        make = lambda v: np.asarray(v, np.float64)  # noqa: E731
    s0 = make(base)
    out, pullback = di.vjp(di.bin, img, s0, factor=3)
    g = _rand(rng, out.shape, np.float64)
    ds = pullback(g)[1]
    expected_shape = (1, 2) if kind == "array1" else (2,)
    assert ds.shape == expected_shape and ds.dtype == np.float64
    h = 1e-6
    fd = np.zeros(2)
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        fd[j] = (_loss(g, di.bin(img, make(base + e), factor=3))
                 - _loss(g, di.bin(img, make(base - e), factor=3))) / (2 * h)
    assert_allclose(np.reshape(ds, 2), fd, rtol=1e-6, atol=1e-9)
    # and it is the sum of the per-batch cotangents
    _, pb = di.vjp(di.bin, img, np.broadcast_to(base, (3, 2)).copy(), factor=3)
    assert_allclose(np.reshape(ds, 2), pb(g)[1].sum(axis=0), rtol=1e-12)


def test_cotangent_dtypes_and_shapes():
    rng = np.random.default_rng(4)
    img32 = _rand(rng, (2, 8, 8), np.complex64)
    s32 = np.array([[0.3, -0.2], [1.1, 0.4]], np.float32)
    out, pb = di.vjp(di.bin, img32, s32, factor=2)
    du, ds = pb(np.ones(out.shape, np.complex64))
    assert du.dtype == np.complex64 and du.shape == img32.shape
    assert ds.dtype == np.float32 and ds.shape == (2, 2)
    # tuple shift -> float64 array of shape (2,)
    img = _rand(rng, (8, 8), np.float32)
    out, pb = di.vjp(di.bin, img, (0.3, 0.1), factor=2)
    du, ds = pb(np.ones(out.shape, np.float32))
    assert du.dtype == np.float32 and ds.dtype == np.float64 and ds.shape == (2,)
    assert isinstance(ds, np.ndarray)
    # image broadcast against a batch of shifts: the image cotangent is summed
    s = rng.uniform(-1, 1, (5, 2))
    out, pb = di.vjp(di.bin, img.astype(np.float64), s, factor=2)
    g = _rand(rng, out.shape, np.float64)
    du, ds = pb(g)
    assert du.shape == (8, 8) and ds.shape == (5, 2)
    want = sum(di.vjp(di.bin, img.astype(np.float64), tuple(s[k]), factor=2)[1](g[k])[0]
               for k in range(5))
    assert_allclose(du, want, rtol=1e-12, atol=1e-14)


def test_pullback_rejects_wrong_cotangent_shape():
    img = np.ones((8, 8))
    _, pb = di.vjp(di.bin, img, (0.5, 0.5), factor=2)
    with pytest.raises(ValueError, match="cotangent"):
        pb(np.ones((3, 4)))


# ------------------------------------------------------ kernel vs reference

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", SHIFT_MODES)
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_kernel_equals_reference(factor, reduce, mode, dtype):
    rng = np.random.default_rng(500 + factor)
    u, s = _make_case(rng, (11, 14), factor, mode, dtype)
    p = binning._make_plan(u, s, factor, reduce)
    assert p.kernel, "the compiled kernels are expected for numpy arrays"
    k_out = binning._forward_kernel(p, u)
    r_out = _reference_fwd(u, s, factor, reduce)
    assert k_out.dtype == r_out.dtype == np.dtype(dtype)
    assert k_out.shape == r_out.shape
    tol = TOL[dtype]
    scale = np.abs(u).max() * factor ** 2 * (1 if reduce == "sum" else factor ** -2)
    assert_allclose(k_out, r_out, rtol=tol, atol=10 * tol * scale)
    g = _rand(rng, k_out.shape, dtype)
    _, pb = di.vjp(di.bin, u, factor=factor, reduce=reduce) if s is None else \
        di.vjp(di.bin, u, s, factor=factor, reduce=reduce)
    k_cts = pb(g)
    r_cts = _reference_bwd(u, s, factor, reduce, g)
    assert len(k_cts) == len(r_cts)
    assert k_cts[0].dtype == r_cts[0].dtype == np.dtype(dtype)
    gs = np.abs(g).max() * (len(g.reshape(-1, *g.shape[-2:])))
    assert_allclose(k_cts[0], r_cts[0], rtol=tol, atol=10 * tol * gs)
    if s is not None:
        assert k_cts[1].shape == r_cts[1].shape == np.shape(s)
        assert k_cts[1].dtype == np.asarray(r_cts[1]).dtype
        ds_scale = np.abs(g).sum() * np.abs(u).max() + 1.0
        assert_allclose(k_cts[1], r_cts[1], rtol=10 * tol, atol=10 * tol * ds_scale)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("factor, exc", [(0, ValueError), (-1, ValueError), (2.5, TypeError),
                                         (True, TypeError), (2.0, TypeError), ("2", TypeError),
                                         (None, TypeError)])
def test_bad_factor(factor, exc):
    with pytest.raises(exc, match="factor"):
        di.bin(np.ones((8, 8)), factor=factor)


@pytest.mark.parametrize("shift", [None, (0.5, 0.25)])
def test_empty_batch(shift):
    img = np.zeros((0, 8, 6))
    ref = _reference_fwd(img, shift, 2, "sum")
    assert ref.shape == (0, 4, 3)
    out = di.bin(img, shift, factor=2)
    assert out.shape == (0, 4, 3) and out.dtype == np.float64
    args = (img,) if shift is None else (img, shift)
    out, pb = di.vjp(di.bin, *args, factor=2)
    cts = pb(np.zeros((0, 4, 3)))
    assert cts[0].shape == (0, 8, 6)
    if shift is not None:
        np.testing.assert_array_equal(cts[1], np.zeros(2))


def test_factor_accepts_numpy_integer():
    out = di.bin(np.ones((8, 8)), factor=np.int64(2))
    assert_allclose(out, np.full((4, 4), 4.0))


def test_factor_is_keyword_only():
    with pytest.raises(TypeError):
        di.bin(np.ones((8, 8)), None, 2)


@pytest.mark.parametrize("shape", [(3, 8), (8, 3), (2, 2)])
def test_image_smaller_than_factor(shape):
    with pytest.raises(ValueError, match="image"):
        di.bin(np.ones(shape), factor=4)


def test_one_dimensional_image():
    with pytest.raises(ValueError, match="image"):
        di.bin(np.ones(16), factor=2)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.float16])
def test_non_float_image(dtype):
    with pytest.raises(TypeError, match="image"):
        di.bin(np.ones((8, 8), dtype=dtype), factor=2)


def test_non_array_image():
    with pytest.raises(TypeError, match="image"):
        di.bin([[1.0, 2.0], [3.0, 4.0]], factor=1)
    with pytest.raises(TypeError, match="image"):
        di.bin(None, factor=1)


@pytest.mark.parametrize("shift", [(0.1, 0.2, 0.3), np.zeros(3), np.zeros((2, 3)), np.zeros(()),
                                   np.zeros((4, 1))])
def test_bad_shift_shape(shift):
    with pytest.raises(ValueError, match="shift"):
        di.bin(np.ones((8, 8)), shift, factor=2)


def test_shift_batch_must_broadcast():
    with pytest.raises(ValueError, match="shift"):
        di.bin(np.ones((3, 8, 8)), np.zeros((4, 2)), factor=2)


@pytest.mark.parametrize("shift", [(np.nan, 0.0), (0.0, np.inf), np.array([[0.0, 0.0], [-np.inf, 1.0]])])
def test_non_finite_shift(shift):
    with pytest.raises(ValueError, match="shift"):
        di.bin(np.ones((8, 8)), shift, factor=2)


@pytest.mark.parametrize("shift", [np.array([0.1 + 1j, 0.2]), np.array([True, False]), "ab"])
def test_non_real_shift(shift):
    with pytest.raises(TypeError, match="shift"):
        di.bin(np.ones((8, 8)), shift, factor=2)


@pytest.mark.parametrize("reduce", ["max", "Sum", "", None])
def test_unknown_reduce(reduce):
    with pytest.raises(ValueError, match="reduce"):
        di.bin(np.ones((8, 8)), factor=2, reduce=reduce)
