"""Array namespaces, dtypes and devices.

The namespace always comes from the inputs (``array_api_compat``); nothing here
is a global backend switch.  Which implementation runs for which array library
is decided in :mod:`.capabilities`; the FFT engine of each library is named in
:func:`.fft.engine`.
"""
from __future__ import annotations

import numbers

import array_api_compat as aac
import numpy as np

__all__ = [
    "namespace",
    "is_array",
    "is_numpy_namespace",
    "is_cupy_namespace",
    "is_torch_namespace",
    "complex_dtype_for",
    "real_dtype_for",
    "dtype_kind",
    "is_complex",
    "device_of",
    "to_host_float64",
    "to_numpy",
]


def is_array(x) -> bool:
    """True for an array of any array-API library (numpy, CuPy, torch, ...), False
    for Python numbers, sequences and everything else."""
    return aac.is_array_api_obj(x) and not isinstance(x, numbers.Number)


def namespace(*arrays, names=None):
    """Array namespace shared by ``arrays`` (Python scalars and ``None`` are skipped).

    Raises ``TypeError`` naming the arguments when they come from different
    array libraries (no silent host/device transfer or conversion).
    """
    found = []
    for i, a in enumerate(arrays):
        if a is None or isinstance(a, (numbers.Number, list, tuple)):
            continue
        if not is_array(a):
            name = names[i] if names else f"argument {i}"
            raise TypeError(f"{name} must be an array (numpy, CuPy, torch or any array-API array), "
                            f"got {type(a).__name__}")
        found.append((names[i] if names else f"argument {i}", a))
    if not found:
        first = names[0] if names else "argument 0"
        raise TypeError(f"{first} must be an array (numpy, CuPy, torch or any array-API array), "
                        f"got {type(arrays[0]).__name__}")
    try:
        return aac.array_namespace(*[a for _, a in found])
    except TypeError as exc:
        libs = ", ".join(f"{n}: {type(a).__module__}.{type(a).__name__}" for n, a in found)
        raise TypeError(f"arguments come from different array libraries ({libs}); convert them "
                        f"to one library (and device) first") from exc


def is_numpy_namespace(xp) -> bool:
    return aac.is_numpy_namespace(xp)


def is_cupy_namespace(xp) -> bool:
    return aac.is_cupy_namespace(xp)


def is_torch_namespace(xp) -> bool:
    return aac.is_torch_namespace(xp)


def _kind(xp, dtype) -> str:
    if dtype == xp.float32:
        return "f4"
    if dtype == xp.float64:
        return "f8"
    if dtype == xp.complex64:
        return "c8"
    if dtype == xp.complex128:
        return "c16"
    return "other"


def dtype_kind(xp, dtype) -> str:
    """'f4', 'f8', 'c8', 'c16' or 'other'."""
    return _kind(xp, dtype)


def complex_dtype_for(xp, dtype):
    """complex64 for float32/complex64, complex128 for float64/complex128."""
    k = _kind(xp, dtype)
    if k in ("f4", "c8"):
        return xp.complex64
    if k in ("f8", "c16"):
        return xp.complex128
    raise TypeError(f"unsupported dtype {dtype}")


def real_dtype_for(xp, dtype):
    """float32 for float32/complex64, float64 for float64/complex128."""
    k = _kind(xp, dtype)
    if k in ("f4", "c8"):
        return xp.float32
    if k in ("f8", "c16"):
        return xp.float64
    raise TypeError(f"unsupported dtype {dtype}")


def is_complex(xp, dtype) -> bool:
    return _kind(xp, dtype) in ("c8", "c16")


def device_of(x):
    return aac.device(x)


def to_host_float64(x, name: str) -> np.ndarray:
    """Convert a scalar, sequence or array of any library to a float64 numpy
    array on the host.  Used for *small* parameters (distances, shifts) only."""
    if isinstance(x, (numbers.Number, list, tuple)):
        arr = np.asarray(x, dtype=np.float64) if not isinstance(x, complex) else None
        if arr is None or arr.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be real, got {x!r}")
        return arr
    if not is_array(x):
        raise TypeError(f"{name} must be a number or an array, got {type(x).__name__}")
    xp = aac.array_namespace(x)
    if xp.isdtype(x.dtype, "complex floating") or xp.isdtype(x.dtype, "bool"):
        raise TypeError(f"{name} must be real, got dtype {x.dtype}")
    if is_numpy_namespace(xp):
        return np.asarray(x, dtype=np.float64)
    if is_cupy_namespace(xp):
        return x.get().astype(np.float64)
    if is_torch_namespace(xp):
        return x.detach().cpu().to(dtype=__import__("torch").float64).numpy()
    y = xp.astype(x, xp.float64)
    try:  # host arrays of any library export DLPack
        return np.array(np.from_dlpack(y), dtype=np.float64)
    except Exception:
        return np.asarray(y, dtype=np.float64)


def to_numpy(x) -> np.ndarray:
    """A numpy array on the host holding ``x`` (an array of any library: numpy,
    CuPy, torch, any DLPack exporter), its dtype kept; for writing files and
    figures.  numpy input is returned as is (no copy)."""
    if isinstance(x, np.ndarray):
        return x
    if not is_array(x):
        return np.asarray(x)
    xp = aac.array_namespace(x)
    if is_cupy_namespace(xp):
        return x.get()
    if is_torch_namespace(xp):
        return x.detach().cpu().resolve_conj().numpy()
    try:
        return np.from_dlpack(x)
    except Exception:
        return np.asarray(x)
