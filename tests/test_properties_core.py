"""Property-based tests (hypothesis) of the core public API: propagate and its VJP,
bin, shift, intensity, transfer_function, Model compositions and a tiny solve.

Each property is checked on random shapes (one row, one column, batch axes),
dtypes, memory layouts (transposes, negative strides, slices) and non-finite
values.  It asserts that nothing crashes, that inputs are never modified, that
results never alias an input or an earlier result, that they equal a plain
numpy reference written here (or the array-API reference path of the package),
that strided and contiguous inputs give identical results, and that bad inputs
raise the documented error types only.
"""
import math
import warnings

import numpy as np
import pytest
import scipy.fft as sfft
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffimaging as di

LAM = 532e-9
# deterministic and quick: fixed example order, no example database
FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FAST, max_examples=20)

pytestmark = pytest.mark.filterwarnings("ignore::diffimaging.SamplingWarning")

FLOAT_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
BAD_DTYPES = [np.int8, np.int32, np.int64, np.uint16, np.bool_, np.float16]
LAYOUTS = ["contiguous", "transposed", "reversed", "sliced", "fortran"]


# ------------------------------------------------------------------ strategies and helpers

def _values(rng, shape, dtype):
    """Standard-normal values of ``dtype`` (complex: independent real and imaginary parts)."""
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _layout(rng, shape, dtype, layout):
    """An array of ``shape`` and ``dtype`` with the memory layout named ``layout``
    (a view into a larger or permuted buffer for every layout but "contiguous")."""
    if layout == "contiguous":
        return _values(rng, shape, dtype)
    if layout == "transposed":
        return np.swapaxes(_values(rng, shape[:-2] + (shape[-1], shape[-2]), dtype), -1, -2)
    if layout == "reversed":
        return _values(rng, shape, dtype)[..., ::-1, ::-1]
    if layout == "sliced":
        return _values(rng, shape[:-2] + (2 * shape[-2] + 1, 3 * shape[-1]), dtype)[..., 1::2, ::3]
    return np.asfortranarray(_values(rng, shape, dtype))


@st.composite
def arrays(draw, dtypes=FLOAT_DTYPES, max_side=12, max_batch=2, min_side=1):
    """(array, layout) of a random (..., ny, nx) shape (sides from ``min_side``),
    dtype and layout, values from a seeded generator."""
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=max_batch)))
    ny, nx = draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side))
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(LAYOUTS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _layout(rng, batch + (ny, nx), dtype, layout), layout


def _complex_of(dtype):
    return np.result_type(dtype, np.complex64)


def _rel_err(a, b):
    a, b = np.asarray(a, dtype=np.complex128), np.asarray(b, dtype=np.complex128)
    return float(np.linalg.norm((a - b).ravel()) / max(np.linalg.norm(b.ravel()), 1e-300))


def _tol(dtype):
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


def _same(a, b):
    """Bit-identical arrays (NaN equal to NaN), same dtype and shape."""
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _reference_transfer(shape, z, d, method, carrier, band_limit=False):
    """The transfer function of CONVENTIONS.md on the unshifted FFT grid (complex128),
    without band limiting."""
    assert not band_limit
    fy = sfft.fftfreq(shape[0], d)[:, None]
    fx = sfft.fftfreq(shape[1], d)[None, :]
    f2 = fy ** 2 + fx ** 2
    if method == "fresnel":
        phase = -np.pi * LAM * z * f2 + (2 * np.pi * z / LAM if carrier else 0.0)
        return np.exp(1j * phase)
    arg = 1.0 / LAM ** 2 - f2
    kz = 2 * np.pi * np.sqrt(np.maximum(arg, 0.0))
    phase = z * kz if carrier else z * (kz - 2 * np.pi / LAM)
    return np.where(arg > 0, np.exp(1j * phase), 0.0)


def _reference_propagate(u, z, d, method, pad, carrier):
    """Plain numpy/scipy.fft angular-spectrum (or Fresnel) propagation in complex128,
    without band limiting: zero-pad to the fast lengths >= 2 n, multiply the
    spectrum, crop.  A 1-d ``z`` stacks the planes on a new leading axis."""
    u = np.asarray(u, dtype=np.complex128)
    ny, nx = u.shape[-2:]
    grid = (sfft.next_fast_len(2 * ny), sfft.next_fast_len(2 * nx)) if pad else (ny, nx)
    U = sfft.fft2(u, s=grid)
    zs = np.atleast_1d(z)
    out = np.stack([sfft.ifft2(U * _reference_transfer(grid, zk, d, method, carrier))[..., :ny, :nx]
                    for zk in zs])
    return out if np.ndim(z) == 1 else out[0]


zs = st.one_of(st.floats(-6e-5, 6e-5, allow_nan=False).map(float),
               st.lists(st.floats(-6e-5, 6e-5, allow_nan=False), min_size=1, max_size=3)
               .map(lambda v: np.asarray(v, dtype=np.float64)))
pixel_sizes = st.sampled_from([0.2e-6, 0.5e-6, 1e-6, 2e-6])


# ------------------------------------------------------------------ propagate

@FAST
@given(arrays(), zs, pixel_sizes, st.sampled_from(["asm", "fresnel"]), st.booleans(), st.booleans())
def test_propagate_equals_plain_numpy_and_leaves_inputs_alone(xl, z, d, method, pad, carrier):
    x, layout = xl
    x0, z0 = x.copy(), np.copy(z)
    out = di.propagate(x, z, wavelength=LAM, pixel_size=d, method=method, pad=pad,
                       band_limit=False, carrier=carrier)
    assert _same(x, x0) and np.array_equal(z, z0)
    stack = (len(z),) if np.ndim(z) == 1 else ()
    assert out.shape == stack + x.shape and out.dtype == _complex_of(x.dtype)
    assert not np.shares_memory(out, x)
    ref = _reference_propagate(x, z, d, method, pad, carrier)
    assert _rel_err(out, ref) < _tol(x.dtype), layout
    # the same values in a C-contiguous buffer give the same bits
    again = di.propagate(np.ascontiguousarray(x), z, wavelength=LAM, pixel_size=d, method=method,
                         pad=pad, band_limit=False, carrier=carrier)
    assert _same(again, out), layout


@FAST
@given(arrays(max_side=10), zs, st.booleans())
def test_propagate_results_never_alias_earlier_results(xl, z, pad):
    """Two calls of the same shape give independent arrays (issue 9: one-row fields
    returned a view of a per-thread work buffer)."""
    x, _ = xl
    kw = dict(wavelength=LAM, pixel_size=1e-6, pad=pad)
    a = di.propagate(x, z, **kw)
    a_copy = a.copy()
    b = di.propagate(2 * x + 1, z, **kw)
    assert not np.shares_memory(a, b)
    assert _same(a, a_copy), "a later call changed an earlier result"


@FAST
@given(arrays(dtypes=[np.complex128, np.float64], max_side=9), zs, st.booleans())
def test_propagate_single_precision_close_to_double(xl, z, pad):
    x, _ = xl
    kw = dict(wavelength=LAM, pixel_size=1e-6, pad=pad)
    lo = np.complex64 if x.dtype.kind == "c" else np.float32
    z32 = z if np.ndim(z) == 0 else z.astype(np.float32)
    a = di.propagate(x.astype(lo), z32, **kw)
    b = di.propagate(x, np.asarray(z32, dtype=np.float64) if np.ndim(z) else float(np.float32(z)),
                     **kw)
    assert a.dtype == np.complex64 and b.dtype == np.complex128
    assert _rel_err(a, b) < 2e-5


@FAST
@given(arrays(max_side=10, max_batch=1), zs, st.booleans())
def test_propagate_matches_array_api_reference_path(xl, z, band_limit):
    """The compiled kernels (numpy) against the package's plain array-API
    implementation (array-api-strict), band limiting on or off."""
    xs = pytest.importorskip("array_api_strict")
    x, _ = xl
    kw = dict(wavelength=LAM, pixel_size=0.5e-6, band_limit=band_limit)
    out = di.propagate(x, z, **kw)
    zx = z if np.ndim(z) == 0 else xs.asarray(z)
    ref = np.from_dlpack(di.propagate(xs.asarray(np.ascontiguousarray(x)), zx, **kw))
    assert out.dtype == ref.dtype and out.shape == ref.shape
    assert _rel_err(out, ref) < _tol(x.dtype)


@FAST
@given(arrays(max_side=8), st.integers(0, 2**31), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_propagate_non_finite_input_is_never_silently_finite(xl, seed, bad):
    x, _ = xl
    x = np.array(x)   # writable copy to poison
    rng = np.random.default_rng(seed)
    idx = tuple(int(rng.integers(0, s)) for s in x.shape)
    x[idx] = bad
    x0 = x.copy()
    out = di.propagate(x, 2e-5, wavelength=LAM, pixel_size=1e-6)
    assert _same(x, x0)
    assert not np.all(np.isfinite(out))


@FAST
@given(st.sampled_from(BAD_DTYPES), st.integers(1, 6), st.integers(1, 6))
def test_propagate_refuses_non_float_fields_with_type_error(dtype, ny, nx):
    with pytest.raises(TypeError, match="field"):
        di.propagate(np.ones((ny, nx), dtype=dtype), 1e-5, wavelength=LAM, pixel_size=1e-6)


@FAST
@given(st.one_of(st.just([1e-5]), st.just("1e-5"), st.just(None), st.just(True),
                 st.just(np.ones((2, 2))), st.just(np.array([], dtype=np.float64)),
                 st.just(np.array([1, 2])), st.just(float("nan")), st.just(float("inf"))),
       st.one_of(st.just(-1e-6), st.just(0.0), st.just(float("nan")), st.just("1e-6"),
                 st.just((1e-6, 2e-6, 3e-6)), st.just(1e-6)))
def test_propagate_bad_arguments_raise_documented_errors(z, d):
    x = np.ones((4, 5), np.complex64)
    try:
        di.propagate(x, z, wavelength=LAM, pixel_size=d)
    except (ValueError, TypeError):
        pass
    else:
        assert isinstance(z, float) and np.isfinite(z) and d == 1e-6


# ------------------------------------------------------------------ vjp of propagate

@FAST
@given(arrays(max_side=9), zs, st.booleans(), st.integers(0, 2**31))
def test_propagate_pullback_is_the_adjoint_and_pure(xl, z, pad, seed):
    x, _ = xl
    kw = dict(wavelength=LAM, pixel_size=1e-6, pad=pad)
    z_arg = z if np.ndim(z) == 0 else np.array(z)
    x0 = x.copy()
    out, pull = di.vjp(di.propagate, x, z_arg, **kw)
    assert _same(out, di.propagate(x, z_arg, **kw))
    g = _values(np.random.default_rng(seed), out.shape, out.dtype)
    g0 = g.copy()
    out0 = out.copy()
    du, dz = pull(g)
    assert _same(g, g0) and _same(x, x0) and _same(out, out0)
    assert du.shape == x.shape and du.dtype == x.dtype
    assert np.shape(dz) == np.shape(z) and np.asarray(dz).dtype.kind == "f"
    assert not np.shares_memory(du, g) and not np.shares_memory(du, x)
    du2, _ = pull(g)
    assert _same(du2, du) and not np.shares_memory(du2, du)
    # <A x, g> = <x, A^H g> (real part for a real input, whose cotangent is real)
    lhs, rhs = np.vdot(out.astype(np.complex128), g), np.vdot(x.astype(np.complex128), du)
    if x.dtype.kind == "f":
        lhs, rhs = lhs.real, rhs.real
    scale = np.linalg.norm(out.ravel()) * np.linalg.norm(g.ravel()) + 1e-300
    assert abs(lhs - rhs) <= 10 * _tol(x.dtype) * scale


@FEW
@given(st.sampled_from([[1.0], (1.0,), 3, None, "g"]))
def test_propagate_pullback_bad_cotangent_raises_documented_errors(g):
    _, pull = di.vjp(di.propagate, np.ones((4, 4), np.complex64), 1e-5, wavelength=LAM,
                     pixel_size=1e-6)
    with pytest.raises((TypeError, ValueError)):
        pull(g)


# ------------------------------------------------------------------ bin

def _reference_bin(x, f, shift, reduce):
    """Exact-area binning of the piecewise-constant image by plain numpy, for shifts
    that are multiples of 1/4 pixel: each pixel becomes 4 x 4 sub-pixels holding a
    sixteenth of its value, the sub-grid is shifted by whole sub-pixels (zeros
    outside) and reshaped-summed."""
    q = 4
    up = np.repeat(np.repeat(np.asarray(x, dtype=np.complex128), q, axis=-2), q, axis=-1) / q ** 2
    ny, nx = x.shape[-2:]
    my, mx = ny // f, nx // f
    sy, sx = (int(round(s * q)) for s in shift)
    pad = q * f + abs(sy) + abs(sx) + 1
    big = np.pad(up, [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)])
    win = big[..., pad + sy: pad + sy + my * f * q, pad + sx: pad + sx + mx * f * q]
    out = win.reshape(x.shape[:-2] + (my, f * q, mx, f * q)).sum(axis=(-3, -1))
    return out / f ** 2 if reduce == "mean" else out


@FAST
@given(st.integers(1, 4).flatmap(lambda f: st.tuples(st.just(f), arrays(min_side=f, max_side=13))),
       st.one_of(st.none(), st.tuples(st.integers(-8, 8), st.integers(-8, 8))
                 .map(lambda t: (t[0] / 4, t[1] / 4))),
       st.sampled_from(["sum", "mean"]), st.sampled_from([int, np.int64, np.int32]))
def test_bin_equals_exact_area_reference(fx, shift, reduce, int_type):
    f, (x, layout) = fx
    x0 = x.copy()
    out = di.bin(x, shift, factor=int_type(f), reduce=reduce)
    assert _same(x, x0)
    assert out.dtype == x.dtype and out.shape == x.shape[:-2] + (x.shape[-2] // f, x.shape[-1] // f)
    assert not np.shares_memory(out, x)
    ref = _reference_bin(x, f, shift or (0.0, 0.0), reduce)
    err = np.max(np.abs(out - ref)) / max(np.max(np.abs(ref)), 1.0)
    assert err < _tol(x.dtype), layout
    assert _same(di.bin(np.ascontiguousarray(x), shift, factor=f, reduce=reduce), out)


@FAST
@given(st.one_of(st.just(0), st.just(-1), st.just(2.0), st.just(True), st.just("2"), st.just(None),
                 st.just(np.float64(2))),
       st.sampled_from(["sum", "mean", "max", None]))
def test_bin_bad_factor_or_reduce_raises_documented_errors(f, reduce):
    with pytest.raises((TypeError, ValueError)):
        di.bin(np.ones((6, 6)), factor=f, reduce=reduce)


# ------------------------------------------------------------------ shift and intensity

@FAST
@given(arrays(max_side=9), st.integers(-20, 20), st.integers(-20, 20))
def test_shift_by_whole_pixels_is_a_periodic_roll(xl, sy, sx):
    x, layout = xl
    x0 = x.copy()
    out = di.shift(x, (sy, sx))
    assert _same(x, x0) and not np.shares_memory(out, x)
    assert out.shape == x.shape and out.dtype == x.dtype
    ref = np.roll(x, (sy, sx), axis=(-2, -1))
    err = np.max(np.abs(out - ref)) / max(np.max(np.abs(ref)), 1.0)
    assert err < _tol(x.dtype), layout
    assert _same(di.shift(np.ascontiguousarray(x), (sy, sx)), out)


@FAST
@given(arrays(dtypes=[np.complex128, np.float64], max_side=9, max_batch=0),
       st.floats(-3, 3), st.floats(-3, 3), st.integers(1, 2**52), st.integers(-2**52, 2**52))
def test_shift_is_periodic_for_huge_shifts(xl, sy, sx, m, n):
    """shift by s equals shift by s mod N, also where s is huge (issue 9: not reduced
    modulo N, error 1.6 at 2^52).  The shifts are the float64 values actually
    passed, and their remainders modulo N are exact."""
    x, _ = xl
    ny, nx = x.shape
    far = (sy + float(m * ny), sx + float(n * nx))
    near = (math.fmod(far[0], ny), math.fmod(far[1], nx))
    a, b = di.shift(x, far), di.shift(x, near)
    assert np.max(np.abs(a - b)) <= 1e-9 * max(np.max(np.abs(b)), 1.0)


@FAST
@given(arrays())
def test_intensity_is_abs_squared(xl):
    x, _ = xl
    x0 = x.copy()
    out = di.intensity(x)
    assert _same(x, x0) and not np.shares_memory(out, x)
    assert out.dtype == np.finfo(x.dtype).dtype and out.shape == x.shape
    ref = np.abs(x.astype(np.complex128)) ** 2
    assert np.allclose(out, ref, rtol=_tol(x.dtype), atol=0)


# ------------------------------------------------------------------ transfer_function

@FAST
@given(st.integers(1, 24), st.integers(1, 24), st.floats(-1e-4, 1e-4), pixel_sizes,
       st.sampled_from(["asm", "fresnel"]), st.booleans(), st.sampled_from([None, np.complex64]))
def test_transfer_function_equals_the_conventions_formula(ny, nx, z, d, method, carrier, dtype):
    H = di.transfer_function((ny, nx), z, wavelength=LAM, pixel_size=d, method=method,
                             band_limit=False, carrier=carrier, dtype=dtype)
    assert H.shape == (ny, nx) and H.dtype == (dtype or np.complex128)
    ref = _reference_transfer((ny, nx), z, d, method, carrier)
    # phases are k z ~ 1e3 rad: the single-precision result is the rounded double one
    tol = 1e-6 if dtype is not None else 1e-9
    assert np.max(np.abs(H - ref)) < tol


@FAST
@given(st.integers(1, 16), st.integers(1, 16), st.floats(0, 1e-4))
def test_transfer_function_has_no_gain(ny, nx, z):
    """|H| <= 1 (unit modulus where propagating, zero where evanescent or band-limited)."""
    H = di.transfer_function((ny, nx), z, wavelength=LAM, pixel_size=0.2e-6)
    assert np.all(np.abs(H) <= 1 + 1e-12)


# ------------------------------------------------------------------ Model compositions

@FAST
@given(arrays(max_side=10, max_batch=1, min_side=2), st.floats(-5e-5, 5e-5), st.integers(1, 2),
       st.booleans())
def test_model_compositions_equal_the_functions(xl, z, f, carrier):
    x, _ = xl
    x0 = x.copy()
    kw = dict(wavelength=LAM, pixel_size=1e-6, carrier=carrier)
    m1 = di.Model(di.Propagate(z, LAM, 1e-6, carrier=carrier))
    m2 = di.Model(di.Propagate(z, LAM, 1e-6, carrier=carrier), di.Intensity(), di.Bin(f))
    a = m1(x)
    b = m2(x)
    assert _same(x, x0)
    assert _same(a, di.propagate(x, z, **kw))
    ref = di.bin(di.intensity(di.propagate(x, z, **kw)), factor=f)
    assert np.allclose(b, ref, rtol=_tol(x.dtype), atol=0)
    a2 = m1(x)
    assert not np.shares_memory(a, a2) and not np.shares_memory(a, x)
    y, pull = di.vjp(m2, x)
    assert _same(y, b)
    g = np.ones_like(y)
    gx, gp = pull(g)
    assert gx.shape == x.shape and gx.dtype == x.dtype
    assert set(gp) == set(m2.params) and np.all(np.isfinite(gx))
    assert _same(x, x0) and np.all(g == 1)


# ------------------------------------------------------------------ solve (tiny)

@FEW
@given(st.sampled_from(["adam", "gd", "fista", "lbfgs"]), st.integers(4, 8), st.integers(4, 8),
       st.sampled_from([np.float32, np.float64]), st.integers(1, 4), st.integers(0, 2**31))
def test_tiny_solve_is_pure_and_never_crashes(method, ny, nx, dtype, iterations, seed):
    rng = np.random.default_rng(seed)
    model = di.Model(di.Propagate(2e-5, LAM, 1e-6), di.Intensity())
    truth = (1 + 0.1 * rng.standard_normal((ny, nx))).astype(dtype)
    y = np.asarray(model(truth)).astype(dtype)
    x0 = np.ones((ny, nx), dtype)
    y0, start = y.copy(), x0.copy()
    r = di.solve(model, y, x0, method=method, iterations=iterations, progress=False)
    assert _same(y, y0) and _same(x0, start)
    assert r.x.shape == x0.shape and r.x.dtype == x0.dtype
    assert not np.shares_memory(r.x, x0) and not np.shares_memory(r.x, y)
    assert np.all(np.isfinite(r.x))


@FEW
@given(st.sampled_from(["adam", "gd", "fista", "lbfgs"]), st.sampled_from([np.nan, np.inf]))
def test_solve_with_non_finite_data_raises_a_documented_error(method, bad):
    model = di.Model(di.Propagate(2e-5, LAM, 1e-6), di.Intensity())
    y = np.ones((6, 6))
    y[2, 3] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises((ValueError, di.SolverError)):
            di.solve(model, y, np.ones((6, 6)), method=method, iterations=3, progress=False)
