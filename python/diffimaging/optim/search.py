"""The global stage: the objective on a grid of parameter values, before the
local descent (which alone cannot find a distance far from the start: a
hologram's fringes make the objective multimodal)."""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _backend as B
from .problem import as_param_array, inner
from .run import SolverError

__all__ = ["grid_search"]


def grid_search(problem, x, params, search, steps=0):
    """Evaluate ``problem`` (a :class:`~diffimaging.optim.problem.ModelProblem`) on
    the product grid ``search`` ({name: 1-d values}), the object held at ``x`` or
    refined by ``steps`` projected gradient steps for each candidate.

    Returns ``(x, params, table)``: the best candidate's object and parameters,
    and the table {"names", "values" (one tuple per candidate), "loss", "best"
    ({name: value})}.  SolverError when the objective is non-finite everywhere.
    """
    names = list(search)
    for k in names:
        if k not in problem.params:
            raise KeyError(f"search names unknown parameter {k!r}; the model has {sorted(problem.params)}")
    grids = [np.asarray(B.to_host_float64(search[k], k)) for k in names]
    for k, gvals in zip(names, grids):
        if gvals.ndim != 1 or gvals.size == 0:
            raise ValueError(f"search[{k!r}] must be a non-empty 1-d sequence of values")
    best = None
    table = {"values": [], "loss": []}
    for combo in itertools.product(*grids):
        th = dict(params)
        for k, v in zip(names, combo):
            th[k] = as_param_array(float(v), x)
        th = problem.project_theta(th)
        xc = x
        if steps:
            xc = _refine_object(problem, x, th, steps)
        val = problem.value((xc, th))
        table["values"].append(tuple(float(v) for v in combo))
        table["loss"].append(val)
        if math.isfinite(val) and (best is None or val < best[0]):
            best = (val, xc, th)
    table["names"] = names
    if best is None:
        raise SolverError("the objective is non-finite at every search value", None)
    table["best"] = dict(zip(names, table["values"][int(np.nanargmin(table["loss"]))]))
    return best[1], best[2], table


def _refine_object(problem, x, params, n):
    """A few projected gradient steps on the object only (Armijo backtracking),
    in the object's own units (the problem's scales are not needed)."""
    alpha = 1.0
    total, gx = problem.object_gradient(x, params)
    xp = B.namespace(x)
    sx = float(xp.max(xp.abs(x))) or 1.0
    for _ in range(n):
        g2 = inner(gx, gx)
        if g2 == 0:
            break
        a = alpha * sx / math.sqrt(g2)
        for _ in range(30):
            xn = problem.project_x(x - a * gx)
            tn = problem.value((xn, params))
            if math.isfinite(tn) and tn < total:
                break
            a *= 0.5
        else:
            break
        x = xn
        total, gx = problem.object_gradient(x, params)
    return x
