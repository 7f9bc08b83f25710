"""Fused ∂H engine for real (absorbing) particle volumes on numpy.

The first-Born hologram of a real object stack o (nz, ny, nx) is

    I = r^2 |1 + s|^2,   s = sum_k P~(z_k + dz) o_k,

(or its Gabor linearisation ``r^2 (1 + 2 Re s)``).  Three facts make one
iteration cost about nz real FFT pairs instead of the generic solver's ~3 nz
complex ones:

* The carrier-free transfer function is even in frequency, H(-f) = H(f), so
  for a real plane o_k with O_k = rfft2(o_k)

      s = irfft2(S_r) + i irfft2(S_i),  S_r = sum_k Re(H_k) O_k,  S_i = sum_k Im(H_k) O_k

  (two half spectra, real transforms only), and the real part of the adjoint
  of a complex cotangent g = g_r + i g_i is irfft2(Re(H_k) A + Im(H_k) B) with
  A = rfft2(g_r), B = rfft2(g_i).  The fused C++ kernels ``dh_accumulate`` and
  ``dh_backproject`` generate H on the fly (phase in double precision).
* Every plane shares the phase rate kappa(f), so a global offset dz multiplies
  the summed spectrum by D = exp(i kappa dz): dL/d(dz) is one reduction over
  S, and the sensor field at any (o, dz) follows from the stored S of o.
* s is linear in o, so FISTA's extrapolated point y = x + beta (x - x_prev) has
  S(y) = (1 + beta) D S(x) - beta D' S(x_prev): its forward pass costs two
  inverse transforms, not nz.

The band-limit mask of plane k is that of its nominal depth z_k (the offset
dz moves the phase only); the generic :class:`Volume` stage uses the mask of
z_k + dz.  They differ only on the band-limit edge, and not at all where the
grid samples the transfer function without aliasing (no mask at all).

One FISTA iteration: 2 inverse + 2 forward transforms at the sensor, then per
plane one inverse (gradient) and one forward (the trial point) half-spectrum
transform, both pruned (zero rows of the padded input are not transformed,
cropped rows are not inverse-transformed along x).  Backtracking re-uses the
stored gradient: a rejected step costs nz forward transforms only.
"""
from __future__ import annotations

import numpy as np

from .._backend import fft as F
from .._backend import kernels as K
from .._backend.threads import get_num_threads
from ..ops.propagate import Plan, transfer_kappa

__all__ = ["HalfVolume"]


class HalfVolume:
    """The real-object volume operator on half spectra (numpy, float32 or float64).

    ``z``: nominal plane depths [m]; ``shape``: (ny, nx) of the hologram;
    ``wavelength``, ``pixel_size``: metres.  The grid is padded as in
    :func:`~diffimaging.propagate` (``pad=True``)."""

    def __init__(self, z, shape, wavelength, pixel_size, dtype=np.float32, method="asm",
                 band_limit=True):
        self.z = np.asarray(z, dtype=np.float64).reshape(-1)
        self.rdt = np.dtype(dtype)
        if self.rdt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"HalfVolume works in float32 or float64, got {self.rdt}")
        self.cdt = np.dtype(np.complex64 if self.rdt == np.float32 else np.complex128)
        ny, nx = (int(v) for v in shape)
        self.plan = Plan.make(np.zeros((ny, nx), self.cdt), float(self.z[0]), wavelength,
                              pixel_size, method, True, band_limit, False, op="dh_fused")
        self.ny, self.nx = ny, nx
        self.my, self.mx = self.plan.py, self.plan.px
        self.nxh = self.mx // 2 + 1
        p = self.plan
        # phase rate d(phase)/dz [rad/m] on the half spectrum; no band limit here (the
        # kernels apply each plane's mask, the offset moves the phase only)
        _, kap = transfer_kappa((self.my, self.mx), 0.0, wavelength=p.wavelength,
                                pixel_size=(p.dy, p.dx), method=method, band_limit=False,
                                carrier=False, half=True)
        self.kappa = kap
        w = np.full(self.nxh, 2.0)
        w[0] = 1.0
        if self.mx % 2 == 0:
            w[-1] = 1.0
        self.wk = (w[None, :] * kap) / float(self.my * self.mx)  # Parseval weights * kappa / n
        self.workers = get_num_threads()
        self.rows = np.zeros((ny, self.mx), self.rdt)           # zero-padded rows (work buffer)
        self._out = np.empty((ny, self.mx), self.rdt)           # inverse-transform output rows
        self._cols = np.zeros((self.my, self.nxh), self.cdt)    # zero-padded columns

    # -- transforms (pruned: zero rows are not transformed, cropped rows not inverted)
    def rfft_pad(self, a=None, keep=False):
        """Half spectrum (my, nxh) of the real (ny, nx) image ``a`` zero-padded (``a``
        None: the image already written into ``self.rows[:, :nx]``).  The result lives
        in a work buffer (overwritten by the next call) unless ``keep``."""
        w = self.workers
        rows, col, ny = self.rows, self._cols, self.ny
        if a is not None:
            rows[:, : self.nx] = a
        # straight into the work buffers (no temporaries where the FFT layer has
        # output buffers)
        F.r2c(rows, (1,), out=col[:ny], workers=w)
        col[ny:] = 0
        F.c2c(col, (0,), True, out=col, workers=w)
        return col.copy() if keep else col

    def irfft_crop(self, C, overwrite=True, out=None):
        """Real (ny, nx) crop of the inverse of the half spectrum C (overwritten unless
        ``overwrite=False``).  With ``out`` (a (ny, mx) real buffer) the full rows are
        written there and a view is returned."""
        w = self.workers
        c = C if overwrite else C.copy()
        F.c2c(c, (0,), False, out=c, workers=w)
        if out is None:
            out = np.empty((self.ny, self.mx), self.rdt)
        F.c2r(c[: self.ny], (1,), self.mx, out=out, workers=w)
        return out[:, : self.nx]

    # -- transfer tables
    def build_tables(self, max_bytes):
        """Precompute H(z_k) of every plane (nominal depth, band limit included) when
        they fit in ``max_bytes``: the per-plane kernels are then plain multiply-adds
        instead of generating the phase (double-precision sincos) every time."""
        nbytes = self.z.size * self.my * self.nxh * self.cdt.itemsize
        self.T = None
        if nbytes > max_bytes:
            return False
        T = np.empty((self.z.size, self.my, self.nxh), self.cdt)
        one = np.ones((self.my, self.nxh), self.cdt)
        hr, hi = np.empty_like(one), np.empty_like(one)
        for k in range(self.z.size):
            K.dh_accumulate(one, hr, hi, self.plan, float(self.z[k]), float(self.z[k]), accumulate=False)
            T[k].real = hr.real
            T[k].imag = hi.real
        self.T = T
        return True

    # -- spectra of the volume (at the nominal depths; refocus() applies an offset)
    def empty_spectra(self):
        return (np.zeros((self.my, self.nxh), self.cdt), np.zeros((self.my, self.nxh), self.cdt))

    def accumulate(self, ok, S, k, first):
        """S (+)= the half spectra of plane k (real image ``ok``) at its nominal depth."""
        O = self.rfft_pad(ok)
        if getattr(self, "T", None) is not None:
            K.dh_accumulate_table(O, self.T[k], S[0], S[1], accumulate=not first)
        else:
            K.dh_accumulate(O, S[0], S[1], self.plan, float(self.z[k]), float(self.z[k]),
                            accumulate=not first)

    def spectra(self, o):
        S = self.empty_spectra()
        for k in range(self.z.size):
            self.accumulate(np.ascontiguousarray(o[k], dtype=self.rdt), S, k, k == 0)
        return S

    def _rotation(self, dz):
        """cos and sin of kappa dz; the last one is kept (an iteration asks for the
        same offset twice: the extrapolated point's spectra and its cotangent)."""
        cached = getattr(self, "_rot", None)
        if cached is not None and cached[0] == dz:
            return cached[1], cached[2]
        ph = (self.kappa * dz).astype(self.rdt)   # |phase| <~ 1 rad: single precision suffices
        c, s = np.cos(ph), np.sin(ph)
        self._rot = (dz, c, s)
        return c, s

    def refocus(self, S, dz):
        """Spectra of the same volume with every plane moved by ``dz`` [m]:
        S * exp(i kappa dz) (new arrays; S itself when dz = 0)."""
        if dz == 0.0:
            return S
        c, s = self._rotation(dz)
        return (c * S[0] - s * S[1], s * S[0] + c * S[1])

    def field(self, S, real_only=False):
        """Sensor field s (complex (ny, nx)), or Re s with ``real_only``."""
        sr = self.irfft_crop(S[0].copy())
        if real_only:
            return sr
        si = self.irfft_crop(S[1].copy())
        out = np.empty(sr.shape, self.cdt)
        out.real = sr
        out.imag = si
        return out

    def cotangent_spectra(self, gr, gi, dz):
        """Half spectra (A, B) of the cotangent g = g_r + i g_i, rotated by
        exp(-i kappa dz) (the offset's part of the adjoint), so that the adjoint of
        plane k is irfft2(Re(H(z_k)) A + Im(H(z_k)) B).  Also the unrotated pair
        for the distance gradient.  B is None for a real cotangent at dz = 0."""
        A = self.rfft_pad(gr, keep=True)
        B = None if gi is None else self.rfft_pad(gi, keep=True)
        if dz == 0.0:
            return (A, B), (A, B)
        c, s = self._rotation(dz)
        if B is None:
            return (c * A, -s * A), (A, B)
        return (c * A + s * B, c * B - s * A), (A, B)

    def dz_grad(self, A, B, S):
        """dL/d(dz) = (1/n) sum_f kappa Re(conj(B) S_r - conj(A) S_i) (full spectrum;
        S the spectra at the offset, A, B the unrotated cotangent spectra)."""
        t = -(A.real * S[1].real + A.imag * S[1].imag)
        if B is not None:
            t = t + (B.real * S[0].real + B.imag * S[0].imag)
        return float(np.sum(self.wk * t))

    def plane_grad_rows(self, A, B, k, buf):
        """Re(P_k^H g) for plane k into ``self.rows[:, :nx]`` (full padded rows)."""
        if getattr(self, "T", None) is not None:
            K.dh_backproject_table(A, B, self.T[k], buf)
        else:
            K.dh_backproject(A, B, buf, self.plan, float(self.z[k]), float(self.z[k]))
        self.irfft_crop(buf, out=self.rows)

    def plane_grad(self, A, B, k, buf, out=None):
        """Re(P_k^H g) for plane k from the rotated cotangent spectra: (ny, nx) real,
        written into ``out`` when given (``buf``: a half-spectrum work array)."""
        if getattr(self, "T", None) is not None:
            K.dh_backproject_table(A, B, self.T[k], buf)
        else:
            K.dh_backproject(A, B, buf, self.plan, float(self.z[k]), float(self.z[k]))
        v = self.irfft_crop(buf, out=self._out)
        if out is None:
            return v.copy()
        out[...] = v
        return out
