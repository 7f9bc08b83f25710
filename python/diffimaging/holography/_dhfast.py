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

import math
import time

import numpy as np

from .._backend import fft as F
from .._backend import kernels as K
from .._backend.threads import get_num_threads
from ..losses import get_loss
from ..ops.propagate import Plan, transfer_kappa

__all__ = ["HalfVolume", "fista_volume"]


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


def _param_terms(*parts):
    """The parameters' share of <g, d> and |d|^2 of a trial step, in the scaled
    variables u = value / scale; each part is (change, gradient, scale, learned)."""
    gd = dd = 0.0
    for change, grad, scale, learned in parts:
        if learned:
            du = change / scale
            gd += grad * scale * du
            dd += du * du
    return gd, dd


def _model_terms(hv, S, r, h, loss, linearized):
    """Loss value, cotangents (g_r, g_i) of s and the reference gradient at (S, r)."""
    if linearized:
        sr = hv.field(S, real_only=True)
        pred = (r * r) * (1.0 + 2.0 * sr)
        f, gI = loss(pred, h)
        gI = np.asarray(gI)
        g_ref = float(np.sum(gI * (2.0 * r) * (1.0 + 2.0 * sr), dtype=np.float64))
        return float(f), (2.0 * r * r) * gI, None, g_ref
    s = hv.field(S)
    a = 1.0 + s.real
    b = s.imag
    m2 = a * a + b * b
    pred = (r * r) * m2
    f, gI = loss(pred, h)
    gI = np.asarray(gI)
    g_ref = float(np.sum(gI * m2, dtype=np.float64)) * 2.0 * r
    c = (2.0 * r * r) * gI
    return float(f), c * a, c * b, g_ref


def fista_volume(h, z, *, wavelength, pixel_size, x0=None, dz0=0.0, dz_bounds=(0.0, 0.0),
                 learn_z=True, r0=1.0, learn_reference=True, sparsity=0.01, loss="l2",
                 linearized=False, iterations=100, dz_scale=1.0, r_scale=1.0, method="asm",
                 band_limit=True, tol=None, callback=None, progress=False, table_bytes=2 << 30):
    """FISTA (backtracking, function-value restart) for the real-object ∂H problem

        min_{o in [-1, 0], dz, r >= 0}  loss(r^2 |1 + s(o, dz)|^2, h) + sparsity * sum |o|

    on numpy with the fused half-spectrum engine (:class:`HalfVolume`).  The
    variables are scaled as in :func:`diffimaging.solve` (``dz_scale``, ``r_scale``:
    one step size serves all).  Returns ``(o, dz, r, history, message)``; the
    history has the keys of :func:`diffimaging.solve`'s (loss, fidelity,
    regularizer, params ``volume.dz`` / ``volume.reference``, step, time) plus
    ``evaluations`` (forward passes per iteration, line search included)."""
    h = np.asarray(h)
    rdt = h.dtype
    nz = len(np.asarray(z).reshape(-1))
    hv = HalfVolume(z, h.shape, wavelength, pixel_size, rdt, method, band_limit)
    lossf = get_loss(loss)
    lo, hi = (float(v) for v in dz_bounds)
    lam = float(sparsity)
    shape = (nz,) + tuple(h.shape)
    ox = np.zeros(shape, rdt) if x0 is None else np.clip(np.asarray(x0, dtype=rdt), -1.0, 0.0)
    dzx, rx = float(np.clip(dz0, lo, hi)), float(max(r0, 0.0))
    hv.build_tables(table_bytes)
    Sx = hv.spectra(ox) if x0 is not None and np.any(ox) else hv.empty_spectra()
    op, Sp, dzp, rp = ox, Sx, dzx, rx
    on = np.empty(shape, rdt)
    buf = np.empty((hv.my, hv.nxh), hv.cdt)
    names = ["volume.dz", "volume.reference"]
    history = {"loss": [], "fidelity": [], "regularizer": [], "params": {k: [] for k in names},
               "step": [], "time": [], "evaluations": []}
    sd2 = (dz_scale ** 2) if learn_z else 0.0
    sr2 = (r_scale ** 2) if learn_reference else 0.0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations, desc="∂H (fused FISTA)", leave=False)
    t0 = time.perf_counter()
    t = 1.0
    beta = 0.0
    L = None
    prev_obj = None
    message = f"{iterations} iterations"
    it = 0
    evals = 0
    while it < iterations:
        it += 1
        # the extrapolated point y: its spectra from the stored ones (s is linear in o)
        dzy = float(np.clip(dzx + beta * (dzx - dzp), lo, hi)) if learn_z else dzx
        ry = max(rx + beta * (rx - rp), 0.0) if learn_reference else rx
        if beta == 0.0:
            Sy = hv.refocus(Sx, dzy)
        else:
            Sy = hv.refocus(((1 + beta) * Sx[0] - beta * Sp[0], (1 + beta) * Sx[1] - beta * Sp[1]), dzy)
        f_y, gr, gi, g_ref = _model_terms(hv, Sy, ry, h, lossf, linearized)
        evals += 1
        if not math.isfinite(f_y):
            raise FloatingPointError(f"non-finite objective at iteration {it}")
        (A, Bc), (A0, B0) = hv.cotangent_spectra(gr, gi, dzy)
        g_dz = hv.dz_grad(A0, B0, Sy) if learn_z else 0.0
        del A0, B0
        G = None
        if L is None:
            # first iteration: the gradient of every plane is stored for the step search
            G = np.empty(shape, rdt)
            for k in range(nz):
                hv.plane_grad(A, Bc, k, buf, out=G[k])
            L = _initial_L(hv, ox, G, g_dz, g_ref, sd2, sr2, f_y, dzy, ry, h, lossf, linearized,
                           lo, hi, nz, r0, lam, dz_scale, r_scale, np.empty(h.shape, rdt))
        while True:
            a = 1.0 / L
            dzn = float(np.clip(dzy - a * sd2 * g_dz, lo, hi))
            rn = max(ry - a * sr2 * g_ref, 0.0)
            Sn = hv.empty_spectra()
            gd = dd = l1 = 0.0
            for k in range(nz):
                xpk = None if beta == 0.0 else op[k]
                if G is None:
                    # fused: gradient (inverse transform into the row buffer), prox step
                    # in place (the buffer becomes the padded trial plane), forward transform
                    hv.plane_grad_rows(A, Bc, k, buf)
                    gdk, ddk, sk = K.prox_step_rows(ox[k], xpk, hv.rows, on[k], beta, a, a * lam,
                                                    -1.0, 0.0)
                    hv.accumulate(None, Sn, k, k == 0)
                else:
                    gdk, ddk, sk = K.prox_step(ox[k], xpk, G[k], on[k], beta, a, a * lam, -1.0, 0.0)
                    hv.accumulate(on[k], Sn, k, k == 0)
                gd += gdk
                dd += ddk
                l1 -= sk
            pgd, pdd = _param_terms((dzn - dzy, g_dz, dz_scale, sd2), (rn - ry, g_ref, r_scale, sr2))
            gd += pgd
            dd += pdd
            f_n = _model_terms(hv, hv.refocus(Sn, dzn), rn, h, lossf, linearized)[0]
            evals += 1
            if math.isfinite(f_n) and f_n <= f_y + gd + 0.5 * L * dd + 1e-14 * abs(f_y):
                break
            L *= 2.0
            if G is None:  # a rejected step: keep the gradients for the next tries
                G = np.empty(shape, rdt)
                for k in range(nz):
                    hv.plane_grad(A, Bc, k, buf, out=G[k])
            if L > 1e30:
                message = "backtracking failed"
                break
        if message == "backtracking failed":
            break
        obj = f_n + lam * l1
        if prev_obj is not None and obj > prev_obj:  # adaptive (function-value) restart
            t, beta, prev_obj = 1.0, 0.0, None
            op, Sp, dzp, rp = ox, Sx, dzx, rx
            continue
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        beta = (t - 1) / t_new
        t = t_new
        # rotate: previous <- current <- new (the old previous buffer takes the next trial)
        spare = op if op is not ox else np.empty(shape, rdt)
        op, Sp, dzp, rp = ox, Sx, dzx, rx
        ox, Sx, dzx, rx = on, Sn, dzn, rn
        on = spare
        prev_o = prev_obj
        prev_obj = obj
        history["loss"].append(obj)
        history["fidelity"].append(f_n)
        history["regularizer"].append(lam * l1)
        history["params"]["volume.dz"].append(np.array(dzx))
        history["params"]["volume.reference"].append(np.array(rx))
        history["step"].append(a)
        history["time"].append(time.perf_counter() - t0)
        history["evaluations"].append(evals)
        evals = 0
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{obj:.4g}")
        if callback is not None and callback(it, ox, {"volume.dz": dzx, "volume.reference": rx},
                                             {"loss": obj, "fidelity": f_n,
                                              "regularizer": lam * l1, "step": a}):
            message = "stopped by callback"
            break
        if tol is not None and prev_o is not None and abs(prev_o - obj) <= tol * max(abs(prev_o), 1e-300):
            message = f"relative change below tol={tol}"
            break
    if bar is not None:
        bar.close()
    history["final_loss"] = history["loss"][-1] if history["loss"] else float("nan")
    return ox, dzx, rx, history, message


def _initial_L(hv, ox, G, g_dz, g_ref, sd2, sr2, f, dz, r, h, lossf, linearized, lo, hi, nz, r0,
               lam, dz_scale, r_scale, work):
    """Largest step at the start: lower L from the DC bound 4 r^4 nz (the largest
    curvature of the Gabor data term) in steps of 2^(1/4) while FISTA's own
    sufficient-decrease test (projected step, quadratic upper bound) holds at the
    first iterate."""
    L = max(4.0 * max(r, r0, 1e-3) ** 4 * nz, 1e-12)
    for _ in range(160):
        Lt = L * 2.0 ** -0.25
        a = 1.0 / Lt
        Sn = hv.empty_spectra()
        gd = dd = 0.0
        for k in range(nz):
            gdk, ddk, _ = K.prox_step(ox[k], None, G[k], work, 0.0, a, a * lam, -1.0, 0.0)
            gd += gdk
            dd += ddk
            hv.accumulate(work, Sn, k, k == 0)
        dzn = float(np.clip(dz - a * sd2 * g_dz, lo, hi))
        rn = max(r - a * sr2 * g_ref, 0.0)
        pgd, pdd = _param_terms((dzn - dz, g_dz, dz_scale, sd2), (rn - r, g_ref, r_scale, sr2))
        gd += pgd
        dd += pdd
        if dd == 0.0:
            break
        fc = _model_terms(hv, hv.refocus(Sn, dzn), rn, h, lossf, linearized)[0]
        if not (math.isfinite(fc) and fc <= f + gd + 0.5 * Lt * dd + 1e-14 * abs(f)):
            break
        L = Lt
    return L
