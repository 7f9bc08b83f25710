"""Small array-API helpers shared by the operators."""
from __future__ import annotations

import math

import numpy as np

from .namespace import dtype_kind, to_host_float64


def broadcast_batch(a: tuple, b: tuple, names: tuple[str, str]) -> tuple:
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ValueError(f"batch shapes do not broadcast: {names[0]} has batch shape {tuple(a)}, "
                         f"{names[1]} has batch shape {tuple(b)}") from None


def sum_to_shape(xp, a, shape: tuple):
    """Sum ``a`` over the axes that broadcasting added to reach ``shape``."""
    shape = tuple(shape)
    if tuple(a.shape) == shape:
        return a
    lead = a.ndim - len(shape)
    if lead > 0:
        a = xp.sum(a, axis=tuple(range(lead)))
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, a.shape)) if n == 1 and m != 1)
    if axes:
        a = xp.sum(a, axis=axes, keepdims=True)
    return xp.reshape(a, shape)


def prod(t) -> int:
    return int(math.prod(t))


def parse_shift(shift, xp, name: str = "shift"):
    """Returns (host float64 array (..., 2), batch shape, kind, dtype) for a
    tuple/list or an array of the data's library."""
    if isinstance(shift, (list, tuple)):
        host = np.asarray(shift, dtype=np.float64)
        kind, dtype = "sequence", None
    else:
        if getattr(shift, "ndim", None) is None:
            raise TypeError(f"{name} must be a (sy, sx) pair or an array of shape (..., 2), got "
                            f"{type(shift).__name__}")
        if dtype_kind(xp, shift.dtype) not in ("f4", "f8"):
            if xp.isdtype(shift.dtype, "integral"):
                host = to_host_float64(shift, name)
                return _check_host(host, name), tuple(host.shape[:-1]), "sequence", None
            else:
                raise TypeError(f"{name} must be real (pixels), got dtype {shift.dtype}")
        else:
            host = to_host_float64(shift, name)
        kind, dtype = "array", shift.dtype
    return _check_host(host, name), tuple(host.shape[:-1]), kind, dtype


def wrap_period(s, n: int):
    """Shifts ``s`` (float64 array, in samples) reduced modulo the period ``n`` to
    [-n/2, n/2], exactly: ``fmod`` is exact in floating point, and the one
    correction by ``n`` that follows is exact too (Sterbenz: the remainder and ``n``
    are within a factor of two).  A Fourier phase ramp exp(-2 pi i f s) at f = j / n
    is the same for ``s`` and the result, which keeps it accurate for any ``s``
    (the product f s of a huge shift has lost its fractional part)."""
    r = np.fmod(np.asarray(s, dtype=np.float64), float(n))
    half = 0.5 * n
    return np.where(r > half, r - n, np.where(r < -half, r + n, r))


def _check_host(host, name):
    if host.ndim < 1 or host.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (..., 2) ordered (sy, sx), got shape {host.shape}")
    if not np.all(np.isfinite(host)):
        raise ValueError(f"{name} must be finite, got {host.reshape(-1)[:8]}")
    return host
