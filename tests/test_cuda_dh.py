"""The fused ∂H engine on the GPU (CuPy, the CUDA kernels of ``_backend.cuda_dh``):
each kernel against its CPU twin, the proximal step's sums deterministic, and the
whole fused reconstruction against the CPU engine.  Runs only where a GPU is
visible; the host logic is checked without one in tests/test_cuda_host.py."""
import numpy as np
import pytest

from diffimaging._backend import kernels as K

from conftest import gpu_available, rand

pytestmark = pytest.mark.cuda

LAM, PX = 532e-9, 2e-6


def _gpu():
    if not gpu_available() or not K.have_cuda_module() or not K.have_cpu():
        pytest.skip("no CUDA GPU visible, or the CUDA or CPU module not built")
    import cupy as cp

    return cp


def _engines(dtype, pad="reach", nz=9, shape=(40, 46)):
    from diffimaging.holography._dhfast import HalfVolume, HalfVolumeCuda

    zs = np.linspace(0.8e-3, 1.6e-3, nz)
    args = (zs, shape, LAM, (PX, 2.5e-6), dtype, "asm", True)
    return HalfVolume(*args, pad=pad), HalfVolumeCuda(*args, pad=pad)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("pad", ["reach", "double"])
def test_transfer_tables_match_the_cpu_tables(dtype, tol, pad):
    cp = _gpu()
    cpu, gpu = _engines(dtype, pad)
    assert (gpu.my, gpu.mx) == (cpu.my, cpu.mx)
    assert cpu.build_tables(1 << 30) and gpu.build_tables(1 << 30)
    assert isinstance(gpu.T, cp.ndarray) and gpu.T.dtype == cpu.T.dtype
    np.testing.assert_allclose(cp.asnumpy(gpu.T), cpu.T, rtol=0, atol=tol)
    # the per-batch tables (when the whole set does not fit) are the same values
    gpu.T = None
    np.testing.assert_allclose(cp.asnumpy(gpu._tables(3, 4)), cpu.T[3:7], rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_table_sums_and_back_projections_match_the_cpu(rng, dtype):
    cp = _gpu()
    from diffimaging._backend import cuda_dh as KD

    kb, ny, nxh = 5, 17, 12
    O, T = rand(rng, (kb, ny, nxh), dtype), rand(rng, (kb, ny, nxh), dtype)
    S0 = rand(rng, (2, ny, nxh), dtype)
    tol = 1e-5 if dtype == np.complex64 else 1e-12
    for accumulate in (False, True):
        ref = [S0[0].copy(), S0[1].copy()]
        K.dh_accumulate_table(O, T, ref[0], ref[1], accumulate=accumulate)
        got = [cp.asarray(S0[0]), cp.asarray(S0[1])]
        KD.dh_accumulate_table(cp.asarray(O), cp.asarray(T), got[0], got[1], accumulate)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(cp.asnumpy(g), r, rtol=tol, atol=tol * np.abs(r).max())
    A, B = rand(rng, (ny, nxh), dtype), rand(rng, (ny, nxh), dtype)
    for b in (B, None):
        ref = np.empty_like(T)
        K.dh_backproject_table(A, b, T, ref)
        got = cp.empty(T.shape, dtype)
        KD.dh_backproject_table(cp.asarray(A), None if b is None else cp.asarray(b),
                                cp.asarray(T), got)
        np.testing.assert_allclose(cp.asnumpy(got), ref, rtol=tol, atol=tol * np.abs(ref).max())
    with pytest.raises(ValueError, match="O and T must have one shape"):
        KD.dh_accumulate_table(cp.asarray(O), cp.asarray(T[:2]), got[0], got[1], False)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("extrapolate", [False, True])
def test_prox_step_matches_the_cpu_and_its_sums_are_deterministic(rng, dtype, tol, extrapolate):
    cp = _gpu()
    from diffimaging._backend import cuda_dh as KD

    kb, ny, nx, row = 3, 37, 29, 41
    x = -rng.random((kb, ny, nx)).astype(dtype)
    xp = -rng.random((kb, ny, nx)).astype(dtype) if extrapolate else None
    buf = rng.standard_normal((kb, ny, row)).astype(dtype)
    args = (0.4 if extrapolate else 0.0, 0.3, -0.01, -1.0, 0.0)
    # prox_step (contiguous gradients) and prox_step_rows (rows of a padded buffer)
    ref_out, ref_sums = np.empty_like(x), np.zeros(3)
    for j in range(kb):
        ref_sums += K.prox_step(x[j], None if xp is None else xp[j],
                                np.ascontiguousarray(buf[j, :, :nx]), ref_out[j], *args)
    d = [cp.asarray(a) if a is not None else None for a in (x, xp)]
    out = cp.empty(x.shape, dtype)
    sums = KD.prox_step(d[0], d[1], cp.asarray(buf)[:, :, :nx], out, *args)
    np.testing.assert_allclose(cp.asnumpy(out), ref_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(sums, ref_sums, rtol=tol * 10, atol=tol * 10)
    # the same sums, bit for bit, on a second run
    assert KD.prox_step(d[0], d[1], cp.asarray(buf)[:, :, :nx], out, *args) == sums
    dbuf = cp.asarray(buf)
    sums_rows = KD.prox_step_rows(d[0], d[1], dbuf, out, *args)
    np.testing.assert_allclose(sums_rows, ref_sums, rtol=tol * 10, atol=tol * 10)
    got = cp.asnumpy(dbuf)
    np.testing.assert_allclose(got[:, :, :nx], ref_out, rtol=tol, atol=tol)
    assert np.all(got[:, :, nx:] == 0)                   # the padding, zeroed
    with pytest.raises(ValueError, match="g must hold x's 3 plane"):
        KD.prox_step(d[0], d[1], cp.asarray(buf), out, *args)   # rows longer than nx


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_reconstruction_on_cupy_matches_the_cpu_engine(dtype):
    cp = _gpu()
    from diffimaging import holography as H

    n = 64
    tab = H.random_particles((n, n), PX, count=6, z_range=(1.5e-3, 2.0e-3), margin=10 * PX,
                             seed=7)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=LAM, pixel_size=PX,
                                   gaussian_noise=0.01, seed=2)
    holo = holo.astype(dtype)
    zs = np.arange(1.45e-3, 2.05e-3 + 1e-9, 50e-6)
    kw = dict(wavelength=LAM, pixel_size=PX, iterations=60, engine="fused")
    cpu = H.reconstruct(holo, zs, **kw)
    gpu = H.reconstruct(cp.asarray(holo), zs, **kw)
    assert isinstance(gpu.volume, cp.ndarray) and gpu.volume.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(cp.asnumpy(gpu.volume), cpu.volume, rtol=1e-6, atol=1e-8)
        assert gpu.dz == pytest.approx(cpu.dz, rel=1e-6, abs=1e-12)
    found_cpu, found_gpu = H.find_particles(cpu), H.find_particles(gpu)
    m = H.match(found_gpu, found_cpu, 0.25 * PX, 10e-6)
    assert len(found_gpu) == len(found_cpu) >= 5 and m.recall == 1.0 and m.precision == 1.0, m
    # "auto" takes the fused engine on CuPy too
    auto = H.reconstruct(cp.asarray(holo), zs, **dict(kw, engine="auto"))
    np.testing.assert_allclose(cp.asnumpy(auto.volume), cp.asnumpy(gpu.volume), rtol=1e-6,
                               atol=1e-6 * float(cp.abs(gpu.volume).max()))


def test_torch_cuda_holograms_take_the_cuda_path():
    """A torch CUDA hologram runs the same CUDA path as its CuPy view (zero-copy):
    the same volume and projections (to rounding), returned as torch CUDA tensors."""
    cp = _gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    from diffimaging import holography as H

    n = 64
    tab = H.random_particles((n, n), PX, count=6, z_range=(1.5e-3, 2.0e-3), margin=10 * PX,
                             seed=7)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=LAM, pixel_size=PX,
                                   gaussian_noise=0.01, seed=2)
    zs = np.arange(1.45e-3, 2.05e-3 + 1e-9, 50e-6)
    kw = dict(wavelength=LAM, pixel_size=PX, iterations=30)
    t = torch.from_numpy(np.asarray(holo, dtype=np.float64)).cuda()
    got = H.reconstruct(t, zs, **kw)
    ref = H.reconstruct(cp.asarray(holo, dtype=np.float64), zs, **kw)
    assert isinstance(got.volume, torch.Tensor) and got.volume.is_cuda
    np.testing.assert_allclose(got.volume.cpu().numpy(), cp.asnumpy(ref.volume), rtol=1e-10,
                               atol=1e-12)
    proj = H.backpropagate(t, zs, wavelength=LAM, pixel_size=PX)
    ref_proj = H.backpropagate(cp.asarray(holo, dtype=np.float64), zs, wavelength=LAM,
                               pixel_size=PX)
    for k, v in proj.items():
        assert isinstance(v, torch.Tensor) and v.is_cuda, k
        np.testing.assert_allclose(v.cpu().numpy(), cp.asnumpy(ref_proj[k]), rtol=1e-10,
                                   atol=1e-12)
