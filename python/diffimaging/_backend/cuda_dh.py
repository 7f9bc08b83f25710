"""Launchers of the fused ∂H engine's CUDA kernels (module ``_cuda``) for CuPy arrays.

The device twins of the CPU kernels that :class:`~diffimaging.holography._dhfast.HalfVolume`
uses (:mod:`.kernels`: ``dh_accumulate_table``, ``dh_backproject_table``,
``prox_step``, ``prox_step_rows``), with the same signatures, plus the transfer
tables built on the device (:func:`transfer_table`).  Every array is checked here
(CuPy, dtype, contiguity, current device, shapes) before its pointer goes to the
kernel; nothing is copied silently.  Spectra are half spectra (ny, nx // 2 + 1).
"""
from __future__ import annotations

import numpy as np

from . import cuda as C

__all__ = ["transfer_table", "dh_accumulate_table", "dh_backproject_table", "prox_step",
           "prox_step_rows"]

_METHOD_CODE = {"asm": 0, "fresnel": 1}
_COMPLEX = ("complex64", "complex128")
_REAL = ("float32", "float64")
_REAL_OF = {"complex64": "float32", "complex128": "float64"}


def _same(a, b, what: str) -> None:
    if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
        raise ValueError(f"{what} must have one shape and dtype, got {tuple(a.shape)} {a.dtype} "
                         f"and {tuple(b.shape)} {b.dtype}")


def transfer_table(T, zs, plan) -> None:
    """T[k] = H(zs[k]) on the half spectrum of ``plan``'s grid (py, px): T is a
    C-contiguous complex CuPy array (nz, py, px // 2 + 1); each plane has the
    band-limit mask and the phase of its own depth [m] (``zs``: host values), as
    the CPU engine's tables."""
    cu = C.require_module()
    zs = np.ascontiguousarray(np.asarray(zs, dtype=np.float64).reshape(-1))
    nxh = plan.px // 2 + 1
    want = (zs.size, plan.py, nxh)
    if tuple(T.shape) != want:
        raise ValueError(f"T must have the shape (nz, py, px // 2 + 1) = {want}, got "
                         f"{tuple(T.shape)}")
    pt = C.device_pointer(T, "T", _COMPLEX)
    if zs.size == 0:
        return
    cp = C._cupy()
    zd = cp.asarray(zs)
    cu.dh_transfer_table(pt, C.dtype_name(T), C.device_pointer(zd, "zs", ("float64",)), zs.size,
                         plan.py, plan.px, nxh, float(plan.wavelength), float(plan.dy),
                         float(plan.dx), _METHOD_CODE[plan.method], bool(plan.band_limit),
                         bool(plan.carrier), C.stream())


def dh_accumulate_table(O, T, Sr, Si, accumulate: bool) -> None:
    """Sr (+)= sum_k Re(T[k]) O[k], Si (+)= sum_k Im(T[k]) O[k]: O and T (kb, ny, nxh),
    Sr and Si (ny, nxh), complex, C-contiguous CuPy arrays."""
    cu = C.require_module()
    _same(O, T, "O and T")
    _same(Sr, Si, "Sr and Si")
    if O.dtype != Sr.dtype or tuple(O.shape[1:]) != tuple(Sr.shape) or O.ndim != 3:
        raise ValueError(f"O must be (kb,) + Sr's shape {tuple(Sr.shape)} of its dtype, got "
                         f"{tuple(O.shape)} {O.dtype}")
    po, pt = C.device_pointer(O, "O"), C.device_pointer(T, "T")
    pr, pi = C.device_pointer(Sr, "Sr"), C.device_pointer(Si, "Si")
    cu.dh_accumulate_table(po, pt, pr, pi, C.dtype_name(O), int(Sr.size), int(O.shape[0]),
                           bool(accumulate), C.stream())


def dh_backproject_table(A, B, T, C_out) -> None:
    """C[k] = Re(T[k]) A + Im(T[k]) B (B None: Re(T[k]) A): A, B (ny, nxh), T and C
    (kb, ny, nxh), complex, C-contiguous CuPy arrays."""
    cu = C.require_module()
    _same(T, C_out, "T and C")
    if T.ndim != 3 or tuple(T.shape[1:]) != tuple(A.shape) or T.dtype != A.dtype:
        raise ValueError(f"T must be (kb,) + A's shape {tuple(A.shape)} of its dtype, got "
                         f"{tuple(T.shape)} {T.dtype}")
    pa = C.device_pointer(A, "A")
    pb = 0
    if B is not None:
        _same(A, B, "A and B")
        pb = C.device_pointer(B, "B")
    cu.dh_backproject_table(pa, pb, C.device_pointer(T, "T"), C.device_pointer(C_out, "C"),
                            C.dtype_name(A), int(A.size), int(T.shape[0]), C.stream())


def _rows(g, name: str, nx: int):
    """(pointer, plane stride, row stride) in elements of the real CuPy array ``g``
    ((ny, row) or (k, ny, row), rows contiguous, row >= nx)."""
    C.check_device_array(g, name, _REAL)
    g3 = g[None] if g.ndim == 2 else g
    if g3.ndim != 3:
        raise ValueError(f"{name} must be (ny, row) or (k, ny, row), got shape {tuple(g.shape)}")
    plane_st, row_st = C.element_strides(g3, name)
    row = row_st if g3.shape[1] > 1 else int(g3.shape[2])
    if int(g3.shape[2]) < nx or row < int(g3.shape[2]):
        raise ValueError(f"{name}: rows of at least {nx} elements expected, got shape "
                         f"{tuple(g.shape)}")
    plane = plane_st if g3.shape[0] > 1 else int(g3.shape[1]) * row
    return int(g3.data.ptr), plane, row, int(g3.shape[2])


def _prox(x, xp, g, out, copy: bool, beta, step, shift, lo, hi):
    cu = C.require_module()
    if x.ndim not in (2, 3):
        raise ValueError(f"x must be one (ny, nx) plane or a (k, ny, nx) stack, got "
                         f"{tuple(x.shape)}")
    _same(x, out, "x and out")
    name = C.dtype_name(x)
    px_ = C.device_pointer(x, "x", _REAL)
    po = C.device_pointer(out, "out", _REAL)
    pp = 0
    if xp is not None:
        _same(x, xp, "x and xp")
        pp = C.device_pointer(xp, "xp", _REAL)
    if g.dtype != x.dtype:
        raise TypeError(f"g must have x's dtype {x.dtype}, got {g.dtype}")
    k = 1 if x.ndim == 2 else int(x.shape[0])
    ny, nx = int(x.shape[-2]), int(x.shape[-1])
    pg, plane, row, width = _rows(g, "g", nx)
    gk = 1 if g.ndim == 2 else int(g.shape[0])
    if gk != k or int(g.shape[-2]) != ny or (not copy and width != nx):
        raise ValueError(f"g must hold x's {k} plane(s) of {ny} x {nx}"
                         f"{' (rows may be longer)' if copy else ''}, got {tuple(g.shape)}")
    s = cu.prox_step(px_, pp, pg, plane, row, po, pg if copy else 0,
                     name, k, ny, nx, float(beta), float(step), float(shift), float(lo), float(hi),
                     C.stream())
    return tuple(float(v) for v in s)


def prox_step(x, xp, g, out, beta: float, step: float, shift: float, lo: float, hi: float):
    """out = clip(y - step g + shift, lo, hi), y = x + beta (x - xp) (xp None: y = x),
    on one plane or a stack of planes (real CuPy arrays; g's rows may be a strided
    view); returns (sum g (out - y), sum (out - y)^2, sum out), reduced
    deterministically in double precision.  The device twin of
    :func:`.kernels.prox_step`."""
    return _prox(x, xp, g, out, False, beta, step, shift, lo, hi)


def prox_step_rows(x, xp, buf, out, beta: float, step: float, shift: float, lo: float, hi: float):
    """prox_step with the gradient read from ``buf[..., :nx]`` (rows of length >= nx):
    the result goes to ``out`` and over the gradient in ``buf``, whose other columns
    are zeroed (the padded input of the next transform).  The device twin of
    :func:`.kernels.prox_step_rows`, for one plane or a stack."""
    return _prox(x, xp, buf, out, True, beta, step, shift, lo, hi)
