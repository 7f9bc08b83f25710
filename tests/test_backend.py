"""The internal backend layer: the capability table and its dispatch, the FFT layer
(engines, buffers, the fallback of the buffer engine, frequency grids) and the
public Plan of the padded propagation grid."""
import types
import warnings

import numpy as np
import pytest

import diffimaging as di
from diffimaging import holography as H
from diffimaging._backend import capabilities as C
from diffimaging._backend import fft as F
from diffimaging._backend import kernels as K
from diffimaging.holography._dhfast import HalfVolume
from diffimaging.ops import propagate as P

from conftest import _Strict, _Torch, crandn

LAM, PX = 532e-9, 2e-6
ZS = np.array([3.0e-4, 4.5e-4])


# ---------------------------------------------------------------- capability table

def _numpy_lib():
    return types.SimpleNamespace(name="numpy", to=np.asarray, back=np.asarray)


def _libs_here():
    libs = [("numpy", _numpy_lib)]
    for name, make in (("torch", _Torch), ("array-api", _Strict)):
        try:
            libs.append((name, make))
            make()
        except pytest.skip.Exception:
            libs.pop()
    return libs


def _run(op, lib, rng_seed=0):
    """Run operation ``op`` through its public entry point on arrays of ``lib``;
    returns the result as numpy."""
    rng = np.random.default_rng(rng_seed)
    u = crandn(rng, (2, 18, 21), np.complex128)
    if op == "propagate":
        return lib.back(di.propagate(lib.to(u), 4e-4, wavelength=LAM, pixel_size=PX))
    if op == "bin":
        x = rng.random((2, 18, 21))
        return lib.back(di.bin(lib.to(x), (0.3, -0.2), factor=3))
    if op == "shift":
        return lib.back(di.shift(lib.to(u), (0.3, -1.2)))
    if op == "intensity":
        return lib.back(di.intensity(lib.to(u)))
    if op in ("volume", "dh_fused"):
        o = -0.4 * rng.random((ZS.size, 18, 21))
        if op == "dh_fused" and lib.name == "numpy" and C.route(op, np) == C.KERNEL:
            hv = HalfVolume(ZS, (18, 21), LAM, PX, np.float64)
            return 1.0 + hv.field(hv.spectra(o))
        v = H.Volume(ZS, LAM, PX)
        return lib.back(v.forward(lib.to(o), {"dz": 0.0, "reference": 1.0})[0])
    if op == "backpropagate":
        h = 1.0 + 0.1 * rng.random((18, 21))
        proj = H.backpropagate(lib.to(h), ZS, wavelength=LAM, pixel_size=PX)
        return np.stack([lib.back(proj["min"]), lib.back(proj["max"])])
    if op == "fpm_fidelity":
        from diffimaging.fpm import losses as FL

        mu = 1.2 * np.abs(u) ** 2 + 0.1
        y = 3.0 * rng.random(mu.shape)
        vals, g = FL.gradient(lib.to(mu), lib.to(y), "amplitude", lib.to(np.array([1.0, 0.5])),
                              lib.to(np.ones(mu.shape[1:])))
        return np.concatenate([lib.back(vals).ravel(), lib.back(g).ravel()])
    raise AssertionError(f"no test runner for operation {op!r}: add one")


def test_every_operation_has_a_runner_and_a_row_per_backend():
    for op, row in C.TABLE.items():
        assert set(row) == set(C.BACKENDS)
        for cap in row.values():
            assert cap.path in C.PATHS and cap.reason
    assert set(C.OPERATIONS) == {"propagate", "bin", "shift", "intensity", "volume",
                                 "backpropagate", "dh_fused", "fpm_fidelity"}


@pytest.mark.parametrize("backend,make_lib", _libs_here(), ids=[b for b, _ in _libs_here()])
@pytest.mark.parametrize("op", C.OPERATIONS)
def test_routed_path_matches_the_reference(op, backend, make_lib, monkeypatch):
    lib = make_lib()
    xp = __import__("array_api_compat").array_namespace(lib.to(np.zeros(1)))
    path = C.route(op, xp)
    expected = C.TABLE[op][backend].path
    assert path == (expected if K.have_cpu() else C.REFERENCE)
    got = _run(op, lib)
    monkeypatch.setattr(K, "have_cpu", lambda: False)  # every operation on its reference path
    assert C.route(op, np) == C.REFERENCE
    ref = _run(op, _numpy_lib())
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.max(np.abs(ref)))


def test_route_unknown_operation():
    with pytest.raises(ValueError, match="unknown operation 'nope'"):
        C.route("nope", np)


def _fake_cupy():
    return types.SimpleNamespace(__name__="cupy")


def test_cupy_without_cuda_module_warns_once_per_operation(monkeypatch):
    monkeypatch.setattr(C, "backend_name", lambda xp: "cupy")
    monkeypatch.setattr(K, "have_cuda_module", lambda: False)
    monkeypatch.setattr(K, "cuda_unavailable_reason", lambda: "not part of this build")
    monkeypatch.setattr(C, "_warned", set())
    with pytest.warns(C.BackendFallbackWarning, match="CUDA module is not available.*reference"):
        assert C.route("propagate", _fake_cupy()) == C.REFERENCE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert C.route("propagate", _fake_cupy()) == C.REFERENCE  # once only
    with pytest.warns(C.BackendFallbackWarning, match="diffimaging.bin on CuPy"):
        C.route("bin", _fake_cupy())


def test_cupy_operation_without_cuda_kernel_warns_once(monkeypatch):
    monkeypatch.setattr(C, "backend_name", lambda xp: "cupy")
    monkeypatch.setattr(K, "have_cuda_module", lambda: True)
    monkeypatch.setattr(C, "_warned", set())
    # an operation whose CuPy column is the reference path (none is, today: a stand-in row)
    row = dict(C.TABLE["propagate"], cupy=C.Capability(C.REFERENCE, "no CUDA kernel for it yet"))
    monkeypatch.setitem(C.TABLE, "stand_in_op", row)
    with pytest.warns(C.BackendFallbackWarning, match="no CUDA kernel for it yet"):
        assert C.route("stand_in_op", _fake_cupy()) == C.REFERENCE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.route("stand_in_op", _fake_cupy())
    # every operation of the table has a CUDA kernel, taken without a warning
    monkeypatch.setattr(C, "_warned", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for op in C.OPERATIONS:
            assert C.route(op, _fake_cupy()) == C.CUDA, op


def test_backend_names():
    assert C.backend_name(np) == "numpy"
    pytest.importorskip("torch")
    import array_api_compat.torch as xt

    assert C.backend_name(xt) == "torch"


def test_markdown_table_and_show_config(capsys):
    md = C.markdown_table()
    lines = md.splitlines()
    assert lines[0] == "| operation | numpy | cupy | torch | jax | array-api |"
    for op, row in C.TABLE.items():
        assert f"| `{op}` | " + " | ".join(row[b].path for b in C.BACKENDS) + " |" in lines
        assert row["numpy"].reason in md
    di.show_config()
    out = capsys.readouterr().out
    assert "Capabilities" in out and "| `propagate` |" in out


# ---------------------------------------------------------------------- FFT layer

def test_fftfreq_matches_numpy_grid():
    for n in (1, 2, 7, 8, 33):
        np.testing.assert_allclose(F.fftfreq(n, 2e-6), np.fft.fftfreq(n, 2e-6), rtol=1e-15)
        np.testing.assert_allclose(F.rfftfreq(n, 2e-6), np.fft.rfftfreq(n, 2e-6), rtol=1e-15)
        assert F.fftfreq(n, 1.0).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffer_transforms_equal_numpy_fft(dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 10)).astype(dtype)
    cdt = np.result_type(dtype, np.complex64)
    out = np.empty((6, 6), cdt)
    r = F.r2c(a, (1,), out=out)
    assert r is out or np.shares_memory(r, out)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, np.fft.rfft(a, axis=1), atol=tol * 10)
    full = np.empty((6, 6), cdt)
    full[...] = out
    F.c2c(full, (0,), True, out=full)
    np.testing.assert_allclose(full, np.fft.rfft2(a), atol=tol * 30)
    F.c2c(full, (0,), False, out=full)
    back = np.empty((6, 10), dtype)
    F.c2r(full, (1,), 10, out=back)
    np.testing.assert_allclose(back, a, atol=tol * 10)
    with pytest.raises(ValueError, match="out must have shape"):
        F.r2c(a, (1,), out=np.empty((6, 10), cdt))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffer_engine_fallback_gives_identical_results(dtype, monkeypatch):
    """The pocketfft binding (output buffers) and its fallback on the public
    scipy.fft give the same numbers, on the fused ∂H engine's transforms."""
    if not F.have_buffer_engine():
        pytest.skip("scipy's pocketfft binding is not available: only the fallback runs")
    rng = np.random.default_rng(4)
    img = rng.standard_normal((25, 31)).astype(dtype)

    def transforms():
        hv = HalfVolume([3e-4], (25, 31), LAM, PX, dtype)
        spec = hv.rfft_pad(img, keep=True)
        back = hv.irfft_crop(spec.copy()).copy()
        out = np.empty((25, hv.mx), dtype)
        hv.irfft_crop(spec.copy(), out=out)
        c = spec.astype(np.result_type(dtype, np.complex64))
        return spec, back, out, F.ifftn(c, xp=np, out=np.empty_like(c))

    with_buffers = transforms()
    monkeypatch.setattr(F, "_PP", None)
    assert not F.have_buffer_engine()
    fallback = transforms()
    for a, b in zip(with_buffers, fallback):
        np.testing.assert_array_equal(a, b)


def test_fft_out_rejected_off_numpy():
    xs = pytest.importorskip("array_api_strict")
    u = xs.asarray(np.ones((4, 4), np.complex128))
    with pytest.raises(TypeError, match="numpy arrays only"):
        F.fftn(u, out=np.empty((4, 4), np.complex128))


def test_engine_names():
    assert F.engine(np).startswith("scipy.fft (pocketfft")
    pytest.importorskip("torch")
    import array_api_compat.torch as xt

    assert F.engine(xt) == "torch.fft"


# ---------------------------------------------------------------------- public Plan

@pytest.mark.parametrize("pad", [True, False])
def test_plan_spectrum_inverse_and_transfer_compose_to_propagate(pad):
    rng = np.random.default_rng(5)
    u = crandn(rng, (2, 20, 23), np.complex128)
    z = 5e-4
    p = P.Plan.make(u, z, LAM, PX, "asm", pad, True, False)
    assert p.kernel == (C.route("propagate", np) == C.KERNEL)
    U = p.spectrum(u)
    assert U.shape == (2, p.py, p.px)
    v = p.inverse_crop(U * p.transfer(z))
    ref = di.propagate(u, z, wavelength=LAM, pixel_size=PX, pad=pad, carrier=False)
    np.testing.assert_allclose(v, ref, atol=1e-12 * np.abs(ref).max())
    a3, owned = p.batch3(u)
    assert a3.shape == (2, 20, 23) and not owned


def test_transfer_kappa_is_the_transfer_functions_phase_rate():
    for method in ("asm", "fresnel"):
        for carrier in (True, False):
            ok, kap = P.transfer_kappa((16, 20), 2e-3, wavelength=LAM, pixel_size=PX,
                                       method=method, carrier=carrier)
            H_, kap2 = P.transfer_function((16, 20), 2e-3, wavelength=LAM, pixel_size=PX,
                                           method=method, carrier=carrier, return_kappa=True)
            np.testing.assert_array_equal(kap, kap2)
            np.testing.assert_allclose(H_, ok * np.exp(1j * 2e-3 * kap), atol=1e-12)
    # the half spectrum is the first nx // 2 + 1 columns of the full one
    for nx in (20, 21):
        _, full = P.transfer_kappa((16, nx), 0.0, wavelength=LAM, pixel_size=PX,
                                   band_limit=False, carrier=False)
        _, half = P.transfer_kappa((16, nx), 0.0, wavelength=LAM, pixel_size=PX,
                                   band_limit=False, carrier=False, half=True)
        np.testing.assert_allclose(half, full[:, :nx // 2 + 1], rtol=1e-14)


def test_band_limit_mask_is_the_transfer_functions_support():
    m = P.band_limit_mask((64, 48), 5e-3, wavelength=LAM, pixel_size=PX)
    ok, _ = P.transfer_kappa((64, 48), 5e-3, wavelength=LAM, pixel_size=PX)
    assert 0 < m.sum() < m.size
    np.testing.assert_array_equal(m, ok)  # no evanescent frequency on this grid
    with pytest.raises(ValueError, match="method must be"):
        P.band_limit_mask((8, 8), 1e-3, wavelength=LAM, pixel_size=PX, method="rs")


def test_readme_shows_the_capability_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert C.markdown_table() in readme, "README's capability table is stale: paste " \
        "diffimaging._backend.capabilities.markdown_table()"
