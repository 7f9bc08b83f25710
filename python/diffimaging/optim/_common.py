"""Argument checks and array helpers shared by the losses, regularisers and
constraints (any array-API library; results in the input's library)."""
from __future__ import annotations

import math
import numbers

from .. import _backend as B

__all__ = ["float_param", "array_kind", "floating_namespace", "abs2", "fsum", "complex_from", "copy"]


def float_param(value, name: str, *, positive: bool = False, nonneg: bool = False,
                finite: bool = True) -> float:
    """A real Python number (or 0-d array) checked for sign and finiteness;
    TypeError / ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if hasattr(value, "shape") and tuple(getattr(value, "shape")) == ():
            value = float(B.to_host_float64(value, name))
        else:
            raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (finite and not math.isfinite(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if nonneg and not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return value


def array_kind(xp, x, name: str) -> str:
    """'f4', 'f8', 'c8' or 'c16' for a floating array, else TypeError naming it."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    kind = B.dtype_kind(xp, x.dtype)
    if kind == "other":
        raise TypeError(f"{name} must be float32, float64, complex64 or complex128, got {x.dtype}")
    return kind


def floating_namespace(x, name: str = "x"):
    """``(xp, is_complex)`` of a floating array ``x`` (TypeError naming it otherwise)."""
    xp = B.namespace(x, names=[name])
    kind = array_kind(xp, x, name)
    return xp, kind in ("c8", "c16")


def abs2(xp, r):
    """|r|² (real dtype) for a real or complex array."""
    if B.is_complex(xp, r.dtype):
        re, im = xp.real(r), xp.imag(r)
        return re * re + im * im
    return r * r


def fsum(xp, a) -> float:
    """Sum of all elements as a Python float."""
    return float(xp.sum(a))


def complex_from(xp, re, im, dtype):
    """The complex array ``re + i im`` of ``dtype``."""
    return xp.astype(re, dtype) + xp.astype(im, dtype) * 1j


def copy(xp, x):
    """A copy of ``x`` (same library, device and dtype)."""
    return xp.asarray(x, copy=True)
