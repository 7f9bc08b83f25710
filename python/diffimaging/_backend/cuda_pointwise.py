"""Launchers of the CUDA point-wise kernels for CuPy arrays: |u|^2, the
Fourier-shift phase-ramp multiply and the running min/max depth projection.

Thin wrappers over the ``_cuda`` module (csrc/ops/pointwise/pointwise_cuda_bind.cpp):
each checks its arrays strictly (:func:`.cuda.device_pointer`: a CuPy array of
the expected dtype, C-contiguous, on the current device — never a silent copy;
the min/max planes may be a view with contiguous rows), then launches on CuPy's
current stream (asynchronous, ordered with the caller's own work).  Arrays are
checked before the module is looked up, so a wrong argument is named even in a
build without CUDA.  CuPy is not imported at module import.
"""
from __future__ import annotations

import math

import numpy as np

from . import cuda as C

__all__ = ["intensity", "fourier_shift_apply", "minmax_project"]

_COMPLEX = ("complex64", "complex128")
_REAL_OF = {"complex64": "float32", "complex128": "float64"}
_MAPS = ("min", "argmin_z", "max", "argmax_z")


def intensity(u, out=None):
    """|u|^2 of the complex CuPy array ``u`` (complex64 -> float32, complex128 ->
    float64), rounded as the CPU kernel rounds it.

    ``out``: a C-contiguous CuPy array of ``u``'s shape and real dtype to write
    into (a new one when None).  Returns ``out``."""
    pu = C.device_pointer(u, "u", _COMPLEX)
    name = C.dtype_name(u)
    rname = _REAL_OF[name]
    if out is None:
        out = C._cupy().empty(u.shape, dtype=rname)
    po = C.device_pointer(out, "out", (rname,))
    if tuple(out.shape) != tuple(u.shape):
        raise ValueError(f"out: shape {tuple(out.shape)} differs from u's {tuple(u.shape)}")
    C.require_module().intensity(pu, po, name, int(u.size), C.stream())
    return out


def _spacing(spacing) -> tuple[float, float]:
    if isinstance(spacing, (tuple, list)):
        if len(spacing) != 2:
            raise ValueError(f"spacing must be a float or (dy, dx), got {spacing!r}")
        dy, dx = float(spacing[0]), float(spacing[1])
    else:
        dy = dx = float(spacing)
    if not (math.isfinite(dy) and dy > 0 and math.isfinite(dx) and dx > 0):
        raise ValueError(f"spacing must be finite and > 0, got ({dy}, {dx})")
    return dy, dx


def fourier_shift_apply(src, shifts, *, out=None, spacing=1.0, conjugate=False):
    """Multiply a spectrum in FFT order by the Fourier-shift phase ramp.

    ``out = src * exp(-2 pi i (fy sy + fx sx))`` (``conjugate``: times its
    conjugate, the adjoint), with fy, fx = ``fftfreq(n, d)`` of the last two axes,
    the phase computed in double precision.  Inverse-transformed, this translates
    the image by (+sy, +sx): ``ifft2(out)(y, x) = ifft2(src)(y - sy, x - sx)``.

    Parameters
    ----------
    src : CuPy complex64/complex128 array (..., ny, nx), C-contiguous.
    shifts : CuPy float64 array (..., 2), C-contiguous, ordered (sy, sx), in the
        unit of ``spacing``: one shift for every plane (2 values) or one per plane
        of the flattened batch (2 * prod(src.shape[:-2]) values).
    out : None (a new array), or a C-contiguous CuPy array of ``src``'s shape and
        dtype, which may be ``src`` itself (in place).
    spacing : float or (dy, dx), the sample spacing [m] (1.0: shifts in pixels).
    conjugate : bool, multiply by the conjugate ramp.

    Returns ``out``.
    """
    ps = C.device_pointer(src, "src", _COMPLEX)
    name = C.dtype_name(src)
    psh = C.device_pointer(shifts, "shifts", ("float64",))
    if src.ndim < 2:
        raise ValueError(f"src must be (..., ny, nx), got shape {tuple(src.shape)}")
    ny, nx = int(src.shape[-2]), int(src.shape[-1])
    batch = int(math.prod(src.shape[:-2]))
    if shifts.ndim < 1 or shifts.shape[-1] != 2:
        raise ValueError(f"shifts must have shape (..., 2) ordered (sy, sx), got "
                         f"{tuple(shifts.shape)}")
    if shifts.size == 2:
        stride = 0
    elif shifts.size == 2 * batch:
        stride = 2
    else:
        raise ValueError(f"shifts must hold one (sy, sx) pair or one per plane ({batch} planes), "
                         f"got shape {tuple(shifts.shape)}")
    if out is None:
        out = C._cupy().empty_like(src)
    po = C.device_pointer(out, "out", (name,))
    if tuple(out.shape) != tuple(src.shape):
        raise ValueError(f"out: shape {tuple(out.shape)} differs from src's {tuple(src.shape)}")
    dy, dx = _spacing(spacing)
    C.require_module().fourier_shift_apply(ps, po, name, batch, ny, nx, dy, dx, psh, stride,
                                           bool(conjugate), C.stream())
    return out


def _planes_pointer(planes, name: str = "planes"):
    """(pointer, plane stride, row stride) of a (k, ny, nx) complex CuPy array whose
    rows are contiguous (a strided view is read in place; strides in elements)."""
    C.check_device_array(planes, name, _COMPLEX)
    if planes.ndim != 3:
        raise ValueError(f"{name} must be a (k, ny, nx) stack, got shape {tuple(planes.shape)}")
    plane, row = C.element_strides(planes, name)
    return int(planes.data.ptr), plane, row


def minmax_project(planes, offset: float, z, proj) -> None:
    """Update the running min/max of |offset + u|^2 over the (k, ny, nx) complex
    CuPy ``planes`` and the depths where they occur, in the maps of ``proj`` (in
    place): the CUDA twin of :func:`.kernels.minmax_project`, with the same
    results bit for bit (strict comparisons, planes in order: the first plane wins
    ties).

    ``planes``: rows contiguous (a strided view, e.g. a cropped inverse FFT, is
    read in place); ``offset``: real, added to every value; ``z`` (k,) depths [m],
    a CuPy array or a host sequence / numpy array (its k doubles are copied to the
    device); ``proj``: dict of C-contiguous CuPy maps "min", "argmin_z", "max",
    "argmax_z" of ny * nx elements in the planes' real dtype."""
    ptr, plane_stride, row_stride = _planes_pointer(planes)
    name = C.dtype_name(planes)
    rname = _REAL_OF[name]
    k, ny, nx = (int(n) for n in planes.shape)
    if not isinstance(proj, dict) or any(key not in proj for key in _MAPS):
        raise ValueError(f"proj must be a dict of the maps {', '.join(_MAPS)}")
    maps = []
    for key in _MAPS:
        m = proj[key]
        maps.append(C.device_pointer(m, f"proj[{key!r}]", (rname,)))
        if int(m.size) != ny * nx:
            raise ValueError(f"proj[{key!r}]: {int(m.size)} elements, the planes have "
                             f"{ny} x {nx} pixels")
    cp = C._cupy()
    if isinstance(z, cp.ndarray):
        zd = cp.ascontiguousarray(z.reshape(-1), dtype=cp.float64)
    else:
        zd = cp.asarray(np.ascontiguousarray(np.asarray(z, dtype=np.float64).reshape(-1)))
    if int(zd.size) != k:
        raise ValueError(f"z must hold one depth per plane ({k}), got {int(zd.size)}")
    pz = C.device_pointer(zd, "z", ("float64",))
    C.require_module().minmax_project(ptr, name, k, ny, nx, plane_stride, row_stride,
                                      float(offset), pz, *maps, C.stream())
