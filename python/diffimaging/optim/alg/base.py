"""What every algorithm shares: the state flags the run loop reads and the
non-finite signal."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

__all__ = ["Algorithm", "NonFiniteObjective", "leading_step"]


class NonFiniteObjective(FloatingPointError):
    """Raised by :meth:`Algorithm.step` (or ``setup``) when the objective at the
    point it needs is not finite; :func:`~diffimaging.optim.run` turns it into a
    :class:`~diffimaging.optim.SolverError` holding the last finite iterate."""

    def __init__(self, value):
        super().__init__(f"non-finite objective {value}")
        self.value = value


class Algorithm(ABC):
    """One iterative method, one step at a time (no loop, history or display:
    :func:`~diffimaging.optim.run` owns those).

    Use: ``alg.setup(problem, x0)``, then ``rec = alg.step()`` until ``alg.done``
    (or as many steps as wanted).  ``rec`` is the record of the new iterate
    ``alg.x`` (a dict with ``loss``, ``fidelity``, ``regularizer``, ``step`` and
    the names in ``extras``), or None when the step recorded nothing (a FISTA
    restart).  ``done`` is set when the method cannot go on (zero gradient, a
    failed line search); ``message`` says why and ``converged`` whether that is a
    stationary point.  ``x0`` and ``alg.x`` are points of the problem (for
    :class:`~diffimaging.optim.problem.ModelProblem`, ``(x, params)``).
    """

    #: per-iteration values this algorithm reports besides the core record keys
    extras: tuple = ()

    def setup(self, problem, x0) -> None:
        """Start on ``problem`` at the point ``x0``."""
        self.problem = problem
        self.x = x0
        self.done = False
        self.converged = False
        self.message = ""
        self._start()

    def _start(self) -> None:
        """The method's own initialisation (after ``problem`` and ``x`` are set)."""

    @abstractmethod
    def step(self) -> dict | None:
        """One iteration; the record of the new iterate, or None."""

    def final_value(self) -> float:
        """The objective at the current iterate."""
        return self.problem.objective(self.x)

    def _stop(self, message: str) -> None:
        self.done, self.converged, self.message = True, True, message

    @staticmethod
    def _check(value) -> None:
        if not math.isfinite(value):
            raise NonFiniteObjective(value)


def leading_step(step, problem) -> float:
    """The step of the problem's first variable group (the object when it moves):
    ``step`` itself for a number, ``step[group]`` for a {group: step} dict."""
    return float(step[problem.groups[0]]) if isinstance(step, dict) else float(step)
