"""Adam (Kingma & Ba 2015) with projection onto the constraints and bounds."""
from __future__ import annotations

from ... import _backend as B
from ..problem import Vec
from .base import Algorithm

__all__ = ["Adam"]


class Adam(Algorithm):
    """Adam on a problem's scaled variables, each group with its own learning
    rate; the iterate is projected after every update.

    Like every algorithm, a step's record holds the objective *of the new
    iterate*: the gradient for the next update is taken there in the same
    evaluation (one forward and backward pass per step, plus one at the start),
    so a step onto a point with a non-finite objective is reported by that step
    and the run loop keeps the previous, finite iterate.

    The problem provides ``groups``, ``evaluate(point)`` -> ``(total, fidelity,
    regularizer, gradient)``, ``vector(point)`` / ``point(vec, like)`` and
    ``project(point)``.

    Parameters
    ----------
    step : float or {group: float}
        Learning rates (relative, in the scaled variables).
    b1, b2, eps : the moment decay rates and the denominator's guard.
    """

    def __init__(self, step=1e-2, b1=0.9, b2=0.999, eps=1e-8):
        self.step_size = step
        self.b1, self.b2, self.eps = b1, b2, eps

    def _start(self):
        s = self.step_size
        self.lrs = [float(s[k]) if isinstance(s, dict) else float(s) for k in self.problem.groups]
        self.m = self.v = None
        self.k = 0
        self.total, _, _, self.g = self.problem.evaluate(self.x)
        self._check(self.total)

    def step(self):
        p, g = self.problem, self.g
        b1, b2 = self.b1, self.b2
        self.k += 1
        if self.m is None:
            self.m = [gi * 0.0 for gi in g.parts]
            self.v = [B.namespace(gi).real(gi) * 0.0 if B.is_complex(B.namespace(gi), gi.dtype)
                      else gi * 0.0 for gi in g.parts]
        cur = p.vector(self.x)
        new = []
        for i, gi in enumerate(g.parts):
            xp = B.namespace(gi)
            self.m[i] = b1 * self.m[i] + (1 - b1) * gi
            g2 = xp.real(xp.conj(gi) * gi) if B.is_complex(xp, gi.dtype) else gi * gi
            self.v[i] = b2 * self.v[i] + (1 - b2) * g2
            mh = self.m[i] / (1 - b1 ** self.k)
            vh = self.v[i] / (1 - b2 ** self.k)
            new.append(cur.parts[i] - self.lrs[i] * mh / (xp.sqrt(vh) + self.eps))
        xn = p.project(p.point(Vec(new), self.x))
        total, fid, reg, gn = p.evaluate(xn)
        self._check(total)  # the run loop then keeps the previous iterate
        self.x, self.total, self.g = xn, total, gn
        return {"loss": total, "fidelity": fid, "regularizer": reg, "step": self.lrs[0]}

    def final_value(self) -> float:
        """The objective at the current iterate (known from its step)."""
        return self.total
