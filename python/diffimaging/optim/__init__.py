"""Reconstruction as optimisation, in layers:

- :mod:`~diffimaging.optim.losses` — data-fidelity terms ``L(pred, y)``;
- :mod:`~diffimaging.optim.regularizers` and :mod:`~diffimaging.optim.constraints`
  — ``β R(x)`` (value, gradient, prox) and ``x ∈ Ω`` (projection);
- :mod:`~diffimaging.optim.problem` — :class:`ModelProblem`, the objective of a
  :class:`~diffimaging.Model` over scaled variables;
- :mod:`~diffimaging.optim.alg` — :class:`GD`, :class:`Adam`, :class:`FISTA`,
  :class:`LBFGS`, one step at a time (``setup``, ``step``, ``done``);
- :func:`run` — the one loop around them (history, stop rules, non-finite stop,
  callbacks, progress bar);
- :func:`grid_search` — the global parameter-grid stage;
- :func:`solve` — all of the above for a model and data.
"""
from . import losses
from .alg import FISTA, GD, LBFGS, Adam, Algorithm, NonFiniteObjective
from .constraints import AmplitudeAtMost, Box, Constraint, Intersection, NonNegative, Support
from .problem import ModelProblem
from .regularizers import L1, L2, TV, Regularizer
from .run import SolveResult, SolverError, check_count, run
from .search import grid_search
from .solve import solve

__all__ = [
    "losses",
    "Regularizer", "TV", "L1", "L2",
    "Constraint", "NonNegative", "Box", "Support", "AmplitudeAtMost", "Intersection",
    "ModelProblem", "Algorithm", "NonFiniteObjective", "GD", "Adam", "FISTA", "LBFGS",
    "run", "SolveResult", "SolverError", "check_count", "grid_search", "solve",
]
