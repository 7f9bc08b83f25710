"""Launchers of the CUDA propagation kernels (``_cuda.transfer_*``) for CuPy arrays.

Each takes CuPy arrays and the :class:`~diffimaging.ops.propagate.Plan` whose grid
(``py``, ``px``), optics and flags the kernels read; arrays are checked strictly
(:func:`.cuda.device_pointer`: CuPy, dtype, C-contiguous, current device) and the
kernels run on the caller's current CuPy stream.  The distance cotangents come
back as host floats (the reductions are deterministic: same inputs, same bits).
"""
from __future__ import annotations

import numpy as np

from . import cuda as C

__all__ = ["transfer_apply", "transfer_pullback", "transfer_stack", "transfer_stack_adjoint",
           "transfer_stack_dz", "device_distances"]

_METHOD_CODE = {"asm": 0, "fresnel": 1}


def _optics(plan):
    return (float(plan.wavelength), float(plan.dy), float(plan.dx), _METHOD_CODE[plan.method],
            bool(plan.band_limit), bool(plan.carrier))


def _planes(a, plan, name) -> int:
    """Number of (py, px) planes of ``a`` (its last two axes must be the FFT grid)."""
    if tuple(a.shape[-2:]) != (plan.py, plan.px):
        raise ValueError(f"{name}: the last two axes {tuple(a.shape[-2:])} must be the FFT grid "
                         f"{(plan.py, plan.px)}")
    return int(a.size // (plan.py * plan.px))


def device_distances(zs):
    """The distances [m] as a contiguous float64 CuPy array on the current device."""
    import cupy as cp

    return cp.ascontiguousarray(cp.asarray(np.asarray(zs, dtype=np.float64)))


def transfer_apply(src, dst, plan, z: float, conjugate: bool) -> None:
    """dst = H(z) src (conj(H) when ``conjugate``); dst may be src."""
    cu = C.require_module()
    a, b = C.device_pointer(src, "src"), C.device_pointer(dst, "dst")
    if src.shape != dst.shape or src.dtype != dst.dtype:
        raise ValueError(f"src and dst must have one shape and dtype, got {src.shape} "
                         f"{src.dtype} and {dst.shape} {dst.dtype}")
    n = _planes(src, plan, "src")
    cu.transfer_apply(a, b, C.dtype_name(src), n, plan.py, plan.px, float(z), *_optics(plan),
                      bool(conjugate), C.stream())


def transfer_pullback(U, G, acc, plan, z: float, accumulate: bool) -> float:
    """acc (+)= conj(H(z)) G (acc may be G) and the raw distance cotangent
    sum Re(conj(G) i kappa H U) (0 when U is None; U one plane or one per G plane)."""
    cu = C.require_module()
    g, a = C.device_pointer(G, "G"), C.device_pointer(acc, "acc")
    n = _planes(G, plan, "G")
    if acc.shape != G.shape or acc.dtype != G.dtype:
        raise ValueError("acc must have the shape and dtype of G")
    u, stride = 0, 0
    if U is not None:
        u = C.device_pointer(U, "U")
        if U.dtype != G.dtype:
            raise TypeError(f"U must have the dtype of G ({G.dtype}), got {U.dtype}")
        nu = _planes(U, plan, "U")
        if nu not in (1, n):
            raise ValueError(f"U must be one plane or {n} planes, got {nu}")
        stride = 0 if nu == 1 else plan.py * plan.px
    return float(cu.transfer_pullback(u, stride, g, a, C.dtype_name(G), n, plan.py, plan.px,
                                      float(plan.zs[0]) if z is None else float(z),
                                      *_optics(plan), bool(accumulate), C.stream()))


def transfer_stack(src, dst, zs_dev, plan) -> None:
    """dst[k] = H(z_k) src for the distances ``zs_dev`` (float64 CuPy); dst is
    (nz,) + src.shape."""
    cu = C.require_module()
    nz = int(zs_dev.shape[0])
    if tuple(dst.shape) != (nz,) + tuple(src.shape):
        raise ValueError(f"dst must have shape {(nz,) + tuple(src.shape)}, got {dst.shape}")
    cu.transfer_stack(C.device_pointer(src, "src"), C.device_pointer(dst, "dst"),
                      C.device_pointer(zs_dev, "zs", ("float64",)), nz, C.dtype_name(src),
                      _planes(src, plan, "src"), plan.py, plan.px, *_optics(plan), C.stream())


def transfer_stack_adjoint(G, acc, zs_dev, plan, accumulate: bool) -> None:
    """acc (+)= sum_k conj(H(z_k)) G[k] (G (nz,) + acc.shape)."""
    cu = C.require_module()
    nz = int(zs_dev.shape[0])
    if tuple(G.shape) != (nz,) + tuple(acc.shape):
        raise ValueError(f"G must have shape {(nz,) + tuple(acc.shape)}, got {G.shape}")
    cu.transfer_stack_adjoint(C.device_pointer(G, "G"), C.device_pointer(acc, "acc"),
                              C.device_pointer(zs_dev, "zs", ("float64",)), nz,
                              C.dtype_name(acc), _planes(acc, plan, "acc"), plan.py, plan.px,
                              *_optics(plan), bool(accumulate), C.stream())


def transfer_stack_dz(U, G, zs_dev, plan) -> np.ndarray:
    """(nz,) raw distance cotangents sum_b Re(conj(G[k, b]) i kappa_k H(z_k) U[b])."""
    cu = C.require_module()
    nz = int(zs_dev.shape[0])
    nb = _planes(G, plan, "G") // max(nz, 1)
    nu = _planes(U, plan, "U")
    if nu not in (1, nb):
        raise ValueError(f"U must be one plane or {nb} planes, got {nu}")
    out = cu.transfer_stack_dz(C.device_pointer(U, "U"), 0 if nu == 1 else plan.py * plan.px,
                               C.device_pointer(G, "G"),
                               C.device_pointer(zs_dev, "zs", ("float64",)), nz,
                               C.dtype_name(G), nb, plan.py, plan.px, *_optics(plan), C.stream())
    return np.asarray(out, dtype=np.float64)
