"""CUDA binning kernels (forward, adjoint, shift cotangent) and the CuPy path of di.bin.

GPU tests (marked ``cuda``) are skipped without a visible GPU: CUDA vs the CPU
kernels, the adjoint dot test, the shift cotangent against central finite
differences, determinism of the shift cotangent, and di.bin / di.vjp on CuPy
arrays through the CUDA path.  The host-side checks (shape logic of the
launchers, argument validation of the bindings, which needs no device) run
everywhere.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import diffimaging as di
from conftest import DOT_TOL, gpu_available, rand
from diffimaging._backend import cuda_binning as CB
from diffimaging._backend import kernels as K
from diffimaging.ops import binning

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
# CUDA vs CPU kernels, relative to the size of the result (CPU float32 sums in float32)
MATCH_TOL = {np.float32: 1e-5, np.complex64: 1e-5, np.float64: 1e-12, np.complex128: 1e-12}
SHAPES = [(7, 9), (8, 12), (5, 13), (12, 6)]  # odd, even, non-square both ways

gpu = pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU visible")


def _seed(*key) -> int:
    return zlib.crc32(repr(key).encode())


def _need_module():
    if not K.have_cuda_module():
        pytest.skip("CUDA module not built (no CUDA compiler at build time)")


def _cupy_or_skip():
    return pytest.importorskip("cupy")


# ====================================================================== host side

def test_geometry_valid_shapes():
    g = CB.geometry((3, 9, 7), (3, 3, 2), 3)
    assert g == CB.Geometry(batch=3, ny=9, nx=7, in_stride=63, shift_stride=0)
    g = CB.geometry((1, 9, 7), (4, 4, 3), 2, (4, 2))  # broadcast image, one shift per element
    assert (g.batch, g.in_stride, g.shift_stride) == (4, 0, 2)
    g = CB.geometry((4, 9, 7), (4, 9, 7), 1, (1, 2))  # one shift for the whole batch
    assert (g.in_stride, g.shift_stride) == (63, 0)
    g = CB.geometry((1, 5, 5), (1, 1, 1), 5, (1, 2))
    assert (g.batch, g.in_stride, g.shift_stride) == (1, 25, 0)
    g = CB.geometry((1, 6, 6), (0, 3, 3), 2)  # empty batch
    assert (g.batch, g.in_stride) == (0, 0)


@pytest.mark.parametrize("args, match", [
    (((3, 9, 7), (3, 3, 2), 0), "factor"),
    (((3, 9, 7), (3, 3, 2), 2.5), "factor"),
    (((9, 7), (3, 3, 2), 3), "image must be 3-d"),
    (((3, 9, 7), (3, 6), 3), "out must be 3-d"),
    (((3, 2, 7), (3, 0, 2), 3), "smaller than the binning factor"),
    (((3, 9, 7), (3, 3, 3), 3), r"expected \(3, 3, 2\)"),
    (((2, 9, 7), (3, 3, 2), 3), "batch 2, expected 1 or 3"),
    (((3, 9, 7), (3, 3, 2), 3, (2, 2)), r"shifts must have shape \(1, 2\) or \(3, 2\)"),
    (((3, 9, 7), (3, 3, 2), 3, (3,)), "shifts must have shape"),
])
def test_geometry_rejects_bad_shapes(args, match):
    with pytest.raises(ValueError, match=match):
        CB.geometry(*args)


def test_geometry_adjoint_needs_the_full_batch():
    with pytest.raises(ValueError, match="out has batch 1, expected 3"):
        CB.geometry((1, 9, 7), (3, 3, 2), 3, names=("out", "g"), broadcast=False)


def test_launchers_need_cupy_arrays():
    x = np.zeros((2, 8, 8), np.float32)
    y = np.zeros((2, 4, 4), np.float32)
    try:
        import cupy  # noqa: F401
    except ImportError:
        # without CuPy the launchers say what is missing
        with pytest.raises(RuntimeError, match="CuPy"):
            CB.bin_forward(x, y, 2, None, 1.0)
        return
    with pytest.raises(TypeError, match="image: the CUDA kernels take CuPy arrays"):
        CB.bin_forward(x, y, 2, None, 1.0)
    with pytest.raises(TypeError, match="g: the CUDA kernels take CuPy arrays"):
        CB.bin_adjoint(y, x, 2, None, 1.0)
    with pytest.raises(TypeError, match="image: the CUDA kernels take CuPy arrays"):
        CB.bin_shift_grad(x, y, 2, np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="needs shifts"):
        CB.bin_shift_grad(x, y, 2, None, 1.0)


def test_numpy_plan_does_not_take_the_cuda_path():
    p = binning._make_plan(np.zeros((2, 8, 8)), (0.5, 0.25), 2, "sum")
    assert p.cuda is False


def _bind_args(**over):
    a = dict(image=1, out=2, dtype="float32", batch=2, ny=8, nx=6, in_stride=48, factor=2,
             shifts=0, shift_stride=0, scale=1.0, stream=0)
    a.update(over)
    return a


@pytest.mark.parametrize("over, match", [
    (dict(dtype="int32"), "dtype must be 'float32', 'float64', 'complex64' or 'complex128'"),
    (dict(factor=0), "factor must be >= 1"),
    (dict(batch=-1), "batch must be >= 0"),
    (dict(ny=1), "smaller than the factor"),
    (dict(in_stride=7), "in_stride must be 0"),
    (dict(shifts=3, shift_stride=1), "shift_stride must be 0"),
    (dict(shift_stride=2), "shift_stride must be 0 without shifts"),
    (dict(image=0), "image is a null device pointer"),
    (dict(out=0), "out is a null device pointer"),
])
def test_forward_binding_validates_before_touching_the_device(over, match):
    # every check runs on the host, before any CUDA call: no GPU needed
    _need_module()
    with pytest.raises(ValueError, match=match):
        K._cuda.bin_forward(**_bind_args(**over))


def test_adjoint_and_shift_grad_bindings_validate():
    _need_module()
    m = K._cuda
    with pytest.raises(ValueError, match="g is a null device pointer"):
        m.bin_adjoint(g=0, out=2, dtype="complex64", batch=1, ny=8, nx=8, factor=2, shifts=0,
                      shift_stride=0, scale=1.0, stream=0)
    with pytest.raises(ValueError, match="dtype must be"):
        m.bin_adjoint(g=1, out=2, dtype="complex32", batch=1, ny=8, nx=8, factor=2, shifts=0,
                      shift_stride=0, scale=1.0, stream=0)
    kw = dict(image=1, g=2, dshift=3, dtype="complex128", batch=2, ny=8, nx=8, in_stride=0,
              factor=2, shifts=4, shift_stride=2, scale=1.0, stream=0)
    with pytest.raises(ValueError, match="needs shifts"):
        m.bin_shift_grad(**{**kw, "shifts": 0, "shift_stride": 0})
    with pytest.raises(ValueError, match="dshift is a null device pointer"):
        m.bin_shift_grad(**{**kw, "dshift": 0})
    with pytest.raises(ValueError, match="in_stride must be 0 .* or ny \\* nx = 64"):
        m.bin_shift_grad(**{**kw, "in_stride": 63})


def test_empty_batch_launches_nothing():
    # batch 0 returns before any CUDA call (null pointers allowed): no GPU needed
    _need_module()
    m = K._cuda
    assert m.bin_forward(0, 0, "complex64", 0, 8, 8, 0, 2, 0, 0, 1.0, 0) is None
    assert m.bin_adjoint(0, 0, "float64", 0, 8, 8, 2, 0, 0, 1.0, 0) is None
    assert m.bin_shift_grad(0, 0, 0, "float32", 0, 8, 8, 64, 2, 5, 2, 1.0, 0) is None


def test_shift_grad_reduction_blocks():
    """The first pass's blocks per batch element: at least one, no block without
    work, at most 1024, and fewer per element for large batches (the scratch is
    batch * blocks * 2 doubles)."""
    _need_module()
    nb = K._cuda.bin_shift_grad_blocks
    for outputs in (1, 255, 256, 257, 90_300, 1 << 24):
        for batch in (1, 3, 100, 5000, 100_000):
            b = nb(outputs, batch)
            assert 1 <= b <= 1024
            assert b <= -(-outputs // 256)
    assert nb(1 << 24, 1) == 1024
    assert nb(90_300, 1) == 353
    assert nb(360, 5000) == 1
    assert nb(1 << 20, 64) == 64


# ====================================================================== GPU

def _shifts_for(rng, mode, batch, f, shape=(8, 8)):
    """(shifts2 host array or None) for a launch mode."""
    if mode == "none":
        return None
    if mode == "per_batch":
        return rng.uniform(-0.75 * f - 0.5, 0.75 * f + 0.5, (batch, 2))
    if mode == "one":
        return rng.uniform(-0.75 * f - 0.5, 0.75 * f + 0.5, (1, 2))
    if mode == "far":  # windows partly or entirely outside the image
        return rng.uniform(-12.0, 12.0, (batch, 2))
    if mode == "edge":  # windows partly outside the image, never all of them
        return rng.uniform(-0.45, 0.45, (batch, 2)) * np.asarray(shape)
    if mode == "integer":
        return np.round(rng.uniform(-2 * f, 2 * f, (batch, 2)))
    raise AssertionError(mode)


def _rel_err(got, want):
    """max |got - want| / max |want| in double (the absolute error when want is 0)."""
    got, want = np.asarray(got, np.complex128), np.asarray(want, np.complex128)
    err, size = float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
    return err / size if size > 0 else err


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", ["none", "per_batch", "one", "far", "edge", "integer"])
@pytest.mark.parametrize("broadcast", [False, True], ids=["batched", "broadcast"])
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_kernels_match_cpu(shape, factor, broadcast, mode, dtype):
    cp = _cupy_or_skip()
    _need_module()
    rng = np.random.default_rng(_seed((shape, factor, broadcast, mode)))
    batch = 3
    ny, nx = shape
    my, mx = ny // factor, nx // factor
    img = rand(rng, (1 if broadcast else batch, ny, nx), dtype)
    g = rand(rng, (batch, my, mx), dtype)
    sh = _shifts_for(rng, mode, batch, factor, shape)
    scale = 1.0 / factor**2 if mode in ("one", "integer") else 1.0
    d_img, d_g = cp.asarray(img), cp.asarray(g)
    d_sh = None if sh is None else cp.asarray(sh)
    tol = MATCH_TOL[dtype]

    want = np.empty((batch, my, mx), dtype)
    K.bin_forward(img, want, factor, sh, scale)
    got = cp.empty((batch, my, mx), dtype)
    CB.bin_forward(d_img, got, factor, d_sh, scale)
    assert _rel_err(cp.asnumpy(got), want) <= tol

    want = np.empty((batch, ny, nx), dtype)
    K.bin_adjoint(g, want, factor, sh, scale)
    got = cp.full((batch, ny, nx), np.nan, dtype)  # every element must be written
    CB.bin_adjoint(d_g, got, factor, d_sh, scale)
    assert _rel_err(cp.asnumpy(got), want) <= tol

    # shift cotangent (the CPU kernel needs shifts: no shift = zero shift)
    sh_c = np.zeros((1, 2)) if sh is None else sh
    d_sh_c = cp.asarray(sh_c)
    want = K.bin_shift_grad(img, g, factor, sh_c, scale)
    got = cp.asnumpy(CB.bin_shift_grad(d_img, d_g, factor, d_sh_c, scale))
    assert got.shape == (batch, 2) and got.dtype == np.float64
    # relative to the size of the terms summed (the cotangent itself may nearly cancel)
    size = scale * (factor + 1) * np.abs(g).sum() * np.abs(img).max()
    assert np.max(np.abs(got - want)) <= tol * size


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", ["none", "per_batch", "one", "edge"])
@pytest.mark.parametrize("factor", [1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_adjoint_dot(shape, factor, mode, dtype):
    cp = _cupy_or_skip()
    _need_module()
    rng = np.random.default_rng(_seed((shape, factor, mode, "dot")))
    batch, (ny, nx) = 4, shape
    my, mx = ny // factor, nx // factor
    u = cp.asarray(rand(rng, (batch, ny, nx), dtype))
    v = cp.asarray(rand(rng, (batch, my, mx), dtype))
    sh = _shifts_for(rng, mode, batch, factor, shape)
    d_sh = None if sh is None else cp.asarray(sh)
    Au = cp.empty((batch, my, mx), dtype)
    CB.bin_forward(u, Au, factor, d_sh, 0.5)
    Ahv = cp.empty((batch, ny, nx), dtype)
    CB.bin_adjoint(v, Ahv, factor, d_sh, 0.5)
    c128 = cp.complex128
    lhs = complex(cp.vdot(v.astype(c128).ravel(), Au.astype(c128).ravel()))
    rhs = complex(cp.vdot(Ahv.astype(c128).ravel(), u.astype(c128).ravel()))
    norm = float(cp.linalg.norm(Au.astype(c128)) * cp.linalg.norm(v.astype(c128)))
    assert norm > 0
    assert abs(lhs - rhs) <= DOT_TOL[dtype] * norm, (lhs, rhs)


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("broadcast", [False, True], ids=["batched", "broadcast"])
@pytest.mark.parametrize("factor", [1, 2, 3])
@pytest.mark.parametrize("shape", [(9, 11), (12, 8)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_shift_grad_vs_finite_differences(shape, factor, broadcast, dtype):
    cp = _cupy_or_skip()
    _need_module()
    rng = np.random.default_rng(_seed((shape, factor, broadcast, "fd")))
    batch, (ny, nx) = 3, shape
    my, mx = ny // factor, nx // factor
    img = cp.asarray(rand(rng, (1 if broadcast else batch, ny, nx), dtype))
    g = cp.asarray(rand(rng, (batch, my, mx), dtype))
    # fractional parts in [0.1, 0.9]: the loss is linear in the shift within +-eps
    base = rng.integers(-2, 3, (batch, 2)) + rng.uniform(0.1, 0.9, (batch, 2))
    d = cp.asnumpy(CB.bin_shift_grad(img, g, factor, cp.asarray(base), 1.0))

    def loss(s):
        out = cp.empty((batch, my, mx), dtype)
        CB.bin_forward(img, out, factor, cp.asarray(s), 1.0)
        return cp.asnumpy(cp.sum(cp.real(cp.conj(g) * out), axis=(1, 2)))

    eps = 1e-4
    for axis in (0, 1):
        e = np.zeros((batch, 2))
        e[:, axis] = eps
        fd = (loss(base + e) - loss(base - e)) / (2 * eps)
        np.testing.assert_allclose(d[:, axis], fd, rtol=1e-7, atol=1e-9 * float(cp.abs(g).sum()))


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.complex64], ids=lambda d: np.dtype(d).name)
def test_shift_grad_is_deterministic(dtype):
    """Many blocks per batch element (and one block for many elements): repeated
    calls give bit-identical cotangents."""
    cp = _cupy_or_skip()
    _need_module()
    rng = np.random.default_rng(5)
    for batch, ny, nx, f in ((1, 600, 520, 1), (2, 400, 300, 2), (3000, 24, 20, 2)):
        img = cp.asarray(rand(rng, (batch, ny, nx), dtype))
        g = cp.asarray(rand(rng, (batch, ny // f, nx // f), dtype))
        sh = cp.asarray(rng.uniform(-3, 3, (batch, 2)))
        first = CB.bin_shift_grad(img, g, f, sh, 1.0)
        for _ in range(3):
            again = CB.bin_shift_grad(img, g, f, sh, 1.0)
            assert bool(cp.all(again == first))
        want = K.bin_shift_grad(cp.asnumpy(img), cp.asnumpy(g), f, cp.asnumpy(sh), 1.0)
        size = (f + 1) * float(cp.abs(g).sum()) * float(cp.abs(img).max()) / batch
        assert np.max(np.abs(cp.asnumpy(first) - want)) <= 1e-5 * size


@pytest.mark.cuda
@gpu
def test_kernels_run_on_the_callers_stream():
    cp = _cupy_or_skip()
    _need_module()
    rng = np.random.default_rng(9)
    img = rand(rng, (2, 64, 48), np.complex64)
    want = np.empty((2, 16, 12), np.complex64)
    K.bin_forward(img, want, 4, np.array([[0.3, -1.2]]), 1.0)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        d_img = cp.asarray(img)
        out = cp.empty((2, 16, 12), cp.complex64)
        CB.bin_forward(d_img, out, 4, cp.asarray([[0.3, -1.2]]), 1.0)
        res = cp.asnumpy(out, stream=s)
    s.synchronize()
    assert _rel_err(res, want) <= 1e-5


# -------------------------------------------------------- di.bin on CuPy arrays

CASES = [  # (image batch, shift: None | tuple | array shape)
    ((2, 3), None),
    ((2, 3), (2, 3, 2)),
    ((2, 3), "tuple"),
    ((2, 3), (1, 1, 2)),
    ((), (4, 2)),          # one image, four shifts: broadcast input
    ((2, 1), (3, 2)),      # image (2, 1, ny, nx) x shifts (3,): (2, 3) batch
]


def _case(rng, img_batch, shift, shape, dtype):
    u = rand(rng, img_batch + shape, dtype)
    if shift is None:
        return u, None
    if shift == "tuple":
        return u, tuple(rng.uniform(-2.0, 2.0, 2))
    return u, rng.uniform(-2.5, 2.5, shift)


def _cuda_plan_vjp(cp, u, s, factor, reduce):
    """Forward and pullback of di.bin's CUDA path, whatever the capability table
    says for CuPy now (as test_binning.py forces the reference path)."""
    p = binning._make_plan(u, s, factor, reduce)
    p.cuda, p.kernel = True, False
    out = binning._forward(p, u)
    return out, lambda g: binning._bin_bwd((p, u, s is not None), g)


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("shape", [(9, 11), (8, 12)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_bin_cuda_path_matches_numpy(shape, reduce, case, dtype):
    cp = _cupy_or_skip()
    _need_module()
    rng = np.random.default_rng(_seed((shape, reduce, str(case))))
    factor = 3
    u, s = _case(rng, case[0], case[1], shape, dtype)
    d_u = cp.asarray(u)
    d_s = cp.asarray(s) if isinstance(s, np.ndarray) else s
    out, pullback = _cuda_plan_vjp(cp, d_u, d_s, factor, reduce)
    want, want_pb = di.vjp(di.bin, u, factor=factor, reduce=reduce) if s is None else \
        di.vjp(di.bin, u, s, factor=factor, reduce=reduce)
    assert isinstance(out, cp.ndarray) and out.dtype == np.dtype(dtype)
    assert out.shape == want.shape and out.device.id == d_u.device.id
    tol = MATCH_TOL[dtype]
    assert _rel_err(cp.asnumpy(out), want) <= tol
    v = rand(rng, want.shape, dtype)
    cts, want_cts = pullback(cp.asarray(v)), want_pb(v)
    assert len(cts) == len(want_cts)
    du = cts[0]
    assert isinstance(du, cp.ndarray) and du.shape == u.shape and du.dtype == u.dtype
    assert _rel_err(cp.asnumpy(du), want_cts[0]) <= tol
    if s is not None:
        ds = cts[1]
        assert isinstance(ds, cp.ndarray) and ds.shape == np.shape(want_cts[1])
        if isinstance(s, np.ndarray):
            assert ds.dtype == np.float64
        size = (factor + 1) * np.abs(v).sum() * np.abs(u).max()
        assert np.max(np.abs(cp.asnumpy(ds) - np.asarray(want_cts[1]))) <= tol * size


@pytest.mark.cuda
@gpu
def test_bin_on_cupy_stays_on_device_and_matches():
    """The public API on CuPy arrays, through whichever path the table routes to."""
    cp = _cupy_or_skip()
    rng = np.random.default_rng(21)
    u = rand(rng, (2, 24, 18), np.complex64)
    s = rng.uniform(-1, 1, (2, 2))
    out, pb = di.vjp(di.bin, cp.asarray(u), cp.asarray(s), factor=2)
    want, want_pb = di.vjp(di.bin, u, s, factor=2)
    assert isinstance(out, cp.ndarray) and out.dtype == cp.complex64
    assert _rel_err(cp.asnumpy(out), want) <= 1e-5
    v = rand(rng, want.shape, np.complex64)
    du, ds = pb(cp.asarray(v))
    wdu, wds = want_pb(v)
    assert isinstance(du, cp.ndarray) and isinstance(ds, cp.ndarray)
    assert _rel_err(cp.asnumpy(du), wdu) <= 1e-5
    assert np.max(np.abs(cp.asnumpy(ds) - wds)) <= 1e-5 * 3 * np.abs(v).sum() * np.abs(u).max()
