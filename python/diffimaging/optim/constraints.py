"""Constraints ``x ∈ Ω`` for reconstructions.

Constraints (:class:`Constraint`) offer ``project(x)``, the Euclidean
projection onto Ω (``prox`` is the same projection, the proximal operator of
the indicator of Ω, for any step), so they can stand in for regularisers in
proximal methods.

Everything works on arrays of any array-API library; results have the input's
library, device, shape and dtype.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from .. import _backend as B
from ._common import abs2, complex_from, copy, float_param, floating_namespace

__all__ = ["Constraint", "NonNegative", "Box", "Support", "AmplitudeAtMost", "Intersection"]


class Constraint(ABC):
    """Base class of the convex sets ``Ω``: :meth:`project` is the Euclidean projection.

    ``prox(x, step)`` (the proximal operator of the indicator of ``Ω``) is the
    same projection for every step, so constraints can stand in for
    regularisers in proximal methods; ``value(x)`` is 0 (the indicator is not
    evaluated).
    """

    name = "constraint"

    @abstractmethod
    def project(self, x):
        """Euclidean projection of ``x`` onto the set."""

    def __call__(self, x):
        return self.project(x)

    def prox(self, x, step: float = 1.0):
        return self.project(x)

    def value(self, x) -> float:
        return 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NonNegative(Constraint):
    """``x ≥ 0``.

    Real ``x``: ``max(x, 0)``.  Complex ``x``: the projection onto the
    non-negative real axis, ``max(Re x, 0) + 0i`` (the imaginary part is
    dropped; the dtype stays complex).  For "amplitude ≥ 0" constraints on a
    complex field there is nothing to project; see :class:`AmplitudeAtMost`
    for passive objects.
    """

    name = "nonnegative"

    def project(self, x):
        xp, cplx = floating_namespace(x)
        if cplx:
            return xp.astype(xp.clip(xp.real(x), min=0.0), x.dtype)
        return xp.clip(x, min=0.0)


class Box(Constraint):
    """``lo ≤ x ≤ hi`` (Python numbers; ``None`` for an open side).

    Real ``x``: clip.  Complex ``x``: the box applies to the real and
    imaginary parts separately (``lo ≤ Re x ≤ hi`` and ``lo ≤ Im x ≤ hi``),
    which is the exact projection onto that product set.
    """

    name = "box"

    def __init__(self, lo: float | None = None, hi: float | None = None):
        self.lo = None if lo is None else float_param(lo, "lo", finite=False)
        self.hi = None if hi is None else float_param(hi, "hi", finite=False)
        if self.lo is not None and self.hi is not None and self.lo > self.hi:
            raise ValueError(f"Box needs lo <= hi, got lo={self.lo!r} > hi={self.hi!r}")

    def _clip(self, xp, v):
        return xp.clip(v, min=self.lo, max=self.hi)

    def project(self, x):
        xp, cplx = floating_namespace(x)
        if self.lo is None and self.hi is None:
            return copy(xp, x)
        if cplx:
            return complex_from(xp, self._clip(xp, xp.real(x)), self._clip(xp, xp.imag(x)), x.dtype)
        return self._clip(xp, x)

    def __repr__(self) -> str:
        return f"Box(lo={self.lo!r}, hi={self.hi!r})"


class Support(Constraint):
    """``x = 0`` outside a support ``mask`` (boolean, or numeric with values 0/1).

    The mask broadcasts against ``x`` (e.g. an ``(ny, nx)`` mask for a
    ``(batch, ny, nx)`` object) but must not enlarge it.  A numpy mask used
    with arrays of another library (torch, CuPy, ...) is copied once to that
    library and device and cached; masks of another library must match
    ``x``'s library.
    """

    name = "support"

    def __init__(self, mask):
        if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
            raise TypeError(f"mask must be an array (boolean or 0/1), got {type(mask).__name__}")
        xp = B.namespace(mask, names=["mask"])
        if xp.isdtype(mask.dtype, "bool"):
            m = mask
        elif xp.isdtype(mask.dtype, "numeric") and not xp.isdtype(mask.dtype, "complex floating"):
            if not bool(xp.all((mask == 0) | (mask == 1))):
                raise ValueError("mask must be boolean or contain only 0 and 1")
            m = mask != 0
        else:
            raise TypeError(f"mask must be boolean or 0/1 numbers, got dtype {mask.dtype}")
        self.mask = m
        self._xp = xp
        self._cache = {}

    def _mask_for(self, xp, x):
        shape_m, shape_x = tuple(self.mask.shape), tuple(x.shape)
        ok = len(shape_m) <= len(shape_x) and all(
            a == b or a == 1 for a, b in zip(shape_m[::-1], shape_x[::-1]))
        if not ok:
            raise ValueError(f"mask of shape {shape_m} does not broadcast to x of shape {shape_x} "
                             f"(the mask must match the trailing axes of x, or be 1 there)")
        if xp is self._xp or type(x) is type(self.mask):
            return self.mask
        if not B.is_numpy_namespace(self._xp):
            raise TypeError(f"mask ({type(self.mask).__module__}) and x ({type(x).__module__}) come "
                            f"from different array libraries; give a numpy mask or one of x's library")
        dev = B.device_of(x)
        key = (id(xp), str(dev))
        if key not in self._cache:
            self._cache[key] = xp.asarray(self.mask, device=dev)
        return self._cache[key]

    def project(self, x):
        xp, _ = floating_namespace(x)
        m = self._mask_for(xp, x)
        return xp.where(m, x, xp.zeros_like(x))

    def __repr__(self) -> str:
        return f"Support(mask of shape {tuple(self.mask.shape)})"


class AmplitudeAtMost(Constraint):
    """``|x| ≤ a`` (default 1: a passive object transmits at most the incident light).

    Complex ``x``: amplitudes above ``a`` are scaled down to ``a`` with the
    phase kept, ``x · min(1, a/|x|)``.  Real ``x``: clip to ``[−a, a]``.
    """

    name = "amplitude_at_most"

    def __init__(self, a: float = 1.0):
        self.a = float_param(a, "a", nonneg=True)

    def project(self, x):
        xp, cplx = floating_namespace(x)
        if not cplx:
            return xp.clip(x, min=-self.a, max=self.a)
        amp = xp.sqrt(abs2(xp, x))
        return x * (self.a / xp.clip(amp, min=self.a)) if self.a > 0 else xp.zeros_like(x)

    def __repr__(self) -> str:
        return f"AmplitudeAtMost(a={self.a!r})"


class Intersection(Constraint):
    """Applies ``constraints`` one after another (first to last).

    The composition is the exact projection onto the intersection only when
    the projections commute (e.g. ``Support`` and ``AmplitudeAtMost``, or
    ``Support`` and ``NonNegative``/``Box`` containing 0).  Otherwise the result
    satisfies the last constraint but need not be the nearest point of the
    intersection, nor satisfy the earlier constraints (that needs e.g. Dykstra's
    alternating projections).
    """

    name = "intersection"

    def __init__(self, *constraints):
        if not constraints:
            raise ValueError("Intersection needs at least one constraint")
        for i, c in enumerate(constraints):
            if not isinstance(c, Constraint):
                raise TypeError(f"Intersection arguments must be Constraint instances; argument {i} "
                                f"is {type(c).__name__}")
        self.constraints = tuple(constraints)

    def project(self, x):
        for c in self.constraints:
            x = c.project(x)
        return x

    def __repr__(self) -> str:
        return f"Intersection({', '.join(repr(c) for c in self.constraints)})"
