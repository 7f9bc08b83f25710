"""Periodic sub-pixel translation by a Fourier phase ramp, and |u|^2, with explicit VJPs."""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from .._backend import fft as F
from .._backend import cuda as C
from .._backend import cuda_pointwise as CP
from .._backend import kernels as K
from .._backend import validate as V
from .._backend.autodiff import register_vjp
from .._backend.capabilities import route
from .._backend.util import broadcast_batch, parse_shift, sum_to_shape, wrap_period

__all__ = ["shift", "intensity"]


def _fft2(xp, u):
    return F.fftn(u, xp=xp)


def _ifft2(xp, u):
    return F.ifftn(u, xp=xp, overwrite=True)


class _ShiftPlan:
    def __init__(self, field, s):
        xp = B.namespace(field, s, names=["field", "shift"])
        kind = V.field_array(field, "field", xp)
        host, sb, skind, sdtype = parse_shift(s, xp)
        # "cuda" (CuPy arrays with the CUDA module): the ramp multiply is a kernel;
        # otherwise the separable ramps below (the reference path)
        self.path = route("shift", xp)
        self.xp, self.device = xp, B.device_of(field)
        self.real_input = kind in ("f4", "f8")
        self.cdtype = B.complex_dtype_for(xp, field.dtype)
        self.ny, self.nx = int(field.shape[-2]), int(field.shape[-1])
        self.field_shape = tuple(field.shape)
        self.shift_batch, self.shift_kind, self.shift_dtype = sb, skind, sdtype
        self.out_batch = broadcast_batch(tuple(field.shape[:-2]), sb, ("field", "shift"))
        # a shift by s and by s - k n are the same periodic translation: reduce it
        # exactly first, so that the phase ramp keeps its accuracy for any shift
        host = np.stack([wrap_period(host[..., 0], self.ny), wrap_period(host[..., 1], self.nx)],
                        axis=-1)
        sh = xp.asarray(np.ascontiguousarray(host), device=self.device) \
            if not B.is_numpy_namespace(xp) else host
        sh = xp.asarray(sh, dtype=xp.float64)
        if self.path == "cuda":
            # one (sy, sx) per plane of the output batch, for the kernel
            flat = np.ascontiguousarray(np.broadcast_to(host, self.out_batch + (2,))).reshape(-1, 2)
            self.shifts_dev = xp.asarray(flat, device=self.device)
        self.sy = sh[..., 0][..., None, None]
        self.sx = sh[..., 1][..., None, None]
        # cycles per sample (d = 1)
        self.fy = xp.reshape(F.fftfreq(self.ny, 1.0, xp=xp, device=self.device), (self.ny, 1))
        self.fx = xp.reshape(F.fftfreq(self.nx, 1.0, xp=xp, device=self.device), (1, self.nx))

    def ramp(self, sign=1.0):
        """exp(-2 pi i (fy sy + fx sx)) (sign=-1: its conjugate), separable factors."""
        xp = self.xp
        py = -2 * math.pi * sign * self.fy * self.sy
        px = -2 * math.pi * sign * self.fx * self.sx
        ry = xp.astype(xp.cos(py), self.cdtype) + xp.astype(xp.sin(py), self.cdtype) * 1j
        rx = xp.astype(xp.cos(px), self.cdtype) + xp.astype(xp.sin(px), self.cdtype) * 1j
        return ry, rx

    def multiply(self, spec, conjugate=False, inplace=False):
        """``spec`` (batch axes broadcasting to the output's) times the phase ramp
        (``conjugate``: its conjugate), with the output's batch shape.  The "cuda"
        path runs the fused kernel (writing into ``spec`` when ``inplace`` and its
        shape is the output's); the others multiply by the two separable ramps."""
        if self.path != "cuda":
            ry, rx = self.ramp(-1.0 if conjugate else 1.0)
            return spec * ry * rx
        import cupy

        full = self.out_batch + (self.ny, self.nx)
        if tuple(spec.shape) != full or not spec.flags.c_contiguous:
            spec = cupy.ascontiguousarray(cupy.broadcast_to(spec, full))  # a new array
            inplace = True
        return CP.fourier_shift_apply(spec, self.shifts_dev, out=spec if inplace else None,
                                      conjugate=conjugate)

    def spectrum(self, u):
        xp = self.xp
        if self.real_input or u.dtype != self.cdtype:
            u = xp.astype(u, self.cdtype)
        return _fft2(xp, u)


def _apply(p: _ShiftPlan, field, sign=1.0):
    xp = p.xp
    out = _ifft2(xp, p.multiply(p.spectrum(field), conjugate=sign < 0, inplace=True))
    return xp.real(out) if p.real_input else out


def shift(field, shift):
    """Periodic sub-pixel translation of a ``(..., ny, nx)`` array by a Fourier phase ramp.

    ``out(y, x) = field(y - sy, x - sx)`` (periodic); integer shifts equal ``roll``.
    For real input the result is real (the real part of the complex shift).

    Parameters
    ----------
    field : array (..., ny, nx), float or complex
    shift : (sy, sx) or array (..., 2) [pixels], batch axes broadcast with the field's.

    Example
    -------
    >>> v = shift(u, (0.5, -1.25))
    """
    p = _ShiftPlan(field, shift)
    return _apply(p, field)


def _shift_fwd(field, s):
    p = _ShiftPlan(field, s)
    return _apply(p, field), (p, field)


def _shift_bwd(res, g):
    p, field = res
    xp = p.xp
    expected = p.out_batch + (p.ny, p.nx)
    if tuple(g.shape) != expected:
        raise ValueError(f"cotangent must have the output's shape {expected}, got {tuple(g.shape)}")
    G = _fft2(xp, xp.astype(g, p.cdtype))
    W = p.multiply(p.spectrum(field), inplace=True)
    n = float(p.ny * p.nx)
    cg = xp.conj(G)
    # d out / d sy = IFFT(-2 pi i fy R U); Parseval: sum Re(conj(G) (-2 pi i fy) W) / N
    # (a frequency-weighted reduction, in array operations on every path)
    t = xp.real(cg * W * (-2j * math.pi))
    dsy = xp.sum(xp.sum(t * p.fy, axis=-1), axis=-1) / n
    dsx = xp.sum(xp.sum(t * p.fx, axis=-1), axis=-1) / n
    d = xp.stack([xp.broadcast_to(dsy, p.out_batch), xp.broadcast_to(dsx, p.out_batch)], axis=-1)
    d = sum_to_shape(xp, d, p.shift_batch + (2,))
    if p.shift_kind == "array":
        d = xp.astype(d, p.shift_dtype)
    du = _ifft2(xp, p.multiply(G, conjugate=True, inplace=True))  # G is not used after this
    if p.real_input:
        du = xp.real(du)
    du = sum_to_shape(xp, du, p.field_shape)
    return du, d


# torch CUDA tensors: zero-copy CuPy views through the CUDA kernels (DLPack)
shift, _shift_fwd, _shift_bwd = C.via_cupy_vjp(shift, _shift_fwd, _shift_bwd)
register_vjp(shift, _shift_fwd, _shift_bwd)


def intensity(field):
    """|field|^2 of a ``(..., ny, nx)`` array, real of the field's precision
    (complex64 -> float32).  Units: those of the field squared."""
    xp = B.namespace(field, names=["field"])
    kind = V.field_array(field, "field", xp)
    if kind in ("f4", "f8"):
        return field * field
    path = route("intensity", xp)
    if path == "kernel":
        return K.intensity(np.ascontiguousarray(field))
    if path == "cuda":
        import cupy

        return CP.intensity(cupy.ascontiguousarray(field))
    re, im = xp.real(field), xp.imag(field)
    return re * re + im * im


def _intensity_fwd(field):
    return intensity(field), (field,)


def _intensity_bwd(res, g):
    (field,) = res
    xp = B.namespace(field)
    if tuple(g.shape) != tuple(field.shape):
        raise ValueError(f"cotangent must have the output's shape {tuple(field.shape)}, got "
                         f"{tuple(g.shape)}")
    if B.is_complex(xp, field.dtype):
        g = xp.astype(xp.real(g) if B.is_complex(xp, g.dtype) else g, B.real_dtype_for(xp, field.dtype))
        return (xp.astype(g, field.dtype) * field * 2,)
    return (xp.astype(g, field.dtype) * field * 2,)


# torch CUDA tensors: zero-copy CuPy views through the CUDA kernels (DLPack)
intensity, _intensity_fwd, _intensity_bwd = C.via_cupy_vjp(intensity, _intensity_fwd, _intensity_bwd)
register_vjp(intensity, _intensity_fwd, _intensity_bwd)
