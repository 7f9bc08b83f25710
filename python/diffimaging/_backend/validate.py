"""Argument checks shared by the public functions.  Errors name the argument
and, where a unit slip is likely, say so."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .namespace import dtype_kind, to_host_float64


class SamplingWarning(UserWarning):
    """The sampling of the grid makes a result unreliable (numbers in the message)."""


def positive_scalar(value, name: str, unit: str = "m", typical: tuple | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        arr = None
        if hasattr(value, "shape") and tuple(getattr(value, "shape")) == ():
            arr = to_host_float64(value, name)
        if arr is None:
            raise TypeError(f"{name} must be a real number in {unit}, got {value!r}")
        value = float(arr)
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite number in {unit}, got {value!r}")
    if typical is not None and not (typical[0] <= value <= typical[1]):
        warnings.warn(f"{name} = {value!r} {unit} is outside the usual range "
                      f"[{typical[0]:g}, {typical[1]:g}] {unit}: lengths are in metres "
                      f"(e.g. 2e-6 for 2 um, 532e-9 for 532 nm)", UserWarning, stacklevel=4)
    return value


def pixel_size(value, name: str = "pixel_size") -> tuple[float, float]:
    """A float or a (dy, dx) pair, in metres."""
    if isinstance(value, (tuple, list)) or (hasattr(value, "shape") and len(getattr(value, "shape")) == 1):
        vals = list(to_host_float64(value, name).reshape(-1))
        if len(vals) != 2:
            raise ValueError(f"{name} must be a float or a (dy, dx) pair in metres, got {value!r}")
        dy = positive_scalar(vals[0], f"{name}[0] (dy)", typical=(1e-9, 1e-2))
        dx = positive_scalar(vals[1], f"{name}[1] (dx)", typical=(1e-9, 1e-2))
        return dy, dx
    d = positive_scalar(value, name, typical=(1e-9, 1e-2))
    return d, d


def wavelength(value) -> float:
    return positive_scalar(value, "wavelength", typical=(1e-11, 1e-3))


def field_array(x, name: str, xp, *, allow_real: bool = True):
    """Checks a (..., ny, nx) float/complex array."""
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (..., ny, nx), got shape "
                         f"{tuple(x.shape)}")
    kind = dtype_kind(xp, x.dtype)
    if kind == "other":
        raise TypeError(f"{name} must be float32, float64, complex64 or complex128, got {x.dtype}"
                        f" (convert integer or boolean images with .astype(float32) first)")
    if not allow_real and kind in ("f4", "f8"):
        raise TypeError(f"{name} must be complex, got {x.dtype}")
    if 0 in tuple(x.shape)[-2:]:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return kind


def factor(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if isinstance(value, float) and value.is_integer():
            raise TypeError(f"factor must be an integer, got the float {value!r} (use {int(value)})")
        raise TypeError(f"factor must be a positive integer, got {value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"factor must be a positive integer, got {value}")
    return value
