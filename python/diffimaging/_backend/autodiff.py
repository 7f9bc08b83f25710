"""Explicit vector-Jacobian products.

Every public differentiable function registers a forward rule, which returns
its output and what the backward rule needs (residuals), and a hand-derived
backward rule.  Nothing is traced.  Gradient convention (CONVENTIONS.md): for a
real loss L of a complex u the cotangent is dL/dRe(u) + i dL/dIm(u); for a
C-linear operator A the pullback of ``u -> A u`` is ``g -> A^H g``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["vjp", "register_vjp"]


class _Rule(NamedTuple):
    fwd: Callable
    bwd: Callable


_RULES: dict[Callable, _Rule] = {}


def register_vjp(fn: Callable, fwd: Callable, bwd: Callable) -> None:
    """Register the explicit VJP of ``fn``.

    ``fwd(*primals, **static) -> (out, residuals)`` and
    ``bwd(residuals, g) -> tuple`` of one cotangent per primal, each with its
    primal's shape and real/complex kind.
    """
    if not callable(fn) or not callable(fwd) or not callable(bwd):
        raise TypeError("register_vjp(fn, fwd, bwd) needs three callables")
    _RULES[fn] = _Rule(fwd, bwd)


def has_rule(fn) -> bool:
    """True if ``fn`` has an explicit VJP registered with :func:`register_vjp`."""
    return _hashable(fn) and fn in _RULES


def _hashable(fn) -> bool:
    try:
        hash(fn)
        return True
    except TypeError:
        return False


def vjp(fn: Callable, *primals, **static):
    """Evaluate ``fn(*primals, **static)`` and return ``(out, pullback)``.

    Positional arguments are the differentiable primals; keyword arguments are
    static.  ``pullback(g)`` returns a tuple with one cotangent per primal.

    Example
    -------
    >>> out, pullback = vjp(propagate, u, 1e-3, wavelength=532e-9, pixel_size=2e-6)
    >>> du, dz = pullback(g)          # g: cotangent of out, same shape as out

    For a :class:`diffimaging.Model`, ``vjp(model, x)`` returns a pullback
    giving ``(gx, {parameter name: cotangent})``.
    """
    custom = getattr(fn, "__diffimaging_vjp__", None)
    if custom is not None:
        # objects with their own VJP (e.g. Model: pullback(g) -> (gx, {param: cotangent}))
        if not primals:
            raise TypeError("vjp needs at least one positional (differentiable) argument")
        return custom(*primals, **static)
    rule = _RULES.get(fn) if _hashable(fn) else None
    if rule is None:
        name = getattr(fn, "__name__", repr(fn))
        raise TypeError(f"{name} has no registered VJP; differentiable functions of diffimaging "
                        f"are propagate, bin, shift and intensity (register others with "
                        f"diffimaging.register_vjp)")
    if not primals:
        raise TypeError("vjp needs at least one positional (differentiable) argument")
    out, res = rule.fwd(*primals, **static)
    n = len(primals)

    def pullback(g):
        cts = rule.bwd(res, g)
        if len(cts) != n:
            raise RuntimeError(f"internal error: {len(cts)} cotangents for {n} primals")
        return tuple(cts)

    return out, pullback
