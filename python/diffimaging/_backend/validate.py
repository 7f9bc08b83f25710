"""Argument checks shared by the public functions.  Errors name the argument
and, where a unit slip is likely, say so."""
from __future__ import annotations

import math
import numbers
import operator
import warnings

import numpy as np

from .namespace import dtype_kind, namespace, to_host_float64


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


def n_medium(value, name: str = "n_medium") -> float:
    """The refractive index of the medium (1.0 <= n <= 3, finite): the light's
    wavelength in the medium is the vacuum wavelength / n."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (refractive index of the medium, 1.33 for "
                        f"water), got {value!r}")
    n = float(value)
    if not (math.isfinite(n) and 1.0 <= n <= 3.0):
        raise ValueError(f"{name} must be a refractive index between 1 and 3 (1.0 air, 1.33 water), "
                         f"got {value!r}")
    return n


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


def _is_bool(value) -> bool:
    """A Python/numpy bool, or a 0-d boolean array of any library (never an integer here)."""
    if isinstance(value, (bool, np.bool_)):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and str(dtype).rsplit(".", 1)[-1] in ("bool", "bool_")


def _int_range(minimum, maximum) -> str:
    if maximum is None:
        return {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
    if minimum is None:
        return f"an integer <= {maximum}"
    return f"an integer in {minimum}..{maximum}"


def integer(value, name: str, *, minimum: int | None = None, maximum: int | None = None,
            hint: str = "", type_error: type = TypeError) -> int:
    """``value`` as a Python int, for every integer argument of the package.

    Accepts what :func:`operator.index` accepts: ``int``, numpy integer scalars
    (``np.int64(2)``), 0-d integer arrays of numpy, torch and other libraries.
    Rejects bools and every float, even an integral one (``2.0``: the message
    suggests the int), with ``type_error`` (TypeError unless the caller's API
    documents ValueError); a value outside ``[minimum, maximum]`` raises
    ValueError.  ``hint`` (e.g. "(planes)") follows the range in the messages.
    """
    want = _int_range(minimum, maximum) + (f" {hint}" if hint else "")
    if _is_bool(value):
        raise type_error(f"{name} must be {want}, got the bool {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        if isinstance(value, numbers.Real) and float(value).is_integer():
            raise type_error(f"{name} must be {want}, got the float {value!r} "
                             f"(use {int(value)})") from None
        raise type_error(f"{name} must be {want}, got {value!r}") from None
    if (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        raise ValueError(f"{name} must be {want}, got {n}")
    return n


class ChoiceTypeError(TypeError, ValueError):
    """A string option got a non-string (e.g. the list ``['asm']``).  A TypeError,
    and a ValueError as well, as such values raised before (``except ValueError``
    keeps working)."""


def choice(name: str, value, allowed) -> str:
    """``value`` if it is one of the strings ``allowed``; a :class:`ChoiceTypeError`
    for a non-string (a list ``['asm']``, None) and a ValueError for an unknown
    string, both naming the argument and the allowed values."""
    allowed = tuple(allowed)
    listed = (", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
              if len(allowed) > 1 else repr(allowed[0]))
    if not isinstance(value, str):
        raise ChoiceTypeError(f"{name} must be {listed} (a string), got {type(value).__name__} "
                              f"{value!r}")
    if value not in allowed:
        raise ValueError(f"{name} must be {listed}, got {value!r}")
    return value


def names(value, name: str, allowed, *, hint: str = "") -> tuple:
    """``value`` (one name or a sequence of names) as a tuple of names from
    ``allowed``: TypeError when it is not a sequence, ValueError naming the
    unknown ones (``hint`` appended)."""
    allowed = tuple(allowed)
    if isinstance(value, str):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of names from {allowed}, got {value!r}") from None
    bad = [k for k in value if k not in allowed]
    if bad:
        raise ValueError(f"{name} lists unknown group(s) {bad}; choose from {allowed}"
                         + (f" {hint}" if hint else ""))
    return value


def factor(value) -> int:
    """The binning factor: a positive integer (pixels per output pixel along each axis)."""
    return integer(value, "factor", minimum=1)


#: ``check_finite``'s hint for NaN/Inf in a reconstructed volume or its projections
CORRUPT_VOLUME = ": a corrupt file or a failed reconstruction"


def check_finite(a, name: str, axes=None, *, what: str = "value", hint: str = ""):
    """``ValueError`` when the array ``a`` (any array library) holds NaN or ±Inf.

    The message gives their count (NaN and ±Inf apart) and the index of the first
    one in row-major order, named by ``axes`` (e.g. ``("z", "y", "x")``; leading
    axes beyond those named are called "frame"); ``what`` names one element
    ("pixel", "voxel") and ``hint`` (e.g. "; mask them first") ends the message.
    Integer and boolean arrays pass at no cost.  Returns ``a``.
    """
    xp = namespace(a, names=[name])
    if dtype_kind(xp, a.dtype) not in ("f4", "f8", "c8", "c16"):
        return a
    ok = xp.isfinite(a)
    if bool(xp.all(ok)):
        return a
    shape = tuple(int(n) for n in a.shape)
    bad = xp.reshape(xp.astype(xp.logical_not(ok), xp.int32), (-1,))
    count = int(xp.sum(bad))
    nan = int(xp.sum(xp.astype(xp.isnan(xp.reshape(a, (-1,))), xp.int32)))
    first = tuple(int(i) for i in np.unravel_index(int(xp.argmax(bad)), shape)) if shape else ()
    names = tuple(axes or ())[-len(shape):] if shape else ()
    names = ("frame",) * (len(shape) - len(names)) + names
    size = math.prod(shape)
    raise ValueError(f"{name} has {count} non-finite {what}{'s' if count != 1 else ''} of {size} "
                     f"({nan} NaN, {count - nan} ±Inf), the first at ({', '.join(names)}) = "
                     f"({', '.join(map(str, first))}){hint}")
