"""The JAX part of the adapters: ``jax.custom_vjp`` + ``jax.pure_callback`` around an explicit VJP.

JAX arrays are converted to numpy at the boundary, so the work is done by
diffimaging's compiled CPU kernels; results come back as JAX arrays.  Under
``jax.jit`` / ``jax.vmap`` the numpy computation runs inside
``jax.pure_callback``.  The work always runs on the host: arrays on an
accelerator are copied to the host and back (explicitly, by this adapter).

JAX's cotangent of a complex variable is the complex conjugate of
diffimaging's dL/dRe(u) + i dL/dIm(u): complex cotangents are conjugated on
the way in and on the way out.  Argument handling, models and messages are the
shared :class:`~diffimaging.interop.core.Adapter`.  The public entry point is
:func:`diffimaging.jax.function`.
"""
from __future__ import annotations

import functools
import inspect
import warnings

import jax  # absolute import: the JAX package, not this module
import jax.numpy as jnp
import numpy as np

from . import core

__all__ = ["function"]

_Tracer = jax.core.Tracer
_HAS_VMAP_METHOD = "vmap_method" in inspect.signature(jax.pure_callback).parameters


def _pure_callback(callback, result_shape_dtypes, *args):
    """``jax.pure_callback`` that loops over a vmapped axis (``vmap_method`` is
    JAX >= 0.4.34; older versions loop by default, ``vectorized=False``)."""
    if _HAS_VMAP_METHOD:
        return jax.pure_callback(callback, result_shape_dtypes, *args, vmap_method="sequential")
    return jax.pure_callback(callback, result_shape_dtypes, *args)


def _is_differentiable_dtype(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.inexact)


# ---------------------------------------------------------------- numpy side

def _np_forward(fn, arguments, static, arrays_np):
    out = fn(*arguments.fill(arrays_np), **static)
    if not isinstance(out, np.ndarray):
        raise _ADAPTER.output_error(fn, out)
    return out


def _np_backward(fn, arguments, static, pullback, arrays_np, g, dtypes):
    """Cotangents (JAX convention) of the arguments of differentiable dtype."""
    if pullback is None:  # traced: recompute the forward's residuals
        _, pullback = core.vjp(fn, *arguments.fill(arrays_np), **static)
    g = np.asarray(g)
    if np.iscomplexobj(g):
        g = np.conj(g)  # JAX -> diffimaging convention
    cts = pullback(g)
    res = []
    for slot, a, dt in zip(arguments.slots, arrays_np, dtypes):
        if not _is_differentiable_dtype(dt):
            continue
        complex_input = jnp.issubdtype(dt, jnp.complexfloating)
        ct = core.reduce_cotangent(np.asarray(cts[slot]), np.shape(a), complex_input,
                                   f"argument {slot}")
        res.append(np.asarray(np.conj(ct) if complex_input else ct, dtype=dt))
    return tuple(res)


# ------------------------------------------------------- output shape (traced)

_SHAPES: dict = {}
_SHAPES_MAX = 256


def _out_struct(fn, arguments, static, arrays):
    """ShapeDtypeStruct of ``fn``'s output, from one evaluation on zeros (cached)."""
    structs = tuple((tuple(a.shape), np.dtype(a.dtype)) for a in arrays)
    key = (fn, arguments, structs, tuple(sorted(static.items())))
    try:
        hit = _SHAPES.get(key)
    except TypeError:  # unhashable static argument: no caching
        key, hit = None, None
    if hit is not None:
        return hit
    zeros = [np.zeros(s, d) for s, d in structs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _np_forward(fn, arguments, static, zeros)
    struct = jax.ShapeDtypeStruct(out.shape, out.dtype)
    if key is not None:
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        _SHAPES[key] = struct
    return struct


# ------------------------------------------------------------------ JAX side

def _call(fn, arguments, static, arrays):
    """(out, pullback or None) computed on numpy: directly for concrete arrays,
    through ``jax.pure_callback`` under a trace (no pullback then)."""
    if not any(isinstance(a, _Tracer) for a in arrays):
        arrays_np = [np.asarray(a) for a in arrays]
        out, pullback = core.vjp(fn, *arguments.fill(arrays_np), **static)
        if not isinstance(out, np.ndarray):
            raise _ADAPTER.output_error(fn, out)
        return jnp.asarray(out), pullback
    struct = _out_struct(fn, arguments, static, arrays)
    cb = functools.partial(_np_forward, fn, arguments, static)
    out = _pure_callback(lambda *d: cb([np.asarray(a) for a in d]), struct, *arrays)
    return out, None


def _custom_vjp(fn, arguments, static):
    """A ``jax.custom_vjp`` function of the dynamic arrays of ``arguments``."""
    @jax.custom_vjp
    def op(*arrays):
        return _call(fn, arguments, static, arrays)[0]

    def op_fwd(*arrays):
        out, pullback = _call(fn, arguments, static, arrays)
        # a Partial is a pytree whose function is static data: the numpy pullback
        # rides along with the residuals in eager mode; traced, it is None
        holder = jax.tree_util.Partial(pullback) if pullback is not None else None
        return out, (holder, arrays)

    def op_bwd(res, g):
        holder, arrays = res
        pullback = holder.func if holder is not None else None
        dtypes = [np.dtype(a.dtype) for a in arrays]
        bw = functools.partial(_np_backward, fn, arguments, static, pullback)
        if not any(isinstance(a, _Tracer) for a in (*arrays, g)):
            cts = [jnp.asarray(c) for c in bw([np.asarray(a) for a in arrays], g, dtypes)]
        else:
            structs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in arrays
                            if _is_differentiable_dtype(a.dtype))
            cts = list(_pure_callback(
                lambda g_, *d: bw([np.asarray(a) for a in d], np.asarray(g_), dtypes),
                structs, g, *arrays))
        out = []
        for a in arrays:
            if _is_differentiable_dtype(a.dtype):
                out.append(cts.pop(0))
            else:
                out.append(np.zeros(a.shape, dtype=jax.dtypes.float0))
        return tuple(out)

    op.defvjp(op_fwd, op_bwd)
    return op


class _JaxAdapter(core.Adapter):
    def __init__(self):
        super().__init__("jax", "JAX", "array", convert="jnp.asarray(...)",
                         backward_note="backward: its explicit VJP, conjugated to JAX's "
                                       "convention")

    def is_array(self, a) -> bool:
        return isinstance(a, (jax.Array, _Tracer, np.ndarray))

    def as_array(self, a):
        return jnp.asarray(a)

    def pack(self, fn, i, seq):
        # e.g. shift=(sy, sx) with traced entries: one array, JAX differentiates the stack
        return jnp.stack([jnp.asarray(b) for b in seq])

    def param_is_input(self, value) -> bool:
        # every value is positional: numbers become constants, arrays (traced or
        # not) get gradients, and the static arguments stay hashable for the
        # output-shape cache
        return True

    def apply(self, fn, arguments, arrays, static):
        return _custom_vjp(fn, arguments, static)(*arrays)


_ADAPTER = _JaxAdapter()


def function(fn):
    return _ADAPTER.wrap(fn)


function.__doc__ = _ADAPTER.function_doc(
    returns="""\
Positional arguments are JAX arrays (differentiable; numpy arrays are
converted with ``jnp.asarray``; a tuple holding JAX arrays, e.g. a
shift ``(sy, sx)``, is stacked into one array) or Python numbers and
tuples of numbers (constants).  Keyword arguments are static and passed
to ``fn`` unchanged (Python values, not traced arrays).  For a model,
``params`` maps parameter names to values: arrays get gradients,
numbers are constants.  Returns a JAX array.  Works eagerly and under
``jax.jit``, ``jax.grad``, ``jax.vjp`` and ``jax.vmap`` (the numpy
work runs on the host through ``jax.pure_callback``; vmap loops over
the batch).  Reverse mode only: ``jax.jvp`` / ``jax.jacfwd`` are not
supported (``jax.custom_vjp``).""",
    notes="""\
Eagerly, the gradient reuses the forward's residuals.  Under ``jax.jit``
the backward recomputes the forward on the host (residuals of the numpy
kernels cannot cross a compiled boundary), and the output shape is found
at trace time by one evaluation on zeros (cached per shapes and static
arguments).  Complex cotangents are conjugated at the boundary (JAX's
convention is the conjugate of diffimaging's).""",
    example="""\
>>> import jax, jax.numpy as jnp, diffimaging as di, diffimaging.jax
>>> jax.config.update("jax_enable_x64", True)
>>> propagate = di.jax.function(di.propagate)
>>> intensity = di.jax.function(di.intensity)
>>> u = jnp.ones((64, 64), jnp.complex128)
>>> def loss(u, z):
...     return intensity(propagate(u, z, wavelength=532e-9, pixel_size=2e-6)).sum()
>>> du, dz = jax.jit(jax.grad(loss, argnums=(0, 1)))(u, 1e-3)""")
