"""Host side of the CUDA kernels: device arrays, streams, memory-sized batches.

The CUDA module ``_cuda`` takes raw device pointers (pybind11 has no DLPack
caster, see shared/CONVENTIONS.md).  Everything a kernel call needs on the host
is here, written once:

- :func:`device_pointer`: the pointer of a CuPy array after strict checks
  (a CuPy array, the expected dtype, C-contiguous, on the current device) —
  never a silent copy;
- :func:`stream`: the CUDA stream of the calling library (CuPy's current
  stream), so the kernels are ordered with the caller's own work;
- :func:`from_torch` / :func:`to_torch`: zero-copy exchange of torch CUDA
  tensors through DLPack;
- :func:`free_memory` and :func:`planes_per_batch`: how many planes of a
  stack fit in the free device memory (the query can be replaced, e.g. by a
  fake in tests: :func:`set_memory_query`).

None of this imports CuPy at module import: the package works without it.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import kernels as K

__all__ = ["check_device_array", "element_strides", "device_pointer", "stream", "from_torch", "to_torch", "free_memory",
           "set_memory_query", "planes_per_batch", "require_module", "dtype_name"]

_COMPLEX = ("complex64", "complex128")
_REAL = ("float32", "float64")

_memory_query: Callable[[], tuple[int, int]] | None = None


def require_module():
    """The CUDA module, or a RuntimeError that says why it is missing."""
    if K._cuda is None:
        raise RuntimeError(f"diffimaging's CUDA module is not available "
                           f"({K.cuda_unavailable_reason()})")
    return K._cuda


def _cupy():
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - only reached with GPU arrays
        raise RuntimeError("CuPy is needed for the CUDA kernels (pip install cupy-cuda13x)") \
            from exc
    return cupy


def dtype_name(a) -> str:
    """The numpy name of an array's dtype ("complex64", "float32", ...)."""
    return np.dtype(a.dtype).name


def check_device_array(a, name: str, dtypes=_COMPLEX):
    """Check that ``a`` (kernel argument ``name``) is a CuPy array of one of
    ``dtypes`` on the current device; returns the CuPy module.

    Raises TypeError for an array that is not CuPy's or has another dtype, and
    ValueError for one that lives on another device than the current one (the
    kernels launch on the current device and would read another GPU's memory)."""
    cp = _cupy()
    if not isinstance(a, cp.ndarray):
        raise TypeError(f"{name}: the CUDA kernels take CuPy arrays, got {type(a).__name__}")
    if dtype_name(a) not in dtypes:
        raise TypeError(f"{name}: dtype {a.dtype} is not supported by the CUDA kernel (expected "
                        f"{' or '.join(dtypes)})")
    current = cp.cuda.Device().id
    if a.device.id != current:
        raise ValueError(f"{name}: the array is on GPU {a.device.id} but the current device is "
                         f"GPU {current} (use `with cupy.cuda.Device({a.device.id}):`)")
    return cp


def element_strides(a, name: str) -> tuple[int, int]:
    """(plane, row) strides in elements of the (k, ny, nx) array ``a`` whose rows
    are contiguous (a strided view such as a cropped transform is read in place);
    the stride of an axis of length 1 is never used and counts as 0.  ValueError
    names ``name`` for rows that are not contiguous or strides that are negative
    or not whole elements."""
    isz = a.itemsize
    st = [s if n > 1 else 0 for s, n in zip(a.strides, a.shape)]
    if st[2] not in (0, isz) or any(s < 0 or s % isz for s in st[:2]):
        raise ValueError(f"{name}: rows must be contiguous and the other strides non-negative "
                         f"whole elements, got strides {tuple(a.strides)} (itemsize {isz})")
    return st[0] // isz, st[1] // isz


def device_pointer(a, name: str, dtypes=_COMPLEX) -> int:
    """The device pointer of the CuPy array ``a`` for a kernel argument ``name``:
    :func:`check_device_array`, and a ValueError for an array that is not
    C-contiguous."""
    check_device_array(a, name, dtypes)
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: the CUDA kernels need C-contiguous arrays (use "
                         f"cupy.ascontiguousarray first)")
    return int(a.data.ptr)


def stream() -> int:
    """The calling library's current CUDA stream (CuPy's), as an integer."""
    return int(_cupy().cuda.get_current_stream().ptr)


def from_torch(t):
    """A CuPy view of the torch CUDA tensor ``t`` (DLPack, zero-copy)."""
    cp = _cupy()
    if not getattr(t, "is_cuda", False):
        raise TypeError(f"from_torch takes a torch CUDA tensor, got {type(t).__name__} on "
                        f"{getattr(t, 'device', 'the host')}")
    return cp.from_dlpack(t)


def to_torch(a):
    """A torch view of the CuPy array ``a`` (DLPack, zero-copy)."""
    import torch

    return torch.from_dlpack(a)


def set_memory_query(fn: Callable[[], tuple[int, int]] | None) -> None:
    """Replace the device-memory query (``fn() -> (free, total)`` in bytes); None
    restores CuPy's (``cupy.cuda.runtime.memGetInfo`` plus the free blocks of
    CuPy's memory pool).  Tests use it to check the batch sizing without a GPU."""
    global _memory_query
    _memory_query = fn


def free_memory() -> int:
    """Bytes the next allocations can use on the current device: the driver's free
    memory plus what CuPy's memory pool holds unused."""
    if _memory_query is not None:
        return int(_memory_query()[0])
    cp = _cupy()
    free, _ = cp.cuda.runtime.memGetInfo()
    pool = cp.get_default_memory_pool()
    return int(free) + int(pool.total_bytes() - pool.used_bytes())


def planes_per_batch(bytes_per_plane: int, planes: int, *, fixed: int = 0,
                     fraction: float = 0.6, minimum: int = 1, free: int | None = None) -> int:
    """How many planes of a stack to process at once on the GPU.

    ``bytes_per_plane``: device memory one plane needs (its buffers and FFT work
    area); ``fixed``: bytes needed whatever the batch; ``fraction`` of the free
    memory (:func:`free_memory`, or ``free``) is used, the rest left to the
    caller's other arrays and cuFFT's plans.  Returns a number in
    [minimum, planes]; raises MemoryError when not even ``minimum`` planes fit,
    naming the sizes involved."""
    if bytes_per_plane <= 0 or planes < 1:
        raise ValueError(f"bytes_per_plane must be > 0 and planes >= 1, got {bytes_per_plane}, "
                         f"{planes}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    avail = free_memory() if free is None else int(free)
    usable = fraction * avail - fixed
    n = int(math.floor(usable / bytes_per_plane)) if usable > 0 else 0
    if n < minimum:
        raise MemoryError(f"not enough GPU memory for {minimum} plane(s) of "
                          f"{bytes_per_plane / 2**20:.1f} MiB (+{fixed / 2**20:.1f} MiB fixed): "
                          f"{avail / 2**20:.1f} MiB free; use a smaller grid or free arrays")
    return max(minimum, min(int(planes), n))


# ------------------------------------------------------------------ torch CUDA tensors

def _is_torch_cuda(a) -> bool:
    return type(a).__module__.startswith("torch") and bool(getattr(a, "is_cuda", False))


def _is_cupy(a) -> bool:
    return type(a).__module__.startswith("cupy")


def torch_cuda_usable(*arrays) -> bool:
    """True when one of ``arrays`` is a torch CUDA tensor and the CUDA kernels can
    serve it (the CUDA module is built and CuPy is importable): such tensors are
    then viewed as CuPy arrays (DLPack, zero-copy), run through the CUDA path and
    handed back as torch tensors on the same device."""
    if K._cuda is None or not any(_is_torch_cuda(a) for a in arrays):
        return False
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


def convert(obj, to):
    """``obj`` with torch CUDA tensors as CuPy views (``to="cupy"``) or CuPy arrays
    as torch tensors (``to="torch"``), zero-copy; the rest unchanged.  Goes into
    tuples, lists, dicts (values) and dataclass instances (a shallow copy with the
    items or fields converted; the container itself when nothing in it changes)."""
    import dataclasses

    if isinstance(obj, (tuple, list)):
        items = [convert(o, to) for o in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        items = {k: convert(v, to) for k, v in obj.items()}
        return obj if all(items[k] is v for k, v in obj.items()) else items
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        import copy

        changed = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            c = convert(v, to)
            if c is not v:
                changed[f.name] = c
        if not changed:
            return obj
        out = copy.copy(obj)
        for k, v in changed.items():
            object.__setattr__(out, k, v)
        return out
    if to == "cupy" and _is_torch_cuda(obj):
        return from_torch(obj.detach() if getattr(obj, "requires_grad", False) else obj)
    if to == "torch" and _is_cupy(obj):
        return to_torch(obj)
    return obj


def via_cupy(fn, *, convert_output=lambda out, conv: conv(out)):
    """Wrap ``fn`` so that torch CUDA tensors among its arguments (positional or
    keyword, top level) run through the CUDA path as zero-copy CuPy views
    (:func:`torch_cuda_usable`) and CuPy results come back as torch tensors;
    anything else passes through unchanged.  ``convert_output(out, conv)`` says
    which parts of the result to convert (default: all of it, into tuples, lists,
    dicts and dataclass results).  The wrapper carries ``torch_cuda = True``."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not torch_cuda_usable(*args, *kwargs.values()):
            return fn(*args, **kwargs)
        out = fn(*convert(args, "cupy"), **convert(kwargs, "cupy"))
        return convert_output(out, lambda o: convert(o, "torch"))

    wrapper.torch_cuda = True
    return wrapper


def via_cupy_vjp(fn, fwd, bwd):
    """``(fn, fwd, bwd)`` of a differentiable operation wrapped for torch CUDA tensors
    (:func:`via_cupy`): the function and its forward run on CuPy views (the forward's
    residuals stay CuPy), and the backward converts a torch CUDA cotangent to CuPy
    and its cotangents back to torch.  Register the returned triple."""
    import functools

    @functools.wraps(bwd)
    def bwd_wrapper(res, g):
        if not torch_cuda_usable(g):
            return bwd(res, g)
        return convert(bwd(res, convert(g, "cupy")), "torch")

    return (via_cupy(fn),
            via_cupy(fwd, convert_output=lambda out, conv: (conv(out[0]), out[1])),
            bwd_wrapper)
