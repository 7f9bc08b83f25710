"""Joint recovery of the object and the system parameters:

    x*, theta* = argmin L(f(x, theta), y) + sum_n beta_n R_n(x)   s.t. x in Omega_x, theta in Omega_theta

over any array-API backend, with the gradients of the explicit VJPs.

Variables are optimised in *scaled* coordinates: each group (the object, each
parameter) is divided by its typical size (``Param.scale``; for the object
max|x0| or 1), so one step size serves metres and radians alike and the user
never tunes 1e-9 steps for distances.  ``step`` is therefore relative: the
first move of each group is about ``step`` times its scale.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import _backend as B
from ._backend.autodiff import vjp as _vjp
from .model import Model

__all__ = ["solve", "SolveResult", "SolverError"]

_METHODS = ("gd", "fista", "adam", "lbfgs")


class SolverError(FloatingPointError):
    """The objective became non-finite; ``.result`` holds the last finite iterate."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


@dataclass
class SolveResult:
    """``x``: the object; ``params``: dotted name -> recovered value (array of the
    input's library); ``history``: per-iteration records (loss, fidelity,
    regulariser, parameter values, step sizes, wall time); ``search``: the
    global-stage table when one ran; ``iterations``, ``converged``, ``message``."""

    x: object
    params: dict
    history: dict = field(default_factory=dict)
    search: dict | None = None
    iterations: int = 0
    converged: bool = False
    message: str = ""


# ------------------------------------------------------------------ the objective

class _Problem:
    def __init__(self, model, y, loss, regularizers, constraint, names, prox_split):
        from .losses import get_loss

        self.model, self.y = model, y
        self.loss = get_loss(loss)
        self.regs = list(regularizers or ())
        self.constraint = constraint
        self.names = names
        self.params = model.params
        self.prox_split = prox_split  # FISTA: regularisers through their prox, not gradients

    def evaluate(self, x, theta, want_grad=True, want_reg=True):
        """Returns (total, fidelity, reg, gx, gtheta) with smooth regulariser terms."""
        if want_grad:
            pred, pb = _vjp(self.model, x, theta)
        else:
            pred, pb = self.model(x, theta), None
        if want_grad:
            fid, g = self.loss(pred, self.y)
        else:
            fid, g = self.loss.value(pred, self.y), None
        reg = 0.0
        if want_reg or not self.prox_split:  # gradient methods see the smooth form they differentiate
            for r in self.regs:
                reg += float(r.value(x) if self.prox_split else r.smooth_value(x))
        total = float(fid) + (0.0 if self.prox_split else reg)
        if not want_grad:
            return total, float(fid), reg, None, None
        gx, gth = pb(g)
        if not self.prox_split:
            for r in self.regs:
                gx = gx + r.grad(x)
        return total, float(fid), reg, gx, {k: gth[k] for k in self.names}

    def project_x(self, x):
        return x if self.constraint is None else self.constraint.project(x)

    def prox_x(self, x, step):
        for r in self.regs:
            x = r.prox(x, step)
        return self.project_x(x)

    def project_theta(self, theta):
        return {k: (self.params[k].project(v) if k in self.names else v) for k, v in theta.items()}


def _dot(a, b) -> float:
    xp = B.namespace(a)
    if B.is_complex(xp, a.dtype):
        return float(xp.sum(xp.real(xp.conj(a) * b)))
    return float(xp.sum(a * b))


def _to_array(v, like):
    xp = B.namespace(like)
    if isinstance(v, (int, float)):
        return xp.asarray(float(v), dtype=xp.float64, device=B.device_of(like))
    try:
        B.namespace(v, like)
        return xp.asarray(v, dtype=xp.float64) if B.dtype_kind(xp, v.dtype) != "f8" else v
    except TypeError:
        return xp.asarray(B.to_host_float64(v, "param"), device=B.device_of(like))


class _Vec:
    """The joint variable as a list of arrays (object first, then parameters), in
    scaled coordinates; the vector-space operations the solvers need."""

    def __init__(self, parts):
        self.parts = list(parts)

    def __add__(self, o):
        return _Vec([a + b for a, b in zip(self.parts, o.parts)])

    def __sub__(self, o):
        return _Vec([a - b for a, b in zip(self.parts, o.parts)])

    def __mul__(self, c: float):
        return _Vec([a * c for a in self.parts])

    __rmul__ = __mul__

    def dot(self, o) -> float:
        return sum(_dot(a, b) for a, b in zip(self.parts, o.parts))

    def norm(self) -> float:
        return math.sqrt(max(self.dot(self), 0.0))


# ------------------------------------------------------------------------ solve

def solve(model: Model, y, x0, *, loss="l2", regularizers=(), constraint=None, optimize=None,
          search=None, search_steps=0, method="adam", iterations=200, step=None,
          callback: Callable | None = None, progress=True, tol=None):
    """Recover the object and the system parameters of ``model`` from data ``y``.

    Parameters
    ----------
    model : Model
    y : array
        Measured data (same library as ``x0``).
    x0 : array
        Starting object.
    loss : "l2" | "poisson" | "kl" | "huber" | "l1" | Loss | (value_fn, grad_fn)
    regularizers : sequence of regularisers (``TV``, ``L1``, ``L2``), each with its weight.
        Gradient methods use their smooth forms; ``"fista"`` uses their proximal operators.
    constraint : Constraint, optional
        Omega_x (``NonNegative()``, ``Box``, ``Support``, ``AmplitudeAtMost``), by projection.
        Parameter bounds (``Param(bounds=...)``) are projected too.
    optimize : sequence of names, optional
        What moves: "x" (the object) and/or dotted parameter names.  Default: the
        object and every non-fixed parameter.
    search : {name: values}, optional
        Global stage: the objective is evaluated on this grid of values of one or
        more parameters (the object held at ``x0``, or refined by ``search_steps``
        cheap gradient steps for each candidate); the joint solve starts from the
        best.  Local descent alone cannot find a distance far from the start: the
        hologram's fringes make the objective multimodal.
    method : "adam" | "lbfgs" | "gd" | "fista"
    iterations : int
    step : float or {group: float}
        Relative step (fraction of each group's scale; groups "x" and parameter
        names).  Defaults: adam 1e-2 for x and 1e-3 for parameters; gd/fista/lbfgs
        use line searches and start from 1.
    callback : callable(iteration, x, params, record) -> bool, optional
        Called after every iteration (its time is not counted); returning True stops.
    progress : bool
        tqdm progress bar when stdout is a terminal.
    tol : float, optional
        Stop when the relative change of the objective stays below tol for 5 iterations.

    Returns
    -------
    SolveResult
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a diffimaging.Model, got {type(model).__name__}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
    B.namespace(y, x0, names=["y", "x0"])
    all_params = model.params
    if optimize is None:
        names = [k for k, p in all_params.items() if not p.fixed]
        move_x = True
    else:
        optimize = list(optimize)
        unknown = [k for k in optimize if k != "x" and k not in all_params]
        if unknown:
            raise KeyError(f"optimize names unknown parameter(s) {unknown}; the model has "
                           f"{sorted(all_params)} (and 'x' for the object)")
        names = [k for k in optimize if k != "x"]
        move_x = "x" in optimize
    prob = _Problem(model, y, loss, regularizers, constraint, names, prox_split=method == "fista")

    theta = {k: _to_array(p.value, x0) for k, p in all_params.items()}
    theta = prob.project_theta(theta)
    x = prob.project_x(x0)

    search_table = None
    if search:
        x, theta, search_table = _global_search(prob, x, theta, search, search_steps)

    xp = B.namespace(x0)
    sx = float(xp.max(xp.abs(x))) if x.size else 1.0
    sx = sx if sx > 0 and math.isfinite(sx) else 1.0
    scales = {"x": sx, **{k: all_params[k].scale for k in names}}
    steps = _steps(method, step, names)

    runner = {"adam": _adam, "gd": _gd, "fista": _fista, "lbfgs": _lbfgs}[method]
    history = {"loss": [], "fidelity": [], "regularizer": [], "params": {k: [] for k in names},
               "step": [], "time": []}
    bar = None
    if progress and sys.stdout.isatty():
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=iterations, desc=f"solve ({method})", leave=False)
        except ImportError:  # pragma: no cover
            bar = None
    state = dict(x=x, theta=theta, it=0, converged=False, message="")
    try:
        runner(prob, state, scales, steps, move_x, names, iterations, tol, history, callback, bar)
    finally:
        if bar is not None:
            bar.close()
    res = SolveResult(x=state["x"], params={k: state["theta"][k] for k in all_params},
                      history=history, search=search_table, iterations=state["it"],
                      converged=state["converged"], message=state["message"])
    return res


def _steps(method, step, names):
    default_x = 1e-2 if method == "adam" else 1.0
    default_p = 1e-3 if method == "adam" else 1.0
    out = {"x": default_x, **{k: default_p for k in names}}
    if step is None:
        return out
    if isinstance(step, dict):
        bad = set(step) - set(out)
        if bad:
            raise KeyError(f"step names unknown group(s) {sorted(bad)}; groups are {sorted(out)}")
        out.update({k: float(v) for k, v in step.items()})
    else:
        if not step > 0:
            raise ValueError(f"step must be positive, got {step!r}")
        out = {k: float(step) for k in out}
    return out


# --------------------------------------------------------------- bookkeeping

class _Recorder:
    def __init__(self, prob, state, history, callback, bar, tol, names):
        self.prob, self.state, self.history = prob, state, history
        self.callback, self.bar, self.tol, self.names = callback, bar, tol, names
        self.small = 0
        self.t0 = time.perf_counter()
        self.paused = 0.0

    def check_finite(self, value, it, x, theta):
        if not math.isfinite(value):
            last = SolveResult(x=self.state["x"], params=dict(self.state["theta"]), history=self.history,
                               iterations=self.state["it"], message="non-finite objective")
            raise SolverError(f"objective is {value} at iteration {it}; the result attached to this "
                              f"error (.result) holds the last finite iterate (iteration "
                              f"{self.state['it']})", last)

    def record(self, it, total, fid, reg, x, theta, step) -> bool:
        """Store the iterate; returns True to stop."""
        self.check_finite(total, it, x, theta)
        prev = self.history["loss"][-1] if self.history["loss"] else None
        self.state.update(x=x, theta=theta, it=it)
        h = self.history
        h["loss"].append(total)
        h["fidelity"].append(fid)
        h["regularizer"].append(reg)
        for k in self.names:
            h["params"][k].append(np.array(B.to_host_float64(theta[k], k)))
        h["step"].append(step)
        h["time"].append(time.perf_counter() - self.t0 - self.paused)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{total:.4g}")
        stop = False
        if self.callback is not None:
            t = time.perf_counter()
            rec = {"loss": total, "fidelity": fid, "regularizer": reg, "step": step}
            stop = bool(self.callback(it, x, theta, rec))
            self.paused += time.perf_counter() - t
        if self.tol is not None and prev is not None:
            if abs(prev - total) <= self.tol * max(abs(prev), 1e-300):
                self.small += 1
            else:
                self.small = 0
            if self.small >= 5:
                self.state.update(converged=True, message=f"relative change below tol={self.tol}")
                return True
        if stop:
            self.state["message"] = "stopped by callback"
        return stop


def _flat(v, like):
    """Parameter value or cotangent as a 1-d float64 array of like's library (0-d
    arrays would decay to scalars under numpy arithmetic)."""
    xp = B.namespace(like)
    if isinstance(v, (int, float)) or isinstance(v, np.generic):
        v = xp.asarray(float(v), dtype=xp.float64, device=B.device_of(like))
    return xp.reshape(xp.asarray(v, dtype=xp.float64), (-1,))


def _pack(x, theta, names, scales, move_x):
    parts = ([x / scales["x"]] if move_x else []) + [_flat(theta[k], x) / scales[k] for k in names]
    return _Vec(parts)


def _unpack(v, x, theta, names, scales, move_x):
    parts = list(v.parts)
    if move_x:
        x = parts.pop(0) * scales["x"]
    theta = dict(theta)
    for k in names:
        xp = B.namespace(parts[0])
        theta[k] = xp.reshape(parts.pop(0) * scales[k], tuple(theta[k].shape))
    return x, theta


def _grad_vec(gx, gth, names, scales, move_x):
    parts = ([gx * scales["x"]] if move_x else []) + [_flat(gth[k], gx) * scales[k] for k in names]
    return _Vec(parts)


def _project(prob, x, theta):
    return prob.project_x(x), prob.project_theta(theta)


# ---------------------------------------------------------------- methods

def _adam(prob, state, scales, steps, move_x, names, iterations, tol, history, callback, bar,
          b1=0.9, b2=0.999, eps=1e-8):
    rec = _Recorder(prob, state, history, callback, bar, tol, names)
    x, theta = state["x"], state["theta"]
    lrs = ([steps["x"]] if move_x else []) + [steps[k] for k in names]
    m = v = None
    for it in range(1, iterations + 1):
        total, fid, reg, gx, gth = prob.evaluate(x, theta)
        rec.check_finite(total, it, x, theta)
        g = _grad_vec(gx, gth, names, scales, move_x)
        if m is None:
            m = [gi * 0.0 for gi in g.parts]
            v = [B.namespace(gi).real(gi) * 0.0 if B.is_complex(B.namespace(gi), gi.dtype) else gi * 0.0
                 for gi in g.parts]
        cur = _pack(x, theta, names, scales, move_x)
        new = []
        for i, gi in enumerate(g.parts):
            xp = B.namespace(gi)
            m[i] = b1 * m[i] + (1 - b1) * gi
            g2 = xp.real(xp.conj(gi) * gi) if B.is_complex(xp, gi.dtype) else gi * gi
            v[i] = b2 * v[i] + (1 - b2) * g2
            mh = m[i] / (1 - b1 ** it)
            vh = v[i] / (1 - b2 ** it)
            new.append(cur.parts[i] - lrs[i] * mh / (xp.sqrt(vh) + eps))
        x, theta = _project(prob, *_unpack(_Vec(new), x, theta, names, scales, move_x))
        if rec.record(it, total, fid, reg, x, theta, lrs[0]):
            break
    else:
        state["message"] = state["message"] or "iteration limit"
    _final(prob, state, rec)


def _final(prob, state, rec):
    """Evaluate the objective at the returned iterate (records are of the iterate
    at which the gradient was taken)."""
    total = prob.evaluate(state["x"], state["theta"], want_grad=False)[0]
    rec.check_finite(total, state["it"], state["x"], state["theta"])
    rec.history["final_loss"] = total


def _gd(prob, state, scales, steps, move_x, names, iterations, tol, history, callback, bar):
    """Projected gradient descent with Armijo backtracking."""
    rec = _Recorder(prob, state, history, callback, bar, tol, names)
    x, theta = state["x"], state["theta"]
    alpha = steps["x"] if move_x else steps[names[0]]
    total, fid, reg, gx, gth = prob.evaluate(x, theta)
    for it in range(1, iterations + 1):
        rec.check_finite(total, it, x, theta)
        g = _grad_vec(gx, gth, names, scales, move_x)
        cur = _pack(x, theta, names, scales, move_x)
        gn2 = g.dot(g)
        if gn2 == 0:
            state.update(converged=True, message="zero gradient")
            break
        alpha *= 2.0
        while True:
            xn, tn = _project(prob, *_unpack(cur - alpha * g, x, theta, names, scales, move_x))
            tot_n = prob.evaluate(xn, tn, want_grad=False)[0]
            dec = (_pack(xn, tn, names, scales, move_x) - cur)
            if math.isfinite(tot_n) and tot_n <= total + 1e-4 * g.dot(dec):
                break
            alpha *= 0.5
            if alpha < 1e-20:
                state.update(converged=True, message="line search failed (stationary point)")
                _final(prob, state, rec)
                return
        x, theta = xn, tn
        total, fid, reg, gx, gth = prob.evaluate(x, theta)
        if rec.record(it, total, fid, reg, x, theta, alpha):
            break
    _final(prob, state, rec)


def _fista(prob, state, scales, steps, move_x, names, iterations, tol, history, callback, bar):
    """FISTA (Beck & Teboulle) with backtracking and adaptive restart: smooth
    fidelity by gradient steps, regularisers by their proximal operators,
    constraints and parameter bounds by projection."""
    rec = _Recorder(prob, state, history, callback, bar, tol, names)
    x, theta = state["x"], state["theta"]
    L = 1.0 / (steps["x"] if move_x else steps[names[0]])
    t = 1.0
    zx, zth = x, theta
    prev_obj = None
    for it in range(1, iterations + 1):
        f_z, fid_z, _, gx, gth = prob.evaluate(zx, zth, want_reg=False)  # prox handles R
        rec.check_finite(f_z, it, zx, zth)
        g = _grad_vec(gx, gth, names, scales, move_x)
        zv = _pack(zx, zth, names, scales, move_x)
        if it == 1:
            L = _initial_lipschitz(prob, zx, zth, g, zv, f_z, L, names, scales, move_x)
        while True:
            a = 1.0 / L
            cx, cth = _unpack(zv - a * g, zx, zth, names, scales, move_x)
            if move_x:
                cx = prob.prox_x(cx, a * scales["x"] ** 2)
            cth = prob.project_theta(cth)
            f_c = prob.evaluate(cx, cth, want_grad=False, want_reg=False)[0]
            d = _pack(cx, cth, names, scales, move_x) - zv
            if math.isfinite(f_c) and f_c <= f_z + g.dot(d) + 0.5 * L * d.dot(d) + 1e-14 * abs(f_z):
                break
            L *= 2.0
            if L > 1e30:
                state.update(converged=True, message="backtracking failed")
                _final(prob, state, rec)
                return
        reg = sum(float(r.value(cx)) for r in prob.regs)  # once, for the accepted point
        obj = f_c + reg
        xv_old = _pack(x, theta, names, scales, move_x)
        xv_new = _pack(cx, cth, names, scales, move_x)
        if prev_obj is not None and obj > prev_obj:  # adaptive (function-value) restart
            t = 1.0
            zx, zth = x, theta
            prev_obj = None
            continue
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        zv_new = xv_new + ((t - 1) / t_new) * (xv_new - xv_old)
        zx, zth = _unpack(zv_new, cx, cth, names, scales, move_x)
        zth = prob.project_theta(zth)
        t = t_new
        x, theta = cx, cth
        prev_obj = obj
        if rec.record(it, obj, f_c, reg, x, theta, 1.0 / L):
            break
    _final(prob, state, rec)
    reg = sum(float(r.value(state["x"])) for r in prob.regs)
    history["final_loss"] = history.get("final_loss", 0.0) + reg


def _initial_lipschitz(prob, x, theta, g, xv, f, L, names, scales, move_x):
    """Smallest power-of-two multiple of L (from 1/step) for which the quadratic
    upper bound holds along the gradient at the start (L is then nondecreasing,
    as in Beck & Teboulle's backtracking)."""
    gg = g.dot(g)
    if gg == 0:
        return L
    for _ in range(60):
        a = 0.5 / L
        cx, cth = _unpack(xv - a * g, x, theta, names, scales, move_x)
        fc = prob.evaluate(cx, cth, want_grad=False)[0]
        if not (math.isfinite(fc) and fc <= f - a * gg + 0.5 * (L / 2) * a * a * gg):
            break
        L *= 0.5
    return L


def _lbfgs(prob, state, scales, steps, move_x, names, iterations, tol, history, callback, bar,
           memory=10):
    """L-BFGS (two-loop recursion) with a backtracking Armijo line search on the
    scaled variables; bounds and constraints by projection of the trial points
    (exact for unconstrained problems, a projected heuristic otherwise)."""
    rec = _Recorder(prob, state, history, callback, bar, tol, names)
    x, theta = state["x"], state["theta"]
    total, fid, reg, gx, gth = prob.evaluate(x, theta)
    rec.check_finite(total, 0, x, theta)
    g = _grad_vec(gx, gth, names, scales, move_x)
    S, Y, RHO = [], [], []
    first = steps["x"] if move_x else steps[names[0]]
    for it in range(1, iterations + 1):
        q = _Vec(list(g.parts))
        alphas = []
        for s, yv, rho in reversed(list(zip(S, Y, RHO))):
            a = rho * s.dot(q)
            alphas.append(a)
            q = q - a * yv
        if S:
            gamma = S[-1].dot(Y[-1]) / Y[-1].dot(Y[-1])
        else:
            gamma = first / max(g.norm(), 1e-300)
        r = q * gamma
        for (s, yv, rho), a in zip(zip(S, Y, RHO), reversed(alphas)):
            b = rho * yv.dot(r)
            r = r + (a - b) * s
        d = r * -1.0
        gd = g.dot(d)
        if not gd < 0:  # not a descent direction: reset to steepest descent
            S, Y, RHO = [], [], []
            d = g * (-first / max(g.norm(), 1e-300))
            gd = g.dot(d)
        cur = _pack(x, theta, names, scales, move_x)
        lam = 1.0
        fallback = False
        while True:
            xn, tn = _project(prob, *_unpack(cur + lam * d, x, theta, names, scales, move_x))
            tot_n, fid_n, reg_n, gxn, gthn = prob.evaluate(xn, tn)
            # Armijo along the projected path: compare with the actual (projected) move
            moved = g.dot(_pack(xn, tn, names, scales, move_x) - cur)
            if math.isfinite(tot_n) and tot_n <= total + 1e-4 * min(moved, 0.0) and moved < 0:
                break
            lam *= 0.5
            if lam < 1e-10:
                if fallback or not S:
                    state.update(converged=True, message="line search failed (stationary point)")
                    _final(prob, state, rec)
                    return
                # projected quasi-Newton step failed: restart from projected steepest descent
                S, Y, RHO = [], [], []
                d = g * (-first / max(g.norm(), 1e-300))
                gd = g.dot(d)
                lam, fallback = 1.0, True
        gn = _grad_vec(gxn, gthn, names, scales, move_x)
        s = _pack(xn, tn, names, scales, move_x) - cur
        yv = gn - g
        sy = s.dot(yv)
        if sy > 1e-12 * s.norm() * yv.norm():
            S.append(s)
            Y.append(yv)
            RHO.append(1.0 / sy)
            if len(S) > memory:
                S.pop(0)
                Y.pop(0)
                RHO.pop(0)
        x, theta, total, fid, reg, g = xn, tn, tot_n, fid_n, reg_n, gn
        if rec.record(it, total, fid, reg, x, theta, lam):
            break
    _final(prob, state, rec)


# ---------------------------------------------------------------- global stage

def _global_search(prob, x, theta, search, search_steps):
    """Evaluate the objective on a grid of parameter values (product over the
    given parameters); return the best start and the table."""
    import itertools

    names = list(search)
    for k in names:
        if k not in prob.params:
            raise KeyError(f"search names unknown parameter {k!r}; the model has {sorted(prob.params)}")
    grids = [np.asarray(B.to_host_float64(search[k], k)) for k in names]
    for k, gvals in zip(names, grids):
        if gvals.ndim != 1 or gvals.size == 0:
            raise ValueError(f"search[{k!r}] must be a non-empty 1-d sequence of values")
    best = None
    table = {"values": [], "loss": []}
    for combo in itertools.product(*grids):
        th = dict(theta)
        for k, v in zip(names, combo):
            th[k] = _to_array(float(v), x)
        th = prob.project_theta(th)
        xc = x
        if search_steps:
            xc = _refine_object(prob, x, th, search_steps)
        val = prob.evaluate(xc, th, want_grad=False)[0]
        table["values"].append(tuple(float(v) for v in combo))
        table["loss"].append(val)
        if math.isfinite(val) and (best is None or val < best[0]):
            best = (val, xc, th)
    table["names"] = names
    if best is None:
        raise SolverError("the objective is non-finite at every search value", None)
    table["best"] = dict(zip(names, table["values"][int(np.nanargmin(table["loss"]))]))
    return best[1], best[2], table


def _refine_object(prob, x, theta, n):
    """A few projected gradient steps on the object only (Armijo backtracking)."""
    alpha = 1.0
    total, _, _, gx, _ = prob.evaluate(x, theta)
    xp = B.namespace(x)
    sx = float(xp.max(xp.abs(x))) or 1.0
    for _ in range(n):
        g2 = _dot(gx, gx)
        if g2 == 0:
            break
        a = alpha * sx / math.sqrt(g2)
        for _ in range(30):
            xn = prob.project_x(x - a * gx)
            tn = prob.evaluate(xn, theta, want_grad=False)[0]
            if math.isfinite(tn) and tn < total:
                break
            a *= 0.5
        else:
            break
        x = xn
        total, _, _, gx, _ = prob.evaluate(x, theta)
    return x
