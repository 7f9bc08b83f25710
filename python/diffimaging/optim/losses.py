"""Data-fidelity terms ``L(pred, y)``: value and gradient with respect to ``pred``.

Every loss works on arrays of any array-API library (numpy, CuPy, torch,
array-api-strict, ...); the namespace comes from the inputs and the gradient
has the shape, dtype, library and device of ``pred``.  ``y`` (the data) is
converted to ``pred``'s precision (so integer counts are accepted); a complex
``y`` with a real ``pred`` is an error.

Gradient convention (CONVENTIONS.md): for a complex ``pred`` the gradient of
the real loss is ``dL/dRe(pred) + i dL/dIm(pred)``, e.g. ``pred - y`` for
:class:`L2`.

Losses are sums over all elements (batch axes included), never means, so that
their scale is that of a negative log-likelihood:

========== ======================================================== ===============
name       value                                                    pred
========== ======================================================== ===============
``l2``     0.5 Σ |pred − y|²                                        real / complex
``poisson`` Σ (pred − y log pred)  (Poisson NLL, counts)            real
``kl``     Σ (y log(y/pred) − y + pred)  (generalised KL, counts)   real
``huber``  Σ h_δ(|pred − y|)                                        real / complex
``l1``     Σ |pred − y|  (optionally smoothed)                      real / complex
========== ======================================================== ===============

Use ``loss(pred, y)`` to get ``(value, grad)`` in one pass; ``loss.value`` and
``loss.grad`` compute one of the two.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from .. import _backend as B
from ._common import abs2, array_kind, float_param, fsum

__all__ = ["Loss", "L2", "Poisson", "KL", "Huber", "L1", "CustomLoss", "get_loss"]


# ------------------------------------------------------------------- base

class Loss(ABC):
    """Base class of the data-fidelity terms ``L(pred, y)``.

    Subclasses implement ``_eval(xp, pred, y, want_value, want_grad)``
    returning ``(value or None, grad or None)`` on checked inputs.

    Methods
    -------
    value(pred, y) -> float
    grad(pred, y) -> array  (shape, dtype, library and device of ``pred``)
    __call__(pred, y) -> (float, array)  both, computed together
    """

    name = "loss"
    _real_pred_only = False
    _nonneg_y = False

    # -- input checks, shared
    def _prepare(self, pred, y):
        xp = B.namespace(pred, y, names=["pred", "y"])
        kind = array_kind(xp, pred, "pred")
        if not hasattr(y, "shape") or not hasattr(y, "dtype"):
            raise TypeError(f"y must be an array of the same shape as pred, got {type(y).__name__}")
        if tuple(pred.shape) != tuple(y.shape):
            raise ValueError(f"pred and y must have the same shape, got pred {tuple(pred.shape)} "
                             f"and y {tuple(y.shape)}")
        pred_complex = kind in ("c8", "c16")
        if self._real_pred_only and pred_complex:
            raise TypeError(f"the {self.name} loss needs a real pred (an intensity in counts), "
                            f"got {pred.dtype}")
        rdt = B.real_dtype_for(xp, pred.dtype)
        if xp.isdtype(y.dtype, "complex floating"):
            if not pred_complex:
                raise TypeError(f"y is complex ({y.dtype}) but pred is real ({pred.dtype}); "
                                f"the {self.name} loss needs real data for a real prediction")
            if y.dtype != pred.dtype:
                y = xp.astype(y, pred.dtype)
        elif xp.isdtype(y.dtype, "real floating") or xp.isdtype(y.dtype, "integral") \
                or xp.isdtype(y.dtype, "bool"):
            if y.dtype != rdt:
                y = xp.astype(y, rdt)
        else:
            raise TypeError(f"y must be a real or complex array, got {y.dtype}")
        if self._nonneg_y and bool(xp.any(y < 0)):
            raise ValueError(f"y must be non-negative counts for the {self.name} loss "
                             f"(found negative values); subtract no background offset below 0")
        return xp, pred, y

    @abstractmethod
    def _eval(self, xp, pred, y, want_value, want_grad):
        """(value or None, gradient or None) of the unreduced loss terms."""

    def value(self, pred, y) -> float:
        """Loss value (a Python float)."""
        xp, pred, y = self._prepare(pred, y)
        return self._eval(xp, pred, y, True, False)[0]

    def grad(self, pred, y):
        """Gradient with respect to ``pred`` (``pred``'s shape, dtype, library, device)."""
        xp, pred, y = self._prepare(pred, y)
        return self._eval(xp, pred, y, False, True)[1]

    def __call__(self, pred, y):
        """``(value, grad)`` computed together."""
        xp, pred, y = self._prepare(pred, y)
        return self._eval(xp, pred, y, True, True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ------------------------------------------------------------------ losses

class L2(Loss):
    """Least squares ``0.5 Σ |pred − y|²`` (Gaussian noise of unit variance).

    ``pred`` real or complex; gradient ``pred − y`` (for complex ``pred``,
    ``dL/dRe + i dL/dIm``).
    """

    name = "l2"

    def _eval(self, xp, pred, y, want_value, want_grad):
        r = pred - y
        val = 0.5 * fsum(xp, abs2(xp, r)) if want_value else None
        return val, (r if want_grad else None)


class Poisson(Loss):
    """Poisson negative log-likelihood ``Σ (pred − y log pred)`` (constant ``log y!`` dropped).

    ``pred`` is the expected number of **counts** per pixel (a real intensity
    in photo-electrons / detector counts, not normalised), ``y`` the measured
    counts (≥ 0, integer or float).

    Below ``floor`` (``pred < floor``, including negative ``pred``) the
    negative log-likelihood is continued linearly by its tangent at
    ``floor``, so value and gradient stay finite and consistent (C¹)::

        value   = Σ f(pred),  f(p) = p − y log p                      for p ≥ floor
                              f(p) = f(floor) + (1 − y/floor)(p − floor)  for p < floor
        gradient = 1 − y / max(pred, floor)

    Below the floor the gradient is thus very negative wherever ``y > 0``
    (it pushes ``pred`` back up); where ``y = 0`` it is 1.
    ``floor`` is in counts, default 1e-9.
    """

    name = "poisson"
    _real_pred_only = True
    _nonneg_y = True

    def __init__(self, floor: float = 1e-9):
        self.floor = float_param(floor, "floor", positive=True)

    def _nll(self, xp, pred, y, want_value, want_grad):
        fl = self.floor
        pc = xp.clip(pred, min=fl)  # max(pred, floor)
        val = grad = None
        if want_value:
            # f(max(p, fl)) + (1 - y/fl) * min(p - fl, 0)
            below = xp.clip(pred - fl, max=0.0)
            v = pc - y * xp.log(pc) + (1.0 - y / fl) * below
            val = fsum(xp, v)
        if want_grad:
            grad = 1.0 - y / pc
        return val, grad

    def _eval(self, xp, pred, y, want_value, want_grad):
        return self._nll(xp, pred, y, want_value, want_grad)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(floor={self.floor!r})"


class KL(Poisson):
    """Generalised Kullback–Leibler divergence ``Σ (y log(y/pred) − y + pred)``, ``0 log 0 = 0``.

    ``pred`` and ``y`` in **counts** (``y ≥ 0``).  It equals the
    :class:`Poisson` negative log-likelihood plus the constant
    ``Σ (y log y − y)``, so it has the same gradient ``1 − y/max(pred, floor)``
    and the same linear continuation below ``floor``; unlike the NLL its
    minimum value (at ``pred = y``) is 0.
    """

    name = "kl"

    def _eval(self, xp, pred, y, want_value, want_grad):
        val, grad = self._nll(xp, pred, y, want_value, want_grad)
        if want_value:
            pos = y > 0
            ylogy = xp.where(pos, y * xp.log(xp.where(pos, y, xp.ones_like(y))), xp.zeros_like(y))
            val = val + fsum(xp, ylogy - y)
        return val, grad


class Huber(Loss):
    """Huber loss ``Σ h_δ(|pred − y|)`` with ``h_δ(r) = r²/2`` for ``r ≤ δ``, ``δ (r − δ/2)`` beyond.

    Quadratic (like :class:`L2`) for small residuals, linear (slope ``δ``,
    like ``δ·``:class:`L1`) for outliers.  For complex residuals it acts on
    the modulus ``|r|``; the gradient is ``r · min(1, δ/|r|)``.  ``delta``
    is in the units of ``pred`` (default 1.0).
    """

    name = "huber"

    def __init__(self, delta: float = 1.0):
        self.delta = float_param(delta, "delta", positive=True)

    def _eval(self, xp, pred, y, want_value, want_grad):
        d = self.delta
        r = pred - y
        a = xp.sqrt(abs2(xp, r))
        val = grad = None
        if want_value:
            h = xp.where(a <= d, 0.5 * a * a, d * (a - 0.5 * d))
            val = fsum(xp, h)
        if want_grad:
            grad = r * (d / xp.clip(a, min=d))
        return val, grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}(delta={self.delta!r})"


class L1(Loss):
    """Least absolute deviations ``Σ |pred − y|`` (Laplace noise), optionally smoothed.

    With ``eps = 0`` (default) the gradient is ``sign(r)`` (``r/|r|`` for
    complex residuals) and 0 where ``r = 0``.  With ``eps > 0`` the smooth
    form ``Σ (sqrt(|r|² + eps²) − eps)`` is used for value and gradient
    (``r / sqrt(|r|² + eps²)``); it is 0 at ``r = 0`` and tends to ``Σ |r|``
    as ``eps → 0``.  ``eps`` is in the units of ``pred``.
    """

    name = "l1"

    def __init__(self, eps: float = 0.0):
        self.eps = float_param(eps, "eps", nonneg=True)

    def _eval(self, xp, pred, y, want_value, want_grad):
        e = self.eps
        r = pred - y
        s2 = abs2(xp, r)
        if e > 0:
            a = xp.sqrt(s2 + e * e)
            val = fsum(xp, a - e) if want_value else None
            grad = r / a if want_grad else None
        else:
            a = xp.sqrt(s2)
            val = fsum(xp, a) if want_value else None
            grad = r / xp.where(a > 0, a, xp.ones_like(a)) if want_grad else None
        return val, grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps!r})"


class CustomLoss(Loss):
    """A user's loss from a pair of callables.

    ``value_fn(pred, y)`` returns the (real) loss value, ``grad_fn(pred, y)``
    its gradient with respect to ``pred`` (same shape as ``pred``; for a
    complex ``pred``, ``dL/dRe + i dL/dIm``).  ``pred`` must be a floating
    array; ``y`` is passed through untouched (any object).
    """

    name = "custom"

    def __init__(self, value_fn, grad_fn, name: str | None = None):
        if not callable(value_fn):
            raise TypeError(f"value_fn must be callable, got {type(value_fn).__name__}")
        if not callable(grad_fn):
            raise TypeError(f"grad_fn must be callable, got {type(grad_fn).__name__}")
        self.value_fn = value_fn
        self.grad_fn = grad_fn
        if name is not None:
            self.name = str(name)

    def _prepare(self, pred, y):
        xp = B.namespace(pred, names=["pred"])
        array_kind(xp, pred, "pred")
        return xp, pred, y

    def _eval(self, xp, pred, y, want_value, want_grad):
        val = grad = None
        if want_value:
            v = self.value_fn(pred, y)
            try:
                val = float(v)
            except TypeError as exc:
                raise TypeError(f"value_fn of the custom loss must return a real scalar, got "
                                f"{type(v).__name__}") from exc
        if want_grad:
            grad = self.grad_fn(pred, y)
            if tuple(getattr(grad, "shape", ())) != tuple(pred.shape):
                raise ValueError(f"grad_fn of the custom loss must return an array of pred's shape "
                                 f"{tuple(pred.shape)}, got "
                                 f"{tuple(getattr(grad, 'shape', ())) or type(grad).__name__}")
        return val, grad

    def __repr__(self) -> str:
        return (f"CustomLoss({getattr(self.value_fn, '__name__', 'value_fn')}, "
                f"{getattr(self.grad_fn, '__name__', 'grad_fn')})")


_BY_NAME = {
    "l2": (L2, ()),
    "poisson": (Poisson, ("floor",)),
    "kl": (KL, ("floor",)),
    "huber": (Huber, ("delta",)),
    "l1": (L1, ("eps",)),
}


def get_loss(spec, **kw) -> Loss:
    """A :class:`Loss` from ``spec``.

    ``spec`` is a name — ``"l2"``, ``"poisson"`` (kw ``floor``), ``"kl"``
    (kw ``floor``), ``"huber"`` (kw ``delta``, default 1.0), ``"l1"`` (kw
    ``eps``) — a :class:`Loss` instance (returned as is; no keywords), or a
    ``(value_fn, grad_fn)`` pair of callables (a :class:`CustomLoss`).
    """
    names = ", ".join(repr(n) for n in _BY_NAME)
    if isinstance(spec, Loss):
        if kw:
            raise TypeError(f"loss is already a Loss instance ({spec!r}); keyword arguments "
                            f"{sorted(kw)} are only for loss names")
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in _BY_NAME:
            raise ValueError(f"loss must be one of {names}, a Loss instance or a (value_fn, grad_fn) "
                             f"pair, got {spec!r}")
        cls, allowed = _BY_NAME[key]
        bad = sorted(set(kw) - set(allowed))
        if bad:
            ok = ", ".join(allowed) if allowed else "none"
            raise TypeError(f"loss {key!r} got unexpected keyword argument(s) {bad} "
                            f"(accepted: {ok})")
        return cls(**kw)
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2 or not all(callable(f) for f in spec):
            raise TypeError(f"loss given as a sequence must be a (value_fn, grad_fn) pair of "
                            f"callables, got {len(spec)} item(s) of types "
                            f"{[type(f).__name__ for f in spec]}")
        if kw:
            raise TypeError(f"keyword arguments {sorted(kw)} are only for loss names")
        return CustomLoss(spec[0], spec[1])
    raise TypeError(f"loss must be one of {names}, a Loss instance or a (value_fn, grad_fn) pair "
                    f"of callables, got {type(spec).__name__}")
