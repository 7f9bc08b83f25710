"""CUDA module: built when a CUDA compiler was found; its kernels run only where a GPU is visible."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging._backend import kernels as K
from diffimaging.ops import propagate as P

from conftest import crandn, gpu_available


def test_cuda_module_imports_without_gpu():
    if not K.have_cuda_module():
        pytest.skip("CUDA module not built (no CUDA compiler at build time)")
    # statically linked runtime: importable and queryable without a driver or device
    assert K._cuda.runtime_version() >= 11000
    assert K.cuda_device_count() >= 0


@pytest.mark.cuda
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU visible")
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("method", ["asm", "fresnel"])
@pytest.mark.parametrize("carrier", [True, False])
def test_cuda_transfer_matches_cpu(rng, dtype, method, carrier):
    import cupy as cp

    if not K.have_cuda_module():
        pytest.skip("CUDA module not built")
    u = crandn(rng, (3, 40, 52), dtype)
    p = P.Plan.make(u, 2e-3, 532e-9, (2e-6, 2.5e-6), method, False, True, carrier)
    ref = np.empty_like(u)
    K.transfer_apply(u, ref, p, 2e-3, conjugate=False)
    d_src = cp.asarray(u)
    d_dst = cp.empty_like(d_src)
    K._cuda.transfer_apply(d_src.data.ptr, d_dst.data.ptr, np.dtype(dtype).name, 3, 40, 52, 2e-3,
                           532e-9, 2e-6, 2.5e-6, 0 if method == "asm" else 1, True, carrier, False,
                           cp.cuda.get_current_stream().ptr)
    cp.cuda.get_current_stream().synchronize()
    tol = 1e-12 if dtype == np.complex128 else 2e-6
    np.testing.assert_allclose(cp.asnumpy(d_dst), ref, atol=tol * np.abs(ref).max())


@pytest.mark.cuda
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU visible")
def test_cupy_arrays_stay_on_device(rng):
    import cupy as cp

    u = cp.asarray(crandn(rng, (2, 32, 32), np.complex64))
    v = di.propagate(u, 1e-3, wavelength=532e-9, pixel_size=2e-6)
    assert isinstance(v, cp.ndarray) and v.dtype == cp.complex64
    ref = di.propagate(cp.asnumpy(u), 1e-3, wavelength=532e-9, pixel_size=2e-6)
    np.testing.assert_allclose(cp.asnumpy(v), ref, atol=1e-5 * np.abs(ref).max())
    b = di.bin(cp.abs(u) ** 2, (0.3, 0.1), factor=2)
    assert isinstance(b, cp.ndarray)
