"""The generic reconstruction problem

    x*, theta* = argmin L(f(x, theta), y) + sum_n beta_n R_n(x)   s.t. x in Omega_x, theta in Omega_theta

for a :class:`~diffimaging.Model` ``f``, over any array-API backend, with the
gradients of the explicit VJPs.

A point of the problem is the pair ``(x, params)`` (the object and the dict of
every model parameter).  Algorithms move the *scaled* variables (:class:`Vec`):
each group (the object, each learned parameter) divided by its typical size
(``Param.scale``; for the object max|x0| or 1), so one step size serves metres
and radians alike and nobody tunes 1e-9 steps for distances.

:class:`ModelProblem` offers the gradient methods' interface (``evaluate``,
``vector``, ``point``, ``project``) and FISTA's smooth-part-plus-prox interface
(``extrapolate``, ``smooth``, ``prox_step``, ``regularizer``,
``initial_lipschitz``; see :class:`~diffimaging.optim.alg.FISTA`).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from .._backend.autodiff import vjp as _vjp
from .losses import get_loss

__all__ = ["ModelProblem", "Vec", "inner", "as_param_array"]


def inner(a, b) -> float:
    """Real inner product Re <a, b> of two arrays, as a Python float."""
    xp = B.namespace(a)
    if B.is_complex(xp, a.dtype):
        return float(xp.sum(xp.real(xp.conj(a) * b)))
    return float(xp.sum(a * b))


def as_param_array(v, like):
    """A parameter value (number or array of any library) as a float64 array of
    ``like``'s library and device."""
    xp = B.namespace(like)
    if isinstance(v, (int, float)):
        return xp.asarray(float(v), dtype=xp.float64, device=B.device_of(like))
    try:
        B.namespace(v, like)
        return xp.asarray(v, dtype=xp.float64) if B.dtype_kind(xp, v.dtype) != "f8" else v
    except TypeError:
        return xp.asarray(B.to_host_float64(v, "param"), device=B.device_of(like))


class Vec:
    """The joint variable as a list of arrays (object first, then parameters), in
    scaled coordinates; the vector-space operations the algorithms need."""

    def __init__(self, parts):
        self.parts = list(parts)

    def __add__(self, o):
        return Vec([a + b for a, b in zip(self.parts, o.parts)])

    def __sub__(self, o):
        return Vec([a - b for a, b in zip(self.parts, o.parts)])

    def __mul__(self, c: float):
        return Vec([a * c for a in self.parts])

    __rmul__ = __mul__

    def dot(self, o) -> float:
        return sum(inner(a, b) for a, b in zip(self.parts, o.parts))

    def norm(self) -> float:
        return math.sqrt(max(self.dot(self), 0.0))


def _flat(v, like):
    """Parameter value or cotangent as a 1-d float64 array of like's library (0-d
    arrays would decay to scalars under numpy arithmetic)."""
    xp = B.namespace(like)
    if isinstance(v, (int, float)) or isinstance(v, np.generic):
        v = xp.asarray(float(v), dtype=xp.float64, device=B.device_of(like))
    return xp.reshape(xp.asarray(v, dtype=xp.float64), (-1,))


class ModelProblem:
    """``L(model(x, params), y) + sum R_n(x)`` over ``x in constraint`` and the
    parameters within their bounds.

    Parameters
    ----------
    model : Model
    y : array
        Measured data.
    loss : a loss name, :class:`~diffimaging.losses.Loss` or (value_fn, grad_fn).
    regularizers : sequence of regularisers (``TV``, ``L1``, ``L2``).
    constraint : Constraint or None (Omega_x, by projection).
    names : the learned parameters (dotted names of ``model.params``); default:
        every parameter that is not fixed.
    move_x : whether the object moves.
    prox_split : True for proximal methods: the regularisers act through their
        prox and :meth:`evaluate` returns the fidelity alone as the total; False
        for gradient methods: their smooth forms join the objective and gradient.
    preconditioner : object with ``apply(g)`` and ``apply_inverse(d)``, optional
        A symmetric positive-definite operator M on the object (an array of
        the object's shape in, the same out) for FISTA's proximal steps: the
        trial point is ``prox(y - a M grad)`` and the backtracking measures the
        step in the metric of M^-1 (``<d, M^-1 d>``), so the quadratic bound
        stays a bound.  The regularisers' prox stays the Euclidean one: the
        fixed point then minimises the fidelity plus the regularisers weighted
        by M^-1 (weaker where M amplifies; see
        :class:`~diffimaging.lensless.SensorPreconditioner`).  Only
        :meth:`prox_step` uses it; the gradient methods ignore it.

    ``groups`` lists the variable groups ("x" first when it moves, then
    ``names``); ``scales`` their typical sizes, fixed by :meth:`start`.
    """

    def __init__(self, model, y, *, loss="l2", regularizers=(), constraint=None, names=None,
                 move_x=True, prox_split=False, preconditioner=None):
        if preconditioner is not None and not (callable(getattr(preconditioner, "apply", None))
                                               and callable(getattr(preconditioner, "apply_inverse",
                                                                    None))):
            raise TypeError(f"preconditioner must offer apply(g) and apply_inverse(d), got "
                            f"{type(preconditioner).__name__}")
        self.preconditioner = preconditioner
        self.model, self.y = model, y
        self.loss = get_loss(loss)
        self.regs = list(regularizers or ())
        self.constraint = constraint
        self.params = model.params
        if names is None:
            names = [k for k, p in self.params.items() if not p.fixed]
        unknown = [k for k in names if k not in self.params]
        if unknown:
            raise KeyError(f"names lists unknown parameter(s) {unknown}; the model has {sorted(self.params)}")
        self.names = list(names)
        self.move_x = bool(move_x)
        self.prox_split = bool(prox_split)
        self.groups = (["x"] if self.move_x else []) + self.names
        self.scales = None

    # -------------------------------------------------------------- points
    def start(self, x0, params=None, *, project=True):
        """The starting point ``(x, params)`` (``params`` default: the model's values),
        projected onto the constraint and the bounds unless ``project=False`` (an
        already projected start); fixes the scales (the object's: max|x|, or 1)."""
        if params is None:
            params = {k: as_param_array(p.value, x0) for k, p in self.params.items()}
        x = x0
        if project:
            params = self.project_theta(params)
            x = self.project_x(x0)
        xp = B.namespace(x)
        sx = float(xp.max(xp.abs(x))) if x.size else 1.0
        sx = sx if sx > 0 and math.isfinite(sx) else 1.0
        self.scales = {"x": sx, **{k: self.params[k].scale for k in self.names}}
        return x, params

    def variables(self, point):
        """``(x, params)`` of a point (the point itself)."""
        return point

    def vector(self, point) -> Vec:
        """The scaled variables of ``point``."""
        x, theta = point
        s = self.scales
        return Vec(([x / s["x"]] if self.move_x else []) + [_flat(theta[k], x) / s[k] for k in self.names])

    def point(self, v: Vec, like):
        """The point of scaled variables ``v`` (unmoved groups and shapes from ``like``)."""
        x, theta = like
        parts = list(v.parts)
        if self.move_x:
            x = parts.pop(0) * self.scales["x"]
        theta = dict(theta)
        for k in self.names:
            xp = B.namespace(parts[0])
            theta[k] = xp.reshape(parts.pop(0) * self.scales[k], tuple(theta[k].shape))
        return x, theta

    def project_x(self, x):
        return x if self.constraint is None else self.constraint.project(x)

    def prox_x(self, x, step):
        """The regularisers' prox (``step``: object units squared), then the constraint."""
        for r in self.regs:
            x = r.prox(x, step)
        return self.project_x(x)

    def project_theta(self, theta):
        return {k: (self.params[k].project(v) if k in self.names else v) for k, v in theta.items()}

    def project(self, point):
        return self.project_x(point[0]), self.project_theta(point[1])

    # ----------------------------------------------------------- objective
    def _evaluate(self, point, want_grad, want_reg):
        """``(total, fidelity, regularizer, gx, gtheta)`` in the variables' own units."""
        x, theta = point
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
        return total, float(fid), reg, gx, gth

    def evaluate(self, point, want_grad=True, want_reg=True):
        """``(total, fidelity, regularizer, gradient Vec or None)`` at ``point``
        (the smooth regulariser terms in total and gradient unless ``prox_split``;
        the gradient with respect to the scaled variables)."""
        total, fid, reg, gx, gth = self._evaluate(point, want_grad, want_reg)
        if not want_grad:
            return total, fid, reg, None
        s = self.scales
        gv = Vec(([gx * s["x"]] if self.move_x else []) + [_flat(gth[k], gx) * s[k] for k in self.names])
        return total, fid, reg, gv

    def object_gradient(self, x, params):
        """``(total, gradient with respect to x)`` (object units; no scales needed)."""
        total, _, _, gx, _ = self._evaluate((x, params), True, True)
        return total, gx

    def value(self, point) -> float:
        return self.evaluate(point, want_grad=False)[0]

    def regularizer(self, point) -> float:
        """The regularisers' exact value at ``point``."""
        return sum(float(r.value(point[0])) for r in self.regs)

    def objective(self, point) -> float:
        """The objective the algorithm minimises at ``point``."""
        total = self.value(point)
        return total + self.regularizer(point) if self.prox_split else total

    # ------------------------------------------------------ FISTA interface
    def extrapolate(self, x, x_prev, beta):
        """FISTA's point ``x + beta (x - x_prev)`` (``x`` itself when ``x_prev`` is None),
        parameters projected onto their bounds."""
        if x_prev is None:
            return x
        xv = self.vector(x)
        zv = xv + beta * (xv - self.vector(x_prev))
        zx, zth = self.point(zv, x)
        return zx, self.project_theta(zth)

    def smooth(self, y):
        """``(f, grad)``: the smooth part (the fidelity) at ``y`` and its gradient
        (with ``y``'s scaled variables)."""
        f, _, _, g = self.evaluate(y, want_reg=False)
        return f, (g, self.vector(y))

    def prox_step(self, y, grad, a):
        """The trial point ``prox_{a R}(y - a M grad)`` (parameters projected; M the
        preconditioner on the object, identity by default) and
        ``(trial, f(trial), <grad, d>, <d, M^-1 d>)`` with ``d = trial - y`` (scaled)."""
        g, yv = grad
        M = self.preconditioner if self.move_x else None
        step = g if M is None else Vec([M.apply(g.parts[0])] + g.parts[1:])
        cx, cth = self.point(yv - a * step, y)
        if self.move_x:
            cx = self.prox_x(cx, a * self.scales["x"] ** 2)
        cth = self.project_theta(cth)
        f_c = self.evaluate((cx, cth), want_grad=False, want_reg=False)[0]
        d = self.vector((cx, cth)) - yv
        dm = d if M is None else Vec([M.apply_inverse(d.parts[0])] + d.parts[1:])
        return (cx, cth), f_c, g.dot(d), d.dot(dm)

    def initial_lipschitz(self, y, f, grad, L):
        """Smallest power-of-two fraction of ``L`` (1/step; 1 when None) for which the
        quadratic upper bound holds along the gradient at the start (L is then
        nondecreasing, as in Beck & Teboulle's backtracking)."""
        L = 1.0 if L is None else L
        g, yv = grad
        gg = g.dot(g)
        if gg == 0:
            return L
        for _ in range(60):
            a = 0.5 / L
            fc = self.value(self.point(yv - a * g, y))
            if not (math.isfinite(fc) and fc <= f - a * gg + 0.5 * (L / 2) * a * a * gg):
                break
            L *= 0.5
        return L
