"""Reliability of the core API (issue 9): no result aliases an internal buffer,
periodic shifts are exact for any size, integer-like arguments, string options
and cotangents of any reasonable type, and the CPU kernels fail with Python
errors (never an abort) when threads or memory run out."""
import os
import subprocess
import sys
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import diffimaging as di
from diffimaging._backend import kernels as K
from diffimaging.optim.run import check_count

from conftest import crandn

PYTHON_DIR = str(Path(di.__file__).resolve().parents[1])
needs_core = pytest.mark.skipif(not K.have_cpu(), reason="C++ kernels not built")
OPTICS = dict(wavelength=532e-9, pixel_size=2e-6)


# ------------------------------------------------- results never alias a buffer

# one row, one column, batch axes of one, and ordinary shapes
ALIAS_SHAPES = [(1, 8), (1, 1), (1, 1, 8), (1, 1, 1, 5), (8, 1), (1, 8, 1), (2, 1, 7), (1, 3, 8),
                (3, 5), (2, 4, 6)]


def _calls(shape, dtype):
    """(name, f) pairs: f(x) is one public result for the input x of ``shape``."""
    grid = shape[-2:]
    f = 1  # binning factor that fits every shape (and 2 where it does)
    f2 = 2 if min(grid) >= 2 else 1
    model = di.Model(di.Propagate(1e-4, **OPTICS), di.Intensity())

    def prop_vjp(x, pad):
        _, pb = di.vjp(di.propagate, x, 1e-4, pad=pad, **OPTICS)
        return pb(x)[0]

    def bin_vjp(x):
        y, pb = di.vjp(di.bin, x, np.array([0.25, -0.5]), factor=f2)
        return pb(y)[0]

    def shift_vjp(x):
        y, pb = di.vjp(di.shift, x, np.array([0.3, -1.2]))
        return pb(y)[0]

    def model_vjp(x):
        y, pb = di.vjp(model, x)
        return pb(y)[0]

    return [
        ("propagate", lambda x: di.propagate(x, 1e-4, **OPTICS)),
        ("propagate pad=False", lambda x: di.propagate(x, 1e-4, pad=False, **OPTICS)),
        ("propagate stack", lambda x: di.propagate(x, np.array([1e-4, 2e-4]), **OPTICS)),
        ("propagate real", lambda x: di.propagate(np.ascontiguousarray(x.real), 1e-4, **OPTICS)),
        ("vjp(propagate) out", lambda x: di.vjp(di.propagate, x, 1e-4, **OPTICS)[0]),
        ("vjp(propagate) du", lambda x: prop_vjp(x, True)),
        ("vjp(propagate) du pad=False", lambda x: prop_vjp(x, False)),
        ("bin", lambda x: di.bin(x, factor=f)),
        ("bin shifted", lambda x: di.bin(x, (0.25, 0.5), factor=f2)),
        ("vjp(bin) du", bin_vjp),
        ("shift", lambda x: di.shift(x, (0.5, -1.25))),
        ("vjp(shift) du", shift_vjp),
        ("intensity", lambda x: di.intensity(x)),
        ("intensity real", lambda x: di.intensity(np.ascontiguousarray(x.real))),
        ("transfer_function", lambda x: di.transfer_function(grid, 1e-4, dtype=x.dtype, **OPTICS)),
        ("Model(Propagate, Intensity)", lambda x: model(x)),
        ("vjp(Model) gx", model_vjp),
    ]


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("shape", ALIAS_SHAPES)
def test_no_result_aliases_an_internal_buffer(shape, dtype):
    # a one-row field used to come back as a view of propagate's per-thread work
    # buffer: the next call of the same shape overwrote it
    rng = np.random.default_rng(7)
    x1, x2 = crandn(rng, shape, dtype), crandn(rng, shape, dtype)
    for name, fn in _calls(shape, dtype):
        a = fn(x1)
        kept = np.array(a, copy=True)
        b = fn(x2)
        assert not np.shares_memory(a, b), (name, shape)
        assert not np.shares_memory(a, x1) and not np.shares_memory(b, x2), (name, shape)
        assert_array_equal(a, kept, err_msg=f"{name} {shape}: a second call changed the first result")


# ------------------------------------------------------------- huge shifts

SHIFT_BACKENDS = ["numpy"] + [n for n in ("torch", "array_api_strict")
                              if __import__("importlib").util.find_spec(n) is not None]


@pytest.mark.parametrize("name", SHIFT_BACKENDS)
@pytest.mark.parametrize("big", [2.0 ** 52, -(2.0 ** 52) + 6, 2.0 ** 60, 3 * 2.0 ** 40 + 1, 1e300])
def test_shift_by_a_huge_integer_is_reduced_modulo_the_period(name, big):
    from diffimaging.testing import backend

    be = backend(name)
    rng = np.random.default_rng(3)
    u = rng.standard_normal((6, 10)) + 1j * rng.standard_normal((6, 10))
    g = rng.standard_normal((6, 10)) + 1j * rng.standard_normal((6, 10))
    ky, kx = int(Fraction(big) % 6), int(Fraction(big) % 10)  # exact remainders
    sx = big + 0.375  # a sub-pixel part on top of the huge x shift, where one is representable
    big_s = be.asarray(np.array([big, sx]))
    small_s = be.asarray(np.array([float(ky), float(Fraction(sx) % 10)]))
    # forward: an integer shift equals roll
    v = be.to_numpy(di.shift(be.asarray(u), (big, big)))
    assert_allclose(v, np.roll(u, (ky, kx), axis=(0, 1)), atol=1e-12)
    # forward, vjp and the shift gradient equal those of the reduced shift
    y_big, pb_big = di.vjp(di.shift, be.asarray(u), big_s)
    y_small, pb_small = di.vjp(di.shift, be.asarray(u), small_s)
    assert_allclose(be.to_numpy(y_big), be.to_numpy(y_small), atol=1e-12)
    du_big, ds_big = pb_big(be.asarray(g))
    du_small, ds_small = pb_small(be.asarray(g))
    assert_allclose(be.to_numpy(du_big), be.to_numpy(du_small), atol=1e-12)
    assert_allclose(be.to_numpy(ds_big), be.to_numpy(ds_small), rtol=1e-12, atol=1e-10)


def test_shift_by_a_huge_integer_through_the_model():
    rng = np.random.default_rng(4)
    u = rng.standard_normal((2, 8, 12))
    s = np.array([[2.0 ** 53, -(2.0 ** 53)], [2.0 ** 52 + 8, 0.5]])
    reduced = np.array([[float(Fraction(v) % n) for v, n in zip(row, (8, 12))] for row in s])
    assert_array_equal(reduced, [[0.0, 4.0], [0.0, 0.5]])  # 2^53 = 0 (mod 8), -2^53 = 4 (mod 12)
    want = di.shift(u, reduced)
    assert_allclose(di.Shift(s)(u), want, atol=1e-12)


# ---------------------------------------------------------- integer-likes

INT_LIKES = [np.int64(2), np.int32(2), np.uint8(2), np.array(2), np.array(2, dtype=np.int16)]


@pytest.mark.parametrize("n", INT_LIKES, ids=lambda v: f"{type(v).__name__}-{getattr(v, 'dtype', '')}")
def test_integer_like_numpy_scalars_are_accepted_wherever_an_int_is(n):
    default = di.get_num_threads()
    try:
        di.set_num_threads(n)
        assert di.get_num_threads() == 2 and type(di.get_num_threads()) is int
        with di.num_threads(n):
            assert di.get_num_threads() == 2
    finally:
        di.set_num_threads(default)
    img = np.arange(48.0).reshape(6, 8)
    assert_array_equal(di.bin(img, factor=n), di.bin(img, factor=2))
    assert di.Quantize(bits=n * 4).bits == 8
    assert type(di.Sum(di.Gain(1.0), axis=n - 2).axis) is int
    x = np.ones((2, 3, 4))
    assert_array_equal(di.Stack([di.Gain(1.0), di.Gain(2.0)], axis=n - 2)(x)[1], 2 * x)
    rho, theta = np.array([0.5]), np.array([0.3])
    assert_array_equal(di.zernike_noll(n + 2, rho, theta), di.zernike_noll(4, rho, theta))
    assert check_count(n, "iterations") == 2
    assert di.TV(1.0, ndim=n).ndim == 2


def test_integer_like_torch_scalars_are_accepted():
    torch = pytest.importorskip("torch")
    default = di.get_num_threads()
    try:
        di.set_num_threads(torch.tensor(2))
        assert di.get_num_threads() == 2
    finally:
        di.set_num_threads(default)
    assert_array_equal(di.bin(np.ones((4, 4)), factor=torch.tensor(2)), di.bin(np.ones((4, 4)), factor=2))
    with pytest.raises(TypeError, match="factor"):
        di.bin(np.ones((4, 4)), factor=torch.tensor(2.0))
    with pytest.raises(TypeError, match="factor"):
        di.bin(np.ones((4, 4)), factor=torch.tensor(True))


@pytest.mark.parametrize("bad", [True, np.bool_(True), np.array(True), 2.5, 2.0, np.float64(2.0),
                                 np.array(2.0), "2", None, np.array([2])])
def test_non_integers_are_still_refused(bad):
    with pytest.raises(ValueError, match="number of threads must be a positive integer"):
        di.set_num_threads(bad)
    with pytest.raises(TypeError, match="factor must be a positive integer"):
        di.bin(np.ones((4, 4)), factor=bad)
    with pytest.raises(ValueError, match="iterations must be a non-negative integer"):
        check_count(bad, "iterations")


def test_an_integral_float_gets_a_hint():
    with pytest.raises(TypeError, match=r"got the float 2\.0 \(use 2\)"):
        di.bin(np.ones((4, 4)), factor=2.0)


# ------------------------------------------------------------ string options

STRING_OPTIONS = [
    ("method", "'asm' or 'fresnel'", lambda v: di.propagate(np.ones((4, 4), complex), 1e-4, method=v, **OPTICS)),
    ("method", "'asm' or 'fresnel'", lambda v: di.transfer_function((4, 4), 1e-4, method=v, **OPTICS)),
    ("reduce", "'sum' or 'mean'", lambda v: di.bin(np.ones((4, 4)), factor=2, reduce=v)),
    ("mode", "'auto', 'stack' or 'batch'", lambda v: di.Propagate(1e-4, mode=v, **OPTICS)),
]


@pytest.mark.parametrize("name, allowed, call", STRING_OPTIONS)
@pytest.mark.parametrize("value", [["asm"], ("sum",), {"mode": "auto"}, 1, None])
def test_a_string_option_given_a_list_names_the_argument(name, allowed, call, value):
    # ['asm'] used to give "unhashable type: 'list'"
    with pytest.raises(TypeError, match=rf"{name} must be {allowed} \(a string\), got "):
        call(value)
    with pytest.raises(ValueError):  # as it was for hashable non-strings
        call(value)


@pytest.mark.parametrize("name, allowed, call", STRING_OPTIONS)
def test_an_unknown_string_option_names_the_allowed_values(name, allowed, call):
    with pytest.raises(ValueError, match=rf"{name} must be {allowed}, got 'nope'"):
        call("nope")


# ------------------------------------------------------------- cotangents

def test_a_list_cotangent_is_accepted_like_an_array():
    rng = np.random.default_rng(5)
    u = crandn(rng, (3, 4))
    g = crandn(rng, (3, 4))
    _, pb = di.vjp(di.propagate, u, 1e-4, **OPTICS)
    want = pb(g)
    got = pb(g.tolist())
    assert_allclose(got[0], want[0])
    assert_allclose(got[1], want[1])
    gr = rng.standard_normal((3, 4))
    _, pb = di.vjp(di.intensity, u)
    assert_allclose(pb(gr.tolist())[0], pb(gr)[0])
    for model in (di.Model(di.Propagate(1e-4, **OPTICS), di.Intensity()), di.Intensity()):
        _, pb = di.vjp(model, u)
        gx, gp = pb(gr.tolist())
        gx_ref, gp_ref = pb(gr)
        assert_allclose(gx, gx_ref)
        assert gp.keys() == gp_ref.keys()
        for k in gp:
            assert_allclose(gp[k], gp_ref[k])


def test_a_list_cotangent_for_a_torch_primal():
    torch = pytest.importorskip("torch")
    u = torch.ones((2, 3), dtype=torch.float64)
    _, pb = di.vjp(di.intensity, u)
    (du,) = pb([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert isinstance(du, torch.Tensor)
    assert_allclose(du.numpy(), 2 * np.arange(1.0, 7.0).reshape(2, 3))


@pytest.mark.parametrize("g", ["abc", {"a": 1}, [[1, 2], [3]], object()])
def test_a_cotangent_that_is_no_array_is_a_type_error(g):
    u = np.ones((2, 2))
    _, pb = di.vjp(di.intensity, u)
    with pytest.raises(TypeError, match="cotangent"):
        pb(g)
    _, pb = di.vjp(di.Model(di.Intensity()), u)
    with pytest.raises(TypeError, match="cotangent"):
        pb(g)


# ---------------------------------------------------------- threads and memory

def _run(script: str):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)


_LIMIT_AS = """
import resource
def limit_address_space(headroom):
    vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, resource.RLIM_INFINITY))
"""


@needs_core
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the kernels start no worker thread")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_thread_start_failure_through_the_public_api_is_a_runtime_error():
    # the process survives (no std::terminate / SIGABRT) and keeps working
    script = _LIMIT_AS + """
import numpy as np
import diffimaging as di
u = np.ones((512, 512), np.complex64)
with di.num_threads(1):  # every lazy import done, no worker started
    di.intensity(u)
limit_address_space(4 << 20)  # too little for a worker thread's stack
di.set_num_threads(64)
try:
    di.intensity(u)
except RuntimeError as exc:
    print("RuntimeError:", exc)
di.set_num_threads(1)
print("single thread ok", float(di.intensity(u).sum()))
"""
    res = _run(script)
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert "RuntimeError: diffimaging: cannot start CPU worker thread" in res.stdout, res.stdout
    assert f"single thread ok {512.0 * 512}" in res.stdout


@needs_core
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_a_kernel_out_of_memory_is_a_memory_error_with_the_size():
    # the binning tables of a shifted bin of a 2 x 2^22 image take 64 MiB; the
    # address space left holds the 8 MiB output but not them
    script = _LIMIT_AS + """
import numpy as np
import diffimaging as di
di.set_num_threads(1)
img = np.ones((2, 1 << 22), np.float32)
di.bin(np.ones((2, 64), np.float32), (0.0, 0.5), factor=2)  # lazy imports
limit_address_space(12 << 20)
try:
    di.bin(img, (0.0, 0.5), factor=2)
except MemoryError as exc:
    print("MemoryError:", exc)
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print("after", float(di.bin(img, (0.0, 0.5), factor=2).sum()))
"""
    res = _run(script)
    assert res.returncode == 0, (res.returncode, res.stderr)
    line = next((s for s in res.stdout.splitlines() if s.startswith("MemoryError:")), "")
    assert "diffimaging: cannot allocate 16777216 bytes (16 MiB) for a binning table" in line, res.stdout
    assert "set_num_threads" in line
    assert "after" in res.stdout


@needs_core
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/status (VmHWM)")
def test_per_thread_buffers_follow_the_chunks_not_the_requested_threads():
    # 1024 requested threads on a 64 x 64 pullback: the per-chunk buffers and
    # reduction slots are sized by the chunks the partition makes (a few), not
    # by the request (which once took 2 GiB)
    script = """
import numpy as np
import diffimaging as di
rng = np.random.default_rng(0)
u = (rng.standard_normal((64, 64)) + 1j * rng.standard_normal((64, 64)))
img = rng.standard_normal((64, 64))
def work():
    y, pb = di.vjp(di.propagate, u, 1e-4, wavelength=532e-9, pixel_size=2e-6)
    pb(y)
    y, pb = di.vjp(di.bin, img, np.array([0.3, -0.2]), factor=2)
    pb(y)
    y, pb = di.vjp(di.shift, u, np.array([0.3, -0.2]))
    pb(y)
    di.intensity(u)
with di.num_threads(1):
    work()
def peak_kib():   # this process's own peak (ru_maxrss also counts the forking parent's pages)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
before = peak_kib()
di.set_num_threads(1024)
for _ in range(3):
    work()
print("grew KiB", peak_kib() - before)
"""
    res = _run(script)
    assert res.returncode == 0, res.stderr
    grew = int(res.stdout.split("grew KiB")[1])
    assert grew < 64 * 1024, f"peak memory grew by {grew} KiB with 1024 requested threads"


# -------------------------------------------------------- top-level namespace

def test_every_public_top_level_name_is_intended():
    # `from __future__ import annotations` and importlib.metadata once leaked
    # `annotations` and `PackageNotFoundError` into diffimaging's namespace
    public = [n for n in dir(di) if not n.startswith("_")]
    extra = [n for n in public if n not in di.__all__
             and not (isinstance(getattr(di, n), types.ModuleType)
                      and getattr(di, n).__name__ == f"diffimaging.{n}")]
    assert extra == [], f"unintended public names in diffimaging: {extra}"
    assert all(hasattr(di, n) for n in di.__all__)
