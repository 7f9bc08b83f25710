"""Regularisers ``β R(x)`` for reconstructions.

Regularisers (:class:`Regularizer`) carry a weight ``β ≥ 0`` and offer

- ``value(x)`` — ``β R(x)`` (exact, non-smooth form; a Python float),
- ``smooth_value(x)`` / ``grad(x)`` / ``value_and_grad(x)`` — ``β R_ε(x)`` and
  its gradient, the smoothed form used by gradient methods (``R_ε → R`` as
  ``ε → 0``; identical to ``R`` for smooth ``R``),
- ``prox(x, step)`` — the proximal operator of ``step·β·R`` (exact form),
  for proximal methods (ISTA/FISTA/ADMM):
  ``prox(x, s) = argmin_u 0.5 ‖u − x‖² + s β R(u)``.

Constraints ``x ∈ Ω`` are in :mod:`diffimaging.optim.constraints`.

Everything works on arrays of any array-API library; results have the input's
library, device, shape and dtype.  Gradients of complex ``x`` follow the
package convention ``∂R/∂Re x + i ∂R/∂Im x``.
"""
from __future__ import annotations

import math

from .. import _backend as B
from .._backend.validate import integer
from ._common import abs2, complex_from, copy, float_param, floating_namespace, fsum

__all__ = ["Regularizer", "TV", "L1", "L2"]

_ON = ("auto", "real_imag", "amplitude")


# ----------------------------------------------------------------- helpers

def _check_on(on) -> str:
    if not isinstance(on, str) or on not in _ON:
        raise ValueError(f"on must be one of {', '.join(repr(o) for o in _ON)}, got {on!r}")
    return on


def _safe(xp, a):
    """``a`` with zeros replaced by ones (for divisions whose numerator is 0 there)."""
    return xp.where(a > 0, a, xp.ones_like(a))


def _weight(weight) -> float:
    return float_param(weight, "weight", nonneg=True)


# ------------------------------------------------------------ regularisers

class Regularizer:
    """Base class of the regularisers ``β R(x)`` (``β = weight ≥ 0``).

    Subclasses implement the unweighted ``_value(xp, x, smooth)``,
    ``_grad(xp, x)`` and ``_prox(xp, x, tau)`` (``prox`` of ``tau·R``).
    """

    name = "regularizer"

    def __init__(self, weight: float):
        self.weight = _weight(weight)

    # public API
    def value(self, x) -> float:
        """``β R(x)``, exact (non-smoothed) form, as a Python float."""
        xp, _ = floating_namespace(x)
        return self.weight * self._value(xp, x, False) if self.weight else 0.0

    def smooth_value(self, x) -> float:
        """``β R_ε(x)``, the smoothed form whose gradient :meth:`grad` returns."""
        xp, _ = floating_namespace(x)
        return self.weight * self._value(xp, x, True) if self.weight else 0.0

    def grad(self, x):
        """``β ∇R_ε(x)`` (shape/dtype of ``x``; complex: ``∂/∂Re + i ∂/∂Im``)."""
        xp, _ = floating_namespace(x)
        if not self.weight:
            return xp.zeros_like(x)
        return self._grad(xp, x) * self.weight

    def value_and_grad(self, x):
        """``(smooth_value(x), grad(x))``."""
        return self.smooth_value(x), self.grad(x)

    def prox(self, x, step: float):
        """Proximal operator of ``step·β·R``: ``argmin_u 0.5‖u − x‖² + step β R(u)``."""
        xp, _ = floating_namespace(x)
        step = float_param(step, "step", nonneg=True)
        tau = step * self.weight
        if tau == 0:
            return copy(xp, x)
        return self._prox(xp, x, tau)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight!r})"


class L2(Regularizer):
    """Tikhonov regulariser ``β · 0.5 Σ |x|²``.

    Gradient ``β x``; proximal operator ``x / (1 + step·β)``.  Real or complex ``x``.
    """

    name = "l2"

    def _value(self, xp, x, smooth):
        return 0.5 * fsum(xp, abs2(xp, x))

    def _grad(self, xp, x):
        return x

    def _prox(self, xp, x, tau):
        return x * (1.0 / (1.0 + tau))


class L1(Regularizer):
    """Sparsity regulariser ``β Σ |x|``.

    Complex ``x``: ``on="auto"`` (or ``"amplitude"``) uses the modulus ``|x|``;
    the prox is the complex soft threshold ``x · max(|x| − τ, 0) / |x|`` that
    shrinks the amplitude and keeps the phase.  ``on="real_imag"`` uses
    ``Σ (|Re x| + |Im x|)`` and soft-thresholds the real and imaginary parts
    separately.  Real ``x``: the usual soft threshold ``sign(x) max(|x| − τ, 0)``
    (``on`` has no effect).

    The smooth form (for :meth:`grad`) is ``Σ (sqrt(|x|² + eps²) − eps)``,
    gradient ``x / sqrt(|x|² + eps²)`` (per part for ``real_imag``); with
    ``eps = 0`` the gradient is ``x/|x|`` and 0 at ``x = 0``.
    """

    name = "l1"

    def __init__(self, weight: float, *, on: str = "auto", eps: float = 1e-8):
        super().__init__(weight)
        self.on = _check_on(on)
        self.eps = float_param(eps, "eps", nonneg=True)

    def _split(self, xp, x):
        return B.is_complex(xp, x.dtype) and self.on == "real_imag"

    @staticmethod
    def _val1(xp, s2, eps, smooth):
        if smooth and eps > 0:
            return fsum(xp, xp.sqrt(s2 + eps * eps) - eps)
        return fsum(xp, xp.sqrt(s2))

    @staticmethod
    def _grad1(xp, v, eps):
        if eps > 0:
            return v / xp.sqrt(abs2(xp, v) + eps * eps)
        return v / _safe(xp, xp.sqrt(abs2(xp, v)))

    @staticmethod
    def _shrink(xp, v, tau):
        a = xp.sqrt(abs2(xp, v))
        return v * (xp.clip(a - tau, min=0.0) / _safe(xp, a))

    def _value(self, xp, x, smooth):
        if self._split(xp, x):
            re, im = xp.real(x), xp.imag(x)
            return self._val1(xp, re * re, self.eps, smooth) + self._val1(xp, im * im, self.eps, smooth)
        return self._val1(xp, abs2(xp, x), self.eps, smooth)

    def _grad(self, xp, x):
        if self._split(xp, x):
            return complex_from(xp, self._grad1(xp, xp.real(x), self.eps),
                                 self._grad1(xp, xp.imag(x), self.eps), x.dtype)
        return self._grad1(xp, x, self.eps)

    def _prox(self, xp, x, tau):
        if self._split(xp, x):
            return complex_from(xp, self._shrink(xp, xp.real(x), tau),
                                 self._shrink(xp, xp.imag(x), tau), x.dtype)
        return self._shrink(xp, x, tau)

    def __repr__(self) -> str:
        return f"L1(weight={self.weight!r}, on={self.on!r}, eps={self.eps!r})"


# ---- total variation: finite differences over the last `ndim` axes

def _is_np(xp):
    return B.is_numpy_namespace(xp)


def _sl(nd, axis, s):
    idx = [slice(None)] * nd
    idx[axis] = s
    return tuple(idx)


def _fdiff(xp, u, axis):
    """Forward difference along ``axis`` (negative), Neumann: 0 at the last sample."""
    nd = u.ndim
    if _is_np(xp):
        import numpy as np

        d = np.empty_like(u)
        np.subtract(u[_sl(nd, axis, slice(1, None))], u[_sl(nd, axis, slice(None, -1))],
                    out=d[_sl(nd, axis, slice(None, -1))])
        d[_sl(nd, axis, slice(-1, None))] = 0
        return d
    shape = list(u.shape)
    shape[axis] = 1
    z = xp.zeros(tuple(shape), dtype=u.dtype, device=B.device_of(u))
    d = u[_sl(nd, axis, slice(1, None))] - u[_sl(nd, axis, slice(None, -1))]
    return xp.concat([d, z], axis=axis)


def _fdiff_adj(xp, p, axis):
    """Adjoint of :func:`_fdiff` (minus the backward-difference divergence)."""
    nd = p.ndim
    n = p.shape[axis]
    q = p[_sl(nd, axis, slice(None, -1))]
    if _is_np(xp):
        import numpy as np

        out = np.empty_like(p)
        if n == 1:
            out[...] = 0
            return out
        out[_sl(nd, axis, slice(0, 1))] = -q[_sl(nd, axis, slice(0, 1))]
        np.subtract(q[_sl(nd, axis, slice(None, -1))], q[_sl(nd, axis, slice(1, None))],
                    out=out[_sl(nd, axis, slice(1, -1))])
        out[_sl(nd, axis, slice(-1, None))] = q[_sl(nd, axis, slice(-1, None))]
        return out
    shape = list(p.shape)
    shape[axis] = 1
    z = xp.zeros(tuple(shape), dtype=p.dtype, device=B.device_of(p))
    return xp.concat([z, q], axis=axis) - xp.concat([q, z], axis=axis)


def _grad_op(xp, u, ndim):
    return [_fdiff(xp, u, -ndim + k) for k in range(ndim)]


def _div_adj(xp, ps, ndim):
    out = _fdiff_adj(xp, ps[0], -ndim)
    for k in range(1, ndim):
        out = out + _fdiff_adj(xp, ps[k], -ndim + k)
    return out


def _sumsq(xp, ds):
    s = ds[0] * ds[0]
    for d in ds[1:]:
        s = s + d * d
    return s


class TV(Regularizer):
    """Total variation ``β TV(x)`` over the last ``ndim`` axes.

    ``ndim=2`` acts on ``(y, x)`` of ``(..., ny, nx)`` images, ``ndim=3`` on
    ``(z, y, x)`` of a depth stack ``(..., nz, ny, nx)``; leading axes are a
    batch (each item regularised, the values summed).  Differences are forward
    differences with a Neumann boundary (zero difference at the last sample of
    each axis), in units of the array per pixel (no pixel-size scaling).

    - isotropic (default): ``TV(x) = Σ_i sqrt(Σ_k d_k[i]²)``
    - anisotropic: ``TV(x) = Σ_i Σ_k |d_k[i]|``

    Smooth form (:meth:`smooth_value`, :meth:`grad`): ``sqrt(·)`` replaced by
    ``sqrt(· + eps²) − eps`` (per pixel for isotropic, per pixel and axis for
    anisotropic).

    :meth:`prox` is the exact TV proximal operator
    ``argmin_u 0.5‖u − x‖² + step β TV(u)``, computed by the fast gradient
    projection (FGP) of Beck & Teboulle (2009) on Chambolle's dual, for at most
    ``prox_iterations`` iterations, stopping when the relative change of the
    primal iterate falls below ``prox_tol``.

    Complex ``x`` (``on``):

    - ``"auto"`` (default) = ``"real_imag"``: ``TV(Re x) + TV(Im x)``, the real
      and imaginary parts regularised (and proxed) separately; for real ``x``,
      ``"auto"`` and ``"real_imag"`` are plain TV.
    - ``"amplitude"``: ``TV(|x|)``; the gradient is ``∇TV(|x|) · x/|x|`` and
      the prox is the TV prox of ``|x|`` with the phase of ``x`` kept (exact:
      the optimal phase of the prox is that of ``x``, and the TV prox of a
      non-negative image is non-negative).  For real ``x`` this is ``TV(|x|)``
      with the sign kept.
    """

    name = "tv"

    def __init__(self, weight: float, *, ndim: int = 2, isotropic: bool = True, eps: float = 1e-8,
                 on: str = "auto", prox_iterations: int = 100, prox_tol: float = 1e-6):
        super().__init__(weight)
        self.ndim = integer(ndim, "ndim", minimum=1, hint="(2 for (y, x) images, 3 for (z, y, x) stacks)", type_error=ValueError)
        self.isotropic = bool(isotropic)
        self.eps = float_param(eps, "eps", nonneg=True)
        self.on = _check_on(on)
        self.prox_iterations = integer(prox_iterations, "prox_iterations", minimum=1, type_error=ValueError)
        self.prox_tol = float_param(prox_tol, "prox_tol", nonneg=True)
        #: iterations used by the last :meth:`prox` call (diagnostic)
        self.last_prox_iterations = 0

    def __repr__(self) -> str:
        return (f"TV(weight={self.weight!r}, ndim={self.ndim}, isotropic={self.isotropic}, "
                f"eps={self.eps!r}, on={self.on!r}, prox_iterations={self.prox_iterations}, "
                f"prox_tol={self.prox_tol!r})")

    # -- which real array TV acts on
    def _mode(self, xp, x):
        if x.ndim < self.ndim:
            raise ValueError(f"TV with ndim={self.ndim} needs x with at least {self.ndim} "
                             f"dimensions, got shape {tuple(x.shape)}")
        if self.on == "amplitude":
            return "amplitude"
        return "real_imag" if B.is_complex(xp, x.dtype) else "plain"

    # -- real kernels
    def _tv_real(self, xp, v, smooth):
        ds = _grad_op(xp, v, self.ndim)
        e = self.eps if smooth else 0.0
        if self.isotropic:
            s = _sumsq(xp, ds)
            return fsum(xp, xp.sqrt(s + e * e) - e) if e > 0 else fsum(xp, xp.sqrt(s))
        tot = 0.0
        for d in ds:
            tot += fsum(xp, xp.sqrt(d * d + e * e) - e) if e > 0 else fsum(xp, xp.abs(d))
        return tot

    def _tv_grad_real(self, xp, v):
        ds = _grad_op(xp, v, self.ndim)
        e = self.eps
        if self.isotropic:
            n = xp.sqrt(_sumsq(xp, ds) + e * e)
            inv = 1.0 / n if e > 0 else 1.0 / _safe(xp, n)
            ps = [d * inv for d in ds]
        else:
            ps = [d / (xp.sqrt(d * d + e * e) if e > 0 else _safe(xp, xp.abs(d))) for d in ds]
        return _div_adj(xp, ps, self.ndim)

    def _project_dual(self, xp, ps):
        if self.isotropic:
            n = xp.clip(xp.sqrt(_sumsq(xp, ps)), min=1.0)
            return [p / n for p in ps]
        return [xp.clip(p, min=-1.0, max=1.0) for p in ps]

    def _tv_prox_real(self, xp, b, lam):
        """FGP (Beck & Teboulle 2009) for ``argmin_u 0.5‖u − b‖² + lam TV(u)``.

        Dual: ``min_{p ∈ P} 0.5 ‖b − lam Dᵀp‖²`` with ``P`` the unit balls
        (pointwise Euclidean for isotropic, per component for anisotropic);
        ``u = b − lam Dᵀp``.  Gradient Lipschitz constant ``lam² ‖D‖² ≤ 4·ndim·lam²``.
        """
        nd = self.ndim
        tau = 1.0 / (4.0 * nd * lam)
        tol2 = self.prox_tol ** 2
        if _is_np(xp):
            return self._fgp_numpy(b, lam, tau, tol2)
        p_old = None
        r = None
        t = 1.0
        u_prev = None
        it = 0
        for it in range(1, self.prox_iterations + 1):
            u = b if r is None else b - lam * _div_adj(xp, r, nd)
            g = _grad_op(xp, u, nd)
            if r is None:
                p = [gk * tau for gk in g]
            else:
                p = [rk + gk * tau for rk, gk in zip(r, g)]
            p = self._project_dual(xp, p)
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            if p_old is None:
                r = p
            else:
                c = (t - 1.0) / t_new
                r = [pk + (pk - qk) * c for pk, qk in zip(p, p_old)]
            p_old, t = p, t_new
            if u_prev is not None and tol2 > 0:
                du = fsum(xp, abs2(xp, u - u_prev))
                nu = fsum(xp, abs2(xp, u))
                if du <= tol2 * nu:
                    break
            u_prev = u
        self.last_prox_iterations = it
        return b - lam * _div_adj(xp, p_old, nd)

    def _fgp_numpy(self, b, lam, tau, tol2):
        """:meth:`_tv_prox_real` for numpy: the same iteration in preallocated buffers.

        Uses that the dual components vanish at the last sample of their axis
        (the Neumann difference is 0 there and the iteration starts from 0).
        """
        import numpy as np

        nd = self.ndim
        b = np.ascontiguousarray(b)
        shape = b.shape
        ax = [b.ndim - nd + k for k in range(nd)]
        hi = [_sl(b.ndim, a, slice(1, None)) for a in ax]
        lo = [_sl(b.ndim, a, slice(None, -1)) for a in ax]
        last = [_sl(b.ndim, a, slice(-1, None)) for a in ax]

        def new():
            return np.zeros(shape, dtype=b.dtype)

        p = [new() for _ in range(nd)]
        p_old = [new() for _ in range(nd)]
        r = [new() for _ in range(nd)]
        u, u_prev, tmp = new(), new(), new()
        nrm = new() if self.isotropic else None

        def primal(q, out):  # out = b - lam * D^T q
            out.fill(0)
            for k in range(nd):
                out -= q[k]
                out[hi[k]] += q[k][lo[k]]
            out *= -lam
            out += b

        t = 1.0
        it = 0
        first = True
        for it in range(1, self.prox_iterations + 1):
            if first:
                u[...] = b
            else:
                primal(r, u)
            for k in range(nd):
                pk = p[k]
                np.subtract(u[hi[k]], u[lo[k]], out=pk[lo[k]])
                pk[last[k]] = 0
                pk *= tau
                pk += r[k]
            if self.isotropic:
                np.multiply(p[0], p[0], out=nrm)
                for k in range(1, nd):
                    np.multiply(p[k], p[k], out=tmp)
                    nrm += tmp
                np.sqrt(nrm, out=nrm)
                np.maximum(nrm, 1.0, out=nrm)
                for k in range(nd):
                    p[k] /= nrm
            else:
                for k in range(nd):
                    np.clip(p[k], -1.0, 1.0, out=p[k])
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            c = (t - 1.0) / t_new
            for k in range(nd):
                np.subtract(p[k], p_old[k], out=r[k])
                r[k] *= c
                r[k] += p[k]
            p, p_old = p_old, p
            t = t_new
            if not first and tol2 > 0:
                np.subtract(u, u_prev, out=tmp)
                # einsum, not vdot: BLAS threads are slow to wake for one dot product
                du = float(np.einsum("i,i->", tmp.ravel(), tmp.ravel()))
                nu = float(np.einsum("i,i->", u.ravel(), u.ravel()))
                if du <= tol2 * nu:
                    break
            u, u_prev = u_prev, u
            first = False
        self.last_prox_iterations = it
        primal(p_old, tmp)
        return tmp

    # -- public kernels, complex handling
    def _value(self, xp, x, smooth):
        mode = self._mode(xp, x)
        if mode == "plain":
            return self._tv_real(xp, x, smooth)
        if mode == "real_imag":
            return self._tv_real(xp, xp.real(x), smooth) + self._tv_real(xp, xp.imag(x), smooth)
        return self._tv_real(xp, xp.sqrt(abs2(xp, x)), smooth)

    def _grad(self, xp, x):
        mode = self._mode(xp, x)
        if mode == "plain":
            return self._tv_grad_real(xp, x)
        if mode == "real_imag":
            g = self._tv_grad_real(xp, xp.stack([xp.real(x), xp.imag(x)]))
            return complex_from(xp, g[0, ...], g[1, ...], x.dtype)
        a = xp.sqrt(abs2(xp, x))
        return self._tv_grad_real(xp, a) * (x / _safe(xp, a))

    def _prox(self, xp, x, tau):
        mode = self._mode(xp, x)
        if mode == "plain":
            return self._tv_prox_real(xp, x, tau)
        if mode == "real_imag":
            u = self._tv_prox_real(xp, xp.stack([xp.real(x), xp.imag(x)]), tau)
            return complex_from(xp, u[0, ...], u[1, ...], x.dtype)
        a = xp.sqrt(abs2(xp, x))
        phase = xp.where(a > 0, x / _safe(xp, a), xp.ones_like(x))
        return self._tv_prox_real(xp, a, tau) * phase
