"""The real-object ∂H problem on the fused half-spectrum engine, as a problem for
:class:`diffimaging.optim.FISTA` (numpy with the C++ kernels, or CuPy with the CUDA
kernels: :class:`~diffimaging.holography._dhfast.HalfVolumeCuda`; float32 or float64):

    min_{o in [-1, 0], dz, r >= 0}  loss(r^2 |1 + s(o, dz)|^2, h) + sparsity * sum |o|

(or the Gabor model ``r^2 (1 + 2 Re s)``), ``s`` the operator of
:class:`~diffimaging.holography._dhfast.HalfVolume` (forward: volume -> sensor
half spectra; adjoint: cotangent spectra -> plane gradients).  Why it is fast is
explained there; this module adds what FISTA's smooth-part-plus-prox interface
needs, with the engine's tricks:

* a point keeps its sensor spectra S, so the extrapolated point's forward pass
  is ``S(y) = (1 + beta) D S(x) - beta D' S(x_prev)`` (two inverse transforms,
  not nz);
* the trial step is fused per batch of planes: inverse transforms of the
  gradients into row buffers, prox steps in place (``prox_step_rows``), forward
  transforms of the trial planes, so the gradient is not stored ...
* ... except at the first iteration (the initial step search needs it) and
  after a rejected trial (backtracking then costs nz forward transforms only);
* the initial Lipschitz estimate starts at the DC bound ``4 r^4 nz`` (the
  largest curvature of the Gabor data term) and is lowered in steps of 2^(1/4)
  while FISTA's sufficient-decrease test holds;
* three volume buffers rotate (current, previous, trial): no allocation per
  iteration.

The parameters are scaled as in :class:`~diffimaging.optim.problem.ModelProblem`
(``dz_scale``, ``r_scale``: one step size serves all).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from ..optim.losses import get_loss
from ._dhfast import HalfVolume, HalfVolumeCuda

__all__ = ["FusedVolumeProblem", "VolumePoint", "model_terms"]


def model_terms(hv, S, r, h, loss, linearized):
    """Loss value, cotangents (g_r, g_i) of s and the reference gradient at the
    sensor spectra ``S`` and illumination amplitude ``r`` (``g_i`` None for the
    Gabor model, whose prediction depends on Re s only)."""
    xp = hv.xp
    if linearized:
        sr = hv.field(S, real_only=True)
        pred = (r * r) * (1.0 + 2.0 * sr)
        f, gI = loss(pred, h)
        g_ref = float(xp.sum(gI * (2.0 * r) * (1.0 + 2.0 * sr), dtype=xp.float64))
        return float(f), (2.0 * r * r) * gI, None, g_ref
    s = hv.field(S)
    a = 1.0 + s.real
    b = s.imag
    m2 = a * a + b * b
    pred = (r * r) * m2
    f, gI = loss(pred, h)
    g_ref = float(xp.sum(gI * m2, dtype=xp.float64)) * 2.0 * r
    c = (2.0 * r * r) * gI
    return float(f), c * a, c * b, g_ref


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


class VolumePoint:
    """A point of :class:`FusedVolumeProblem`: the object stack ``o`` (nz, ny, nx),
    its sensor spectra ``S`` at the nominal depths, the offset ``dz`` [m], the
    illumination amplitude ``r``, and (when known) the data term ``f`` and the
    sparsity term ``reg`` there."""

    __slots__ = ("o", "S", "dz", "r", "f", "reg")

    def __init__(self, o, S, dz, r, f=None, reg=None):
        self.o, self.S, self.dz, self.r, self.f, self.reg = o, S, dz, r, f, reg


class _Extrapolated:
    """FISTA's point y = x + beta (x - prev): its spectra at the offset, dz and r
    (the planes stay implicit: the kernels form them from x and prev)."""

    __slots__ = ("x", "prev", "beta", "dz", "r", "S")

    def __init__(self, x, prev, beta, dz, r, S):
        self.x, self.prev, self.beta, self.dz, self.r, self.S = x, prev, beta, dz, r, S


class _Gradient:
    """The gradient at y: rotated cotangent spectra (A, B) of the planes (each
    plane's gradient formed on demand), and the parameters' gradients; ``G``,
    the stored plane gradients, once needed."""

    __slots__ = ("A", "B", "g_dz", "g_ref", "G", "tried")

    def __init__(self, A, B, g_dz, g_ref):
        self.A, self.B, self.g_dz, self.g_ref = A, B, g_dz, g_ref
        self.G = None
        self.tried = False


class FusedVolumeProblem:
    """The real-object ∂H problem on the fused engine (see the module docstring).

    Parameters
    ----------
    h : (ny, nx) float32 or float64 numpy or CuPy hologram (background-divided); the
        engine, its buffers and the points live in h's library and device.
    z : nominal plane depths [m].
    wavelength, pixel_size : metres.
    dz_bounds : (lo, hi) bounds of the offset [m].
    learn_z, learn_reference : whether the offset and the amplitude move.
    sparsity : L1 weight on o.
    loss : "l2", "poisson" or a Loss.
    linearized : the Gabor model.
    dz_scale, r_scale : scales of the offset [m] and the amplitude.
    method, band_limit : the transfer function (as :func:`~diffimaging.propagate`).
    table_bytes : memory allowed for precomputed transfer tables.
    pad : the FFT grid (see :class:`~diffimaging.holography._dhfast.HalfVolume`):
        "reach" (default: the doubled grid cut to the reach of the deepest plane
        moved by the largest offset, a linear convolution still; about half the work
        at 1024^2 and depths of a few mm) or "double" (the Volume stage's grid).

    Points are :class:`VolumePoint`; :meth:`start` makes the first.  A point's
    arrays are work buffers of the problem: a point older than the previous
    iterate may be overwritten by later trial steps.
    """

    names = ("volume.dz", "volume.reference")

    def __init__(self, h, z, *, wavelength, pixel_size, dz_bounds=(0.0, 0.0), learn_z=True,
                 learn_reference=True, sparsity=0.01, loss="l2", linearized=False, dz_scale=1.0,
                 r_scale=1.0, method="asm", band_limit=True, table_bytes=2 << 30, pad="reach"):
        self.h = np.asarray(h) if isinstance(h, (list, tuple)) else h
        xp = B.namespace(self.h)
        if B.is_numpy_namespace(xp):
            engine = HalfVolume
        elif B.is_cupy_namespace(xp):
            engine = HalfVolumeCuda
        else:
            raise TypeError(f"the fused ∂H engine takes a numpy or CuPy hologram, got "
                            f"{type(h).__name__} (use the generic engine for other libraries)")
        self.rdt = np.dtype(self.h.dtype)
        self.lo, self.hi = (float(v) for v in dz_bounds)
        self.hv = engine(z, tuple(self.h.shape), wavelength, pixel_size, self.rdt, method,
                         band_limit, pad=pad, dz_max=max(abs(self.lo), abs(self.hi)))
        self.xp = self.hv.xp
        self.nz = self.hv.z.size
        self.shape = (self.nz,) + tuple(self.h.shape)
        self.loss = get_loss(loss)
        self.lam = float(sparsity)
        self.linearized = bool(linearized)
        self.learn_z, self.learn_reference = bool(learn_z), bool(learn_reference)
        self.dz_scale, self.r_scale = dz_scale, r_scale
        self.sd2 = (dz_scale ** 2) if learn_z else 0.0
        self.sr2 = (r_scale ** 2) if learn_reference else 0.0
        self.hv.build_tables(table_bytes)
        self._pool = []                                             # volume buffers

    # -------------------------------------------------------------- points
    def start(self, x0=None, dz=0.0, reference=1.0):
        """The first point: ``x0`` clipped to [-1, 0] (None: zeros), the offset
        clipped to its bounds, the amplitude clipped at 0."""
        xp = self.xp
        o = (xp.zeros(self.shape, dtype=self.rdt) if x0 is None
             else xp.clip(xp.asarray(x0, dtype=self.rdt), -1.0, 0.0))
        S = self.hv.spectra(o) if x0 is not None and bool(xp.any(o)) else self.hv.empty_spectra()
        self._pool = [o]
        return VolumePoint(o, S, float(np.clip(dz, self.lo, self.hi)), float(max(reference, 0.0)))

    def variables(self, point):
        """``(o, {"volume.dz": dz, "volume.reference": r})``."""
        return point.o, {"volume.dz": point.dz, "volume.reference": point.r}

    def _trial_buffer(self, y):
        """A volume buffer that ``y``'s planes do not use (FISTA holds at most the
        current and the previous iterate: three buffers rotate)."""
        busy = (y.x.o, None if y.prev is None else y.prev.o)
        for b in self._pool:
            if b is not busy[0] and b is not busy[1]:
                return b
        b = self.xp.empty(self.shape, dtype=self.rdt)
        self._pool.append(b)
        return b

    # ----------------------------------------------------------- objective
    def _data_term(self, S, dz, r):
        return model_terms(self.hv, self.hv.refocus(S, dz), r, self.h, self.loss, self.linearized)[0]

    def regularizer(self, point) -> float:
        """``sparsity * sum |o|`` (o <= 0)."""
        if point.reg is None:
            point.reg = self.lam * float(-self.xp.sum(point.o, dtype=self.xp.float64))
        return point.reg

    def objective(self, point) -> float:
        if point.f is None:
            point.f = self._data_term(point.S, point.dz, point.r)
        return point.f + self.regularizer(point)

    # ------------------------------------------------------ FISTA interface
    def extrapolate(self, x, x_prev, beta):
        """y = x + beta (x - x_prev): dz clipped to its bounds, r clipped at 0, the spectra
        from the stored ones (s is linear in o)."""
        p = x if x_prev is None else x_prev
        dzy = float(np.clip(x.dz + beta * (x.dz - p.dz), self.lo, self.hi)) if self.learn_z else x.dz
        ry = max(x.r + beta * (x.r - p.r), 0.0) if self.learn_reference else x.r
        if beta == 0.0:
            Sy = self.hv.refocus(x.S, dzy)
        else:
            Sy = self.hv.refocus(((1 + beta) * x.S[0] - beta * p.S[0],
                                  (1 + beta) * x.S[1] - beta * p.S[1]), dzy)
        return _Extrapolated(x, None if beta == 0.0 else p, beta, dzy, ry, Sy)

    def smooth(self, y):
        """The data term at ``y`` and its gradient (the planes' part kept as
        cotangent spectra); no gradient when the value is not finite."""
        f, gr, gi, g_ref = model_terms(self.hv, y.S, y.r, self.h, self.loss, self.linearized)
        if not math.isfinite(f):
            return f, None
        (A, B), (A0, B0) = self.hv.cotangent_spectra(gr, gi, y.dz)
        g_dz = self.hv.dz_grad(A0, B0, y.S) if self.learn_z else 0.0
        return f, _Gradient(A, B, g_dz, g_ref)

    def _batches(self):
        """(k0, kb): the planes in the engine's batches."""
        b = self.hv.batch
        return ((k0, min(b, self.nz - k0)) for k0 in range(0, self.nz, b))

    def _store_gradient(self, grad):
        G = self.xp.empty(self.shape, dtype=self.rdt)
        nx = self.hv.nx
        for k0, kb in self._batches():
            G[k0:k0 + kb] = self.hv.grad_rows(grad.A, grad.B, k0, kb)[:, :, :nx]
        grad.G = G

    def _params_step(self, y, grad, a):
        """dz and r after a projected gradient step of size ``a`` (scaled), and their
        share of <grad, d> and |d|^2."""
        dzn = float(np.clip(y.dz - a * self.sd2 * grad.g_dz, self.lo, self.hi))
        rn = max(y.r - a * self.sr2 * grad.g_ref, 0.0)
        pgd, pdd = _param_terms((dzn - y.dz, grad.g_dz, self.dz_scale, self.sd2),
                                (rn - y.r, grad.g_ref, self.r_scale, self.sr2))
        return dzn, rn, pgd, pdd

    def prox_step(self, y, grad, a):
        """The trial point (soft threshold by ``a * sparsity`` and clip to [-1, 0] of
        ``y - a grad``; dz and r by projected gradient steps) with its data term,
        ``<grad, d>`` and ``|d|^2`` in the scaled variables."""
        if grad.G is None and grad.tried:  # a rejected step: keep the gradients for the next tries
            self._store_gradient(grad)
        grad.tried = True
        hv, lam, G = self.hv, self.lam, grad.G
        dzn, rn, pgd, pdd = self._params_step(y, grad, a)
        on = self._trial_buffer(y)
        Sn = hv.empty_spectra()
        gd = dd = l1 = 0.0
        for k0, kb in self._batches():
            sl = slice(k0, k0 + kb)
            xpk = None if y.prev is None else y.prev.o[sl]
            if G is None:
                # fused: gradients of the batch (inverse transforms into the row
                # buffers), prox steps in place (the buffers become the padded trial
                # planes), forward transforms of the batch
                rows = hv.grad_rows(grad.A, grad.B, k0, kb)
                gdk, ddk, sk = hv.prox_rows(y.x.o[sl], xpk, rows, on[sl], y.beta, a, a * lam,
                                            -1.0, 0.0)
            else:
                gdk, ddk, sk = hv.prox(y.x.o[sl], xpk, G[sl], on[sl], y.beta, a, a * lam, -1.0,
                                       0.0)
                for j in range(kb):
                    hv.load_rows(j, on[k0 + j])
            gd += gdk
            dd += ddk
            l1 -= sk
            hv.accumulate_rows(Sn, k0, kb, k0 == 0)
        gd += pgd
        dd += pdd
        f_n = self._data_term(Sn, dzn, rn)
        return VolumePoint(on, Sn, dzn, rn, f=f_n, reg=lam * l1), f_n, gd, dd

    def initial_lipschitz(self, y, f, grad, L):
        """Largest step at the start: lower L (default: the DC bound 4 r^4 nz) in
        steps of 2^(1/4) while FISTA's own sufficient-decrease test (projected step,
        quadratic upper bound) holds at ``y``.  Stores the plane gradients (the
        first trial step then uses them)."""
        self._store_gradient(grad)
        hv, G, lam = self.hv, grad.G, self.lam
        work = self.xp.empty((hv.batch,) + tuple(self.h.shape), dtype=self.rdt)
        if L is None:
            L = max(4.0 * max(y.r, 1e-3) ** 4 * self.nz, 1e-12)
        for _ in range(160):
            Lt = L * 2.0 ** -0.25
            a = 1.0 / Lt
            Sn = hv.empty_spectra()
            gd = dd = 0.0
            for k0, kb in self._batches():
                sl = slice(k0, k0 + kb)
                xpk = None if y.prev is None else y.prev.o[sl]
                gdk, ddk, _ = hv.prox(y.x.o[sl], xpk, G[sl], work[:kb], y.beta, a, a * lam, -1.0,
                                      0.0)
                gd += gdk
                dd += ddk
                for j in range(kb):
                    hv.load_rows(j, work[j])
                hv.accumulate_rows(Sn, k0, kb, k0 == 0)
            dzn, rn, pgd, pdd = self._params_step(y, grad, a)
            gd += pgd
            dd += pdd
            if dd == 0.0:
                break
            fc = self._data_term(Sn, dzn, rn)
            if not (math.isfinite(fc) and fc <= f + gd + 0.5 * Lt * dd + 1e-14 * abs(f)):
                break
            L = Lt
        return L
