import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# adjoint dot-test tolerances by dtype (CONVENTIONS.md)
DOT_TOL = {np.complex128: 1e-12, np.float64: 1e-12, np.complex64: 1e-5, np.float32: 1e-5}


def rand(rng, shape, dtype):
    """Standard-normal array of dtype (complex: independent real and imaginary parts)."""
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def crandn(rng, shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def vdot(a, b):
    """<a, b> = sum conj(a) b over all elements (complex128 accumulation)."""
    return np.vdot(np.asarray(a, dtype=np.complex128).ravel(), np.asarray(b, dtype=np.complex128).ravel())


def gpu_available() -> bool:
    try:
        import cupy

        return bool(cupy.cuda.is_available())
    except Exception:
        return False
