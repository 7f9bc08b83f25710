"""Algorithms, one step at a time: ``alg.setup(problem, x0)``, then ``alg.step()``
until ``alg.done``; :func:`diffimaging.optim.run` drives them with the history,
stop rules and display."""
from .adam import Adam
from .base import Algorithm, NonFiniteObjective
from .fista import FISTA
from .gd import GD
from .lbfgs import LBFGS

__all__ = ["Algorithm", "NonFiniteObjective", "GD", "Adam", "FISTA", "LBFGS"]
