"""The adjoint dot test and the finite-difference check of a VJP."""
from __future__ import annotations

import numbers

import numpy as np

from .. import _backend as B
from .._backend.autodiff import vjp as _vjp

__all__ = ["dottest", "check_vjp"]

_EPS64 = float(np.finfo(np.float64).eps)


def _is_array(a) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, numbers.Number)


def _single(a) -> bool:
    return B.dtype_kind(B.namespace(a), a.dtype) in ("f4", "c8")


def _random_like(a, rng):
    """Standard-normal array of ``a``'s shape, dtype, library and device
    (independent real and imaginary parts for a complex ``a``)."""
    xp = B.namespace(a)
    shape = tuple(int(n) for n in a.shape)
    host = rng.standard_normal(shape)
    if B.is_complex(xp, a.dtype):
        host = host + 1j * rng.standard_normal(shape)
    return xp.astype(xp.asarray(host, device=B.device_of(a)), a.dtype)


def _double(a):
    """``a`` in float64 / complex128 (its library and device)."""
    xp = B.namespace(a)
    return xp.astype(a, xp.complex128 if B.is_complex(xp, a.dtype) else xp.float64)


def _vdot(a, b) -> complex:
    """<a, b> = sum conj(a) b, accumulated in double precision."""
    xp = B.namespace(a, b)
    a, b = _double(a), _double(b)
    if B.is_complex(xp, a.dtype):
        a = xp.conj(a)
    return complex(xp.sum(a * b))


def _norm(a) -> float:
    return float(np.sqrt(_vdot(a, a).real))


def dottest(forward, adjoint, x, y=None, rtol=None, *, seed=0) -> float:
    """Adjoint dot test of a linear map A: |<A u, v> - <u, A^H v>| <= rtol ||A u|| ||v||.

    Parameters
    ----------
    forward, adjoint : callables
        u -> A u and v -> A^H v (e.g. ``stage`` and ``stage.H``).
    x : array (any array-API library, real or complex)
        The input u (use a random one: a structured u can hide an error).
    y : array, optional
        The output-space vector v (default: standard normal, of A u's shape and
        dtype, drawn with ``seed``).
    rtol : float, optional
        Default by precision: 1e-5 if any of u, A u, v is single precision
        (float32 / complex64), else 1e-12 (CONVENTIONS.md).

    For a real u the map is taken as R-linear (a complex A u included): the
    real parts of the two inner products are compared, the inner product of
    the real input space.  Inner products are accumulated in double precision.

    Returns
    -------
    float
        The relative error |<A u, v> - <u, A^H v>| / (||A u|| ||v||).

    Raises
    ------
    AssertionError
        With both inner products, the error and the tolerance, when the error
        exceeds the tolerance, when A^H v does not have u's shape, or when
        A u is zero (the test then checks nothing).
    """
    ax = forward(x)
    if y is None:
        y = _random_like(ax, np.random.default_rng(seed))
    if tuple(y.shape) != tuple(ax.shape):
        raise AssertionError(f"dottest: y has shape {tuple(y.shape)}, A x has shape {tuple(ax.shape)}")
    aty = adjoint(y)
    if tuple(aty.shape) != tuple(x.shape):
        raise AssertionError(f"dottest: the adjoint returned shape {tuple(aty.shape)} for an input "
                             f"of shape {tuple(x.shape)}")
    lhs, rhs = _vdot(ax, y), _vdot(x, aty)
    if not B.is_complex(B.namespace(x), x.dtype):
        lhs, rhs = complex(lhs.real), complex(rhs.real)
    scale = _norm(ax) * _norm(y)
    if scale == 0.0:
        raise AssertionError("dottest: A x (or y) is zero, so the test checks nothing; use a random x")
    tol = rtol if rtol is not None else (1e-5 if any(_single(a) for a in (x, ax, y)) else 1e-12)
    err = abs(lhs - rhs) / scale
    if not err <= tol:
        raise AssertionError(f"dottest failed: <A x, y> = {lhs!r}, <x, A^H y> = {rhs!r}, relative "
                             f"error {err:.3e} > tol {tol:.1e} (||A x|| ||y|| = {scale:.6g})")
    return err


# ------------------------------------------------------------------------ VJP

def _perturb(a, h, d):
    """a + h d for an array, a real number or a (sy, sx)-like sequence ``a``."""
    if isinstance(a, (list, tuple)):
        return tuple((np.asarray(a, dtype=np.float64) + h * d).tolist())
    if isinstance(a, numbers.Real):
        return float(a) + h * float(d)
    return a + h * d


def _host_real(v, what) -> np.ndarray:
    return np.asarray(B.to_host_float64(v, what), dtype=np.float64)


def check_vjp(f, *args, argnums=None, names=None, eps=None, rtol=1e-6, seed=0, **static) -> dict:
    """Check ``diffimaging.vjp(f, *args, **static)`` against central finite differences.

    For a random output cotangent w, the scalar L = Re<w, f(...)> is
    differentiated along a random direction d of each checked argument,
    (L(a + h d) - L(a - h d)) / 2h, and compared with Re<cotangent, d> from the
    VJP.  Array arguments are promoted to float64 / complex128 first, so the
    check runs in double precision.

    Parameters
    ----------
    f : callable with a registered VJP, a Stage or a Model
        For a stage or a model, ``args`` is the input x alone and parameter
        values are overridden with ``params={name: value}`` (a keyword, as for
        ``diffimaging.vjp``); their cotangents are checked too.
    argnums : sequence of int, optional
        Positional arguments to check (default: every array, real number or
        number sequence; for a stage or model, the input).
    names : sequence of str, optional
        Parameters of a stage or model to check (default: all, fixed or not).
    eps : float, optional
        Relative step: h = eps * (the argument's largest magnitude, or the
        parameter's :attr:`~diffimaging.Param.scale`; 1 for a zero argument).
        Default 1e-6.
    rtol : float
        Allowed relative difference; on top of it, the central difference's
        round-off floor (100 eps_64 ||w|| ||f|| / h) is allowed.
    seed : int
        Seed of the random cotangent and directions.
    **static
        Keyword arguments of ``f`` (e.g. ``wavelength=`` of propagate).

    Returns
    -------
    dict
        {label: relative difference}, labels "arg0", "arg1", ... and the
        parameter names.

    Raises
    ------
    AssertionError
        Listing each failing argument with both derivatives, or a cotangent
        whose shape differs from its argument's.
    """
    rng = np.random.default_rng(seed)
    is_stage = hasattr(f, "__diffimaging_vjp__")
    if is_stage and len(args) != 1:
        raise TypeError("check_vjp on a stage or a model takes the input x alone; give parameter "
                        "values as params={name: value}")
    args = tuple(_double(a) if _is_array(a) else a for a in args)
    out, pb = _vjp(f, *args, **static)
    w = _random_like(out, rng)
    cts = pb(w)
    gparams = {}
    if is_stage:
        gx, gparams = cts
        cts = (gx,)
    scale = _norm(w) * _norm(out)

    def loss(a, st):
        return _vdot(w, _vjp(f, *a, **st)[0]).real

    def compare(label, ct_dot, fd, h):
        floor = 100 * _EPS64 * scale / h
        diff = abs(fd - ct_dot)
        rel = diff / max(abs(fd), abs(ct_dot), floor, np.finfo(np.float64).tiny)
        ok = diff <= rtol * max(abs(fd), abs(ct_dot)) + floor
        return rel, (None if ok else f"{label}: VJP gives {ct_dot!r}, finite differences "
                                     f"{fd!r} (step {h:.3e}, relative difference {rel:.3e})")

    if argnums is None:
        argnums = [0] if is_stage else [i for i, a in enumerate(args) if _is_array(a) or (
            isinstance(a, numbers.Real) and not isinstance(a, bool)) or isinstance(a, (list, tuple))]
    eps = 1e-6 if eps is None else float(eps)
    results, failures = {}, []
    for i in argnums:
        a, ct = args[i], cts[i]
        if _is_array(a):
            if tuple(ct.shape) != tuple(a.shape):
                raise AssertionError(f"arg{i}: cotangent of shape {tuple(ct.shape)} for an argument "
                                     f"of shape {tuple(a.shape)}")
            d = _random_like(a, rng)
            mag = float(np.max(np.abs(_host_abs(a)))) if int(np.prod(a.shape)) else 0.0
            ct_dot = _vdot(ct, d).real
        else:
            host = _host_real(a, f"arg{i}")
            d = rng.standard_normal(host.shape) if host.ndim else float(rng.standard_normal())
            mag = float(np.max(np.abs(host))) if host.size else 0.0
            ct_dot = float(np.sum(_host_real(ct, f"cotangent of arg{i}") * d))
        h = eps * (mag if mag > 0 else 1.0)
        lo = list(args)
        hi = list(args)
        hi[i], lo[i] = _perturb(a, h, d), _perturb(a, -h, d)
        fd = (loss(hi, static) - loss(lo, static)) / (2 * h)
        results[f"arg{i}"], msg = compare(f"arg{i}", ct_dot, fd, h)
        if msg:
            failures.append(msg)
    if is_stage:
        params = f.params
        given = dict(static.get("params") or {})
        for name in (list(params) if names is None else list(names)):
            if name not in params:
                raise KeyError(f"unknown parameter {name!r}; {f.name!r} has {sorted(params)}")
            v = _host_real(given.get(name, params[name].value), name)
            g = _host_real(gparams[name], f"cotangent of {name}")
            if g.shape != v.shape:
                raise AssertionError(f"{name}: cotangent of shape {g.shape} for a parameter of "
                                     f"shape {v.shape}")
            dv = rng.standard_normal(v.shape)
            h = eps * params[name].scale
            st_hi = dict(static, params=dict(given, **{name: v + h * dv}))
            st_lo = dict(static, params=dict(given, **{name: v - h * dv}))
            fd = (loss(args, st_hi) - loss(args, st_lo)) / (2 * h)
            results[name], msg = compare(name, float(np.sum(g * dv)), fd, h)
            if msg:
                failures.append(msg)
    if failures:
        raise AssertionError("check_vjp failed:\n  " + "\n  ".join(failures))
    return results


def _host_abs(a) -> np.ndarray:
    """|a| as a float64 numpy array on the host (for step sizes)."""
    xp = B.namespace(a)
    return _host_real(xp.abs(a), "argument")
