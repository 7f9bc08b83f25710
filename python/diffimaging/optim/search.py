"""The global stage: the objective on a grid of parameter values, before the
local descent (which alone cannot find a distance far from the start: a
hologram's fringes make the objective multimodal)."""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _backend as B
from .problem import as_param_array, inner
from .run import SolverError, check_count

__all__ = ["grid_search", "AUTO_STEPS"]

#: object-step counts tried in turn by ``steps="auto"``
AUTO_STEPS = (0, 1, 2, 4, 8, 16)


def grid_search(problem, x, params, search, steps="auto"):
    """Evaluate ``problem`` (a :class:`~diffimaging.optim.problem.ModelProblem`) on
    the product grid ``search`` ({name: 1-d values}), the object held at ``x`` or
    refined by ``steps`` projected gradient steps (object only) for each candidate.

    ``steps="auto"`` scores the grid with 0, 1, 2, 4, 8, then 16 object steps per
    candidate (:data:`AUTO_STEPS`) and stops as soon as the next count picks the
    same candidate (within one grid point along every searched parameter; a
    scoring whose values are all equal picks nothing): the grid's answer is then
    one that refining the object further does not change, and the result is
    that of the smaller count (the object least moved from the start; 16 when
    no two counts agree).  The object held at its start can make the objective
    independent of the searched parameter (a flat start: a uniform field
    propagates to a uniform field at every distance) or point at a wrong value;
    a few steps per candidate let the object explain the data at that
    candidate's value, which is what the comparison needs.  Where the start
    already decides the grid, the result is that of ``steps=0`` at the cost of
    one extra step per candidate.

    Returns ``(x, params, table)``: the best candidate's object and parameters,
    and the table {"names", "values" (one tuple per candidate), "loss" (of the
    scoring returned), "best" ({name: value}), "steps" (that scoring's object
    steps per candidate)}.  SolverError when the objective is non-finite
    everywhere.
    """
    names = list(search)
    for k in names:
        if k not in problem.params:
            raise KeyError(f"search names unknown parameter {k!r}; the model has {sorted(problem.params)}")
    grids = [np.asarray(B.to_host_float64(search[k], k)) for k in names]
    for k, gvals in zip(names, grids):
        if gvals.ndim != 1 or gvals.size == 0:
            raise ValueError(f"search[{k!r}] must be a non-empty 1-d sequence of values")
    if isinstance(steps, str) and steps == "auto":
        prev = None
        for n in AUTO_STEPS:
            scan = _scan(problem, x, params, names, grids, n)
            finite = [v for v in scan[1]["loss"] if math.isfinite(v)]
            if max(finite) - min(finite) <= 1e-12 * max(abs(v) for v in finite):
                continue  # flat in the searched parameters: this scoring picks nothing
            if prev is not None and all(abs(a - b) <= 1 for a, b in zip(scan[2], prev[2])):
                break
            prev = scan
        best, table, _ = prev if prev is not None else scan
    else:
        n = check_count(steps, "search_steps")
        best, table, _ = _scan(problem, x, params, names, grids, n)
    return best[1], best[2], table


def _scan(problem, x, params, names, grids, steps):
    """One scoring of the grid with ``steps`` object steps per candidate:
    ``(best (value, x, params), table, best candidate's index along each grid)``."""
    best = None
    table = {"names": names, "values": [], "loss": [], "steps": steps}
    for index in itertools.product(*(range(g.size) for g in grids)):
        combo = [float(g[i]) for g, i in zip(grids, index)]
        th = dict(params)
        for k, v in zip(names, combo):
            th[k] = as_param_array(v, x)
        th = problem.project_theta(th)
        xc = _refine_object(problem, x, th, steps) if steps else x
        val = problem.value((xc, th))
        table["values"].append(tuple(combo))
        table["loss"].append(val)
        if math.isfinite(val) and (best is None or val < best[0]):
            best = (val, xc, th, index)
    if best is None:
        raise SolverError("the objective is non-finite at every search value", None)
    table["best"] = dict(zip(names, (float(g[i]) for g, i in zip(grids, best[3]))))
    return best[:3], table, best[3]


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
