"""Array-library dispatch, the vjp / register_vjp API, show_config and threads.

numpy arrays run the compiled kernels; torch (CPU) and array-api-strict arrays run
the array-API reference path.  Results must come back in the input's library with
its precision and agree with numpy's.
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import diffimaging as di
from conftest import _Strict, _Torch  # noqa: F401  (the lib fixture lives in conftest)
from conftest import rand as _rand

WL, PX = 532e-9, 2e-6
TOL = {"complex64": 1e-5, "float32": 1e-5, "complex128": 1e-12, "float64": 1e-12}


# ------------------------------------------------------------------ backends





def _gaussian_field(shape, dtype, seed=0):
    ny, nx = shape[-2:]
    y = (np.arange(ny) - ny / 2)[:, None]
    x = (np.arange(nx) - nx / 2)[None, :]
    base = np.exp(-(y ** 2 + x ** 2) / (2 * 3.0 ** 2))
    rng = np.random.default_rng(seed)
    u = base * (1 + 0.2 * rng.standard_normal(shape))
    if np.dtype(dtype).kind == "c":
        u = u * np.exp(0.5j * rng.standard_normal(shape))
    return u.astype(dtype)


def _check_close(lib, got, want, dtype_name, expected_dtype=None):
    assert lib.is_mine(got), type(got)
    exp = expected_dtype if expected_dtype is not None else dtype_name
    assert got.dtype == lib.dtype(exp), (got.dtype, exp)
    g = lib.back(got)
    assert g.shape == want.shape
    tol = TOL[exp]
    assert_allclose(g, want, rtol=tol, atol=10 * tol * max(np.abs(want).max(), 1e-30))


# ------------------------------------------------------- forward agreement

_REAL_OF = {"complex64": "float32", "complex128": "float64", "float32": "float32",
            "float64": "float64"}
_CPLX_OF = {"complex64": "complex64", "complex128": "complex128", "float32": "complex64",
            "float64": "complex128"}
DT = ["complex64", "complex128", "float32", "float64"]


@pytest.mark.parametrize("dtype", DT)
def test_propagate_matches_numpy(lib, dtype):
    u = _gaussian_field((2, 16, 12), dtype)
    for z in (1e-4, -5e-5):
        want = di.propagate(u, z, wavelength=WL, pixel_size=PX)
        got = di.propagate(lib.to(u), z, wavelength=WL, pixel_size=PX)
        _check_close(lib, got, want, dtype, _CPLX_OF[dtype])
    want = di.propagate(u, 1e-4, wavelength=WL, pixel_size=(PX, 1.5 * PX), method="fresnel",
                        pad=False, carrier=False)
    got = di.propagate(lib.to(u), 1e-4, wavelength=WL, pixel_size=(PX, 1.5 * PX),
                       method="fresnel", pad=False, carrier=False)
    _check_close(lib, got, want, dtype, _CPLX_OF[dtype])


def test_propagate_stack_torch_z_matches_numpy():
    L = _Torch()
    u = _gaussian_field((9, 10), np.complex64)
    z = np.array([1e-5, 5e-5, 1e-4], np.float32)
    want = di.propagate(u, z, wavelength=WL, pixel_size=PX)
    assert want.shape == (3, 9, 10)
    got = di.propagate(L.to(u), L.to(z), wavelength=WL, pixel_size=PX)
    _check_close(L, got, want, "complex64")


@pytest.mark.parametrize("dtype", DT)
def test_bin_matches_numpy(lib, dtype):
    rng = np.random.default_rng(1)
    u = _rand(rng, (2, 11, 9), dtype)
    for s in (None, (0.3, -1.7), (2, 0)):
        for reduce in ("sum", "mean"):
            want = di.bin(u, s, factor=3, reduce=reduce)
            got = di.bin(lib.to(u), s, factor=3, reduce=reduce)
            assert tuple(got.shape) == (2, 3, 3)
            _check_close(lib, got, want, dtype)


@pytest.mark.parametrize("dtype", DT)
def test_bin_torch_shift_array_matches_numpy(dtype):
    L = _Torch()
    rng = np.random.default_rng(2)
    u = _rand(rng, (11, 9), dtype)
    s = rng.uniform(-3, 3, (4, 2))
    want = di.bin(u, s, factor=2)
    got = di.bin(L.to(u), L.to(s), factor=2)
    assert tuple(got.shape) == (4, 5, 4)
    _check_close(L, got, want, dtype)


@pytest.mark.parametrize("dtype", DT)
def test_shift_matches_numpy(lib, dtype):
    rng = np.random.default_rng(3)
    u = _rand(rng, (2, 8, 11), dtype)
    for s in ((0.37, -1.25), (3, -2)):
        want = di.shift(u, s)
        got = di.shift(lib.to(u), s)
        _check_close(lib, got, want, dtype)


def test_shift_torch_shift_array_matches_numpy():
    L = _Torch()
    rng = np.random.default_rng(4)
    u = _rand(rng, (3, 8, 7), np.complex64)
    s = rng.uniform(-2, 2, (2, 1, 2))
    want = di.shift(u, s)
    got = di.shift(L.to(u), L.to(s))
    assert tuple(got.shape) == (2, 3, 8, 7)
    _check_close(L, got, want, "complex64")


@pytest.mark.parametrize("dtype", DT)
def test_intensity_matches_numpy(lib, dtype):
    rng = np.random.default_rng(5)
    u = _rand(rng, (2, 5, 6), dtype)
    want = di.intensity(u)
    got = di.intensity(lib.to(u))
    _check_close(lib, got, want, _REAL_OF[dtype])


# ------------------------------------------------------------- vjp agreement

def _vjp_both(lib, fn, u, params_np, params_lib, static, g):
    out_np, pb_np = di.vjp(fn, u, *params_np, **static)
    out_l, pb_l = di.vjp(fn, lib.to(u), *params_lib, **static)
    cts_np = pb_np(g)
    cts_l = pb_l(lib.to(g))
    assert len(cts_l) == len(cts_np) == 1 + len(params_np)
    return out_np, out_l, cts_np, cts_l


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_vjp_propagate_matches_numpy(lib, dtype):
    rng = np.random.default_rng(6)
    u = _gaussian_field((2, 12, 10), dtype)
    g = _rand(rng, u.shape, dtype)
    out_np, out_l, (du_n, dz_n), (du_l, dz_l) = _vjp_both(
        lib, di.propagate, u, (1e-4,), (1e-4,), dict(wavelength=WL, pixel_size=PX), g)
    _check_close(lib, out_l, out_np, dtype)
    _check_close(lib, du_l, du_n, dtype)
    assert lib.is_mine(dz_l) and tuple(dz_l.shape) == () == np.shape(dz_n)
    assert dz_l.dtype == lib.dtype(_REAL_OF[dtype])
    tol = 1e-4 if dtype == "complex64" else 1e-9
    assert_allclose(float(lib.back(dz_l)), float(dz_n), rtol=tol)


@pytest.mark.parametrize("dtype", DT)
def test_vjp_bin_matches_numpy(lib, dtype):
    rng = np.random.default_rng(7)
    u = _rand(rng, (3, 10, 9), dtype)
    s = (0.41, -1.33)
    g = _rand(rng, (3, 5, 4), dtype)
    out_np, out_l, (du_n, ds_n), (du_l, ds_l) = _vjp_both(lib, di.bin, u, (s,), (s,),
                                                          dict(factor=2), g)
    _check_close(lib, out_l, out_np, dtype)
    _check_close(lib, du_l, du_n, dtype)
    assert lib.is_mine(ds_l) and ds_l.dtype == lib.dtype("float64")
    assert_allclose(lib.back(ds_l), ds_n, rtol=TOL[dtype] * 10, atol=TOL[dtype] * np.abs(ds_n).max())


def test_vjp_bin_torch_shift_tensor():
    L = _Torch()
    rng = np.random.default_rng(8)
    u = _rand(rng, (3, 10, 9), np.float32)
    s = rng.uniform(-2, 2, (3, 2)).astype(np.float32)
    g = _rand(rng, (3, 3, 3), np.float32)
    out_np, out_l, (du_n, ds_n), (du_l, ds_l) = _vjp_both(L, di.bin, u, (s,), (L.to(s),),
                                                          dict(factor=3, reduce="mean"), g)
    _check_close(L, out_l, out_np, "float32")
    _check_close(L, du_l, du_n, "float32")
    assert ds_l.dtype == L.torch.float32 and tuple(ds_l.shape) == (3, 2)
    assert_allclose(L.back(ds_l), ds_n, rtol=1e-4, atol=1e-5 * np.abs(ds_n).max())


@pytest.mark.parametrize("dtype", DT)
def test_vjp_shift_matches_numpy(lib, dtype):
    rng = np.random.default_rng(9)
    u = _rand(rng, (2, 8, 9), dtype)
    s = (0.37, 1.61)
    g = _rand(rng, u.shape, dtype)
    out_np, out_l, (du_n, ds_n), (du_l, ds_l) = _vjp_both(lib, di.shift, u, (s,), (s,), {}, g)
    _check_close(lib, out_l, out_np, dtype)
    _check_close(lib, du_l, du_n, dtype)
    assert lib.is_mine(ds_l) and tuple(ds_l.shape) == (2,)
    assert_allclose(lib.back(ds_l), ds_n, rtol=TOL[dtype] * 10, atol=TOL[dtype] * np.abs(ds_n).max())


def test_vjp_shift_torch_shift_tensor_broadcast():
    L = _Torch()
    rng = np.random.default_rng(10)
    u = _rand(rng, (3, 8, 9), np.complex128)
    s = rng.uniform(-2, 2, (2, 1, 2))
    g = _rand(rng, (2, 3, 8, 9), np.complex128)
    out_np, out_l, (du_n, ds_n), (du_l, ds_l) = _vjp_both(L, di.shift, u, (s,), (L.to(s),), {}, g)
    _check_close(L, du_l, du_n, "complex128")
    assert ds_l.dtype == L.torch.float64 and tuple(ds_l.shape) == (2, 1, 2)
    assert_allclose(L.back(ds_l), ds_n, rtol=1e-10)


@pytest.mark.parametrize("dtype", DT)
def test_vjp_intensity_matches_numpy(lib, dtype):
    rng = np.random.default_rng(11)
    u = _rand(rng, (2, 5, 6), dtype)
    g = rng.standard_normal(u.shape).astype(_REAL_OF[dtype])
    out_np, pb_np = di.vjp(di.intensity, u)
    out_l, pb_l = di.vjp(di.intensity, lib.to(u))
    _check_close(lib, out_l, out_np, _REAL_OF[dtype])
    (du_n,) = pb_np(g)
    (du_l,) = pb_l(lib.to(g))
    _check_close(lib, du_l, du_n, dtype)
    assert_allclose(du_n, 2 * g * u, rtol=TOL[dtype])


# The shift / z parameter given as an array of the *same* non-numpy library
# (array-api-strict: read back to the host through DLPack).


def test_strict_shift_array_in_bin():
    L = _Strict()
    rng = np.random.default_rng(12)
    u = _rand(rng, (8, 8), np.float64)
    s = rng.uniform(-1, 1, (3, 2))
    got = di.bin(L.to(u), L.to(s), factor=2)
    _check_close(L, got, di.bin(u, s, factor=2), "float64")


def test_strict_shift_array_in_shift():
    L = _Strict()
    rng = np.random.default_rng(13)
    u = _rand(rng, (8, 8), np.complex128)
    s = np.array([0.3, -0.6])
    got = di.shift(L.to(u), L.to(s))
    _check_close(L, got, di.shift(u, s), "complex128")


def test_strict_z_array_in_propagate():
    L = _Strict()
    u = _gaussian_field((8, 8), np.complex128)
    z = np.array([1e-5, 2e-5])
    got = di.propagate(L.to(u), L.to(z), wavelength=WL, pixel_size=PX)
    _check_close(L, got, di.propagate(u, z, wavelength=WL, pixel_size=PX), "complex128")


# ------------------------------------------------------------- mixed libraries

def _mixed_cases():
    torch = pytest.importorskip("torch")
    tu = torch.ones((8, 8), dtype=torch.complex64)
    nu = np.ones((8, 8), np.complex64)
    cases = [
        ("field", "z", lambda: di.propagate(tu, np.asarray(1e-3), wavelength=WL, pixel_size=PX)),
        ("field", "z", lambda: di.propagate(tu, np.array([1e-3, 2e-3]), wavelength=WL,
                                            pixel_size=PX)),
        ("field", "z", lambda: di.propagate(nu, torch.asarray([1e-3, 2e-3]), wavelength=WL,
                                            pixel_size=PX)),
        ("image", "shift", lambda: di.bin(tu, np.array([0.5, 0.5]), factor=2)),
        ("image", "shift", lambda: di.bin(nu, torch.asarray([0.5, 0.5]), factor=2)),
        ("field", "shift", lambda: di.shift(tu, np.array([0.5, 0.5]))),
        ("field", "shift", lambda: di.shift(nu, torch.asarray([0.5, 0.5]))),
        ("image", "shift", lambda: di.vjp(di.bin, tu, np.array([0.5, 0.5]), factor=2)),
        ("field", "shift", lambda: di.vjp(di.shift, tu, np.array([0.5, 0.5]))),
    ]
    return cases


def test_mixing_libraries_raises_type_error_naming_arguments():
    cases = _mixed_cases()
    for a, b, call in cases:
        with pytest.raises(TypeError) as info:
            call()
        msg = str(info.value)
        assert a in msg and b in msg, msg


def test_mixing_torch_and_strict_raises():
    torch = pytest.importorskip("torch")
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match="shift"):
        di.shift(xs.ones((4, 4), dtype=xs.complex64), torch.asarray([0.5, 0.5]))


# ------------------------------------------------------------ vjp / register

def test_vjp_of_unregistered_function_raises():
    x = np.ones((4, 4))
    with pytest.raises(TypeError, match="no registered VJP"):
        di.vjp(np.sum, x)

    def my_fn(a):
        return 2 * a

    with pytest.raises(TypeError, match="my_fn"):
        di.vjp(my_fn, x)


def test_vjp_needs_a_primal():
    with pytest.raises(TypeError):
        di.vjp(di.intensity)


def test_register_vjp_rejects_non_callables():
    with pytest.raises(TypeError):
        di.register_vjp(lambda x: x, None, lambda r, g: (g,))
    with pytest.raises(TypeError):
        di.register_vjp("f", lambda x: (x, None), lambda r, g: (g,))


def test_register_vjp_custom_function():
    def scaled_square(x, a, *, offset=0.0):
        return a * x * x + offset

    def fwd(x, a, *, offset=0.0):
        return scaled_square(x, a, offset=offset), (x, a)

    def bwd(res, g):
        x, a = res
        return (2 * a * x * g, np.sum(x * x * g))

    di.register_vjp(scaled_square, fwd, bwd)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((3, 4))
    g = rng.standard_normal((3, 4))
    out, pb = di.vjp(scaled_square, x, 1.5, offset=2.0)
    assert_allclose(out, 1.5 * x * x + 2.0)
    dx, da = pb(g)
    assert_allclose(dx, 3.0 * x * g)
    assert_allclose(da, np.sum(x * x * g))
    # composes with a package pullback: d/du sum(g * 1.5 |u|^2)
    u = _rand(rng, (3, 4), np.complex128)
    v, pb_i = di.vjp(di.intensity, u)
    _, pb_s = di.vjp(scaled_square, np.sqrt(v), 1.5)
    (dr, _) = pb_s(g)
    (du,) = pb_i(dr / (2 * np.sqrt(v)))
    assert_allclose(du, 3.0 * g * u, rtol=1e-12)


def test_register_vjp_wrong_number_of_cotangents():
    def f(x, y):
        return x + y

    di.register_vjp(f, lambda x, y: (x + y, None), lambda r, g: (g,))
    _, pb = di.vjp(f, np.ones(2), np.ones(2))
    with pytest.raises(RuntimeError):
        pb(np.ones(2))


# ---------------------------------------------------------------- config

def test_show_config(capsys):
    di.show_config()
    out = capsys.readouterr().out
    assert di.__version__ in out
    assert "CPU kernels" in out
    assert "FFT" in out
    assert "numpy" in out


# --------------------------------------------------------------- threads

def test_num_threads_one_gives_identical_bin_results():
    rng = np.random.default_rng(15)
    u = _rand(rng, (4, 64, 48), np.complex128)
    s = rng.uniform(-3, 3, (4, 2))
    g = _rand(rng, (4, 16, 12), np.complex128)
    default = di.get_num_threads()

    def run():
        out, pb = di.vjp(di.bin, u, s, factor=4)
        du, ds = pb(g)
        out0, pb0 = di.vjp(di.bin, u, factor=4, reduce="mean")
        (du0,) = pb0(g)
        return out, du, ds, out0, du0

    ref = run()
    results = {}
    for n in (1, 3):  # 3 threads: several chunks whatever the machine's core count
        with di.num_threads(n):
            assert di.get_num_threads() == n
            results[n] = run()
        assert di.get_num_threads() == default
    for n, res in results.items():
        for a, b in zip(res[:2] + res[3:], ref[:2] + ref[3:]):
            assert_array_equal(a, b)
        assert_allclose(res[2], ref[2], rtol=1e-12)  # a reduction: order may differ by thread


def test_num_threads_restored_after_exception():
    default = di.get_num_threads()
    with pytest.raises(RuntimeError):
        with di.num_threads(1):
            raise RuntimeError("boom")
    assert di.get_num_threads() == default


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2", None])
def test_num_threads_rejects_bad_counts(n):
    with pytest.raises(ValueError):
        with di.num_threads(n):
            pass
    with pytest.raises(ValueError):
        di.set_num_threads(n)


def test_set_num_threads_changes_default():
    default = di.get_num_threads()
    assert isinstance(default, int) and default >= 1
    try:
        di.set_num_threads(1)
        assert di.get_num_threads() == 1
        with di.num_threads(3):
            assert di.get_num_threads() == 3
        assert di.get_num_threads() == 1
    finally:
        di.set_num_threads(default)
    assert di.get_num_threads() == default
