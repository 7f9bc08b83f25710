"""Joint recovery of the object and the system parameters:

    x*, theta* = argmin L(f(x, theta), y) + sum_n beta_n R_n(x)   s.t. x in Omega_x, theta in Omega_theta

over any array-API backend: :func:`solve` builds the
:class:`~diffimaging.optim.problem.ModelProblem`, runs the global stage
(:mod:`~diffimaging.optim.search`) when asked, picks the algorithm
(:mod:`~diffimaging.optim.alg`) and hands both to :func:`~diffimaging.optim.run`.

Variables are optimised in *scaled* coordinates (see
:mod:`~diffimaging.optim.problem`), so ``step`` is relative: the first move of
each group is about ``step`` times its scale.
"""
from __future__ import annotations

import sys
from typing import Callable

from .. import _backend as B
from ..model import Model
from .alg import FISTA, GD, LBFGS, Adam
from .problem import ModelProblem
from .run import check_count, run
from .search import grid_search

__all__ = ["solve"]

_METHODS = {"gd": GD, "fista": FISTA, "adam": Adam, "lbfgs": LBFGS}


def solve(model: Model, y, x0, *, loss="l2", regularizers=(), constraint=None, optimize=None,
          search=None, search_steps="auto", method="adam", iterations=200, step=None,
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
        more parameters, the object refined by a few gradient steps for each
        candidate; the joint solve starts from the best candidate and its object.
        Local descent alone cannot find a distance far from the start: the
        hologram's fringes make the objective multimodal.
    search_steps : "auto" or int
        Object steps per candidate.  "auto" (default): 0, 1, 2, 4, 8, then 16,
        until two successive counts pick the same candidate (see
        :func:`~diffimaging.optim.grid_search`), so that a flat start such as
        ``x0 = ones``, whose objective does not depend on a distance, still
        finds it.  An int fixes the count (0: the object held at ``x0``).
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
        raise ValueError(f"method must be one of {tuple(_METHODS)}, got {method!r}")
    iterations = check_count(iterations, "iterations")  # before the (costly) global stage
    if not (isinstance(search_steps, str) and search_steps == "auto"):
        search_steps = check_count(search_steps, "search_steps")
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
    prob = ModelProblem(model, y, loss=loss, regularizers=regularizers, constraint=constraint,
                        names=names, move_x=move_x, prox_split=method == "fista")
    x, theta = prob.start(x0)
    search_table = None
    if search:
        x, theta, search_table = grid_search(prob, x, theta, search, search_steps)
        x, theta = prob.start(x, theta, project=False)
    alg = _METHODS[method](step=_steps(method, step, names))
    res = run(alg, prob, (x, theta), iterations=iterations, callback=callback, tol=tol,
              progress=bool(progress) and sys.stdout.isatty(), label=f"solve ({method})")
    res.search = search_table
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
