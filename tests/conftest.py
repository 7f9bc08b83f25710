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


# ------------------------------------------------------------------ other array libraries

class _Torch:
    name = "torch"

    def __init__(self):
        self.torch = pytest.importorskip("torch")

    def to(self, a):
        return self.torch.asarray(np.ascontiguousarray(a))

    def back(self, a):
        return a.detach().cpu().numpy()

    def is_mine(self, a):
        return isinstance(a, self.torch.Tensor)

    def dtype(self, name):
        return getattr(self.torch, name)


class _Strict:
    name = "array_api_strict"

    def __init__(self):
        self.xs = pytest.importorskip("array_api_strict")

    def to(self, a):
        return self.xs.asarray(np.ascontiguousarray(a))

    def back(self, a):
        return np.from_dlpack(a)

    def is_mine(self, a):
        return type(a).__module__.startswith("array_api_strict")

    def dtype(self, name):
        return getattr(self.xs, name)


@pytest.fixture(params=["torch", "array_api_strict"])
def lib(request):
    return _Torch() if request.param == "torch" else _Strict()
