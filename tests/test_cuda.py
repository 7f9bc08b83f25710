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


# ------------------------------------------------ propagation kernels through the public API

def _gpu():
    if not gpu_available() or not K.have_cuda_module():
        pytest.skip("no CUDA GPU visible or CUDA module not built")
    import cupy as cp

    return cp


@pytest.mark.cuda
@pytest.mark.parametrize("dtype,tol", [(np.complex64, 1e-5), (np.complex128, 1e-12)])
@pytest.mark.parametrize("shape", [(2, 33, 40), (17, 17)])
def test_cuda_propagate_stack_and_vjp_match_cpu(rng, dtype, tol, shape):
    cp = _gpu()
    u = crandn(rng, shape, dtype)
    zs = np.linspace(-3e-4, 6e-4, 5)
    g = crandn(rng, (5,) + shape, dtype)
    for z, gg in ((4e-4, g[0]), (zs, g)):
        zd = z if np.isscalar(z) else cp.asarray(z)
        out, pb = di.vjp(di.propagate, cp.asarray(u), zd, wavelength=532e-9, pixel_size=2e-6)
        du, dz = pb(cp.asarray(gg))
        ref, pbr = di.vjp(di.propagate, u, z, wavelength=532e-9, pixel_size=2e-6)
        dur, dzr = pbr(gg)
        assert isinstance(out, cp.ndarray) and out.dtype == dtype
        for a, b in ((out, ref), (du, dur)):
            np.testing.assert_allclose(cp.asnumpy(a), b, rtol=tol, atol=tol * np.abs(b).max())
        np.testing.assert_allclose(np.asarray(cp.asnumpy(dz)), dzr, rtol=10 * tol,
                                   atol=10 * tol * np.abs(dzr).max())


@pytest.mark.cuda
def test_cuda_z_reduction_is_deterministic(rng):
    cp = _gpu()
    u = cp.asarray(crandn(rng, (512, 512), np.complex64))
    g = cp.asarray(crandn(rng, (512, 512), np.complex64))
    dz = []
    for _ in range(3):
        _, pb = di.vjp(di.propagate, u, 1e-3, wavelength=532e-9, pixel_size=2e-6)
        dz.append(float(pb(g)[1]))
    assert dz[0] == dz[1] == dz[2]


@pytest.mark.cuda
def test_cuda_stack_adjoint_dot_test(rng):
    cp = _gpu()
    u = crandn(rng, (24, 31), np.complex128)
    v = crandn(rng, (6, 24, 31), np.complex128)
    zs = cp.asarray(np.linspace(1e-4, 9e-4, 6))
    out, pb = di.vjp(di.propagate, cp.asarray(u), zs, wavelength=633e-9, pixel_size=3e-6)
    lhs = complex(cp.vdot(cp.asarray(v), out))
    rhs = complex(cp.vdot(pb(cp.asarray(v))[0], cp.asarray(u)))
    assert abs(lhs - rhs) <= 1e-12 * float(cp.linalg.norm(out)) * np.linalg.norm(v)


@pytest.mark.cuda
def test_cuda_stack_in_memory_sized_batches(rng):
    """A stack larger than the (fake) free memory is processed in batches, same result."""
    cp = _gpu()
    from diffimaging._backend import cuda as C
    from diffimaging.ops import propagate as P

    u = crandn(rng, (64, 64), np.complex64)
    zs = np.linspace(1e-4, 2e-3, 40)
    ref = di.propagate(u, zs, wavelength=532e-9, pixel_size=2e-6)
    plane = 2 * int(np.prod(P.padded_shape((64, 64)))) * 8
    C.set_memory_query(lambda: (int(3 * plane / 0.6), 0))
    try:
        got = di.propagate(cp.asarray(u), cp.asarray(zs), wavelength=532e-9, pixel_size=2e-6)
    finally:
        C.set_memory_query(None)
    np.testing.assert_allclose(cp.asnumpy(got), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.cuda
def test_cuda_volume_matches_cpu(rng):
    cp = _gpu()
    from diffimaging.holography.volume import Volume

    zs = np.array([2e-4, 3e-4, 5e-4])
    o = -0.3 * rng.random((3, 40, 44))
    g = rng.standard_normal((40, 44))
    v = Volume(zs, 532e-9, 2e-6)
    out, res = v.forward(cp.asarray(o), {"dz": 0.0, "reference": 1.0})
    go, gp = v.backward(res, cp.asarray(g))
    ref, rres = v.forward(o, {"dz": 0.0, "reference": 1.0})
    gor, gpr = v.backward(rres, g)
    np.testing.assert_allclose(cp.asnumpy(out), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cp.asnumpy(go), gor, rtol=1e-11, atol=1e-11 * np.abs(gor).max())
    assert abs(float(gp["dz"]) - float(gpr["dz"])) <= 1e-9 * abs(float(gpr["dz"]))


@pytest.mark.cuda
def test_torch_cuda_tensors_run_zero_copy(rng):
    _gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    u = crandn(rng, (32, 32), np.complex64)
    t = torch.from_numpy(u).cuda()
    out = di.propagate(t, 1e-3, wavelength=532e-9, pixel_size=2e-6)
    assert isinstance(out, torch.Tensor) and out.is_cuda
    ref = di.propagate(u, 1e-3, wavelength=532e-9, pixel_size=2e-6)
    np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.cuda
def test_cuda_backpropagation_projections_match_cpu(rng):
    cp = _gpu()
    from diffimaging import holography as H
    from diffimaging._backend import cuda as C
    from diffimaging.ops import propagate as P

    h = (1.0 + 0.1 * rng.standard_normal((96, 80))).astype(np.float32)
    zs = np.linspace(2e-4, 2e-3, 37)
    ref = H.backpropagate(h, zs, wavelength=532e-9, pixel_size=2e-6)
    plane = 2 * int(np.prod(P.padded_shape((96, 80)))) * 8
    C.set_memory_query(lambda: (int(5 * plane / 0.6), 0))     # 5 planes per batch
    try:
        got = H.backpropagate(cp.asarray(h), zs, wavelength=532e-9, pixel_size=2e-6)
    finally:
        C.set_memory_query(None)
    for key in ("min", "max"):
        np.testing.assert_allclose(cp.asnumpy(got[key]), ref[key], rtol=2e-5, atol=2e-5)
    for key in ("argmin_z", "argmax_z"):
        assert np.mean(cp.asnumpy(got[key]) == ref[key]) > 0.98


@pytest.mark.cuda
def test_cuda_dh_reconstruction_finds_the_cpu_particles():
    """The ∂H reconstruction of a small case on CuPy arrays gives the particles the
    CPU gives (same count, positions within a fraction of a pixel and a plane)."""
    cp = _gpu()
    from diffimaging import holography as H

    n, px = 64, 2e-6
    tab = H.random_particles((n, n), px, count=6, z_range=(1.5e-3, 2.0e-3), margin=10 * px,
                             seed=7)
    holo, truth = H.simulate_particles((n, n), tab, wavelength=532e-9, pixel_size=px,
                                       gaussian_noise=0.01, seed=2)
    zs = np.arange(1.45e-3, 2.05e-3 + 1e-9, 50e-6)
    kw = dict(wavelength=532e-9, pixel_size=px, iterations=120, engine="generic")
    cpu = H.find_particles(H.reconstruct(holo, zs, **kw))
    gpu = H.find_particles(H.reconstruct(cp.asarray(holo), zs, **kw))
    m = H.match(gpu, cpu, 0.5 * px, 30e-6)
    assert len(gpu) == len(cpu) and m.recall == 1.0 and m.precision == 1.0, m


@pytest.mark.cuda
def test_torch_cuda_tensors_through_every_core_operator(rng):
    _gpu()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    u = crandn(rng, (2, 24, 30), np.complex64)
    x = rng.random((2, 24, 30)).astype(np.float32)
    t_u, t_x = torch.from_numpy(u).cuda(), torch.from_numpy(x).cuda()
    for fn, args, ref_args in (
            (lambda a: di.shift(a, (0.3, -1.1)), (t_u,), (u,)),
            (di.intensity, (t_u,), (u,)),
            (lambda a: di.bin(a, (0.25, 0.5), factor=3), (t_x,), (x,))):
        out = fn(*args)
        assert isinstance(out, torch.Tensor) and out.is_cuda
        ref = fn(*ref_args)
        np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    out, pb = di.vjp(di.bin, t_x, factor=3)
    (g,) = pb(torch.ones_like(out))
    assert isinstance(g, torch.Tensor) and g.is_cuda and tuple(g.shape) == (2, 24, 30)
