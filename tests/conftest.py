import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


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
