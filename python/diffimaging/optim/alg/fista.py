"""FISTA (Beck & Teboulle 2009) with backtracking and adaptive (function-value)
restart, on any problem offering the smooth-part-plus-prox interface."""
from __future__ import annotations

import math

from .base import Algorithm, leading_step

__all__ = ["FISTA"]


class FISTA(Algorithm):
    """FISTA for ``min f(x) + R(x)``: ``f`` smooth (gradient steps), ``R`` through
    its proximal operator (regularisers, constraints and bounds by projection).

    The problem provides (points are the problem's own objects):

    - ``extrapolate(x, x_prev, beta)`` -> ``y = x + beta (x - x_prev)``
      (``x`` when ``x_prev`` is None);
    - ``smooth(y)`` -> ``(f(y), grad)``, ``grad`` opaque to FISTA;
    - ``prox_step(y, grad, a)`` -> ``(trial, f(trial), <grad, d>, |d|^2)`` for
      ``trial = prox_{a R}(y - a grad)``, ``d = trial - y``;
    - ``regularizer(point)`` -> ``R(point)``;
    - ``initial_lipschitz(y, f, grad, L)`` -> the first Lipschitz estimate
      (``L`` = 1/step, or None when no step was given: the problem's own rule);
    - ``objective(point)`` -> ``f + R`` (the final value).

    A step accepts the trial when ``f(trial) <= f(y) + <grad, d> + L/2 |d|^2``
    (doubling L otherwise; L never decreases after the first step).  When the
    objective rises, the momentum restarts and the step records nothing.

    Parameters
    ----------
    step : float, {group: float} or None
        First step size (relative, in the problem's scaled variables): the
        Lipschitz search starts at 1/step.  None: the problem's rule.
    """

    extras = ("evaluations",)

    def __init__(self, step=None):
        self.step_size = step

    def _start(self):
        self.x_prev = None
        self.t = 1.0
        self.beta = 0.0
        self.L = None
        self.prev_obj = None
        self.evaluations = 0

    def step(self):
        p = self.problem
        y = p.extrapolate(self.x, self.x_prev, self.beta)
        f_y, grad = p.smooth(y)
        self.evaluations += 1
        self._check(f_y)
        if self.L is None:
            L0 = None if self.step_size is None else 1.0 / leading_step(self.step_size, p)
            self.L = p.initial_lipschitz(y, f_y, grad, L0)
        while True:
            a = 1.0 / self.L
            trial, f_c, gd, dd = p.prox_step(y, grad, a)
            self.evaluations += 1
            if math.isfinite(f_c) and f_c <= f_y + gd + 0.5 * self.L * dd + 1e-14 * abs(f_y):
                break
            self.L *= 2.0
            if self.L > 1e30:
                self._stop("backtracking failed")
                return None
        reg = p.regularizer(trial)
        obj = f_c + reg
        if self.prev_obj is not None and obj > self.prev_obj:  # adaptive (function-value) restart
            self.t, self.beta, self.x_prev, self.prev_obj = 1.0, 0.0, None, None
            return None
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * self.t * self.t))
        self.beta = (self.t - 1) / t_new
        self.t = t_new
        self.x_prev, self.x = self.x, trial
        self.prev_obj = obj
        evaluations, self.evaluations = self.evaluations, 0
        return {"loss": obj, "fidelity": f_c, "regularizer": reg, "step": a,
                "evaluations": evaluations}
