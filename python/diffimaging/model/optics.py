"""Optical stages: free-space propagation, translation, a coherent pupil."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .._backend import fft as F
from .._backend import validate as V
from .._backend.autodiff import vjp as _vjp
from ..ops.propagate import propagate as _propagate
from ..ops.shift import shift as _shift
from .param import Param
from .stage import Stage, cotangent_like, param_value
from .zernike import zernike_noll

__all__ = ["Propagate", "Shift", "Pupil"]


class Propagate(Stage):
    """Free-space propagation by ``z`` metres (see :func:`diffimaging.propagate`).

    ``z`` is a float, a :class:`Param`, or an array of K distances.  With K
    distances, ``mode="stack"`` makes K planes of one input, ``mode="batch"``
    propagates input k by z[k] (K captures with their own distances, e.g. after a
    per-capture :class:`Shift`); ``"auto"`` (default) uses "batch" when the
    input's leading axis has length K > 1, else "stack".  The adjoint
    (``.H``) of a K-distance stage in mode "auto" maps back to the batch input
    (same shape); give mode="stack" (or ``Adjoint(stage, ishape)``) for the other.

    ``carrier`` defaults to False here: forward models of intensity data never
    see the plane-wave phase, and the carrier-free z-gradient keeps full
    single-precision accuracy (CONVENTIONS.md).
    """

    linear = True

    def __init__(self, z, wavelength, pixel_size, method="asm", pad=True, carrier=False,
                 band_limit=True, mode="auto", name=None):
        super().__init__(name)
        self._declare("z", z)
        self.mode = V.choice("mode", mode, ("auto", "stack", "batch"))
        self.static = dict(wavelength=wavelength, pixel_size=pixel_size, method=method, pad=pad,
                           carrier=carrier, band_limit=band_limit)

    def _batched_shape(self, ishape, k: int) -> bool:
        """Whether an input of shape ``ishape`` is propagated in batch mode by K = k distances."""
        if self.mode == "stack":
            return False
        if self.mode == "batch":
            if len(ishape) < 3 or ishape[0] != k:
                raise ValueError(f"mode='batch' needs an input with a leading axis of {k} "
                                 f"(one per distance), got shape {tuple(ishape)}")
            return True
        return len(ishape) >= 3 and ishape[0] == k and k > 1

    def _batched(self, x, z):
        if isinstance(z, float) or getattr(z, "ndim", 0) == 0:
            return False
        return self._batched_shape(tuple(int(n) for n in x.shape), int(z.shape[0]))

    def forward(self, x, p):
        z = param_value(p, "z", x)
        if not self._batched(x, z):
            y, pb = _vjp(_propagate, x, z, **self.static)
            return y, ("one", pb, z)
        xp = B.namespace(x)
        outs, pbs = [], []
        for k in range(int(z.shape[0])):
            y, pb = _vjp(_propagate, x[k, ...], z[k], **self.static)
            outs.append(y)
            pbs.append(pb)
        return xp.stack(outs, axis=0), ("batch", pbs, z)

    def backward(self, res, g):
        kind, pb, z = res
        if kind == "one":
            gx, gz = pb(g)
            return gx, {"z": cotangent_like(gz, z)}
        xp = B.namespace(g)
        gxs, gzs = zip(*[pbk(g[k, ...]) for k, pbk in enumerate(pb)])
        return xp.stack(list(gxs), axis=0), {"z": xp.stack(list(gzs), axis=0)}

    def _k(self):
        zs = self.param_shape("z")
        if len(zs) > 1:
            raise ValueError(f"Propagate stage {self.name!r}: z must be a scalar or a 1-d array of "
                             f"distances, got shape {zs}")
        return None if zs == () else zs[0]

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        k = self._k()
        if k is None or self._batched_shape(ishape, k):
            return ishape
        return (k,) + ishape

    def ishape(self, oshape) -> tuple:
        oshape = self._image_shape(oshape)
        k = self._k()
        if k is None:
            return oshape
        if len(oshape) < 3 or oshape[0] != k:
            raise ValueError(f"Propagate stage {self.name!r} ({k} distances) outputs arrays of shape "
                             f"(K={k}, ..., ny, nx), got shape {oshape}")
        stacked = self.mode == "stack" or (self.mode == "auto" and k == 1)
        return oshape[1:] if stacked else oshape


class Shift(Stage):
    """Periodic sub-pixel translation by ``shift`` = (sy, sx) pixels, or (K, 2)
    for K captures (see :func:`diffimaging.shift`)."""

    linear = True

    def __init__(self, shift, name=None):
        super().__init__(name)
        self._declare("shift", shift)

    def forward(self, x, p):
        s = p["shift"]
        s = s if isinstance(s, (tuple, list)) else param_value(p, "shift", x)
        y, pb = _vjp(_shift, x, s)
        return y, pb

    def backward(self, pb, g):
        gx, gs = pb(g)
        return gx, {"shift": gs}

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        return self._shift_batch(ishape) + ishape[-2:]


class Pupil(Stage):
    """Coherent imaging through a circular pupil of numerical aperture ``na`` with
    a phase aberration sum_j c_j Z_j (Noll-indexed Zernike polynomials, c in
    radians, indices ``noll`` = 1, 2, ... by default for as many coefficients as
    given), applied as a filter in the (unshifted) Fourier plane of the field's
    grid: y = IFFT(P * FFT(x)), P = circ(|f| <= na / wavelength) exp(i phi).
    ``wavelength`` and ``pixel_size`` in metres.

    ``zernike`` (the coefficients) is a differentiable parameter.
    """

    linear = True

    def __init__(self, na, wavelength, pixel_size, zernike=None, noll=None, name=None):
        super().__init__(name)
        if not na > 0:
            raise ValueError(f"na must be positive, got {na!r}")
        self.na, self.wavelength = float(na), float(wavelength)
        self.pixel_size = V.pixel_size(pixel_size)
        if zernike is not None:
            nz = int(np.size(B.to_host_float64(zernike.value if isinstance(zernike, Param) else zernike,
                                               "zernike")))
            self.noll = list(range(1, nz + 1)) if noll is None else [V.integer(j, "noll index", minimum=1) for j in noll]
            if len(self.noll) != nz:
                raise ValueError(f"noll has {len(self.noll)} indices for {nz} coefficients")
        else:
            self.noll = []
        self._declare("zernike", zernike)
        self._cache = {}

    def _basis(self, xp, shape, device):
        key = (id(xp), tuple(shape), str(device))
        if key not in self._cache:
            ny, nx = shape
            fy = F.fftfreq(ny, self.pixel_size[0])[:, None]
            fx = F.fftfreq(nx, self.pixel_size[1])[None, :]
            fc = self.na / self.wavelength
            rho = np.sqrt(fy ** 2 + fx ** 2) / fc
            theta = np.arctan2(fy, fx)
            mask = (rho <= 1.0).astype(np.float64)
            Z = np.stack([zernike_noll(j, rho, theta) for j in self.noll]) if self.noll \
                else np.zeros((0, ny, nx))
            self._cache = {key: (xp.asarray(mask, device=device), xp.asarray(Z, device=device))}
        return self._cache[key]

    def _pupil(self, x, p):
        xp = B.namespace(x)
        mask, Z = self._basis(xp, tuple(x.shape[-2:]), B.device_of(x))
        cdt = B.complex_dtype_for(xp, x.dtype)
        if self.noll:
            c = xp.asarray(param_value(p, "zernike", x), dtype=xp.float64)
            phi = xp.sum(xp.reshape(c, (-1, 1, 1)) * Z, axis=0)
            P = xp.astype(mask * xp.cos(phi), cdt) + xp.astype(mask * xp.sin(phi), cdt) * 1j
        else:
            P = xp.astype(mask, cdt)
        return P, Z, cdt

    def forward(self, x, p):
        xp = B.namespace(x)
        P, Z, cdt = self._pupil(x, p)
        X = F.fftn(xp.astype(x, cdt))
        y = F.ifftn(X * P, overwrite=True)
        return y, (X, P, Z, x, p)

    def backward(self, res, g):
        X, P, Z, x, p = res
        xp = B.namespace(g)
        G = F.fftn(g)
        gx = F.ifftn(G * xp.conj(P), overwrite=True)
        if not B.is_complex(xp, x.dtype):
            gx = xp.real(gx)
        out = {}
        if self.noll:
            n = float(x.shape[-1] * x.shape[-2])
            # d y / d c_j = IFFT(i Z_j P X); Parseval: Re sum conj(G) i Z_j P X / N
            t = xp.real(xp.conj(G) * P * X * 1j)
            t = xp.sum(xp.reshape(t, (-1,) + tuple(t.shape[-2:])), axis=0) if t.ndim > 2 else t
            out["zernike"] = xp.sum(xp.sum(xp.astype(t, xp.float64)[None, ...] * Z, axis=-1),
                                    axis=-1) / n
            v = p["zernike"]
            if hasattr(v, "shape"):
                out["zernike"] = xp.reshape(out["zernike"], tuple(v.shape))
        return gx, out

    def oshape(self, ishape) -> tuple:
        return self._image_shape(ishape)
