"""PyTorch autograd for diffimaging's operators, from their explicit VJPs.

``diffimaging.torch.function(fn)`` wraps a differentiable diffimaging function
(one with a registered VJP: :func:`~diffimaging.propagate`,
:func:`~diffimaging.bin`, :func:`~diffimaging.shift`,
:func:`~diffimaging.intensity`, or anything registered with
:func:`~diffimaging.register_vjp`) in a ``torch.autograd.Function``.  The
forward runs diffimaging's array-API reference path on the tensors themselves
(same device, same precision); the backward calls the hand-derived pullback of
:func:`diffimaging.vjp`.  Nothing is traced by torch inside the operator.

Gradient convention: diffimaging's cotangent of a complex variable,
dL/dRe(u) + i dL/dIm(u), is PyTorch's own, so cotangents pass through unchanged.

This module is imported on demand (``import diffimaging.torch``);
``import diffimaging`` alone never imports torch.
"""
from __future__ import annotations

import functools
import numbers

import torch  # absolute import: the PyTorch package, not this module
from torch.autograd.function import once_differentiable

from ._backend import autodiff as _autodiff

__all__ = ["function"]


def _name(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _is_model(fn) -> bool:
    return hasattr(fn, "__diffimaging_vjp__")


def _check_differentiable(fn) -> None:
    """TypeError unless ``fn`` has a registered explicit VJP (or is a Model)."""
    if _is_model(fn):
        return
    if fn not in _autodiff._RULES:
        raise TypeError(f"diffimaging.torch.function: {_name(fn)} has no registered VJP; "
                        f"differentiable functions of diffimaging are propagate, bin, shift "
                        f"and intensity (register others with diffimaging.register_vjp)")


def _vjp(fn, *primals, **static):
    """The public :func:`diffimaging.vjp`, looked up when called."""
    from . import vjp

    return vjp(fn, *primals, **static)


def _parameters(fn) -> dict:
    """Differentiable tensors held by ``fn`` itself, by name (hook).

    Plain functions hold none.  A differentiable object whose pullback returns
    ``(primal cotangents, {name: cotangent})`` (e.g. a future ``Model``) only
    needs this to return its parameter tensors: they are passed to the autograd
    Function as extra inputs, and the dict cotangents are routed back to them.
    """
    return {}


def _split_cotangents(cts):
    """``(primal cotangents, {name: cotangent})`` from a pullback's result, which is
    either a tuple with one cotangent per primal or ``(primal cotangent(s), dict)``."""
    if isinstance(cts, tuple) and len(cts) == 2 and isinstance(cts[1], dict):
        prim, named = cts
        prim = tuple(prim) if isinstance(prim, (tuple, list)) else (prim,)
        return prim, dict(named)
    return tuple(cts), {}


def _check_arg(fn, i, a) -> None:
    if isinstance(a, torch.Tensor):
        return
    if a is None or isinstance(a, (numbers.Number, str)):
        return
    if isinstance(a, (tuple, list)):
        for b in a:
            if isinstance(b, torch.Tensor):
                if b.requires_grad:
                    raise TypeError(f"diffimaging.torch.function({_name(fn)}): argument {i} is a "
                                    f"{type(a).__name__} holding tensors that require grad; stack "
                                    f"them into one tensor (torch.stack) to differentiate them")
            elif not isinstance(b, numbers.Number):
                raise TypeError(f"diffimaging.torch.function({_name(fn)}): argument {i} holds a "
                                f"{type(b).__module__}.{type(b).__name__}; pass torch tensors or "
                                f"Python numbers")
        return
    raise TypeError(f"diffimaging.torch.function({_name(fn)}): argument {i} is a "
                    f"{type(a).__module__}.{type(a).__name__}; positional arguments must be torch "
                    f"tensors (or Python numbers, which get no gradient) - convert with "
                    f"torch.as_tensor(...) first, or call diffimaging.{_name(fn)} directly for "
                    f"numpy arrays")


def _as_cotangent(ct, like, what: str) -> torch.Tensor:
    """The cotangent as a tensor of the input's shape, dtype and device
    (``like = (shape, dtype, device)``)."""
    shape, dtype, device = like
    if not isinstance(ct, torch.Tensor):
        ct = torch.as_tensor(ct, device=device)
    if ct.is_complex() and not dtype.is_complex:
        ct = ct.real
    if tuple(ct.shape) != shape:
        raise RuntimeError(f"internal error: cotangent of {what} has shape {tuple(ct.shape)}, "
                           f"expected {shape}")
    if ct.dtype != dtype or ct.device != device:
        ct = ct.to(dtype=dtype, device=device)
    return ct


class _Spec:
    """What the autograd Function needs besides its tensor inputs."""

    __slots__ = ("fn", "static", "n_primals", "param_names")

    def __init__(self, fn, static, n_primals, param_names):
        self.fn, self.static = fn, static
        self.n_primals, self.param_names = n_primals, param_names


class _DiffImagingFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: _Spec, *inputs):
        n = spec.n_primals
        primals = [a.detach() if isinstance(a, torch.Tensor) else a for a in inputs[:n]]
        static = dict(spec.static)
        if spec.param_names:  # a Model's parameters given as tensors
            static["params"] = {**static.get("params", {}),
                                **{k: v.detach() for k, v in zip(spec.param_names, inputs[n:])}}
        out, pullback = _vjp(spec.fn, *primals, **static)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"diffimaging.torch.function({_name(spec.fn)}) needs a function that "
                            f"returns one tensor, got {type(out).__name__}")
        ctx.spec = spec
        ctx.pullback = pullback
        ctx.likes = [(tuple(a.shape), a.dtype, a.device) if isinstance(a, torch.Tensor) else None
                     for a in inputs]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        spec = ctx.spec
        n = spec.n_primals
        need = ctx.needs_input_grad[1:]
        if not any(need):
            return (None,) * (1 + len(need))
        prim, named = _split_cotangents(ctx.pullback(g))
        grads = []
        for i, like in enumerate(ctx.likes):
            if like is None or not need[i]:
                grads.append(None)
                continue
            if i < n:
                grads.append(_as_cotangent(prim[i], like, f"argument {i}"))
            else:
                key = spec.param_names[i - n]
                grads.append(_as_cotangent(named[key], like, f"parameter {key!r}"))
        return (None, *grads)


def function(fn):
    """Wrap a diffimaging function with an explicit VJP as a differentiable torch function.

    Parameters
    ----------
    fn : callable with a registered VJP
        :func:`diffimaging.propagate`, :func:`diffimaging.bin`,
        :func:`diffimaging.shift`, :func:`diffimaging.intensity` or a function
        registered with :func:`diffimaging.register_vjp`.

    Returns
    -------
    callable ``f(*args, **static)``
        Positional arguments are torch tensors (differentiable: each gets a
        gradient of its own shape and dtype) or Python numbers and tuples of
        numbers (constants, no gradient).  Keyword arguments are static and
        passed to ``fn`` unchanged.  Returns a torch tensor on the inputs'
        device; its backward is ``fn``'s hand-derived pullback.  Double
        backward and the ``torch.func`` transforms are not supported.

    Raises
    ------
    TypeError
        If ``fn`` has no registered VJP, or (on call) if a positional argument
        is not a tensor or a Python number (e.g. a numpy array).

    Example
    -------
    >>> import torch, diffimaging as di, diffimaging.torch
    >>> propagate = di.torch.function(di.propagate)
    >>> intensity = di.torch.function(di.intensity)
    >>> u = torch.ones(64, 64, dtype=torch.complex128, requires_grad=True)
    >>> z = torch.tensor(1e-3, dtype=torch.float64, requires_grad=True)
    >>> loss = intensity(propagate(u, z, wavelength=532e-9, pixel_size=2e-6)).sum()
    >>> loss.backward()                   # u.grad, z.grad from the explicit VJPs
    """
    _check_differentiable(fn)
    name = _name(fn)

    @functools.wraps(fn)
    def wrapped(*args, **static):
        if not args:
            raise TypeError(f"diffimaging.torch.function({name}) needs at least one positional "
                            f"(differentiable) argument")
        for i, a in enumerate(args):
            _check_arg(fn, i, a)
        if not any(isinstance(a, torch.Tensor) for a in args):
            raise TypeError(f"diffimaging.torch.function({name}): no torch tensor among the "
                            f"positional arguments; call diffimaging.{name} directly for other "
                            f"arrays")
        params = _parameters(fn)
        if _is_model(fn):
            # f(x, params={name: tensor}): tensors among the parameter values get gradients
            given = dict(static.pop("params", None) or {})
            unknown = set(given) - set(fn.params)
            if unknown:
                raise KeyError(f"unknown parameter(s) {sorted(unknown)}; the model has "
                               f"{sorted(fn.params)}")
            params = {k: v for k, v in given.items() if isinstance(v, torch.Tensor)}
            static["params"] = {k: v for k, v in given.items() if k not in params}
        spec = _Spec(fn, static, len(args), tuple(params))
        return _DiffImagingFunction.apply(spec, *args, *params.values())

    wrapped.__doc__ = (f"Differentiable torch version of diffimaging.{name} (backward: its explicit "
                       f"VJP).  Positional tensors get gradients; numbers are constants.\n\n"
                       + (fn.__doc__ or ""))
    return wrapped
