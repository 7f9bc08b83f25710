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

The FFT grid: the Volume stage pads to twice the image (``propagate(pad=True)``);
the solver (:class:`~diffimaging.holography.fused.FusedVolumeProblem`) uses by
default the smaller grid on which propagation to the deepest plane is still a
linear convolution (:func:`reach_grid`: the image plus the kernel's reach).  At
1024^2, 2 um pixels, 532 nm and depths up to 5 mm that is 1470^2 instead of 2048^2,
about half the work of every transform and kernel.  The two grids differ only in
how the kernel's tails (beyond the reach, from the cut at the Nyquist frequency)
wrap around.

One FISTA iteration: 2 inverse + 2 forward transforms at the sensor, then per
plane one inverse (gradient) and one forward (the trial point) half-spectrum
transform, both pruned (zero rows of the padded input are not transformed,
cropped rows are not inverse-transformed along x), in batches of planes (one
transform call per batch; the table kernels read and write the sensor spectra once
per batch).  Backtracking re-uses the stored gradient: a rejected step costs nz
forward transforms only.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._backend import fft as F
from .._backend import kernels as K
from .._backend.threads import get_num_threads
from ..ops.propagate import Plan, band_limit_freq, transfer_kappa

__all__ = ["HalfVolume", "HalfVolumeCuda", "reach_grid", "REACH_MARGIN"]

# planes per batch of the table kernels and transforms: 4 halves the memory traffic
# of the sums / cotangents against one plane at a time; the buffers are 4 planes
_BATCH = 4

#: Margin beyond the kernel's geometric reach in :func:`reach_grid`, in Fresnel lengths
#: sqrt(wavelength z).  The transfer function is cut at the Nyquist frequency, so the
#: point-spread function does not end at its reach z tan(theta): it has a Fresnel edge
#: there, a few sqrt(wavelength z) wide, with tails decaying like 1 / distance that wrap
#: around on any finite grid (on the doubled grid too).  Measured with random 3-pixel
#: particles (2 um pixels, 532 nm; the field against a 4x grid, rms over the field's rms):
#: 4 lengths give 5.7e-3 - 7.8e-3 at 128^2 / 0.5 mm, 256^2 / 1 mm, 512^2 / 2 and 5 mm,
#: where the doubled grid gives 1.9e-3 - 5.4e-3 and one length 8e-3 - 1.2e-2; 1 % hologram
#: noise is ~10x above either.  ∂H recall / precision on four 512^2 x 64-plane particle
#: fields (5e-4 - 2e-3 particles per pixel, 1-5 mm) were identical on the doubled grid,
#: this grid and one without margin.
REACH_MARGIN = 4.0


def reach_grid(shape, z_max, wavelength, pixel_size, method="asm"):
    """The FFT grid (my, mx) on which propagation of a (ny, nx) image by up to
    ``z_max`` [m] is a linear (not circular) convolution: each axis padded by the
    reach of the transfer function (the lateral distance z tan(theta) travelled by the
    highest sampled frequency, both axes at the Nyquist frequency, plus
    ``REACH_MARGIN`` Fresnel lengths sqrt(wavelength z)), a fast FFT length, and
    never larger than the doubled grid of ``propagate(pad=True)`` (which is returned
    where the reach is not shorter, or where the smaller grid would move the band
    limit of ``z_max`` below the Nyquist frequency).  Output pixel i then receives
    input pixel j only through kernel lags |i - j| <= reach, as on the unbounded
    grid.  Metres throughout."""
    ny, nx = (int(v) for v in shape)
    dy, dx = (float(v) for v in pixel_size)
    lam = float(wavelength)
    sy, sx = lam * 0.5 / dy, lam * 0.5 / dx   # sin of the Nyquist angles
    if method == "asm":
        c2 = 1.0 - sy * sy - sx * sx
        if c2 <= 1e-6:            # evanescent before the corner: no finite reach
            return F.next_fast_len(2 * ny), F.next_fast_len(2 * nx)
        tan_y, tan_x = sy / math.sqrt(c2), sx / math.sqrt(c2)
    else:
        tan_y, tan_x = sy, sx
    out = []
    for n, d, tan in ((ny, dy, tan_y), (nx, dx, tan_x)):
        double = F.next_fast_len(2 * n)
        reach = (abs(z_max) * tan + REACH_MARGIN * math.sqrt(lam * abs(z_max))) / d
        m = F.next_fast_len(n + int(math.ceil(reach)))
        if m >= double or band_limit_freq(method, lam, m, d, z_max) < 0.5 / d <= band_limit_freq(
                method, lam, double, d, z_max):
            m = double
        out.append(m)
    return tuple(out)


class HalfVolume:
    """The real-object volume operator on half spectra (numpy, float32 or float64).

    ``z``: nominal plane depths [m]; ``shape``: (ny, nx) of the hologram;
    ``wavelength``, ``pixel_size``: metres.  ``pad``: the FFT grid, "double" (as
    :func:`~diffimaging.propagate` with ``pad=True``: the Volume stage's grid) or
    "reach" (:func:`reach_grid` for the deepest plane moved by ``dz_max`` [m]: the
    smallest grid on which the propagation is still a linear convolution, about half
    the transforms' work of the doubled grid at 1024^2 and depths of a few mm) or an
    explicit grid (my, mx) (at least the image's shape; zero padding still goes after
    the image).  The band-limit mask is computed on the grid used."""

    def __init__(self, z, shape, wavelength, pixel_size, dtype=np.float32, method="asm",
                 band_limit=True, pad="double", dz_max=0.0):
        self.z = np.asarray(z, dtype=np.float64).reshape(-1)
        self.rdt = np.dtype(dtype)
        if self.rdt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"HalfVolume works in float32 or float64, got {self.rdt}")
        self.cdt = np.dtype(np.complex64 if self.rdt == np.float32 else np.complex128)
        ny, nx = (int(v) for v in shape)
        self.plan = Plan.make(np.zeros((ny, nx), self.cdt), float(self.z[0]), wavelength,
                              pixel_size, method, True, band_limit, False, op="dh_fused")
        p = self.plan
        if isinstance(pad, str) and pad == "reach":
            z_max = float(np.max(np.abs(self.z))) + abs(float(dz_max))
            grid = reach_grid((ny, nx), z_max, p.wavelength, (p.dy, p.dx), method)
        elif isinstance(pad, str) and pad == "double":
            grid = (p.py, p.px)
        elif (isinstance(pad, tuple) and len(pad) == 2
              and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pad)
              and pad[0] >= ny and pad[1] >= nx):
            grid = (int(pad[0]), int(pad[1]))
        else:
            raise ValueError(f"pad must be 'double', 'reach' or an FFT grid (my, mx) of integers at "
                             f"least the image's {(ny, nx)}, got {pad!r}")
        if grid != (p.py, p.px):
            self.plan = dataclasses.replace(p, py=grid[0], px=grid[1])
        self.ny, self.nx = ny, nx
        self.my, self.mx = self.plan.py, self.plan.px
        self.nxh = self.mx // 2 + 1
        p = self.plan
        # phase rate d(phase)/dz [rad/m] on the half spectrum; no band limit here (the
        # kernels apply each plane's mask, the offset moves the phase only)
        _, kap = transfer_kappa((self.my, self.mx), 0.0, wavelength=p.wavelength,
                                pixel_size=(p.dy, p.dx), method=method, band_limit=False,
                                carrier=False, half=True)
        w = np.full(self.nxh, 2.0)
        w[0] = 1.0
        if self.mx % 2 == 0:
            w[-1] = 1.0
        wk = (w[None, :] * kap) / float(self.my * self.mx)  # Parseval weights * kappa / n
        self.workers = get_num_threads()
        self.T = None                                       # transfer tables
        self._setup(kap, wk)

    def _setup(self, kappa, wk):
        """The phase rate, the Parseval-weighted rate and the work buffers, in the
        engine's array library (numpy here)."""
        self.xp = np
        self.kappa, self.wk = kappa, wk
        # planes are transformed in batches of `batch`: the table kernels then pass
        # over the sums / cotangents once per batch, and each FFT call does b planes
        self.batch = max(1, min(self.z.size, _BATCH))
        self.rows = np.zeros((self.batch, self.ny, self.mx), self.rdt)       # padded rows
        self.spec = np.zeros((self.batch, self.my, self.nxh), self.cdt)      # half spectra

    # -- transforms (pruned: zero rows are not transformed, cropped rows not inverted)
    def forward_rows(self, kb):
        """Half spectra ``self.spec[:kb]`` (kb, my, nxh) of the real images written
        into ``self.rows[:kb, :, :nx]`` (their other columns zero), zero-padded to the
        grid; returns the view."""
        w, ny = self.workers, self.ny
        spec = self.spec[:kb]
        F.r2c(self.rows[:kb], (2,), out=spec[:, :ny], workers=w)   # ny rows only
        spec[:, ny:] = 0
        F.c2c(spec, (1,), True, out=spec, workers=w)
        return spec

    def inverse_rows(self, kb):
        """Real inverse transforms of ``self.spec[:kb]`` (overwritten), cropped to the
        image's rows: ``self.rows[:kb]`` (kb, ny, mx), the image in the first nx
        columns; returns the view."""
        w = self.workers
        spec = self.spec[:kb]
        F.c2c(spec, (1,), False, out=spec, workers=w)
        F.c2r(spec[:, : self.ny], (2,), self.mx, out=self.rows[:kb], workers=w)
        return self.rows[:kb]

    def load_rows(self, j, a):
        """Write the real (ny, nx) image ``a`` into row buffer ``j`` (zero padded)."""
        r = self.rows[j]
        r[:, : self.nx] = a
        r[:, self.nx:] = 0

    def rfft_pad(self, a, keep=False):
        """Half spectrum (my, nxh) of the real (ny, nx) image ``a`` zero-padded.  The
        result lives in a work buffer (overwritten by the next call) unless ``keep``."""
        self.load_rows(0, a)
        col = self.forward_rows(1)[0]
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
        xp = self.xp
        return (xp.zeros((self.my, self.nxh), self.cdt), xp.zeros((self.my, self.nxh), self.cdt))

    def accumulate_rows(self, S, k0, kb, first):
        """S (+)= the half spectra of planes k0 .. k0 + kb - 1 at their nominal depths,
        their images read from ``self.rows[:kb]`` (:meth:`load_rows`)."""
        O = self.forward_rows(kb)
        if self.T is not None:
            K.dh_accumulate_table(O, self.T[k0:k0 + kb], S[0], S[1], accumulate=not first)
            return
        for j in range(kb):
            z = float(self.z[k0 + j])
            K.dh_accumulate(O[j], S[0], S[1], self.plan, z, z, accumulate=not (first and j == 0))

    def spectra(self, o):
        S = self.empty_spectra()
        for k0 in range(0, self.z.size, self.batch):
            kb = min(self.batch, self.z.size - k0)
            for j in range(kb):
                self.load_rows(j, o[k0 + j])
            self.accumulate_rows(S, k0, kb, k0 == 0)
        return S

    def _rotation(self, dz):
        """cos and sin of kappa dz; the last one is kept (an iteration asks for the
        same offset twice: the extrapolated point's spectra and its cotangent)."""
        cached = getattr(self, "_rot", None)
        if cached is not None and cached[0] == dz:
            return cached[1], cached[2]
        ph = (self.kappa * dz).astype(self.rdt)   # |phase| <~ 1 rad: single precision suffices
        c, s = self.xp.cos(ph), self.xp.sin(ph)
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
        out = self.xp.empty(sr.shape, self.cdt)
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
        return float(self.xp.sum(self.wk * t))

    def grad_rows(self, A, B, k0, kb):
        """Re(P_k^H g) of planes k0 .. k0 + kb - 1 from the rotated cotangent spectra:
        ``self.rows[:kb]`` (kb, ny, mx), each gradient in the first nx columns."""
        C = self.spec[:kb]
        if self.T is not None:
            K.dh_backproject_table(A, B, self.T[k0:k0 + kb], C)
        else:
            for j in range(kb):
                z = float(self.z[k0 + j])
                K.dh_backproject(A, B, C[j], self.plan, z, z)
        return self.inverse_rows(kb)

    # -- proximal steps of a batch of planes (the solver's trial point)
    def prox_rows(self, x, xprev, rows, out, beta, step, shift, lo, hi):
        """The proximal step (:func:`~diffimaging._backend.kernels.prox_step_rows`) of
        the planes ``x`` (kb, ny, nx) (``xprev`` the previous iterate's or None), the
        gradients read from the row buffers ``rows`` (kb, ny, mx) and replaced by the
        result (zero padded), the result also in ``out``; returns the sums
        (sum g d, sum d^2, sum out) over the batch, added plane by plane."""
        gd = dd = s = 0.0
        for j in range(x.shape[0]):
            a, b, c = K.prox_step_rows(x[j], None if xprev is None else xprev[j], rows[j], out[j],
                                       beta, step, shift, lo, hi)
            gd, dd, s = gd + a, dd + b, s + c
        return gd, dd, s

    def prox(self, x, xprev, g, out, beta, step, shift, lo, hi):
        """:meth:`prox_rows` with the gradients ``g`` (kb, ny, nx) given."""
        gd = dd = s = 0.0
        for j in range(x.shape[0]):
            a, b, c = K.prox_step(x[j], None if xprev is None else xprev[j], g[j], out[j], beta,
                                  step, shift, lo, hi)
            gd, dd, s = gd + a, dd + b, s + c
        return gd, dd, s

    def plane_grad(self, A, B, k, out=None):
        """Re(P_k^H g) for plane k from the rotated cotangent spectra: (ny, nx) real,
        written into ``out`` when given."""
        v = self.grad_rows(A, B, k, 1)[0, :, : self.nx]
        if out is None:
            return v.copy()
        out[...] = v
        return out


class HalfVolumeCuda(HalfVolume):
    """:class:`HalfVolume` on CuPy arrays (the GPU): real transforms by cuFFT
    (``cupy.fft``, plans cached by CuPy), transfer tables built on the device
    (:func:`~diffimaging._backend.cuda_dh.transfer_table`, the CPU tables' formula
    in double precision), the sums, cotangents and proximal steps by the CUDA
    kernels of :mod:`diffimaging._backend.cuda_dh` (the proximal step of a whole
    batch of planes in one launch, its sums reduced deterministically).

    The tables of all planes are kept on the device when they fit in
    ``table_bytes`` and half the free device memory; otherwise each batch's
    tables are built when needed (the table kernel per batch).  Same arguments and
    results as :class:`HalfVolume`; arrays in and out are CuPy arrays."""

    @staticmethod
    def _device_libraries():
        """(array library, kernel launchers): CuPy and :mod:`~diffimaging._backend.cuda_dh`
        (tests without a GPU substitute numpy and stand-ins with the same contracts)."""
        import cupy

        from .._backend import cuda_dh

        return cupy, cuda_dh

    def _setup(self, kappa, wk):
        cp, self._kd = self._device_libraries()
        self.xp = cp
        self.kappa, self.wk = cp.asarray(kappa), cp.asarray(wk)
        # the batch: more planes per cuFFT call and per table-kernel pass than on the
        # CPU (the GPU needs the parallel work), bounded by a few hundred MB of buffers
        per_plane = self.my * self.mx * self.cdt.itemsize * 3
        self.batch = int(max(1, min(self.z.size, 16, (512 << 20) // max(per_plane, 1))))
        self.rows = cp.zeros((self.batch, self.ny, self.mx), self.rdt)
        self.spec = None
        self._scratch = None

    # -- transforms (cuFFT; the padded rows are transformed as a whole)
    def forward_rows(self, kb):
        """Half spectra (kb, my, nxh) of the row buffers ``self.rows[:kb]`` zero-padded
        to the grid (a new C-contiguous CuPy array)."""
        cp = self.xp
        return cp.ascontiguousarray(cp.fft.rfft2(self.rows[:kb], s=(self.my, self.mx)))

    def inverse_rows(self, kb):
        """Real inverse transforms of the half spectra ``self.spec[:kb]`` (the last
        batch :meth:`grad_rows` formed), cropped to the image's rows:
        ``self.rows[:kb]`` (kb, ny, mx), the image in the first nx columns."""
        r = self.xp.fft.irfft2(self.spec[:kb], s=(self.my, self.mx))
        self.rows[:kb] = r[:, : self.ny]
        return self.rows[:kb]

    def irfft_crop(self, C, overwrite=True, out=None):
        v = self.xp.fft.irfft2(C, s=(self.my, self.mx))
        if out is None:
            return v[: self.ny, : self.nx]
        out[...] = v[: self.ny]
        return out[:, : self.nx]

    # -- transfer tables
    def build_tables(self, max_bytes):
        """All planes' tables on the device when they fit in ``max_bytes`` and half
        the free device memory (else per batch, when needed)."""
        from .._backend import cuda as C

        nbytes = self.z.size * self.my * self.nxh * self.cdt.itemsize
        self.T = None
        if nbytes > min(int(max_bytes), C.free_memory() // 2):
            return False
        T = self.xp.empty((self.z.size, self.my, self.nxh), self.cdt)
        self._kd.transfer_table(T, self.z, self.plan)
        self.T = T
        return True

    def _tables(self, k0, kb):
        """The tables of planes k0 .. k0 + kb - 1 (kb, my, nxh)."""
        if self.T is not None:
            return self.T[k0:k0 + kb]
        if self._scratch is None:
            self._scratch = self.xp.empty((self.batch, self.my, self.nxh), self.cdt)
        t = self._scratch[:kb]
        self._kd.transfer_table(t, self.z[k0:k0 + kb], self.plan)
        return t

    def accumulate_rows(self, S, k0, kb, first):
        O = self.forward_rows(kb)
        self._kd.dh_accumulate_table(O, self._tables(k0, kb), S[0], S[1], accumulate=not first)

    def grad_rows(self, A, B, k0, kb):
        self.spec = self.xp.empty((kb, self.my, self.nxh), self.cdt)
        self._kd.dh_backproject_table(A, B, self._tables(k0, kb), self.spec)
        return self.inverse_rows(kb)

    # -- proximal steps: one launch per batch
    def prox_rows(self, x, xprev, rows, out, beta, step, shift, lo, hi):
        return self._kd.prox_step_rows(x, xprev, rows, out, beta, step, shift, lo, hi)

    def prox(self, x, xprev, g, out, beta, step, shift, lo, hi):
        return self._kd.prox_step(x, xprev, g, out, beta, step, shift, lo, hi)
