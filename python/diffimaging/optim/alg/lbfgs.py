"""L-BFGS (two-loop recursion) with a projected backtracking line search."""
from __future__ import annotations

import math

from .base import Algorithm, leading_step

__all__ = ["LBFGS"]


class LBFGS(Algorithm):
    """L-BFGS on a problem's scaled variables with a backtracking Armijo line
    search; bounds and constraints by projection of the trial points (exact for
    unconstrained problems, a projected heuristic otherwise).  When the
    projected quasi-Newton step fails, the method restarts once from projected
    steepest descent.

    The problem provides ``evaluate(point)`` -> ``(total, fidelity, regularizer,
    gradient)``, ``vector(point)`` / ``point(vec, like)`` and ``project(point)``.

    Parameters
    ----------
    step : float or {group: float}
        Length of a steepest-descent step (relative, in the scaled variables).
    memory : number of correction pairs kept.
    """

    extras = ("evaluations",)

    def __init__(self, step=1.0, memory=10):
        self.step_size = step
        self.memory = int(memory)

    def _start(self):
        self.first = leading_step(self.step_size, self.problem)
        self.total, self.fid, self.reg, self.g = self.problem.evaluate(self.x)
        self._check(self.total)
        self.S, self.Y, self.RHO = [], [], []

    def _steepest(self, g):
        self.S, self.Y, self.RHO = [], [], []
        return g * (-self.first / max(g.norm(), 1e-300))

    def step(self):
        p, g = self.problem, self.g
        S, Y, RHO = self.S, self.Y, self.RHO
        q = g
        alphas = []
        for s, yv, rho in reversed(list(zip(S, Y, RHO))):
            a = rho * s.dot(q)
            alphas.append(a)
            q = q - a * yv
        if S:
            gamma = S[-1].dot(Y[-1]) / Y[-1].dot(Y[-1])
        else:
            gamma = self.first / max(g.norm(), 1e-300)
        r = q * gamma
        for (s, yv, rho), a in zip(zip(S, Y, RHO), reversed(alphas)):
            b = rho * yv.dot(r)
            r = r + (a - b) * s
        d = r * -1.0
        if not g.dot(d) < 0:  # not a descent direction: reset to steepest descent
            d = self._steepest(g)
        cur = p.vector(self.x)
        lam = 1.0
        fallback = False
        evaluations = 0
        while True:
            xn = p.project(p.point(cur + lam * d, self.x))
            tot_n, fid_n, reg_n, gn = p.evaluate(xn)
            evaluations += 1
            # Armijo along the projected path: compare with the actual (projected) move
            moved = g.dot(p.vector(xn) - cur)
            if math.isfinite(tot_n) and tot_n <= self.total + 1e-4 * min(moved, 0.0) and moved < 0:
                break
            lam *= 0.5
            if lam < 1e-10:
                if fallback or not self.S:
                    self._stop("line search failed (stationary point)")
                    return None
                # projected quasi-Newton step failed: restart from projected steepest descent
                d = self._steepest(g)
                lam, fallback = 1.0, True
        s = p.vector(xn) - cur
        yv = gn - g
        sy = s.dot(yv)
        if sy > 1e-12 * s.norm() * yv.norm():
            self.S.append(s)
            self.Y.append(yv)
            self.RHO.append(1.0 / sy)
            if len(self.S) > self.memory:
                self.S.pop(0)
                self.Y.pop(0)
                self.RHO.pop(0)
        self.x, self.total, self.fid, self.reg, self.g = xn, tot_n, fid_n, reg_n, gn
        return {"loss": tot_n, "fidelity": fid_n, "regularizer": reg_n, "step": lam,
                "evaluations": evaluations}
