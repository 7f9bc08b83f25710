"""JAX autodiff for diffimaging's operators, from their explicit VJPs.

``diffimaging.jax.function(fn)`` wraps a differentiable diffimaging function
(one with a registered VJP: :func:`~diffimaging.propagate`,
:func:`~diffimaging.bin`, :func:`~diffimaging.shift`,
:func:`~diffimaging.intensity`, or anything registered with
:func:`~diffimaging.register_vjp`) as a ``jax.custom_vjp`` function.  JAX
arrays are converted to numpy at the boundary, so the work is done by
diffimaging's compiled CPU kernels; results come back as JAX arrays.  Under
``jax.jit`` / ``jax.vmap`` the numpy computation runs inside
``jax.pure_callback``.  The work always runs on the host: arrays on an
accelerator are copied to the host and back (explicitly, by this wrapper).

Gradient convention: JAX's cotangent of a complex variable is the complex
conjugate of diffimaging's (and PyTorch's) dL/dRe(u) + i dL/dIm(u).  The
wrapper conjugates complex cotangents on the way in and on the way out, so
``jax.grad`` of a real loss through a wrapped function equals ``jax.grad``
of the same operator written in ``jax.numpy``.

This module is imported on demand (``import diffimaging.jax``);
``import diffimaging`` alone never imports JAX.
"""
from __future__ import annotations

import functools
import inspect
import numbers
import warnings

import jax  # absolute import: the JAX package, not this module
import jax.numpy as jnp
import numpy as np

from ._backend import autodiff as _autodiff

__all__ = ["function"]

_Tracer = jax.core.Tracer


def _pure_callback(callback, result_shape_dtypes, *args):
    """``jax.pure_callback`` that loops over a vmapped axis (``vmap_method`` is
    JAX >= 0.4.34; older versions loop by default, ``vectorized=False``)."""
    if _HAS_VMAP_METHOD:
        return jax.pure_callback(callback, result_shape_dtypes, *args, vmap_method="sequential")
    return jax.pure_callback(callback, result_shape_dtypes, *args)


_HAS_VMAP_METHOD = "vmap_method" in inspect.signature(jax.pure_callback).parameters


def _name(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


_ADAPTERS: dict = {}


def _model_adapter(model, names: tuple):
    """A plain function ``f(x, *values)`` with a registered VJP evaluating ``model``
    with the parameters ``names`` set to ``values`` (cached per model and names)."""
    key = (id(model), names)
    hit = _ADAPTERS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]

    def fn(x, *values):
        return model(x, dict(zip(names, values)))

    def fwd(x, *values):
        return _vjp(model, x, dict(zip(names, values)))

    def bwd(pullback, g):
        gx, gp = pullback(g)
        return (gx, *[gp[k] for k in names])

    fn.__name__ = f"Model[{', '.join(names)}]"
    _autodiff.register_vjp(fn, fwd, bwd)
    _ADAPTERS[key] = (model, fn)
    return fn


def _check_differentiable(fn) -> None:
    """TypeError unless ``fn`` has a registered explicit VJP (or is a Model)."""
    if hasattr(fn, "__diffimaging_vjp__"):
        return
    if fn not in _autodiff._RULES:
        raise TypeError(f"diffimaging.jax.function: {_name(fn)} has no registered VJP; "
                        f"differentiable functions of diffimaging are propagate, bin, shift "
                        f"and intensity (register others with diffimaging.register_vjp)")


def _vjp(fn, *primals, **static):
    """The public :func:`diffimaging.vjp`, looked up when called."""
    from . import vjp

    return vjp(fn, *primals, **static)


def _split_cotangents(cts):
    """Primal cotangents from a pullback's result: a tuple of cotangents, or
    ``(primal cotangents, {name: cotangent})`` for objects holding their own
    parameters (hook for a future ``Model``: the dict part is not routed yet)."""
    if isinstance(cts, tuple) and len(cts) == 2 and isinstance(cts[1], dict):
        prim = cts[0]
        return tuple(prim) if isinstance(prim, (tuple, list)) else (prim,)
    return tuple(cts)


def _is_jax_array(a) -> bool:
    return isinstance(a, (jax.Array, _Tracer))


def _classify(fn, args):
    """Split positional args into a template (constants, with ``None`` at the
    slots of dynamic arrays), the dynamic slot indices and their JAX arrays."""
    template, slots, dyn = [], [], []
    for i, a in enumerate(args):
        if _is_jax_array(a) or isinstance(a, np.ndarray):
            template.append(None)
            slots.append(i)
            dyn.append(jnp.asarray(a))
        elif a is None or isinstance(a, (numbers.Number, str)):
            template.append(a)
        elif isinstance(a, (tuple, list)):
            if any(_is_jax_array(b) or isinstance(b, np.ndarray) for b in a):
                # e.g. shift=(sy, sx) with traced entries: one array, JAX differentiates the stack
                template.append(None)
                slots.append(i)
                dyn.append(jnp.stack([jnp.asarray(b) for b in a]))
            elif all(isinstance(b, numbers.Number) for b in a):
                template.append(tuple(a))
            else:
                bad = next(b for b in a if not isinstance(b, numbers.Number))
                raise TypeError(f"diffimaging.jax.function({_name(fn)}): argument {i} holds a "
                                f"{type(bad).__module__}.{type(bad).__name__}; pass JAX arrays or "
                                f"Python numbers")
        else:
            raise TypeError(f"diffimaging.jax.function({_name(fn)}): argument {i} is a "
                            f"{type(a).__module__}.{type(a).__name__}; positional arguments must "
                            f"be JAX arrays (or numpy arrays / Python numbers) - convert with "
                            f"jnp.asarray(...) first")
    return tuple(template), tuple(slots), dyn


def _fill(template, slots, values):
    args = list(template)
    for i, v in zip(slots, values):
        args[i] = v
    return args


def _is_differentiable_dtype(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.inexact)


# ---------------------------------------------------------------- numpy side

def _np_forward(fn, template, slots, static, dyn_np):
    out = fn(*_fill(template, slots, dyn_np), **static)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"diffimaging.jax.function({_name(fn)}) needs a function that returns one "
                        f"array, got {type(out).__name__}")
    return out


def _np_backward(fn, template, slots, static, pullback, dyn_np, g, dyn_dtypes):
    """Cotangents (JAX convention) of the differentiable dynamic inputs."""
    if pullback is None:  # traced: recompute the forward's residuals
        _, pullback = _vjp(fn, *_fill(template, slots, dyn_np), **static)
    g = np.asarray(g)
    if np.iscomplexobj(g):
        g = np.conj(g)  # JAX -> diffimaging convention
    cts = _split_cotangents(pullback(g))
    res = []
    for k, (i, dt) in enumerate(zip(slots, dyn_dtypes)):
        if not _is_differentiable_dtype(dt):
            continue
        ct = np.asarray(cts[i])
        if np.iscomplexobj(ct):
            ct = np.conj(ct) if jnp.issubdtype(dt, jnp.complexfloating) else ct.real
        shape = tuple(np.shape(dyn_np[k]))
        if ct.shape != shape:
            raise RuntimeError(f"internal error: cotangent of argument {i} has shape {ct.shape}, "
                               f"expected {shape}")
        res.append(np.asarray(ct, dtype=dt))
    return tuple(res)


# ------------------------------------------------------- output shape (traced)

_SHAPES: dict = {}
_SHAPES_MAX = 256


def _out_struct(fn, template, slots, static, dyn):
    """ShapeDtypeStruct of ``fn``'s output, from one evaluation on zeros (cached)."""
    structs = tuple((tuple(a.shape), np.dtype(a.dtype)) for a in dyn)
    key = (fn, template, slots, structs, tuple(sorted(static.items())))
    try:
        hit = _SHAPES.get(key)
    except TypeError:  # unhashable static argument: no caching
        key, hit = None, None
    if hit is not None:
        return hit
    zeros = [np.zeros(s, d) for s, d in structs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _np_forward(fn, template, slots, static, zeros)
    struct = jax.ShapeDtypeStruct(out.shape, out.dtype)
    if key is not None:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        _SHAPES[key] = struct
    return struct


# ------------------------------------------------------------------ JAX side

def _call(fn, template, slots, static, dyn):
    """(out, pullback or None) computed on numpy: directly for concrete arrays,
    through ``jax.pure_callback`` under a trace (no pullback then)."""
    if not any(isinstance(a, _Tracer) for a in dyn):
        dyn_np = [np.asarray(a) for a in dyn]
        out, pullback = _vjp(fn, *_fill(template, slots, dyn_np), **static)
        if not isinstance(out, np.ndarray):
            raise TypeError(f"diffimaging.jax.function({_name(fn)}) needs a function that returns "
                            f"one array, got {type(out).__name__}")
        return jnp.asarray(out), pullback
    struct = _out_struct(fn, template, slots, static, dyn)
    cb = functools.partial(_np_forward, fn, template, slots, static)
    out = _pure_callback(lambda *d: cb([np.asarray(a) for a in d]), struct, *dyn)
    return out, None


def _make_core(fn, template, slots, static):
    @jax.custom_vjp
    def core(*dyn):
        return _call(fn, template, slots, static, dyn)[0]

    def core_fwd(*dyn):
        out, pullback = _call(fn, template, slots, static, dyn)
        # a Partial is a pytree whose function is static data: the numpy pullback
        # rides along with the residuals in eager mode; traced, it is None
        holder = jax.tree_util.Partial(pullback) if pullback is not None else None
        return out, (holder, dyn)

    def core_bwd(res, g):
        holder, dyn = res
        pullback = holder.func if holder is not None else None
        dtypes = [np.dtype(a.dtype) for a in dyn]
        bw = functools.partial(_np_backward, fn, template, slots, static, pullback)
        if not any(isinstance(a, _Tracer) for a in (*dyn, g)):
            cts = bw([np.asarray(a) for a in dyn], g, dtypes)
            cts = [jnp.asarray(c) for c in cts]
        else:
            structs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in dyn
                            if _is_differentiable_dtype(a.dtype))
            cts = list(_pure_callback(
                lambda g_, *d: bw([np.asarray(a) for a in d], np.asarray(g_), dtypes),
                structs, g, *dyn))
        out = []
        for a in dyn:
            if _is_differentiable_dtype(a.dtype):
                out.append(cts.pop(0))
            else:
                out.append(np.zeros(a.shape, dtype=jax.dtypes.float0))
        return tuple(out)

    core.defvjp(core_fwd, core_bwd)
    return core


def function(fn):
    """Wrap a diffimaging function with an explicit VJP as a differentiable JAX function.

    Parameters
    ----------
    fn : callable with a registered VJP
        :func:`diffimaging.propagate`, :func:`diffimaging.bin`,
        :func:`diffimaging.shift`, :func:`diffimaging.intensity` or a function
        registered with :func:`diffimaging.register_vjp`.

    Returns
    -------
    callable ``f(*args, **static)``
        Positional arguments are JAX arrays (differentiable; numpy arrays are
        converted with ``jnp.asarray``; a tuple holding JAX arrays, e.g. a
        shift ``(sy, sx)``, is stacked into one array) or Python numbers and
        tuples of numbers (constants).  Keyword arguments are static and passed
        to ``fn`` unchanged (Python values, not traced arrays).  Returns a JAX array.  Works eagerly and under
        ``jax.jit``, ``jax.grad``, ``jax.vjp`` and ``jax.vmap`` (the numpy
        work runs on the host through ``jax.pure_callback``; vmap loops over
        the batch).  Reverse mode only: ``jax.jvp`` / ``jax.jacfwd`` are not
        supported (``jax.custom_vjp``).

    Notes
    -----
    Eagerly, the gradient reuses the forward's residuals.  Under ``jax.jit``
    the backward recomputes the forward on the host (residuals of the numpy
    kernels cannot cross a compiled boundary), and the output shape is found
    at trace time by one evaluation on zeros (cached per shapes and static
    arguments).  Complex cotangents are conjugated at the boundary (JAX's
    convention is the conjugate of diffimaging's).

    Raises
    ------
    TypeError
        If ``fn`` has no registered VJP, or (on call) if a positional argument
        is neither an array nor a Python number.

    Example
    -------
    >>> import jax, jax.numpy as jnp, diffimaging as di, diffimaging.jax
    >>> jax.config.update("jax_enable_x64", True)
    >>> propagate = di.jax.function(di.propagate)
    >>> intensity = di.jax.function(di.intensity)
    >>> u = jnp.ones((64, 64), jnp.complex128)
    >>> def loss(u, z):
    ...     return intensity(propagate(u, z, wavelength=532e-9, pixel_size=2e-6)).sum()
    >>> du, dz = jax.jit(jax.grad(loss, argnums=(0, 1)))(u, 1e-3)
    """
    _check_differentiable(fn)
    name = _name(fn)
    if hasattr(fn, "__diffimaging_vjp__"):  # a Model: f(x, params={name: array or number})
        model = fn

        def wrapped_model(x, params=None):
            params = dict(params or {})
            unknown = set(params) - set(model.params)
            if unknown:
                raise KeyError(f"unknown parameter(s) {sorted(unknown)}; the model has "
                               f"{sorted(model.params)}")
            names = tuple(sorted(params))
            return function(_model_adapter(model, names))(x, *[params[k] for k in names])

        wrapped_model.__doc__ = ("Differentiable JAX version of a diffimaging Model: f(x, params="
                                 "{name: value}); arrays among the values get gradients.")
        return wrapped_model

    @functools.wraps(fn)
    def wrapped(*args, **static):
        if not args:
            raise TypeError(f"diffimaging.jax.function({name}) needs at least one positional "
                            f"(differentiable) argument")
        template, slots, dyn = _classify(fn, args)
        if not dyn:
            raise TypeError(f"diffimaging.jax.function({name}): no array among the positional "
                            f"arguments")
        return _make_core(fn, template, slots, static)(*dyn)

    wrapped.__doc__ = (f"Differentiable JAX version of diffimaging.{name} (backward: its explicit "
                       f"VJP, conjugated to JAX's convention).  Positional arrays get gradients; "
                       f"numbers are constants.\n\n" + (fn.__doc__ or ""))
    return wrapped
