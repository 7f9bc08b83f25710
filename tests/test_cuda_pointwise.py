"""CUDA point-wise kernels: |u|^2, the Fourier-shift phase-ramp multiply and the
min/max depth projection (csrc/ops/pointwise/pointwise_cuda.cu,
csrc/systems/holography/minmax_cuda.cu), their bindings, the launchers in
diffimaging._backend.cuda_pointwise and the CuPy paths of diffimaging.shift /
diffimaging.intensity.

GPU tests (marked ``cuda``) hold the kernels equal to the CPU kernels and numpy
references; the others check argument validation, which needs no GPU.
"""
import importlib

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import diffimaging as di
from diffimaging._backend import kernels as K

from conftest import DOT_TOL, crandn, gpu_available

S = importlib.import_module("diffimaging.ops.shift")

_NAMES = ("intensity", "fourier_shift_apply", "minmax_project")


def _module_or_skip():
    if not K.have_cuda_module():
        pytest.skip("CUDA module not built (no CUDA compiler at build time)")
    if not all(hasattr(K._cuda, n) for n in _NAMES):
        pytest.skip("the CUDA module was built before the point-wise kernels (rebuild it)")
    return K._cuda


def _cupy_or_skip():
    return pytest.importorskip("cupy")


gpu = pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU visible")
TOL = {np.complex64: 1e-5, np.complex128: 1e-12}
SHAPES = [(2, 9, 11), (3, 8, 12), (1, 16, 7)]   # odd, even, non-square, with batch axes
IDS = ["9x11", "8x12", "16x7"]


@pytest.fixture
def cuda_route(monkeypatch):
    """diffimaging.shift / intensity take their "cuda" path for CuPy arrays, whatever
    the capability table says; returns a dict counting the kernel launches."""
    _module_or_skip()
    from diffimaging._backend import cuda_pointwise as CP
    from diffimaging._backend.namespace import is_cupy_namespace

    real_route = S.route
    calls = {"intensity": 0, "fourier_shift_apply": 0}

    def route(op, xp):
        if op in ("shift", "intensity") and is_cupy_namespace(xp):
            return "cuda"
        return real_route(op, xp)

    def counted(name):
        fn = getattr(CP, name)

        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(S, "route", route)
    for name in calls:
        monkeypatch.setattr(CP, name, counted(name))
    return calls


def _ramp_reference(U, s, dy, dx, conjugate=False):
    """U * exp(-2 pi i (fy sy + fx sx)) in complex128 (s: (batch or 1, 2))."""
    ny, nx = U.shape[-2:]
    fy = np.fft.fftfreq(ny, dy)[:, None]
    fx = np.fft.fftfreq(nx, dx)[None, :]
    s = s.reshape(-1, 2)
    ph = -2 * np.pi * (fy * s[:, 0, None, None] + fx * s[:, 1, None, None])
    R = np.exp(1j * ph)
    return U.astype(np.complex128).reshape((-1, ny, nx)) * (np.conj(R) if conjugate else R)


# ------------------------------------------------------------------ without a GPU

def test_bindings_validate_arguments():
    m = _module_or_skip()
    with pytest.raises(ValueError, match="dtype must be 'complex64' or 'complex128'"):
        m.intensity(0, 0, "float32", 4, 0)
    with pytest.raises(ValueError, match="n must be >= 0"):
        m.intensity(0, 0, "complex64", -1, 0)
    with pytest.raises(ValueError, match="u is a null device pointer"):
        m.intensity(0, 0, "complex64", 4, 0)
    m.intensity(0, 0, "complex128", 0, 0)                # nothing to do: no launch
    args = dict(src=0, dst=0, dtype="complex64", batch=1, ny=4, nx=4, dy=1.0, dx=1.0, shifts=0,
                shift_stride=0, conjugate=False, stream=0)
    with pytest.raises(ValueError, match="spacings dy, dx must be finite and > 0"):
        m.fourier_shift_apply(**{**args, "dx": 0.0})
    with pytest.raises(ValueError, match="spacings"):
        m.fourier_shift_apply(**{**args, "dy": float("nan")})
    with pytest.raises(ValueError, match="shift_stride must be 0"):
        m.fourier_shift_apply(**{**args, "shift_stride": 1})
    with pytest.raises(ValueError, match="ny must be >= 0"):
        m.fourier_shift_apply(**{**args, "ny": -2})
    with pytest.raises(ValueError, match="src is a null device pointer"):
        m.fourier_shift_apply(**args)
    with pytest.raises(ValueError, match="dtype must be"):
        m.fourier_shift_apply(**{**args, "dtype": "complex32"})
    m.fourier_shift_apply(**{**args, "batch": 0})      # empty: no launch
    margs = dict(planes=0, dtype="complex128", k=2, ny=3, nx=3, plane_stride=9, row_stride=3,
                 offset=0.0, z=0, vmin=0, zmin=0, vmax=0, zmax=0, stream=0)
    with pytest.raises(ValueError, match="row_stride must be >= 0"):
        m.minmax_project(**{**margs, "row_stride": -3})
    with pytest.raises(ValueError, match="planes is a null device pointer"):
        m.minmax_project(**margs)
    with pytest.raises(ValueError, match="dtype must be"):
        m.minmax_project(**{**margs, "dtype": "float64"})
    m.minmax_project(**{**margs, "k": 0})               # no planes: the maps stay as they are


def test_launchers_reject_host_arrays():
    _cupy_or_skip()
    from diffimaging._backend import cuda_pointwise as CP

    u = np.ones((4, 4), np.complex64)
    with pytest.raises(TypeError, match="u: the CUDA kernels take CuPy arrays, got ndarray"):
        CP.intensity(u)
    with pytest.raises(TypeError, match="src: the CUDA kernels take CuPy arrays"):
        CP.fourier_shift_apply(u, np.zeros(2))
    with pytest.raises(TypeError, match="planes: the CUDA kernels take CuPy arrays"):
        CP.minmax_project(u[None], 0.0, [0.0], {})


# ------------------------------------------------------------------ on a GPU

@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_intensity_matches_cpu(rng, dtype):
    cp = _cupy_or_skip()
    _module_or_skip()
    from diffimaging._backend import cuda_pointwise as CP

    u = crandn(rng, (3, 17, 23), dtype)
    d = CP.intensity(cp.asarray(u))
    assert isinstance(d, cp.ndarray) and d.dtype == np.real(u).dtype and d.shape == u.shape
    ref = K.intensity(u)
    assert_allclose(cp.asnumpy(d), ref, rtol=TOL[dtype], atol=0)
    out = cp.full(u.shape, -1.0, dtype=d.dtype)
    assert CP.intensity(cp.asarray(u), out=out) is out
    assert_allclose(cp.asnumpy(out), ref, rtol=TOL[dtype], atol=0)
    with pytest.raises(TypeError, match="out: dtype"):
        CP.intensity(cp.asarray(u), out=cp.empty(u.shape, dtype=cp.complex128))
    with pytest.raises(ValueError, match="C-contiguous"):
        CP.intensity(cp.asarray(u)[..., ::2])


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_intensity_cupy_path(rng, dtype, cuda_route):
    cp = _cupy_or_skip()
    u = crandn(rng, (2, 9, 11), dtype)
    d = di.intensity(cp.asarray(u))
    assert cuda_route["intensity"] == 1
    assert isinstance(d, cp.ndarray) and d.dtype == np.real(u).dtype
    assert_allclose(cp.asnumpy(d), np.abs(u.astype(np.complex128)) ** 2, rtol=TOL[dtype])
    # a strided view goes through a contiguous copy, like the CPU path
    v = di.intensity(cp.asarray(u)[:, ::2, 1:])
    assert_allclose(cp.asnumpy(v), np.abs(u[:, ::2, 1:].astype(np.complex128)) ** 2,
                    rtol=TOL[dtype])


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.parametrize("per_plane", [True, False])
@pytest.mark.parametrize("conjugate", [False, True])
def test_fourier_shift_apply_matches_reference(rng, dtype, shape, per_plane, conjugate):
    cp = _cupy_or_skip()
    _module_or_skip()
    from diffimaging._backend import cuda_pointwise as CP

    dy, dx = 2e-6, 3.5e-6
    U = crandn(rng, (2,) + shape, dtype)                # batch axes (2, b)
    nb = 2 * shape[0]
    s = rng.uniform(-40e-6, 40e-6, (2, shape[0], 2) if per_plane else (2,))
    ref = _ramp_reference(U, s, dy, dx, conjugate).reshape(U.shape)
    d = CP.fourier_shift_apply(cp.asarray(U), cp.asarray(s), spacing=(dy, dx),
                               conjugate=conjugate)
    assert d.dtype == U.dtype and d.shape == U.shape
    tol = TOL[dtype]
    assert_allclose(cp.asnumpy(d), ref, rtol=0, atol=tol * np.abs(ref).max())
    # in place gives the same values
    dU = cp.asarray(U)
    assert CP.fourier_shift_apply(dU, cp.asarray(s), out=dU, spacing=(dy, dx),
                                  conjugate=conjugate) is dU
    assert_array_equal(cp.asnumpy(dU), cp.asnumpy(d))
    assert nb == int(np.prod(U.shape[:-2]))
    with pytest.raises(ValueError, match="one per plane"):
        CP.fourier_shift_apply(cp.asarray(U), cp.zeros((3, 2)), spacing=(dy, dx))
    with pytest.raises(TypeError, match="shifts: dtype"):
        CP.fourier_shift_apply(cp.asarray(U), cp.zeros(2, dtype=cp.float32))


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_fourier_shift_apply_adjoint_dot(rng, dtype):
    cp = _cupy_or_skip()
    _module_or_skip()
    from diffimaging._backend import cuda_pointwise as CP

    for shape in [(3, 9, 11), (2, 8, 12), (16, 7)]:
        u, v = crandn(rng, shape, dtype), crandn(rng, shape, dtype)
        s = cp.asarray(rng.uniform(-3, 3, (int(np.prod(shape[:-2])), 2)))
        Au = cp.asnumpy(CP.fourier_shift_apply(cp.asarray(u), s)).astype(np.complex128)
        AHv = cp.asnumpy(CP.fourier_shift_apply(cp.asarray(v), s, conjugate=True))
        lhs = np.vdot(v.astype(np.complex128), Au)
        rhs = np.vdot(AHv.astype(np.complex128), u.astype(np.complex128))
        assert abs(lhs - rhs) <= DOT_TOL[dtype] * np.linalg.norm(Au) * np.linalg.norm(v)


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9, 11), (8, 12), (16, 7)], ids=["9x11", "8x12", "16x7"])
def test_shift_cuda_path_matches_numpy(rng, dtype, shape, cuda_route):
    cp = _cupy_or_skip()
    u = (crandn(rng, (3,) + shape, np.complex128) if np.dtype(dtype).kind == "c"
         else rng.standard_normal((3,) + shape)).astype(dtype)
    s = rng.uniform(-3, 3, (2, 1, 2))               # broadcasts against the field batch (3,)
    want, pb = di.vjp(di.shift, u, s)
    got, pbd = di.vjp(di.shift, cp.asarray(u), cp.asarray(s))
    assert cuda_route["fourier_shift_apply"] == 1
    assert isinstance(got, cp.ndarray) and got.dtype == want.dtype and got.shape == want.shape
    tol = DOT_TOL[dtype]
    assert_allclose(cp.asnumpy(got), want, rtol=0, atol=10 * tol * np.abs(want).max())
    g = (crandn(rng, want.shape, np.complex128) if np.dtype(dtype).kind == "c"
         else rng.standard_normal(want.shape)).astype(dtype)
    du, ds = pb(g)
    ddu, dds = pbd(cp.asarray(g))
    assert cuda_route["fourier_shift_apply"] == 3      # the forward, W and the adjoint
    assert ddu.shape == du.shape and ddu.dtype == du.dtype and dds.shape == ds.shape
    assert_allclose(cp.asnumpy(ddu), du, rtol=0, atol=10 * tol * np.abs(du).max())
    assert_allclose(cp.asnumpy(dds), ds, rtol=0, atol=100 * tol * np.abs(ds).max())
    # one field, several shifts: the spectrum is broadcast to the output batch
    out = di.shift(cp.asarray(u[:1]), cp.asarray(s[:, 0]))
    assert_allclose(cp.asnumpy(out), di.shift(u[:1], s[:, 0]), rtol=0,
                    atol=10 * tol * np.abs(u).max())


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_shift_cuda_path_adjoint_dot(rng, dtype, cuda_route):
    cp = _cupy_or_skip()
    for shape in [(2, 9, 11), (3, 8, 12), (16, 7)]:
        u = cp.asarray(crandn(rng, shape, dtype))
        s = cp.asarray(rng.uniform(-3, 3, shape[:-2] + (2,)))
        out, pb = di.vjp(di.shift, u, s)
        v = cp.asarray(crandn(rng, tuple(out.shape), dtype))
        du = pb(v)[0]
        o, vv, d, uu = (cp.asnumpy(a).astype(np.complex128) for a in (out, v, du, u))
        lhs, rhs = np.vdot(vv, o), np.vdot(d, uu)
        assert abs(lhs - rhs) <= DOT_TOL[dtype] * np.linalg.norm(o) * np.linalg.norm(vv)
    assert cuda_route["fourier_shift_apply"] >= 6


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_shift_gaussian_subpixel_analytic(dtype, cuda_route):
    cp = _cupy_or_skip()
    n, c, sigma = 64, 31.0, 4.0                       # periodic wrap and aliasing ~1e-14
    sy, sx = 0.37, -1.625
    y = np.arange(n)[:, None]
    x = np.arange(n)[None, :]

    def gauss(cy, cx):
        return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))

    u = gauss(c, c).astype(dtype)
    got = cp.asnumpy(di.shift(cp.asarray(u), (sy, sx)))
    assert cuda_route["fourier_shift_apply"] == 1
    want = gauss(c + sy, c + sx)
    tol = 1e-10 if dtype == np.complex128 else 2e-6
    assert_allclose(got, want, rtol=0, atol=tol)


def _maps(cp, shape, rdt):
    return {"min": cp.full(shape, np.inf, dtype=rdt), "argmin_z": cp.zeros(shape, dtype=rdt),
            "max": cp.full(shape, -np.inf, dtype=rdt), "argmax_z": cp.zeros(shape, dtype=rdt)}


@pytest.mark.cuda
@gpu
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_minmax_matches_cpu_strided_and_ties(rng, dtype, offset):
    cp = _cupy_or_skip()
    _module_or_skip()
    from diffimaging._backend import cuda_pointwise as CP

    big = crandn(rng, (8, 21, 19), dtype)
    big[4] = big[2]                                    # a tie: planes 1 and 2 of the view
    big[6, :, :5] = big[0, :, :5]                      # partial tie with the first plane
    rdt = np.real(big).dtype
    zs = rng.uniform(1e-3, 5e-3, 8)
    dbig = cp.asarray(big)
    for sl in [np.s_[::2, 1:18, 2:15], np.s_[:, :, :], np.s_[1:2, 3:4, :]]:
        planes, dplanes = big[sl], dbig[sl]
        k, ny, nx = planes.shape
        z = zs[:k]
        ref = {key: np.asarray(cp.asnumpy(a)) for key, a in _maps(cp, (ny, nx), rdt).items()}
        got = _maps(cp, (ny, nx), rdt)
        # two chunks in a row: the running maps carry over
        h = max(k // 2, 1)
        for a, b in [(0, h), (h, k)]:
            K.minmax_project(planes[a:b], offset, z[a:b], ref)
            CP.minmax_project(dplanes[a:b], offset, cp.asarray(z[a:b]), got)
        for key in ref:
            assert_array_equal(cp.asnumpy(got[key]), ref[key], err_msg=key)
    # host depths are accepted too; identical planes: the first one wins
    same = cp.asarray(np.stack([big[0]] * 3))
    m = _maps(cp, big.shape[1:], rdt)
    CP.minmax_project(same, offset, [1.0, 2.0, 3.0], m)
    assert bool(cp.all(m["argmin_z"] == 1)) and bool(cp.all(m["argmax_z"] == 1))
    with pytest.raises(ValueError, match="one depth per plane"):
        CP.minmax_project(same, offset, [1.0, 2.0], m)
    with pytest.raises(ValueError, match="rows must be contiguous"):
        CP.minmax_project(dbig[:, :, ::2], offset, zs, _maps(cp, (21, 10), rdt))
    with pytest.raises(TypeError, match=r"proj\['max'\]: dtype"):
        bad = _maps(cp, big.shape[1:], np.complex128)
        CP.minmax_project(same, offset, [1.0, 2.0, 3.0], {**m, "max": bad["max"]})
