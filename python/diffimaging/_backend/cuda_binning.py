"""Launchers of the CUDA binning kernels on CuPy arrays.

The device twins of :func:`.kernels.bin_forward`, :func:`.kernels.bin_adjoint`
and :func:`.kernels.bin_shift_grad` (same arguments, CuPy arrays in place of
numpy ones).  Each checks its arrays strictly through :mod:`.cuda` (a CuPy
array, a supported dtype, C-contiguous, on the current device: never a silent
copy) and their shapes here (:func:`geometry`), then launches on CuPy's current
stream; the kernels run asynchronously in that stream's order, like CuPy's own
operations.

The shift cotangent is deterministic (a fixed-order two-pass reduction in
double, no floating-point atomics; see ``csrc/ops/binning/binning_cuda.cu``);
its scratch memory is allocated by the kernel itself, stream-ordered
(``cudaMallocAsync`` on the same stream), so nothing is passed from here.

Nothing here imports CuPy at module import.
"""
from __future__ import annotations

from typing import NamedTuple

from . import cuda as C

__all__ = ["geometry", "bin_forward", "bin_adjoint", "bin_shift_grad"]

_DTYPES = ("float32", "float64", "complex64", "complex128")


class Geometry(NamedTuple):
    """What a launch needs besides the pointers: the batch, the input grid
    (ny, nx), the input's batch stride in elements (0: one image broadcast over
    the batch) and the stride of the shift table in doubles (0: one shift for the
    whole batch, 2: one per element)."""
    batch: int
    ny: int
    nx: int
    in_stride: int
    shift_stride: int


def geometry(fine_shape, coarse_shape, factor, shifts_shape=None, *,
             names=("image", "out"), broadcast=True) -> Geometry:
    """Check the shapes of a binning launch and return its :class:`Geometry`.

    ``fine_shape``: the full-resolution array, (B, ny, nx) with B the batch, or 1
    when ``broadcast`` (one image for the whole batch); ``coarse_shape``: the
    binned array (batch, ny // factor, nx // factor); ``shifts_shape``: None or
    (1, 2) / (batch, 2).  Raises ValueError naming the argument (``names``:
    the fine and coarse arrays' names) for anything else.  Host-only: no device
    is touched."""
    fine, coarse = tuple(int(n) for n in fine_shape), tuple(int(n) for n in coarse_shape)
    fname, cname = names
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor!r}")
    f = int(factor)
    if len(fine) != 3:
        raise ValueError(f"{fname} must be 3-d (batch, ny, nx), got shape {fine}")
    if len(coarse) != 3:
        raise ValueError(f"{cname} must be 3-d (batch, ny // factor, nx // factor), got shape "
                         f"{coarse}")
    batch, ny, nx = coarse[0], fine[1], fine[2]
    if ny < f or nx < f:
        raise ValueError(f"{fname} of shape {fine} is smaller than the binning factor {f}")
    if coarse[1:] != (ny // f, nx // f):
        raise ValueError(f"{cname} has shape {coarse}, expected ({batch}, {ny // f}, {nx // f}) "
                         f"for {fname} of shape {fine} and factor {f}")
    if fine[0] == batch:
        in_stride = ny * nx
    elif broadcast and fine[0] == 1:
        in_stride = 0
    else:
        allowed = f"1 or {batch}" if broadcast else f"{batch}"
        raise ValueError(f"{fname} has batch {fine[0]}, expected {allowed} (the batch of "
                         f"{cname})")
    shift_stride = 0
    if shifts_shape is not None:
        s = tuple(int(n) for n in shifts_shape)
        if len(s) != 2 or s[1] != 2 or s[0] not in (1, batch):
            raise ValueError(f"shifts must have shape (1, 2) or ({batch}, 2), got {s}")
        shift_stride = 0 if s[0] == 1 else 2
    return Geometry(batch, ny, nx, in_stride, shift_stride)


def _pointers(arrays):
    """Device pointers of the (array, name) pairs, all of one dtype."""
    ptrs = [C.device_pointer(a, name, _DTYPES) for a, name in arrays]
    first_a, first_name = arrays[0]
    for a, name in arrays[1:]:
        if C.dtype_name(a) != C.dtype_name(first_a):
            raise TypeError(f"{name} has dtype {a.dtype} but {first_name} has {first_a.dtype}; "
                            f"they must match")
    return ptrs


def _shift_pointer(shifts2) -> int:
    return 0 if shifts2 is None else C.device_pointer(shifts2, "shifts", ("float64",))


def bin_forward(image3, out3, factor, shifts2, scale) -> None:
    """out3 (batch, ny // f, nx // f) = ``scale`` x the exact area binning of
    image3 (batch or 1, ny, nx) by ``factor``, with the sub-pixel shifts
    ``shifts2`` (None, or float64 (1, 2) / (batch, 2) on the device, (sy, sx) in
    input pixels).  CuPy arrays of one dtype (float32/64, complex64/128)."""
    pi, po = _pointers([(image3, "image"), (out3, "out")])
    ps = _shift_pointer(shifts2)
    g = geometry(image3.shape, out3.shape, factor, None if shifts2 is None else shifts2.shape)
    C.require_module().bin_forward(pi, po, C.dtype_name(image3), g.batch, g.ny, g.nx,
                                   g.in_stride, int(factor), ps, g.shift_stride, float(scale),
                                   C.stream())


def bin_adjoint(g3, out3, factor, shifts2, scale) -> None:
    """out3 (batch, ny, nx) = the adjoint of :func:`bin_forward` applied to g3
    (batch, ny // f, nx // f); every element of out3 is written."""
    pg, po = _pointers([(g3, "g"), (out3, "out")])
    ps = _shift_pointer(shifts2)
    geo = geometry(out3.shape, g3.shape, factor, None if shifts2 is None else shifts2.shape,
                   names=("out", "g"), broadcast=False)
    C.require_module().bin_adjoint(pg, po, C.dtype_name(g3), geo.batch, geo.ny, geo.nx,
                                   int(factor), ps, geo.shift_stride, float(scale), C.stream())


def bin_shift_grad(image3, g3, factor, shifts2, scale):
    """The shift cotangent (batch, 2) float64 CuPy array: (d/dsy, d/dsx) of
    sum Re(conj(g3) * bin_forward(image3)) per batch element (shifts2 is needed).
    Deterministic: bit-identical from run to run."""
    if shifts2 is None:
        raise ValueError("bin_shift_grad needs shifts")
    pi, pg = _pointers([(image3, "image"), (g3, "g")])
    ps = _shift_pointer(shifts2)
    geo = geometry(image3.shape, g3.shape, factor, shifts2.shape, names=("image", "g"))
    cp = C._cupy()
    d = cp.empty((geo.batch, 2), dtype=cp.float64)
    C.require_module().bin_shift_grad(pi, pg, int(d.data.ptr), C.dtype_name(image3), geo.batch,
                                      geo.ny, geo.nx, geo.in_stride, int(factor), ps,
                                      geo.shift_stride, float(scale), C.stream())
    return d
