"""Host side of the CUDA path, checked without a GPU.

The batch sizing from free device memory runs against a fake memory query; the
CUDA dispatch of propagation, its VJP and the first-Born volume runs end to end
through the public API with the ``_cuda`` launchers replaced by numpy stand-ins
that honour the same contracts (built on the CPU kernels), so the chunking,
reshapes and scalings of the CUDA path are held equal to the reference path.
The kernels themselves are tested on a GPU (tests/test_cuda*.py)."""
import types

import numpy as np
import pytest

import diffimaging as di
from diffimaging._backend import cuda as C
from diffimaging._backend import cuda_pointwise as KP
from diffimaging._backend import cuda_propagate as KC
from diffimaging._backend import kernels as K
from diffimaging import vjp
from diffimaging.holography import backprop as HB
from diffimaging.holography import volume as HV
from diffimaging.ops import propagate as P

from conftest import crandn

LAM, PX = 532e-9, 2e-6


@pytest.fixture
def fake_memory():
    state = {"free": 0}
    C.set_memory_query(lambda: (state["free"], 80 * 2**30))
    yield state
    C.set_memory_query(None)


def test_planes_per_batch_sizes_from_free_memory(fake_memory):
    fake_memory["free"] = 10 * 2**30
    plane = 2 * 4096 * 4096 * 8          # two complex64 spectra of a 2048^2 field, padded
    n = C.planes_per_batch(plane, 1000)
    assert n == int(0.6 * 10 * 2**30 // plane) and 1 <= n < 1000
    assert C.planes_per_batch(plane, 3) == 3                       # never more than asked
    assert C.planes_per_batch(plane, 1000, fixed=2 * 2**30) < n    # room for fixed buffers
    fake_memory["free"] = plane // 2
    with pytest.raises(MemoryError, match="not enough GPU memory for 1 plane"):
        C.planes_per_batch(plane, 10)
    with pytest.raises(ValueError, match="fraction"):
        C.planes_per_batch(plane, 10, fraction=1.5)
    with pytest.raises(ValueError, match="bytes_per_plane"):
        C.planes_per_batch(0, 10)
    assert C.planes_per_batch(100, 50, free=10_000) == 50


def test_device_pointer_refuses_host_arrays():
    pytest.importorskip("cupy")
    with pytest.raises((TypeError, RuntimeError), match="CuPy|cupy"):
        C.device_pointer(np.zeros((2, 2), np.complex64), "src")


# ------------------------------------------------ the CUDA path with numpy stand-ins

def _fake_launchers():
    """numpy stand-ins of cuda_propagate with the kernels' contracts."""

    def apply(src, dst, plan, z, conjugate):
        K.transfer_apply(src, dst, plan, float(z), conjugate)

    def pullback(U, G, acc, plan, z, accumulate):
        return K.transfer_pullback(U, G, acc, plan, float(z), accumulate)

    def stack(src, dst, zs, plan):
        assert dst.shape == (zs.shape[0],) + src.shape
        for k in range(zs.shape[0]):
            K.transfer_apply(src, dst[k], plan, float(zs[k]), False)

    def stack_adjoint(G, acc, zs, plan, accumulate):
        assert G.shape == (zs.shape[0],) + acc.shape
        for k in range(zs.shape[0]):
            K.transfer_pullback(None, np.ascontiguousarray(G[k]), acc, plan, float(zs[k]),
                                accumulate or k > 0)

    def stack_dz(U, G, zs, plan):
        tmp = np.empty_like(G[0])
        return np.array([K.transfer_pullback(U, np.ascontiguousarray(G[k]), tmp, plan,
                                             float(zs[k]), False) for k in range(zs.shape[0])])

    return dict(transfer_apply=apply, transfer_pullback=pullback, transfer_stack=stack,
                transfer_stack_adjoint=stack_adjoint, transfer_stack_dz=stack_dz,
                device_distances=lambda zs: np.asarray(zs, dtype=np.float64))


@pytest.fixture
def cuda_path(monkeypatch, fake_memory):
    """Propagation and the volume take the CUDA path on numpy arrays, with the
    launchers replaced by stand-ins and 3 planes' worth of free memory."""
    if not K.have_cpu():
        pytest.skip("the stand-ins use the CPU kernels")
    for name, fn in _fake_launchers().items():
        monkeypatch.setattr(KC, name, fn)
    monkeypatch.setattr(KP, "minmax_project",
                        lambda planes, offset, z, proj: K.minmax_project(planes, offset, z, proj))
    calls = {"route": []}

    def route(op, xp):
        calls["route"].append(op)
        return "cuda"

    monkeypatch.setattr(P, "route", route)
    monkeypatch.setattr(HV, "route", route)
    monkeypatch.setattr(HB, "route", route)
    return calls


def _plane_bytes(shape, dtype, batch=1):
    py, px = P.padded_shape(shape)
    return 2 * batch * py * px * np.dtype(dtype).itemsize


def _reference(monkeypatch, fn):
    for mod in (P, HV, HB):
        monkeypatch.setattr(mod, "route", lambda op, xp: "reference")
    return fn()


@pytest.mark.parametrize("dtype,tol", [(np.complex128, 1e-12), (np.complex64, 2e-5)])
def test_cuda_path_propagate_stack_and_vjp_match_the_reference(cuda_path, fake_memory,
                                                               monkeypatch, rng, dtype, tol):
    u = crandn(rng, (2, 20, 23), dtype)
    zs = np.linspace(2e-4, 6e-4, 7)
    # memory for 3 planes of the stack at a time: 3 chunks (3, 3, 1)
    fake_memory["free"] = int(3.5 * _plane_bytes((20, 23), dtype, batch=2) / 0.6)
    assert P.Plan.make(u, zs, LAM, PX).stack_batch(7, 2) == 3
    g = crandn(rng, (7, 2, 20, 23), dtype)

    def run():
        v = di.propagate(u, zs, wavelength=LAM, pixel_size=PX)
        out, pb = vjp(di.propagate, u, zs, wavelength=LAM, pixel_size=PX)
        du, dz = pb(g)
        single = di.propagate(u, 3e-4, wavelength=LAM, pixel_size=PX, method="fresnel")
        _, pb1 = vjp(di.propagate, u, 3e-4, wavelength=LAM, pixel_size=PX)
        du1, dz1 = pb1(g[0])
        return v, du, dz, single, du1, dz1

    got = run()
    assert "propagate" in cuda_path["route"]
    ref = _reference(monkeypatch, run)
    for a, b in zip(got, ref):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1e-30, np.abs(b).max()))


def test_cuda_path_volume_forward_and_vjp_match_the_reference(cuda_path, fake_memory,
                                                              monkeypatch, rng):
    zs = np.array([2e-4, 3e-4, 4.5e-4, 6e-4, 7e-4])
    o = -0.3 * rng.random((zs.size, 18, 21))
    fake_memory["free"] = int(2.5 * _plane_bytes((18, 21), np.complex128) / 0.6)
    g = rng.standard_normal((18, 21))

    def run():
        v = HV.Volume(zs, LAM, PX)
        out, res = v.forward(o, {"dz": 1e-5, "reference": 1.0})
        go, gp = v.backward(res, g)
        return out, go, gp["dz"], gp["reference"]

    got = run()
    assert "volume" in cuda_path["route"]
    ref = _reference(monkeypatch, run)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64 if np.isrealobj(a) else None),
                                   b, rtol=1e-11, atol=1e-11 * max(1e-30, np.abs(b).max()))


@pytest.mark.parametrize("field", ["amplitude", "contrast"])
def test_cuda_path_backpropagation_projections_match_the_reference(cuda_path, fake_memory,
                                                                   monkeypatch, rng, field):
    h = (1.0 + 0.2 * rng.standard_normal((24, 26))).astype(np.float32)
    zs = np.linspace(1e-4, 1e-3, 11)
    fake_memory["free"] = int(4.2 * _plane_bytes((24, 26), np.complex64) / 0.6)   # 4 planes
    got = HB.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, field=field)
    assert "backpropagate" in cuda_path["route"]
    ref = _reference(monkeypatch, lambda: HB.backpropagate(h, zs, wavelength=LAM, pixel_size=PX,
                                                           field=field))
    for key in ("min", "max"):
        np.testing.assert_allclose(got[key], ref[key], rtol=2e-5, atol=2e-5)
    # depths: equal wherever the extremum is not a near-tie between planes
    for key, zkey in (("min", "argmin_z"), ("max", "argmax_z")):
        same = np.mean(np.asarray(got[zkey]) == np.asarray(ref[zkey]))
        assert same > 0.98, (zkey, same)


def test_cuda_path_refuses_a_plane_that_does_not_fit(cuda_path, fake_memory, rng):
    u = crandn(rng, (32, 32), np.complex64)
    fake_memory["free"] = 1000
    with pytest.raises(MemoryError, match="not enough GPU memory"):
        di.propagate(u, np.array([1e-4, 2e-4]), wavelength=LAM, pixel_size=PX)


def test_cuda_launchers_check_the_grid():
    plan = types.SimpleNamespace(py=8, px=8)
    a = types.SimpleNamespace(shape=(2, 8, 6), size=96)
    with pytest.raises(ValueError, match="FFT grid"):
        KC._planes(a, plan, "src")
    assert KC._planes(types.SimpleNamespace(shape=(3, 8, 8), size=192), plan, "src") == 3


def test_torch_cuda_tensors_go_through_cupy_views(monkeypatch):
    """via_cupy converts torch CUDA tensors among the positional arguments to CuPy
    views and the CuPy results back (stand-ins for the DLPack conversions)."""
    class FakeTorchCuda:
        is_cuda = True

        def __init__(self, v):
            self.v = v

    class FakeCupy:
        def __init__(self, v):
            self.v = v

    FakeCupy.__module__ = "cupy._core"
    monkeypatch.setattr(C, "_is_torch_cuda", lambda a: isinstance(a, FakeTorchCuda))
    monkeypatch.setattr(C, "torch_cuda_usable",
                        lambda *a: any(isinstance(x, FakeTorchCuda) for x in a))
    monkeypatch.setattr(C, "from_torch", lambda t: FakeCupy(t.v))
    monkeypatch.setattr(C, "to_torch", lambda a: FakeTorchCuda(a.v))
    seen = []

    def fn(a, b, *, k=1):
        seen.append((type(a).__name__, type(b).__name__))
        return FakeCupy(a.v + b * k), [FakeCupy(2)]

    wrapped = C.via_cupy(fn)
    out, rest = wrapped(FakeTorchCuda(3), 4, k=2)
    assert seen[-1] == ("FakeCupy", "int")
    assert isinstance(out, FakeTorchCuda) and out.v == 11 and isinstance(rest[0], FakeTorchCuda)
    first_only = C.via_cupy(fn, convert_output=lambda o, conv: (conv(o[0]), o[1]))
    out, rest = first_only(FakeTorchCuda(1), 1)
    assert isinstance(out, FakeTorchCuda) and isinstance(rest[0], FakeCupy)
    # anything else passes through untouched
    assert wrapped.__wrapped__ is fn
    a = np.ones(2)
    out, _ = C.via_cupy(lambda x: (x, [0]))(a)
    assert out is a


def test_cuda_path_dh_reconstruction_finds_the_reference_particles(cuda_path, fake_memory,
                                                                   monkeypatch):
    """The generic ∂H solver on the CUDA path (stand-in launchers, 4 planes per batch)
    finds the particles the reference path finds."""
    from diffimaging import holography as H

    n, px, lam = 64, 2e-6, 532e-9
    tab = H.random_particles((n, n), px, count=5, z_range=(1.5e-3, 2.0e-3), margin=10 * px,
                             seed=7)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=lam, pixel_size=px,
                                   gaussian_noise=0.01, seed=2)
    zs = np.arange(1.45e-3, 2.05e-3 + 1e-9, 50e-6)
    fake_memory["free"] = int(4.5 * _plane_bytes((n, n), np.complex128) / 0.6)
    kw = dict(wavelength=lam, pixel_size=px, iterations=40, engine="generic")
    got = H.find_particles(H.reconstruct(holo, zs, **kw))
    assert "volume" in cuda_path["route"]
    ref = H.find_particles(_reference(monkeypatch, lambda: H.reconstruct(holo, zs, **kw)))
    m = H.match(got, ref, 0.25 * px, 10e-6)
    assert len(got) == len(ref) >= 4 and m.recall == 1.0 and m.precision == 1.0, m


def test_via_cupy_vjp_converts_the_cotangent_and_back(monkeypatch):
    class T:                                    # stand-in of a torch CUDA tensor
        def __init__(self, v):
            self.v = v

    class Cu:                                   # stand-in of a CuPy array
        def __init__(self, v):
            self.v = v

    Cu.__module__ = "cupy._core"
    monkeypatch.setattr(C, "_is_torch_cuda", lambda a: isinstance(a, T))
    monkeypatch.setattr(C, "torch_cuda_usable", lambda *a: any(isinstance(x, T) for x in a))
    monkeypatch.setattr(C, "from_torch", lambda t: Cu(t.v))
    monkeypatch.setattr(C, "to_torch", lambda a: T(a.v))

    def fn(x):
        return Cu(2 * x.v)

    def fwd(x):
        assert isinstance(x, Cu)
        return Cu(2 * x.v), ("res", x)

    def bwd(res, g):
        assert isinstance(g, Cu) and res[0] == "res"
        return (Cu(2 * g.v),)

    f, fw, bw = C.via_cupy_vjp(fn, fwd, bwd)
    out, res = fw(T(3))
    assert isinstance(out, T) and out.v == 6 and isinstance(res[1], Cu)   # residuals stay CuPy
    (gx,) = bw(res, T(1))
    assert isinstance(gx, T) and gx.v == 2
    assert isinstance(f(T(1)), T)
    assert bw(res, Cu(5))[0].v == 10                                      # CuPy in, CuPy out


def test_cuda_propagation_bindings_check_their_arguments_before_the_device():
    """The _cuda propagation bindings refuse bad numbers (no GPU is touched)."""
    if not K.have_cuda_module():
        pytest.skip("CUDA module not built")
    cu = K._cuda
    optics = (532e-9, 2e-6, 2e-6, 0, True, True)
    with pytest.raises(ValueError, match="transfer_apply: dtype must be 'complex64' or "
                                         "'complex128', got 'float32'"):
        cu.transfer_apply(1, 1, "float32", 1, 8, 8, 1e-3, *optics, False, 0)
    with pytest.raises(ValueError, match="transfer_apply: src is a null device pointer"):
        cu.transfer_apply(0, 1, "complex64", 1, 8, 8, 1e-3, *optics, False, 0)
    with pytest.raises(ValueError, match="method must be 0 or 1"):
        cu.transfer_stack(1, 1, 1, 2, "complex64", 1, 8, 8, 532e-9, 2e-6, 2e-6, 3, True,
                          True, 0)
    with pytest.raises(ValueError, match="u_stride"):
        cu.transfer_pullback(1, 5, 1, 1, "complex64", 1, 8, 8, 1e-3, *optics, False, 0)
    with pytest.raises(ValueError, match="wavelength, dy and dx must be > 0"):
        cu.transfer_stack_dz(1, 0, 1, 1, 2, "complex128", 1, 8, 8, -1.0, 2e-6, 2e-6, 0, True,
                             True, 0)
    with pytest.raises(ValueError, match="transfer_stack_adjoint: zs is a null device pointer"):
        cu.transfer_stack_adjoint(1, 1, 0, 2, "complex64", 1, 8, 8, *optics, False, 0)
    with pytest.raises(ValueError, match="u_stride"):
        cu.transfer_stack_dz(1, 3, 1, 1, 2, "complex64", 1, 8, 8, *optics, 0)
    with pytest.raises(ValueError, match="transfer_stack_dz: nz must be >= 0, got -1"):
        cu.transfer_stack_dz(1, 0, 1, 1, -1, "complex64", 1, 8, 8, *optics, 0)


# ------------------------------------------ the fused ∂H engine's GPU class, stand-ins

def _dh_standins():
    """numpy stand-ins of cuda_dh with the kernels' contracts (built on the CPU kernels)."""

    def transfer_table(T, zs, plan):
        zs = np.asarray(zs, dtype=np.float64).reshape(-1)
        assert T.shape == (zs.size, plan.py, plan.px // 2 + 1) and T.flags.c_contiguous
        one = np.ones(T.shape[1:], T.dtype)
        hr, hi = np.empty_like(one), np.empty_like(one)
        for k, z in enumerate(zs):
            K.dh_accumulate(one, hr, hi, plan, float(z), float(z), accumulate=False)
            T[k].real, T[k].imag = hr.real, hi.real

    def prox(x, xp, g, out, *args):
        assert x.ndim == 3 and out.shape == x.shape      # a whole batch per call
        sums = np.zeros(3)
        for j in range(x.shape[0]):
            sums += K.prox_step(x[j], None if xp is None else xp[j], np.ascontiguousarray(g[j]),
                                out[j], *args)
        return tuple(sums)

    def prox_rows(x, xp, buf, out, *args):
        assert x.ndim == 3 and buf.shape[:2] == x.shape[:2] and buf.shape[2] >= x.shape[2]
        sums = np.zeros(3)
        for j in range(x.shape[0]):
            sums += K.prox_step_rows(x[j], None if xp is None else xp[j], buf[j], out[j], *args)
        return tuple(sums)

    return types.SimpleNamespace(
        transfer_table=transfer_table, prox_step=prox, prox_step_rows=prox_rows,
        dh_accumulate_table=lambda O, T, Sr, Si, accumulate: K.dh_accumulate_table(
            O, T, Sr, Si, accumulate=accumulate),
        dh_backproject_table=lambda A, B, T, C_: K.dh_backproject_table(A, B, T, C_))


@pytest.mark.parametrize("tables", ["all", "per batch"])
def test_cuda_fused_engine_class_matches_the_cpu_engine(fake_memory, monkeypatch, tables):
    """HalfVolumeCuda (cuFFT-style whole-grid real transforms, device tables, one
    proximal step per batch of 16 planes) with numpy stand-ins for CuPy and the
    kernels gives the CPU engine's ∂H reconstruction: the fused solver's logic on
    the GPU path, checked without a GPU."""
    if not K.have_cpu():
        pytest.skip("the stand-ins use the CPU kernels")
    from diffimaging import holography as H
    from diffimaging.holography import _dhfast, fused

    n, px, lam = 48, 2e-6, 532e-9
    tab = H.random_particles((n, n), px, count=4, z_range=(1.0e-3, 1.6e-3), margin=8 * px, seed=3)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=lam, pixel_size=px,
                                   gaussian_noise=0.01, seed=4)
    zs = np.linspace(0.95e-3, 1.65e-3, 20)              # two batches on the GPU class (16 + 4)
    kw = dict(wavelength=lam, pixel_size=px, iterations=25, engine="fused", dz_range=(-4e-5, 4e-5))
    ref = H.reconstruct(holo, zs, **kw)

    monkeypatch.setattr(_dhfast.HalfVolumeCuda, "_device_libraries",
                        staticmethod(lambda: (np, _dh_standins())))
    monkeypatch.setattr(fused, "HalfVolume", _dhfast.HalfVolumeCuda)
    table_plane = 2 * n * (n + 1) * 16                  # a generous bound of one table plane
    fake_memory["free"] = 10 * 2**30 if tables == "all" else table_plane   # else: per batch
    made = []
    real_init = _dhfast.HalfVolumeCuda.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        made.append(self)

    monkeypatch.setattr(_dhfast.HalfVolumeCuda, "__init__", init)
    got = H.reconstruct(holo, zs, **kw)
    hv = made[0]
    assert hv.batch == 16 and (hv.T is not None) == (tables == "all")
    np.testing.assert_allclose(got.volume, ref.volume, rtol=1e-7, atol=1e-9)
    assert got.dz == pytest.approx(ref.dz, rel=1e-7, abs=1e-13)
    assert got.reference == pytest.approx(ref.reference, rel=1e-7)
    assert got.history["loss"][-1] == pytest.approx(ref.history["loss"][-1], rel=1e-7)


def test_cuda_dh_bindings_check_their_arguments_before_the_device():
    """The _cuda bindings of the fused ∂H engine refuse bad numbers (no GPU is touched)."""
    if not K.have_cuda_module():
        pytest.skip("CUDA module not built")
    cu = K._cuda
    with pytest.raises(ValueError, match="dh_transfer_table: nxh must be nx / 2 \\+ 1 = 5, got 8"):
        cu.dh_transfer_table(1, "complex64", 1, 2, 8, 8, 8, 532e-9, 2e-6, 2e-6, 0, True, False, 0)
    with pytest.raises(ValueError, match="dh_transfer_table: T is a null device pointer"):
        cu.dh_transfer_table(0, "complex64", 1, 2, 8, 8, 5, 532e-9, 2e-6, 2e-6, 0, True, False, 0)
    with pytest.raises(ValueError, match="wavelength, dy and dx must be > 0"):
        cu.dh_transfer_table(1, "complex64", 1, 2, 8, 8, 5, 0.0, 2e-6, 2e-6, 0, True, False, 0)
    with pytest.raises(ValueError, match="dh_accumulate_table: dtype must be 'complex64' or "
                                         "'complex128', got 'float32'"):
        cu.dh_accumulate_table(1, 1, 1, 1, "float32", 10, 2, False, 0)
    with pytest.raises(ValueError, match="dh_accumulate_table: Si is a null device pointer"):
        cu.dh_accumulate_table(1, 1, 1, 0, "complex64", 10, 2, False, 0)
    with pytest.raises(ValueError, match="dh_backproject_table: batch must be >= 0, got -1"):
        cu.dh_backproject_table(1, 0, 1, 1, "complex128", 10, -1, 0)
    with pytest.raises(ValueError, match="prox_step: dtype must be 'float32' or 'float64', got "
                                         "'complex64'"):
        cu.prox_step(1, 0, 1, 64, 8, 1, 0, "complex64", 1, 8, 8, 0.0, 1.0, 0.0, -1.0, 0.0, 0)
    with pytest.raises(ValueError, match="prox_step: g_row \\(6\\) must be at least nx \\(8\\)"):
        cu.prox_step(1, 0, 1, 64, 6, 1, 0, "float32", 1, 8, 8, 0.0, 1.0, 0.0, -1.0, 0.0, 0)
    with pytest.raises(ValueError,
                       match="prox_step: g_plane \\(10\\) must be at least ny \\* g_row"):
        cu.prox_step(1, 0, 1, 10, 8, 1, 0, "float32", 2, 8, 8, 0.0, 1.0, 0.0, -1.0, 0.0, 0)
    with pytest.raises(ValueError, match="prox_step: lo must be <= hi"):
        cu.prox_step(1, 0, 1, 64, 8, 1, 0, "float32", 1, 8, 8, 0.0, 1.0, 0.0, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="prox_step: out is a null device pointer"):
        cu.prox_step(1, 0, 1, 64, 8, 0, 0, "float64", 1, 8, 8, 0.0, 1.0, 0.0, -1.0, 0.0, 0)
    assert cu.prox_step(0, 0, 0, 0, 8, 0, 0, "float32", 0, 8, 8, 0.0, 1.0, 0.0, -1.0, 0.0, 0) == \
        (0.0, 0.0, 0.0)                                  # nothing to do: no pointer is read


def test_cuda_fpm_binding_checks_its_arguments_before_the_device():
    if not K.have_cuda_module():
        pytest.skip("CUDA module not built")
    cu = K._cuda
    with pytest.raises(ValueError, match="fpm_fidelity: loss must be 0 \\(amplitude\\), 1 "
                                         "\\(poisson\\) or 2 \\(huber\\), got 5"):
        cu.fpm_fidelity(1, 1, 1, 1, 1, 0.0, 5, "complex64", 2, 10, 1, 0)
    with pytest.raises(ValueError, match="fpm_fidelity: dtype must be 'complex64' or"):
        cu.fpm_fidelity(1, 1, 1, 1, 1, 0.0, 0, "float32", 2, 10, 1, 0)
    with pytest.raises(ValueError, match="fpm_fidelity: mask is a null device pointer"):
        cu.fpm_fidelity(1, 1, 0, 1, 1, 0.0, 0, "complex64", 2, 10, 1, 0)
    with pytest.raises(ValueError, match="J and n must be >= 0"):
        cu.fpm_fidelity(1, 1, 1, 1, 1, 0.0, 0, "complex64", -1, 10, 1, 0)
    assert cu.fpm_fidelity(0, 0, 0, 0, 0, 0.0, 0, "complex64", 0, 10, 0, 0) == []


def test_fpm_device_path_runs_on_array_api_arrays(monkeypatch):
    """fpm.reconstruct's device path (object, fields and data in the images' library,
    the small variables on the host), run with torch CPU tensors standing in for CuPy
    arrays (torch refuses numpy-only operations on its tensors, as CuPy does): the
    numpy result to rounding.  Implicit conversion to numpy is refused, as CuPy
    refuses it."""
    torch = pytest.importorskip("torch")
    import sys

    def refuse(self, *args, **kwargs):
        raise TypeError("implicit conversion to a NumPy array is not allowed (as on CuPy)")

    monkeypatch.setattr(torch.Tensor, "__array__", refuse)
    with pytest.raises(TypeError, match="not allowed"):
        np.asarray(torch.ones(2))

    from diffimaging import fpm

    R = sys.modules["diffimaging.fpm.reconstruct"]
    data = fpm.simulate(shape=(32, 32), seed=1)
    ref = fpm.reconstruct(data, iterations=6, dtype="complex128")
    real = R.B.is_cupy_namespace
    monkeypatch.setattr(R.B, "is_cupy_namespace",
                        lambda xp: real(xp) or "torch" in getattr(xp, "__name__", ""))
    got = fpm.reconstruct(torch.from_numpy(np.asarray(data.images)), data.setup, iterations=6,
                          dtype="complex128")
    assert isinstance(got.object, np.ndarray)
    np.testing.assert_allclose(got.object, ref.object, rtol=1e-10,
                               atol=1e-10 * np.abs(ref.object).max())
    assert got.history["final_loss"] == pytest.approx(ref.history["final_loss"], rel=1e-10)
    assert got.geometry["rotation"] == pytest.approx(ref.geometry["rotation"], rel=1e-9, abs=1e-15)


# ------------------------------------------ torch CUDA tensors at the entry points

@pytest.fixture
def torch_cuda_standin(monkeypatch):
    """torch CPU tensors play torch CUDA tensors and numpy arrays of two or more
    dimensions play CuPy arrays (1-d host vectors such as the depths stay numpy, as
    they do on a GPU): the conversions at the entry points are checked without a
    GPU.  Returns the list of tensors viewed as "CuPy" arrays."""
    torch = pytest.importorskip("torch")
    seen = []

    def from_torch(t):
        seen.append(tuple(t.shape))
        assert not t.requires_grad                      # detached before the view
        return t.numpy()

    monkeypatch.setattr(C, "_is_torch_cuda", lambda a: isinstance(a, torch.Tensor))
    monkeypatch.setattr(C, "torch_cuda_usable",
                        lambda *a: any(isinstance(x, torch.Tensor) for x in a))
    monkeypatch.setattr(C, "from_torch", from_torch)
    monkeypatch.setattr(C, "to_torch", lambda a: torch.from_numpy(a))
    monkeypatch.setattr(C, "_is_cupy", lambda a: isinstance(a, np.ndarray) and a.ndim >= 2)
    return seen


def test_every_torch_cuda_entry_point_converts():
    """The entry points the capability table lists for torch CUDA tensors are wrapped."""
    import importlib

    from diffimaging._backend import capabilities as caps

    assert len(caps.TORCH_CUDA) >= 7
    for name in caps.TORCH_CUDA:
        mod, attr = name.rsplit(".", 1)
        fn = getattr(importlib.import_module(mod), attr)
        assert getattr(fn, "torch_cuda", False) is True, name
    assert "holography.reconstruct" in caps.markdown_table().splitlines()[-1]


def test_convert_goes_into_dicts_and_dataclasses(torch_cuda_standin):
    import dataclasses

    import torch

    @dataclasses.dataclass
    class R:
        a: object
        z: np.ndarray
        maps: dict

    r = R(np.ones((2, 2)), np.arange(3.0), {"min": np.zeros((2, 2)), "n": 3})
    t = C.convert(r, "torch")
    assert t is not r and isinstance(t.a, torch.Tensor) and isinstance(t.maps["min"], torch.Tensor)
    assert t.maps["n"] == 3 and t.z is r.z and isinstance(r.a, np.ndarray)   # r untouched
    host = R(np.arange(2.0), np.arange(3.0), {})
    assert C.convert(host, "torch") is host                  # nothing to convert: same object
    back = C.convert({"k": [torch.ones(2, 2, requires_grad=True)]}, "cupy")
    assert isinstance(back["k"][0], np.ndarray) and torch_cuda_standin == [(2, 2)]


def test_backpropagate_takes_torch_cuda_tensors_to_the_device_path(torch_cuda_standin):
    import torch

    from diffimaging import holography as H

    rng = np.random.default_rng(3)
    h = 1.0 + 0.05 * rng.standard_normal((48, 40))
    zs = np.linspace(1e-3, 2e-3, 6)
    kw = dict(wavelength=LAM, pixel_size=PX)
    ref = H.backpropagate(h, zs, **kw)
    got = H.backpropagate(torch.from_numpy(h.copy()), zs, **kw)
    assert torch_cuda_standin == [(48, 40)]
    assert set(got) == set(ref)
    for k in ref:
        assert isinstance(got[k], torch.Tensor), k
        np.testing.assert_array_equal(got[k].numpy(), ref[k])     # the same path, same bits
    stack = H.backpropagate(hologram=torch.from_numpy(h.copy()), z=zs, output="complex", **kw)
    assert isinstance(stack, torch.Tensor) and len(torch_cuda_standin) == 2
    np.testing.assert_array_equal(stack.numpy(), H.backpropagate(h, zs, output="complex", **kw))


def test_reconstruct_takes_torch_cuda_tensors_to_the_device_path(torch_cuda_standin):
    import torch

    from diffimaging import holography as H

    n = 48
    tab = H.random_particles((n, n), PX, count=4, z_range=(1.5e-3, 2.0e-3), margin=8 * PX,
                             seed=5)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=LAM, pixel_size=PX,
                                   gaussian_noise=0.01, seed=2)
    zs = np.linspace(1.45e-3, 2.05e-3, 7)
    kw = dict(wavelength=LAM, pixel_size=PX, iterations=15)
    ref = H.reconstruct(holo, zs, **kw)
    got = H.reconstruct(torch.from_numpy(np.asarray(holo).copy()), zs, **kw)
    assert torch_cuda_standin == [(n, n)]
    # the fused engine ran on the "device" arrays: the same volume, as a torch tensor
    assert isinstance(got.volume, torch.Tensor) and isinstance(got.object, torch.Tensor)
    np.testing.assert_array_equal(got.volume.numpy(), ref.volume)
    assert isinstance(got.z, np.ndarray) and got.dz == ref.dz
    found = H.find_particles(got)
    assert len(found) == len(H.find_particles(ref))


def test_fpm_reconstruct_takes_torch_cuda_tensors_to_the_device_path(torch_cuda_standin):
    import torch

    from diffimaging import fpm

    data = fpm.simulate(shape=(32, 32), seed=1)
    ref = fpm.reconstruct(data.images, data.setup, iterations=4)
    got = fpm.reconstruct(torch.from_numpy(np.asarray(data.images).copy()), data.setup,
                          iterations=4)
    assert torch_cuda_standin == [tuple(np.shape(data.images))]
    assert isinstance(got.object, np.ndarray)                 # the result is on the host
    np.testing.assert_array_equal(got.object, ref.object)
