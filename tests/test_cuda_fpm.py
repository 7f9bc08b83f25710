"""Fourier ptychography on the GPU: the CUDA fidelity kernel against fpm.losses,
and fpm.reconstruct on CuPy images against numpy.  Runs only where a GPU is
visible (the binding's argument checks run without one, in test_cuda_host.py)."""
import numpy as np
import pytest

from diffimaging._backend import kernels as K

from conftest import crandn, gpu_available

pytestmark = pytest.mark.cuda


def _gpu():
    if not gpu_available() or not K.have_cuda_module():
        pytest.skip("no CUDA GPU visible or CUDA module not built")
    import cupy as cp

    return cp


@pytest.mark.parametrize("dtype,tol", [(np.complex64, 2e-5), (np.complex128, 1e-12)])
@pytest.mark.parametrize("loss", ["amplitude", "poisson", "huber"])
def test_fidelity_kernel_matches_the_losses(rng, dtype, tol, loss):
    cp = _gpu()
    from diffimaging._backend import cuda_fpm as KF
    from diffimaging.fpm import losses as FL

    rdt = np.float32 if dtype == np.complex64 else np.float64
    J, ny, nx = 4, 23, 19
    psi = crandn(rng, (J, ny, nx), dtype)
    y = (rng.poisson(3.0, (J, ny, nx)) - (rng.random((J, ny, nx)) < 0.05)).astype(rdt)  # some < 0
    mask = (rng.random((ny, nx)) < 0.8).astype(rdt)
    a, w, b = rng.uniform(0.5, 2.0, J), rng.uniform(0.2, 1.0, J), 0.3
    mu = (a.reshape(-1, 1, 1).astype(rdt) * (np.abs(psi) ** 2).astype(rdt) + rdt(b))
    vals, gmu = FL.gradient(mu, y, loss, w, mask)
    ref_g = (2.0 * a.reshape(-1, 1, 1).astype(rdt) * gmu) * psi
    got_vals, got_g = KF.fidelity(cp.asarray(psi), cp.asarray(y), cp.asarray(mask), a, w, b, loss)
    assert isinstance(got_g, cp.ndarray) and got_g.dtype == dtype
    np.testing.assert_allclose(got_vals, vals, rtol=10 * tol)
    g = cp.asnumpy(got_g)
    np.testing.assert_allclose(g, ref_g, rtol=tol, atol=tol * np.abs(ref_g).max())
    # the sums, bit for bit, on a second run
    again, _ = KF.fidelity(cp.asarray(psi), cp.asarray(y), cp.asarray(mask), a, w, b, loss)
    assert np.array_equal(again, got_vals)


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_fpm_reconstruction_on_cupy_matches_numpy(dtype):
    cp = _gpu()
    from diffimaging import fpm

    data = fpm.simulate(shape=(32, 32), seed=1)
    kw = dict(iterations=12, dtype=dtype)
    cpu = fpm.reconstruct(data, **kw)
    gpu = fpm.reconstruct(cp.asarray(data.images), data.setup, **kw)
    assert isinstance(gpu.object, np.ndarray)          # the result comes back to the host
    # on the CPU, complex64 and complex128 runs of this case differ by 2.5e-7 (object) and
    # images perturbed by 1e-6 move the result by 6e-7: 1e-4 leaves room for the GPU's
    # different summation orders, not for a wrong step
    tol = 1e-6 if dtype == "complex128" else 1e-4
    rel = np.linalg.norm(gpu.object - cpu.object) / np.linalg.norm(cpu.object)
    assert rel < tol, rel
    assert gpu.history["final_loss"] == pytest.approx(cpu.history["final_loss"], rel=tol)
    for key in ("rotation", "height"):
        assert gpu.geometry[key] == pytest.approx(cpu.geometry[key], rel=tol, abs=1e-9)


def test_fpm_reconstruction_of_torch_cuda_images_takes_the_cuda_path():
    """torch CUDA images run as their CuPy view (zero-copy): the CuPy result."""
    cp = _gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    from diffimaging import fpm

    data = fpm.simulate(shape=(32, 32), seed=1)
    kw = dict(iterations=6, dtype="complex128")
    ref = fpm.reconstruct(cp.asarray(data.images), data.setup, **kw)
    got = fpm.reconstruct(torch.from_numpy(np.asarray(data.images).copy()).cuda(), data.setup,
                          **kw)
    assert isinstance(got.object, np.ndarray)
    np.testing.assert_allclose(got.object, ref.object, rtol=1e-10, atol=1e-12)
