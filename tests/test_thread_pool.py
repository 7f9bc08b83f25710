"""Thread counts and the C++ kernels' persistent thread pool."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import diffimaging as di
from diffimaging._backend import kernels as K
from diffimaging._backend.threads import MAX_THREADS

from conftest import crandn

PYTHON_DIR = str(Path(di.__file__).resolve().parents[1])
needs_core = pytest.mark.skipif(not K.have_cpu(), reason="C++ kernels not built")


def test_max_threads_is_accepted_and_one_more_is_not():
    default = di.get_num_threads()
    try:
        di.set_num_threads(MAX_THREADS)
        assert di.get_num_threads() == MAX_THREADS
        with pytest.raises(ValueError, match=rf"at most {MAX_THREADS} \(this machine has \d+ cores\)"):
            di.set_num_threads(MAX_THREADS + 1)
        with pytest.raises(ValueError, match=str(MAX_THREADS)):
            with di.num_threads(268435456):
                pass
    finally:
        di.set_num_threads(default)
    assert di.get_num_threads() == default


def _import_with_env(value):
    env = dict(os.environ, DIFFIMAGING_NUM_THREADS=value, PYTHONPATH=PYTHON_DIR)
    return subprocess.run([sys.executable, "-c", "import diffimaging as di; print(di.get_num_threads())"],
                          env=env, capture_output=True, text=True)


def test_env_thread_count_is_capped():
    res = _import_with_env("268435456")
    assert res.returncode != 0
    assert f"DIFFIMAGING_NUM_THREADS must be at most {MAX_THREADS}" in res.stderr
    assert f"this machine has {os.cpu_count()} cores" in res.stderr
    res = _import_with_env("3")
    assert res.returncode == 0 and res.stdout.strip() == "3"


def _kernel_results(u, n):
    """Outputs of several kernels with n threads (deterministic for a given n)."""
    with di.num_threads(n):
        prop = di.propagate(u, 1e-3, wavelength=532e-9, pixel_size=2e-6)
        out, pb = di.vjp(di.bin, u, np.array([[0.3, -1.2]]), factor=4)
        du, ds = pb(u[..., ::4, ::4].copy())
    return prop, out, du, ds


@needs_core
def test_concurrent_callers_get_their_own_results():
    # the GIL is released in the kernels: several Python threads share the pool at once
    rng = np.random.default_rng(3)
    inputs = [crandn(rng, (2, 64, 48), np.complex128) for _ in range(4)]
    counts = [1, 2, 3, 5]
    want = [_kernel_results(u, n) for u, n in zip(inputs, counts)]
    got = [None] * 4
    errors = []

    def work(k):
        try:
            for _ in range(10):
                got[k] = _kernel_results(inputs[k], counts[k])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert_array_equal(a, b)  # same thread count: same chunks, same bits


@needs_core
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: the kernels start no worker thread")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_failure_to_start_a_worker_is_a_runtime_error():
    # a worker thread needs a stack: with no address space left to map one,
    # the kernel call raises (the old code aborted the process) and the
    # process goes on working with one thread
    script = """
import resource
import numpy as np
from diffimaging import _core
u = np.ones(1 << 18, np.complex64)
out = np.empty(u.shape, np.float32)
vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + (4 << 20), resource.RLIM_INFINITY))
try:
    _core.intensity(u, out, 2)
except RuntimeError as exc:
    print("RuntimeError:", exc)
_core.intensity(u, out, 1)
print("single thread ok", float(out.sum()))
"""
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "RuntimeError: diffimaging: cannot start CPU worker thread" in res.stdout
    assert "set_num_threads" in res.stdout
    assert f"single thread ok {float(1 << 18)}" in res.stdout
