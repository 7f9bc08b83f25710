"""Explicit vector-Jacobian products.

Every public differentiable function registers a forward rule, which returns
its output and what the backward rule needs (residuals), and a hand-derived
backward rule.  Nothing is traced.  Gradient convention (CONVENTIONS.md): for a
real loss L of a complex u the cotangent is dL/dRe(u) + i dL/dIm(u); for a
C-linear operator A the pullback of ``u -> A u`` is ``g -> A^H g``.
"""
from __future__ import annotations

import numbers
from typing import Callable, NamedTuple

from .namespace import device_of, is_array, namespace

__all__ = ["vjp", "register_vjp", "as_cotangent"]


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


def as_cotangent(g, out):
    """The cotangent ``g`` of the output ``out`` as an array of ``out``'s library and
    device: an array passes unchanged; a (nested) list or tuple of numbers, or a
    number, is converted (``[[1, 0], [0, 1]]`` for a numpy output); anything else
    is a TypeError naming the cotangent and the output's type."""
    if is_array(g) or not is_array(out):
        return g
    if isinstance(g, (list, tuple, numbers.Number)):
        xp = namespace(out)
        try:
            return xp.asarray(g, device=device_of(out))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cotangent: cannot convert the {type(g).__name__} to an array like the "
                            f"output ({type(out).__name__} of shape {tuple(out.shape)}): {exc}") from None
    raise TypeError(f"cotangent must be an array like the output ({type(out).__name__} of shape "
                    f"{tuple(out.shape)}), got {type(g).__name__}")


def vjp(fn: Callable, *primals, **static):
    """Evaluate ``fn(*primals, **static)`` and return ``(out, pullback)``.

    Positional arguments are the differentiable primals; keyword arguments are
    static.  ``pullback(g)`` returns a tuple with one cotangent per primal.

    Example
    -------
    >>> out, pullback = vjp(propagate, u, 1e-3, wavelength=532e-9, pixel_size=2e-6)
    >>> du, dz = pullback(g)          # g: cotangent of out, same shape as out

    For a :class:`diffimaging.Model`, ``vjp(model, x)`` returns a pullback
    giving ``(gx, {parameter name: cotangent})``.  The cotangent ``g`` is an array
    of the output's library, or a list / number converted to one
    (:func:`as_cotangent`).
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
        cts = rule.bwd(res, as_cotangent(g, out))
        if len(cts) != n:
            raise RuntimeError(f"internal error: {len(cts)} cotangents for {n} primals")
        return tuple(cts)

    return out, pullback
