"""Framework adapters: diffimaging.torch.function and diffimaging.jax.function.

The torch adapter is checked with torch.autograd.gradcheck in double precision
(PyTorch's complex convention is diffimaging's).  The JAX adapter is checked
against jax.grad of the same operators written in jax.numpy (JAX's complex
convention is the conjugate of diffimaging's: the wrapper converts).  Their
shared core (diffimaging.interop.core) is checked on its own, without any
framework, through a minimal numpy adapter.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import diffimaging as di
from diffimaging.interop import core

from conftest import crandn

WL, DX = 500e-9, 1e-6  # metres
UM = 1e-6


@pytest.mark.parametrize("module", ["diffimaging", "diffimaging.interop",
                                    "diffimaging.interop.core"])
def test_import_diffimaging_imports_neither_torch_nor_jax(module):
    code = (f"import sys, {module}\n"
            "assert 'torch' not in sys.modules and 'jax' not in sys.modules, "
            "[m for m in ('torch', 'jax') if m in sys.modules]\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(di.__path__[0]),
                                                     env.get("PYTHONPATH")) if p)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ==================================================================== shared core

class _NumpyAdapter(core.Adapter):
    """The smallest adapter: numpy arrays are the differentiable arguments and
    ``apply`` returns ``(out, pullback)``, so the core is tested on its own."""

    def __init__(self):
        super().__init__("numpy", "numpy", "numpy array", convert="np.asarray(...)",
                         backward_note="backward: its explicit VJP")

    def is_array(self, a):
        return isinstance(a, np.ndarray)

    def pack(self, fn, i, seq):
        return np.stack([np.asarray(b, dtype=float) for b in seq])

    def apply(self, fn, arguments, arrays, static):
        out, pullback = core.vjp(fn, *arguments.fill(arrays), **static)
        return out, lambda g: [pullback(g)[i] for i in arguments.slots]


def _hologram_model():
    return di.Model(di.AbsorptionPhase(), di.Propagate(di.Param(2e-5), 532e-9, 1e-6),
                    di.Intensity(), di.Bin(2, di.Param(np.array([0.1, -0.2]))))


class _Unhashable:
    __eq__ = object.__eq__
    __hash__ = None

    def __call__(self, x):
        return x


def test_core_differentiable_callables_and_names():
    model = _hologram_model()
    for fn in (di.propagate, di.bin, di.shift, di.intensity, model):
        assert core.has_vjp(fn)
    for fn in (np.sin, lambda x: x, _Unhashable()):
        assert not core.has_vjp(fn)
    assert core.is_model(model) and not core.is_model(di.propagate)
    bound = core.BoundModel(model, ["propagate.z"])
    assert core.has_vjp(bound) and not core.is_model(bound)  # a plain function of (x, z)
    assert core.name_of(di.propagate) == "propagate"
    assert core.name_of(model) == "Model" and core.name_of(bound) == "Model[propagate.z]"


def test_core_classify_splits_constants_and_arrays():
    ad = _NumpyAdapter()
    u, s = np.ones((3, 4)), np.array([0.5, 1.0])
    args = (u, 2.5, None, "mean", [1, 2], (np.float64(0.5), s[0]), s)
    layout, arrays = ad.classify(di.bin, args)
    # numpy scalars are numbers (constants); a sequence holding an array is packed
    assert layout.template == (None, 2.5, None, "mean", (1, 2), (0.5, 0.5), None)
    assert layout.slots == (0, 6)
    assert arrays[0] is u and arrays[1] is s
    layout, arrays = ad.classify(di.shift, (u, (np.asarray(0.5), 0.25)))
    assert layout.slots == (0, 1) and layout.template == (None, None)
    np.testing.assert_array_equal(arrays[1], [0.5, 0.25])
    assert layout.fill(["a", "b"]) == ["a", "b"]
    assert core.Arguments((None, 3, None), (0, 2)).fill([1, 2]) == [1, 3, 2]


def test_core_classify_errors_name_the_argument():
    ad = _NumpyAdapter()
    with pytest.raises(TypeError, match=r"diffimaging.numpy.function\(shift\): argument 1 is a "
                                        r"builtins.dict; positional arguments must be numpy "
                                        r"arrays or Python numbers .* np.asarray"):
        ad.classify(di.shift, (np.ones(3), {"sy": 1}))
    with pytest.raises(TypeError, match=r"argument 1 holds a builtins.str; pass numpy arrays or "
                                        r"Python numbers"):
        ad.classify(di.shift, (np.ones(3), (0.5, "x")))


def test_core_call_and_wrap(rng):
    ad = _NumpyAdapter()
    with pytest.raises(TypeError, match=r"numpy.function: sin has no registered VJP; "
                                        r".*register_vjp"):
        ad.wrap(np.sin)
    S = ad.wrap(di.shift)
    assert S.__name__ == "shift" and S.__wrapped__ is di.shift
    assert S.__doc__.startswith("Differentiable numpy version of diffimaging.shift")
    with pytest.raises(TypeError, match=r"function\(shift\) needs at least one positional"):
        S()
    with pytest.raises(TypeError, match=r"no numpy array among the positional arguments .* "
                                        r"call diffimaging.shift directly"):
        S(1.0, (0.5, 0.5))
    u, g = crandn(rng, (5, 6)), crandn(rng, (5, 6))
    out, pullback = S(u, (0.3, -0.2))  # the constant tuple gets no cotangent
    np.testing.assert_array_equal(out, di.shift(u, (0.3, -0.2)))
    (du,) = pullback(g)
    np.testing.assert_allclose(du, di.vjp(di.shift, u, (0.3, -0.2))[1](g)[0])
    with pytest.raises(TypeError, match="returns one numpy array, got tuple"):
        raise ad.output_error(di.shift, (out,))


def test_core_bound_model_and_bind(rng):
    ad = _NumpyAdapter()
    model = _hologram_model()
    x, g = rng.random((2, 8, 8)), rng.random((4, 4))
    z, s = np.asarray(2.3e-5), np.array([0.15, -0.25])
    with pytest.raises(KeyError, match=r"unknown parameter\(s\) \['nope'\]; the model has "
                                       r"\['bin.shift', 'propagate.z'\]"):
        ad.bind(model, {"nope": 1.0})
    # arrays become positional (sorted by name), other values are fixed
    bound, values, static = ad.bind(model, {"propagate.z": z, "bin.shift": (0.15, -0.25)})
    assert bound.names == ("propagate.z",) and values == [z]
    assert static == {"fixed": {"bin.shift": (0.15, -0.25)}}
    assert bound == core.BoundModel(model, ("propagate.z",)) != core.BoundModel(model, ())
    assert hash(bound) == hash(core.BoundModel(model, ["propagate.z"]))
    with pytest.raises(TypeError, match=r"Model\[propagate.z\] takes 1 parameter value"):
        bound(x)
    # the bound model's pullback: one cotangent per positional argument
    y, pb = core.vjp(model, x, {"propagate.z": z, "bin.shift": s})
    gx, gp = pb(g)
    f = ad.wrap(model)
    assert f.__name__ == "Model" and "params" in f.__doc__
    out, pullback = f(x, params={"bin.shift": s, "propagate.z": z})
    np.testing.assert_array_equal(out, y)
    cx, cs, cz = pullback(g)
    np.testing.assert_array_equal(cx, gx)
    np.testing.assert_array_equal(cs, gp["bin.shift"])
    np.testing.assert_array_equal(cz, gp["propagate.z"])


def test_core_reduce_cotangent():
    ct = np.array([1 + 2j, 3 - 1j])
    np.testing.assert_array_equal(core.reduce_cotangent(ct, (2,), False, "x"), [1.0, 3.0])
    assert core.reduce_cotangent(ct, (2,), True, "x") is ct
    real = np.array([1.0, 2.0])
    assert core.reduce_cotangent(real, (2,), True, "x") is real
    with pytest.raises(RuntimeError, match=r"internal error: cotangent of argument 3 has shape "
                                           r"\(2,\), expected \(1, 2\)"):
        core.reduce_cotangent(ct, (1, 2), False, "argument 3")


def test_core_function_doc():
    doc = _NumpyAdapter().function_doc(returns="Line one.\nLine two.", example=">>> 1 + 1",
                                       notes="A note.")
    assert doc.startswith("Wrap a diffimaging function or model with an explicit VJP as a "
                          "differentiable numpy function.\n\nParameters\n----------\n")
    assert "\n    Line one.\n    Line two.\n\nNotes\n-----\nA note.\n\nRaises\n" in doc
    assert doc.endswith("Example\n-------\n>>> 1 + 1\n")
    assert "Notes" not in _NumpyAdapter().function_doc(returns="r", example=">>> 0")


# =========================================================================== torch

@pytest.fixture(scope="module")
def dt():
    torch = pytest.importorskip("torch")
    import diffimaging.torch as dt

    assert dt.torch is torch  # the absolute import found PyTorch, not the module itself
    return dt


def _t(a, requires_grad=True):
    import torch

    return torch.as_tensor(a).requires_grad_(requires_grad)


def _gradcheck(f, inputs, fast_mode=True):
    """gradcheck in double precision; fast mode compares random projections u^T J v
    (real and imaginary parts separately for complex inputs/outputs)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", di.SamplingWarning)
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5,
                                        fast_mode=fast_mode)


@pytest.mark.parametrize("opts", [{}, {"carrier": False}, {"pad": False, "band_limit": False},
                                  {"method": "fresnel"}], ids=["default", "nocarrier", "nopad",
                                                              "fresnel"])
def test_torch_gradcheck_propagate(dt, rng, opts):
    P = dt.function(di.propagate)
    u = _t(crandn(rng, (2, 5, 6)))
    # micrometres, so that gradcheck's eps is a sensible step; 17 um: no frequency sits on the
    # band limit (the band-limit mask is discontinuous in z where one crosses it)
    zt = _t(np.float64(17.0))
    _gradcheck(lambda u, zt: P(u, zt * UM, wavelength=WL, pixel_size=DX, **opts), (u, zt))


def test_torch_gradcheck_propagate_real_field_and_z_stack(dt, rng):
    P = dt.function(di.propagate)
    u = _t(rng.standard_normal((5, 6)))
    zt = _t(np.array([-12.0, 20.0]))
    _gradcheck(lambda u, zt: P(u, zt * UM, wavelength=WL, pixel_size=(DX, 1.5 * DX)), (u, zt))


@pytest.mark.parametrize("complex_image", [False, True])
def test_torch_gradcheck_bin(dt, rng, complex_image):
    Bn = dt.function(di.bin)
    img = crandn(rng, (2, 7, 9)) if complex_image else rng.standard_normal((2, 7, 9))
    x = _t(img)
    s = _t(np.array([[0.3, -0.6], [1.2, 0.45]]))  # one shift per batch entry; away from kinks
    _gradcheck(lambda x, s: Bn(x, s, factor=3), (x, s))
    _gradcheck(lambda x: Bn(x, factor=2, reduce="mean"), (x,))


@pytest.mark.parametrize("complex_field", [False, True])
def test_torch_gradcheck_shift(dt, rng, complex_field):
    S = dt.function(di.shift)
    u = _t(crandn(rng, (2, 6, 7)) if complex_field else rng.standard_normal((2, 6, 7)))
    s = _t(np.array([0.3, -1.7]))
    _gradcheck(lambda u, s: S(u, s), (u, s))


def test_torch_gradcheck_intensity_and_composition(dt, rng):
    P, I = dt.function(di.propagate), dt.function(di.intensity)
    u = _t(crandn(rng, (4, 3)))
    _gradcheck(lambda u: I(u), (u,), fast_mode=False)
    _gradcheck(lambda x: I(x), (_t(rng.standard_normal((3, 4))),), fast_mode=False)
    zt = _t(np.float64(15.0))
    # the full Jacobian (slow mode), every entry against central differences
    _gradcheck(lambda u, zt: I(P(u, zt * UM, wavelength=WL, pixel_size=DX, carrier=False)),
               (u, zt), fast_mode=False)


def test_torch_constants_dtypes_and_numpy_agreement(dt, rng):
    import torch

    P, I = dt.function(di.propagate), dt.function(di.intensity)
    u0 = crandn(rng, (2, 8, 6), np.complex64)
    w = rng.standard_normal((2, 8, 6)).astype(np.float32)
    kw = dict(wavelength=WL, pixel_size=DX, carrier=False)
    # python float z: a constant; the field still gets its gradient
    u = _t(u0)
    (I(P(u, 30 * UM, **kw)) * _t(w, False)).sum().backward()
    assert u.grad.dtype == torch.complex64 and u.grad.shape == u.shape
    # float32 tensor z gets a float32 0-d gradient; a tensor that needs no grad gets none
    u, z = _t(u0, False), _t(np.float32(30 * UM))
    (I(P(u, z, **kw)) * _t(w, False)).sum().backward()
    assert u.grad is None and z.grad.dtype == torch.float32 and z.grad.shape == ()
    # same numbers as the explicit pullback on numpy (compiled kernels)
    u, z = _t(u0.astype(np.complex128)), _t(np.float64(30 * UM))
    (I(P(u, z, **kw)) * _t(w.astype(np.float64), False)).sum().backward()
    v, pb_p = di.vjp(di.propagate, u0.astype(np.complex128), 30 * UM, **kw)
    _, pb_i = di.vjp(di.intensity, v)
    du, dz = pb_p(pb_i(w.astype(np.float64))[0])
    np.testing.assert_allclose(u.grad.numpy(), du, rtol=1e-10, atol=1e-12 * np.abs(du).max())
    np.testing.assert_allclose(z.grad.item(), float(dz), rtol=1e-9)


def test_torch_recovers_distance(dt):
    import torch

    P, I = dt.function(di.propagate), dt.function(di.intensity)
    n = 32
    yy, xx = np.mgrid[:n, :n]
    obj = 1 - 0.5 * np.exp(-((yy - 14) ** 2 + (xx - 18) ** 2) / 8.0)  # absorbing blob
    u = torch.as_tensor(obj.astype(np.complex128))
    kw = dict(wavelength=WL, pixel_size=DX, carrier=False)
    meas = I(P(u, 60 * UM, **kw))
    zt = torch.tensor(50.0, dtype=torch.float64, requires_grad=True)  # micrometres
    opt = torch.optim.LBFGS([zt], lr=1.0, max_iter=40, line_search_fn="strong_wolfe")
    calls = []

    def closure():
        opt.zero_grad()
        loss = ((I(P(u, zt * UM, **kw)) - meas) ** 2).sum()
        loss.backward()
        calls.append(loss.item())
        return loss

    opt.step(closure)
    assert abs(zt.item() - 60.0) < 1e-3, (zt.item(), len(calls))
    assert calls[-1] < 1e-6 * calls[0]


def test_torch_errors(dt, rng):
    import torch

    P = dt.function(di.propagate)
    with pytest.raises(TypeError, match="torch.as_tensor"):
        P(crandn(rng, (4, 4)), 1e-3, wavelength=WL, pixel_size=DX)
    with pytest.raises(TypeError, match="no torch tensor"):
        P(1.0, 1e-3, wavelength=WL, pixel_size=DX)

    def not_registered(x):
        return x

    with pytest.raises(TypeError, match="not_registered has no registered VJP"):
        dt.function(not_registered)
    S = dt.function(di.shift)
    sy = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match="torch.stack"):
        S(torch.ones(4, 4, dtype=torch.complex128), (sy, 0.25))
    assert "propagate" in P.__name__ and ">>>" in dt.function.__doc__


def _two_outputs(x):
    return x, x


di.register_vjp(_two_outputs, lambda x: ((x, x), None), lambda res, g: (g[0] + g[1],))


def test_torch_constants_fixed_params_and_output_errors(dt, rng):
    import torch

    S = dt.function(di.shift)
    u0 = crandn(rng, (4, 5))
    u = _t(u0)
    shift = [torch.tensor(0.5, dtype=torch.float64), 0.25]  # holds a tensor needing no grad: constant
    y = S(u, shift)
    np.testing.assert_allclose(y.detach().numpy(), di.shift(u0, (0.5, 0.25)), rtol=1e-12,
                               atol=1e-14)
    y.abs().sum().backward()
    assert u.grad.shape == u.shape and shift[0].grad is None
    with pytest.raises(TypeError, match=r"argument 1 holds a builtins.str; pass torch tensors"):
        S(u, (0.5, "x"))
    with pytest.raises(TypeError, match=r"function\(_two_outputs\) needs a function that returns "
                                        r"one torch tensor, got tuple"):
        dt.function(_two_outputs)(u)
    # a model's parameter given as a numpy array is fixed (no gradient), a tensor is not
    f = dt.function(_hologram_model())
    x = torch.rand((2, 8, 8), dtype=torch.float64, requires_grad=True)
    s = torch.tensor([0.15, -0.25], dtype=torch.float64, requires_grad=True)
    f(x, params={"propagate.z": np.asarray(2.3e-5), "bin.shift": s}).sum().backward()
    assert x.grad.shape == x.shape and s.grad.shape == s.shape


# ============================================================================= JAX

@pytest.fixture
def jx():
    """(jax, jnp, diffimaging.jax) with 64-bit types enabled for the test."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import diffimaging.jax as dj

    assert dj.jax is jax
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield jax, jnp, dj
    finally:
        jax.config.update("jax_enable_x64", old)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def _grads_agree(jax, loss_ours, loss_ref, args, argnums, tol=1e-10):
    """jax.grad through the wrapper (eager and jit) equals jax.grad of the jnp reference."""
    ref = jax.jit(jax.grad(loss_ref, argnums=argnums))(*args)  # jit: one compile, not one per op
    np.testing.assert_allclose(jax.jit(loss_ours)(*args), jax.jit(loss_ref)(*args), rtol=1e-12)
    for grad in (jax.grad(loss_ours, argnums=argnums), jax.jit(jax.grad(loss_ours, argnums=argnums))):
        got = grad(*args)
        for g, r in zip(got, ref):
            assert g.dtype == r.dtype and g.shape == r.shape
            assert _rel(g, r) < tol, (_rel(g, r), g.dtype)


def _jnp_asm(jnp, u, z, carrier):
    """Angular-spectrum propagation in jax.numpy (pad=False, band_limit=False)."""
    ny, nx = u.shape[-2:]
    fy = jnp.fft.fftfreq(ny, DX)[:, None]
    fx = jnp.fft.fftfreq(nx, DX)[None, :]
    kz = jnp.sqrt(1 / WL ** 2 - fx ** 2 - fy ** 2)  # no evanescent waves on this grid
    phase = 2 * jnp.pi * z * (kz if carrier else kz - 1 / WL)
    return jnp.fft.ifft2(jnp.fft.fft2(u) * jnp.exp(1j * phase))


@pytest.mark.parametrize("carrier", [True, False])
def test_jax_propagate_matches_jnp_reference(jx, rng, carrier):
    jax, jnp, dj = jx
    P = dj.function(di.propagate)
    u = jnp.asarray(crandn(rng, (2, 9, 8)))
    a = jnp.asarray(crandn(rng, (2, 9, 8)))
    b = jnp.asarray(rng.random((2, 9, 8)))

    def loss(prop):  # real loss that sees both Re and Im of the output
        return lambda u, z: (jnp.sum(jnp.real(a * prop(u, z)))
                             + jnp.sum(b * jnp.abs(prop(u, z)) ** 2))

    ours = loss(lambda u, z: P(u, z, wavelength=WL, pixel_size=DX, pad=False, band_limit=False,
                               carrier=carrier))
    ref = loss(lambda u, z: _jnp_asm(jnp, u, z, carrier))
    _grads_agree(jax, ours, ref, (u, 40 * UM), (0, 1))
    _grads_agree(jax, ours, ref, (u, jnp.asarray(-25 * UM)), (0, 1))


@pytest.mark.parametrize("complex_image", [False, True])
def test_jax_bin_matches_jnp_reference(jx, rng, complex_image):
    jax, jnp, dj = jx
    Bn = dj.function(di.bin)
    img = crandn(rng, (3, 8, 10)) if complex_image else rng.standard_normal((3, 8, 10))
    x = jnp.asarray(img)
    a = jnp.asarray(crandn(rng, (3, 4, 5)))

    def ref_bin(x):
        return x.reshape(3, 4, 2, 5, 2).sum(axis=(-1, -3))

    _grads_agree(jax, lambda x: jnp.sum(jnp.real(a * Bn(x, factor=2)) + jnp.abs(Bn(x, factor=2)) ** 2),
                 lambda x: jnp.sum(jnp.real(a * ref_bin(x)) + jnp.abs(ref_bin(x)) ** 2), (x,), (0,))


def test_jax_intensity_and_composition_match_jnp_reference(jx, rng):
    jax, jnp, dj = jx
    P, I = dj.function(di.propagate), dj.function(di.intensity)
    u = jnp.asarray(crandn(rng, (7, 6)))
    w = jnp.asarray(rng.standard_normal((7, 6)))
    _grads_agree(jax, lambda u: jnp.sum(w * I(u)), lambda u: jnp.sum(w * jnp.abs(u) ** 2), (u,), (0,))
    kw = dict(wavelength=WL, pixel_size=DX, pad=False, band_limit=False, carrier=False)
    _grads_agree(jax, lambda u, z: jnp.sum(w * I(P(u, z, **kw))),
                 lambda u, z: jnp.sum(w * jnp.abs(_jnp_asm(jnp, u, z, False)) ** 2),
                 (u, 30 * UM), (0, 1))


def test_jax_shift_matches_jnp_reference(jx, rng):
    jax, jnp, dj = jx
    S = dj.function(di.shift)
    u = jnp.asarray(crandn(rng, (2, 6, 7)))
    a = jnp.asarray(crandn(rng, (2, 6, 7)))

    def ref_shift(u, s):
        fy = jnp.fft.fftfreq(6)[:, None]
        fx = jnp.fft.fftfreq(7)[None, :]
        return jnp.fft.ifft2(jnp.fft.fft2(u) * jnp.exp(-2j * jnp.pi * (fy * s[0] + fx * s[1])))

    def loss(f):
        return lambda u, s: jnp.sum(jnp.real(a * f(u, s)) + jnp.abs(f(u, s)) ** 3)

    _grads_agree(jax, loss(S), loss(ref_shift), (u, jnp.asarray([0.3, -1.7])), (0, 1))
    # a (sy, sx) tuple with a traced entry is stacked into one differentiable array
    _grads_agree(jax, lambda u, sy: loss(S)(u, (sy, 0.25)),
                 lambda u, sy: loss(ref_shift)(u, jnp.stack([sy, jnp.asarray(0.25)])),
                 (u, 0.3), (0, 1))


def test_jax_shifted_bin_and_vmap(jx, rng):
    jax, jnp, dj = jx
    Bn, I, P = dj.function(di.bin), dj.function(di.intensity), dj.function(di.propagate)
    x = rng.standard_normal((9, 12))
    s = np.array([0.3, -0.6])
    w = rng.standard_normal((3, 4))
    # real inputs: the cotangents are those of the explicit pullback
    _, pb = di.vjp(di.bin, x, s, factor=3)
    dx, ds = pb(w)
    for grad in (jax.grad, lambda f, argnums: jax.jit(jax.grad(f, argnums=argnums))):
        gx, gs = grad(lambda x, s: jnp.sum(w * Bn(x, s, factor=3)), argnums=(0, 1))(
            jnp.asarray(x), jnp.asarray(s))
        np.testing.assert_allclose(gx, dx, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gs, ds, rtol=1e-12, atol=1e-14)
    # vmap (a sequential loop of host callbacks) equals the per-item results, gradients too
    us = jnp.asarray(crandn(rng, (3, 6, 6)))
    kw = dict(wavelength=WL, pixel_size=DX, carrier=False)

    def f(u):
        return jnp.sum(I(P(u, 20 * UM, **kw)) * jnp.arange(36.0).reshape(6, 6))

    np.testing.assert_allclose(jax.vmap(f)(us), jnp.stack([f(u) for u in us]), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(us), jnp.stack([jax.grad(f)(u) for u in us]),
                               rtol=1e-12)


def test_jax_single_precision_and_jit_output(jx, rng):
    jax, jnp, dj = jx
    P, I = dj.function(di.propagate), dj.function(di.intensity)
    u = jnp.asarray(crandn(rng, (8, 8), np.complex64))
    kw = dict(wavelength=WL, pixel_size=DX, carrier=False)
    out = P(u, 20 * UM, **kw)
    assert out.dtype == jnp.complex64 and isinstance(out, jax.Array)
    np.testing.assert_array_equal(jax.jit(lambda u: P(u, 20 * UM, **kw))(u), out)
    np.testing.assert_array_equal(out, di.propagate(np.asarray(u), 20 * UM, **kw))
    du, dz = jax.grad(lambda u, z: jnp.sum(I(P(u, z, **kw))), argnums=(0, 1))(
        u, jnp.asarray(20 * UM, jnp.float32))
    assert du.dtype == jnp.complex64 and dz.dtype == jnp.float32 and dz.shape == ()


def test_jax_matches_torch_conjugated(jx, rng):
    """Default options (padding, band limit, carrier): JAX gradient = conj(PyTorch gradient)."""
    jax, jnp, dj = jx
    torch = pytest.importorskip("torch")
    import diffimaging.torch as dt

    u0, a = crandn(rng, (10, 9)), crandn(rng, (10, 9))
    kw = dict(wavelength=WL, pixel_size=DX)
    Pj, Pt = dj.function(di.propagate), dt.function(di.propagate)
    gj = jax.grad(lambda u: jnp.sum(jnp.real(jnp.asarray(a) * Pj(u, 40 * UM, **kw))))(jnp.asarray(u0))
    ut = torch.as_tensor(u0).requires_grad_(True)
    torch.real(torch.as_tensor(a) * Pt(ut, 40 * UM, **kw)).sum().backward()
    np.testing.assert_allclose(np.conj(np.asarray(gj)), ut.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_jax_errors(jx, rng):
    jax, jnp, dj = jx

    def not_registered(x):
        return x

    with pytest.raises(TypeError, match="not_registered has no registered VJP"):
        dj.function(not_registered)
    I = dj.function(di.intensity)
    with pytest.raises(TypeError, match="jnp.asarray"):
        I(object())
    assert "intensity" in I.__name__ and ">>>" in dj.function.__doc__


def test_jax_sequence_and_output_errors(jx):
    jax, jnp, dj = jx
    S = dj.function(di.shift)
    with pytest.raises(TypeError, match=r"jax.function\(shift\): argument 1 holds a builtins.str"):
        S(jnp.ones((4, 4)), (0.5, "x"))
    with pytest.raises(TypeError, match=r"no array among the positional arguments"):
        S(1.0, (0.5, 0.5))
    with pytest.raises(TypeError, match=r"function\(_two_outputs\) needs a function that returns "
                                        r"one array, got tuple"):
        dj.function(_two_outputs)(jnp.ones(3))


def test_torch_function_of_a_model_gradcheck():
    torch = pytest.importorskip("torch")
    import diffimaging.torch as dit

    model = di.Model(di.AbsorptionPhase(),
                     di.Propagate(di.Param(2e-5), 532e-9, 1e-6),
                     di.Intensity(), di.Bin(2, di.Param(np.array([0.1, -0.2]))))
    f = dit.function(model)
    g = torch.Generator().manual_seed(0)
    x = torch.rand((2, 8, 8), dtype=torch.float64, generator=g).requires_grad_(True)
    z = torch.tensor(2.3e-5, dtype=torch.float64, requires_grad=True)
    s = torch.tensor([0.15, -0.25], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, s: f(x, params={"propagate.z": torch.tensor(2.3e-5, dtype=torch.float64),
                                  "bin.shift": s}), (x, s))
    y = f(x, params={"propagate.z": z, "bin.shift": s})
    w = torch.rand(y.shape, dtype=torch.float64, generator=g)
    (y * w).sum().backward()
    yn, pb = di.vjp(model, x.detach().numpy(), {"propagate.z": 2.3e-5, "bin.shift": s.detach().numpy()})
    gx, gp = pb(w.numpy())
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-9, atol=1e-12)
    assert float(z.grad) == pytest.approx(float(gp["propagate.z"]), rel=1e-8)
    np.testing.assert_allclose(s.grad.numpy(), gp["bin.shift"], rtol=1e-8)
    with pytest.raises(KeyError, match="unknown parameter"):
        f(x, params={"nope": z})


def test_jax_function_of_a_model_matches_numpy_vjp():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    import diffimaging.jax as dij

    jax.config.update("jax_enable_x64", True)
    model = di.Model(di.AbsorptionPhase(),
                     di.Propagate(di.Param(2e-5), 532e-9, 1e-6),
                     di.Intensity(), di.Bin(2, di.Param(np.array([0.1, -0.2]))))
    f = dij.function(model)
    rng = np.random.default_rng(4)
    x = rng.random((2, 8, 8))
    w = rng.random((4, 4))
    s = np.array([0.15, -0.25])

    def loss(x, z, s):
        return jnp.sum(jnp.asarray(w) * f(x, params={"propagate.z": z, "bin.shift": s}))

    for fun in (jax.grad(loss, argnums=(0, 1, 2)), jax.jit(jax.grad(loss, argnums=(0, 1, 2)))):
        gx, gz, gs = fun(jnp.asarray(x), jnp.asarray(2.3e-5), jnp.asarray(s))
        _, pb = di.vjp(model, x, {"propagate.z": np.asarray(2.3e-5), "bin.shift": s})
        ex, ep = pb(w)
        np.testing.assert_allclose(np.asarray(gx), ex, rtol=1e-9, atol=1e-12)
        assert float(gz) == pytest.approx(float(ep["propagate.z"]), rel=1e-8)
        np.testing.assert_allclose(np.asarray(gs), ep["bin.shift"], rtol=1e-8)
    with pytest.raises(KeyError, match="unknown parameter"):
        f(jnp.asarray(x), params={"nope": 1.0})
