"""Projected gradient descent with Armijo backtracking."""
from __future__ import annotations

import math

from .base import Algorithm, leading_step

__all__ = ["GD"]


class GD(Algorithm):
    """Projected gradient descent on a problem's scaled variables, Armijo
    backtracking (the trial step doubles each iteration, then halves until the
    projected move decreases the objective enough).

    The problem provides ``evaluate(point[, want_grad])`` -> ``(total, fidelity,
    regularizer, gradient)``, ``vector(point)`` / ``point(vec, like)`` (scaled
    variables) and ``project(point)``.

    Parameters
    ----------
    step : float or {group: float}
        First step (relative, in the scaled variables).
    """

    extras = ("evaluations",)

    def __init__(self, step=1.0):
        self.step_size = step

    def _start(self):
        self.alpha = leading_step(self.step_size, self.problem)
        self.total, self.fid, self.reg, self.g = self.problem.evaluate(self.x)

    def step(self):
        p = self.problem
        self._check(self.total)
        g = self.g
        cur = p.vector(self.x)
        if g.dot(g) == 0:
            self._stop("zero gradient")
            return None
        evaluations = 0
        self.alpha *= 2.0
        while True:
            xn = p.project(p.point(cur - self.alpha * g, self.x))
            tot_n = p.value(xn)
            evaluations += 1
            dec = p.vector(xn) - cur
            if math.isfinite(tot_n) and tot_n <= self.total + 1e-4 * g.dot(dec):
                break
            self.alpha *= 0.5
            if self.alpha < 1e-20:
                self._stop("line search failed (stationary point)")
                return None
        self.x = xn
        self.total, self.fid, self.reg, self.g = p.evaluate(xn)
        return {"loss": self.total, "fidelity": self.fid, "regularizer": self.reg, "step": self.alpha,
                "evaluations": evaluations + 1}
