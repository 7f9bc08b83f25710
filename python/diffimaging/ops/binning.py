"""Pixel binning as exact area integration, with sub-pixel shifts and explicit VJPs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _backend as B
from .._backend import cuda as C
from .._backend import cuda_binning as CB
from .._backend import kernels as K
from .._backend import validate as V
from .._backend.autodiff import register_vjp
from .._backend.capabilities import route
from .._backend.util import broadcast_batch, parse_shift, prod, sum_to_shape

__all__ = ["bin"]


@dataclass
class _Plan:
    xp: object
    device: object
    f: int
    ny: int
    nx: int
    my: int
    mx: int
    scale: float
    img_batch: tuple
    out_batch: tuple
    shift_host: np.ndarray | None  # (..., 2) float64
    shift_batch: tuple
    shift_kind: str | None
    shift_dtype: object
    kernel: bool        # compiled CPU kernels (numpy)
    cuda: bool = False  # CUDA kernels (CuPy), route("bin", xp) == "cuda"


def _make_plan(image, shift, factor, reduce) -> _Plan:
    xp = B.namespace(image, shift, names=["image", "shift"])
    V.field_array(image, "image", xp)
    f = V.factor(factor)
    ny, nx = int(image.shape[-2]), int(image.shape[-1])
    if ny < f or nx < f:
        raise ValueError(f"image of shape {tuple(image.shape)} is smaller than the binning factor {f}")
    V.choice("reduce", reduce, ("sum", "mean"))
    img_batch = tuple(image.shape[:-2])
    if shift is None:
        host, sb, kind, dtype = None, (), None, None
    else:
        host, sb, kind, dtype = parse_shift(shift, xp)
    out_batch = broadcast_batch(img_batch, sb, ("image", "shift"))
    path = route("bin", xp)
    return _Plan(xp=xp, device=B.device_of(image), f=f, ny=ny, nx=nx, my=ny // f, mx=nx // f,
                 scale=1.0 if reduce == "sum" else 1.0 / (f * f), img_batch=img_batch,
                 out_batch=out_batch, shift_host=host, shift_batch=sb, shift_kind=kind,
                 shift_dtype=dtype, kernel=path == "kernel", cuda=path == "cuda")


# ------------------------------------------------------------------ kernel path

def _image3(p: _Plan, image):
    img = np.ascontiguousarray(image)
    if p.img_batch == p.out_batch:
        return img.reshape((-1, p.ny, p.nx))
    if prod(p.img_batch) == 1:
        return img.reshape((1, p.ny, p.nx))
    return np.ascontiguousarray(np.broadcast_to(img, p.out_batch + (p.ny, p.nx))).reshape((-1, p.ny, p.nx))


def _shifts2(p: _Plan):
    if p.shift_host is None:
        return None
    if p.shift_batch == p.out_batch:
        return np.ascontiguousarray(p.shift_host.reshape((-1, 2)))
    if prod(p.shift_batch) == 1:
        return np.ascontiguousarray(p.shift_host.reshape((1, 2)))
    return np.ascontiguousarray(np.broadcast_to(p.shift_host, p.out_batch + (2,))).reshape((-1, 2))


def _forward_kernel(p: _Plan, image):
    if prod(p.out_batch) == 0:
        return np.zeros(p.out_batch + (p.my, p.mx), dtype=image.dtype)
    im3 = _image3(p, image)
    out = np.empty((prod(p.out_batch), p.my, p.mx), dtype=im3.dtype)
    K.bin_forward(im3, out, p.f, _shifts2(p), p.scale)
    return out.reshape(p.out_batch + (p.my, p.mx))


# -------------------------------------------------------------------- CUDA path
#
# CuPy arrays through the CUDA kernels (diffimaging._backend.cuda_binning), on the
# image's device and CuPy's current stream; the (batch, 2) float64 shift table is
# copied to that device.  Results stay CuPy arrays of the image's dtype.

def _cupy():
    import cupy

    return cupy


def _image3_cuda(p: _Plan, image):
    cp = _cupy()
    img = cp.ascontiguousarray(image)
    if p.img_batch == p.out_batch:
        return img.reshape((-1, p.ny, p.nx))
    if prod(p.img_batch) == 1:
        return img.reshape((1, p.ny, p.nx))
    return cp.ascontiguousarray(cp.broadcast_to(img, p.out_batch + (p.ny, p.nx))).reshape(
        (-1, p.ny, p.nx))


def _shifts2_cuda(p: _Plan):
    sh = _shifts2(p)
    return None if sh is None else _cupy().asarray(sh, dtype=np.float64)


def _forward_cuda(p: _Plan, image):
    cp = _cupy()
    with image.device:
        if prod(p.out_batch) == 0:
            return cp.zeros(p.out_batch + (p.my, p.mx), dtype=image.dtype)
        im3 = _image3_cuda(p, image)
        out = cp.empty((prod(p.out_batch), p.my, p.mx), dtype=im3.dtype)
        CB.bin_forward(im3, out, p.f, _shifts2_cuda(p), p.scale)
        return out.reshape(p.out_batch + (p.my, p.mx))


def _bwd_cuda(p: _Plan, image, has_shift: bool, g):
    cp = _cupy()
    with image.device:
        if prod(p.out_batch) == 0:
            cts = [cp.zeros(tuple(image.shape), dtype=image.dtype)]
            if has_shift:
                cts.append(_shift_ct(p, cp.zeros(p.shift_batch + (2,), dtype=cp.float64)))
            return tuple(cts)
        g3 = cp.ascontiguousarray(g).reshape((-1, p.my, p.mx))
        sh = _shifts2_cuda(p)
        du = cp.empty((g3.shape[0], p.ny, p.nx), dtype=g3.dtype)
        CB.bin_adjoint(g3, du, p.f, sh, p.scale)
        cts = [sum_to_shape(p.xp, du.reshape(p.out_batch + (p.ny, p.nx)), tuple(image.shape))]
        if has_shift:
            d = CB.bin_shift_grad(_image3_cuda(p, image), g3, p.f, sh, p.scale)
            d = sum_to_shape(p.xp, d.reshape(p.out_batch + (2,)), p.shift_batch + (2,))
            cts.append(_shift_ct(p, d))
        return tuple(cts)


def _forward(p: _Plan, image):
    """The forward of the path chosen by the plan."""
    if p.cuda:
        return _forward_cuda(p, image)
    return _forward_kernel(p, image) if p.kernel else _forward_reference(p, image)


# --------------------------------------------------------------- reference path

def _weights(p: _Plan, n: int, m: int, s, dtype):
    """Dense (..., m, n) overlap matrix for shifts s (array (...,) float64), and
    its right derivative in s (indicator of the pixels holding the edges)."""
    xp = p.xp
    k = xp.reshape(xp.arange(m, dtype=xp.float64, device=p.device), (m, 1))
    i = xp.reshape(xp.arange(n, dtype=xp.float64, device=p.device), (1, n))
    s = s[..., None, None]
    a = k * p.f + s
    b = a + p.f
    w = xp.clip(xp.minimum(i + 1, b) - xp.maximum(i, a), 0.0, None)
    dw = xp.astype(xp.floor(b) == i, xp.float64) - xp.astype(xp.floor(a) == i, xp.float64)
    return xp.astype(w, dtype), xp.astype(dw, dtype)


def _shift_arrays(p: _Plan):
    xp = p.xp
    if p.shift_host is None:
        z = xp.zeros((), dtype=xp.float64, device=p.device)
        return z, z
    sh = xp.asarray(np.ascontiguousarray(p.shift_host), device=p.device) if not B.is_numpy_namespace(xp) \
        else p.shift_host
    sh = xp.asarray(sh, dtype=xp.float64)
    return sh[..., 0], sh[..., 1]


def _mats(p: _Plan, dtype):
    sy, sx = _shift_arrays(p)
    wy, dwy = _weights(p, p.ny, p.my, sy, dtype)
    wx, dwx = _weights(p, p.nx, p.mx, sx, dtype)
    return wy, dwy, wx, dwx


def _mT(xp, a):
    return xp.matrix_transpose(a) if hasattr(xp, "matrix_transpose") else xp.swapaxes(a, -1, -2)


def _forward_reference(p: _Plan, image):
    xp = p.xp
    if p.shift_host is None:
        f = p.f
        crop = image[..., :p.my * f, :p.mx * f]
        r = xp.reshape(crop, p.img_batch + (p.my, f, p.mx, f))
        out = xp.sum(xp.sum(r, axis=-1), axis=-2)
        return out * p.scale if p.scale != 1.0 else out
    wy, _, wx, _ = _mats(p, image.dtype)
    out = wy @ image @ _mT(xp, wx)
    out = out * p.scale if p.scale != 1.0 else out
    return xp.broadcast_to(out, p.out_batch + (p.my, p.mx))


# ------------------------------------------------------------------------ API

def bin(image, shift=None, *, factor, reduce="sum"):
    """Pixel binning by an integer ``factor`` as exact area integration.

    Output pixel (k, l) integrates the input, taken as piecewise constant with
    pixel i covering [i, i+1), over rows [k f + sy, (k+1) f + sy) and columns
    [l f + sx, (l+1) f + sx); input outside the image counts as zero.

    Parameters
    ----------
    image : array (..., ny, nx), float or complex
    shift : None, (sy, sx) or array (..., 2) [input pixels]
        Sub-pixel position of the binning grid; batch axes broadcast with the image's.
    factor : int >= 1
    reduce : {"sum", "mean"}
        "mean" divides by factor**2.

    Returns
    -------
    array (..., ny // factor, nx // factor), same library, device and dtype.

    Example
    -------
    >>> low = bin(high, (0.25, -0.5), factor=4)
    """
    p = _make_plan(image, shift, factor, reduce)
    return _forward(p, image)


def _bin_fwd(image, shift=None, *, factor, reduce="sum"):
    p = _make_plan(image, shift, factor, reduce)
    out = _forward(p, image)
    return out, (p, image, shift is not None)


def _bin_bwd(res, g):
    p, image, has_shift = res
    xp = p.xp
    expected = p.out_batch + (p.my, p.mx)
    if tuple(g.shape) != expected:
        raise ValueError(f"cotangent must have the output's shape {expected}, got {tuple(g.shape)}")
    if g.dtype != image.dtype:
        g = xp.astype(g, image.dtype)
    if p.cuda:
        return _bwd_cuda(p, image, has_shift, g)
    if p.kernel and prod(p.out_batch) == 0:
        cts = [np.zeros(tuple(image.shape), dtype=image.dtype)]
        if has_shift:
            cts.append(_shift_ct(p, np.zeros(p.shift_batch + (2,))))
        return tuple(cts)
    if p.kernel:
        g3 = np.ascontiguousarray(g).reshape((-1, p.my, p.mx))
        sh = _shifts2(p)
        du = np.empty((g3.shape[0], p.ny, p.nx), dtype=g3.dtype)
        K.bin_adjoint(g3, du, p.f, sh, p.scale)
        du = sum_to_shape(np, du.reshape(p.out_batch + (p.ny, p.nx)), tuple(image.shape))
        cts = [du]
        if has_shift:
            d = K.bin_shift_grad(_image3(p, image), g3, p.f, sh, p.scale)
            d = sum_to_shape(np, d.reshape(p.out_batch + (2,)), p.shift_batch + (2,))
            cts.append(_shift_ct(p, d))
        return tuple(cts)
    wy, dwy, wx, dwx = _mats(p, image.dtype)
    du = _mT(xp, wy) @ g @ wx
    if p.scale != 1.0:
        du = du * p.scale
    cts = [sum_to_shape(xp, du, tuple(image.shape))]
    if has_shift:
        def red(t):
            v = xp.real(xp.conj(g) * t) if B.is_complex(xp, t.dtype) else g * t
            return p.scale * xp.sum(xp.sum(v, axis=-1), axis=-1)
        dsy = red(dwy @ image @ _mT(xp, wx))
        dsx = red(wy @ image @ _mT(xp, dwx))
        d = xp.stack([xp.broadcast_to(dsy, p.out_batch), xp.broadcast_to(dsx, p.out_batch)], axis=-1)
        d = sum_to_shape(xp, xp.astype(d, xp.float64), p.shift_batch + (2,))
        cts.append(_shift_ct(p, d))
    return tuple(cts)


def _shift_ct(p: _Plan, d):
    """Cotangent of the shift with the shift's shape and dtype."""
    xp = p.xp
    if p.shift_kind == "array":
        return xp.astype(xp.asarray(d, device=p.device), p.shift_dtype)
    return xp.asarray(d, device=p.device)


# torch CUDA tensors: zero-copy CuPy views through the CUDA kernels (DLPack)
bin, _bin_fwd, _bin_bwd = C.via_cupy_vjp(bin, _bin_fwd, _bin_bwd)
register_vjp(bin, _bin_fwd, _bin_bwd)
