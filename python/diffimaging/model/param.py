"""System parameters: :class:`Param`."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _backend as B

__all__ = ["Param"]


class Param:
    """A real system parameter (scalar or array): a distance, a shift per capture,
    Zernike coefficients, a gain...

    Parameters
    ----------
    value : float or array
        Initial value, in the unit of the quantity (SI: metres, radians, pixels for shifts).
    bounds : (lo, hi), optional
        The physical range Omega_theta, enforced by projection (clipping) in the solvers.
        Either end may be None.
    fixed : bool
        A fixed parameter is part of the model but never optimised.
    scale : float, optional
        Typical size of a meaningful change of this parameter, used by the solvers
        to scale its steps (so that metres and radians need no hand-tuned step
        sizes).  Default: the bounds' width if both are given, else |value|, else 1.
    """

    def __init__(self, value, *, bounds=None, fixed=False, scale=None):
        if isinstance(value, Param):
            raise TypeError("value must be a number or an array, not a Param")
        if isinstance(value, bool) or isinstance(value, complex):
            raise TypeError(f"a Param must be real, got {value!r}")
        if isinstance(value, (list, tuple)):
            value = np.asarray(value, dtype=np.float64)
        self.value = value
        if bounds is not None:
            if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
                raise ValueError(f"bounds must be a (lo, hi) pair, got {bounds!r}")
            lo, hi = bounds
            if lo is not None and hi is not None and not float(lo) <= float(hi):
                raise ValueError(f"bounds must have lo <= hi, got {bounds!r}")
            bounds = (None if lo is None else float(lo), None if hi is None else float(hi))
        self.bounds = bounds
        self.fixed = bool(fixed)
        if scale is not None and (not np.isfinite(scale) or scale <= 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        self._scale = scale

    @property
    def scale(self) -> float:
        if self._scale is not None:
            return float(self._scale)
        if self.bounds is not None and None not in self.bounds and self.bounds[1] > self.bounds[0]:
            return self.bounds[1] - self.bounds[0]
        v = np.abs(B.to_host_float64(self.value, "value"))
        m = float(np.max(v)) if v.size else 0.0
        return m if m > 0 else 1.0

    @property
    def shape(self) -> tuple:
        """Shape of the value (``()`` for a scalar)."""
        return tuple(np.shape(self.value)) if not hasattr(self.value, "shape") \
            else tuple(int(n) for n in self.value.shape)

    def project(self, v):
        """Clip ``v`` (an array of any library, or a float) to the bounds."""
        if self.bounds is None:
            return v
        lo, hi = self.bounds
        if isinstance(v, numbers.Real):
            if lo is not None:
                v = max(v, lo)
            if hi is not None:
                v = min(v, hi)
            return v
        xp = B.namespace(v)
        return xp.clip(v, lo, hi)

    def __repr__(self):
        extra = f", bounds={self.bounds}" if self.bounds else ""
        extra += ", fixed=True" if self.fixed else ""
        return f"Param({self.value!r}{extra})"
