"""The one iteration loop: an algorithm (:mod:`diffimaging.optim.alg`) steps, this
loop owns everything around the steps — the history, the stop rules (iteration
limit, tolerance, callback, the algorithm's own), the non-finite stop, timing
and the progress bar (SigPy's Alg/App split; SCICO's history and NaN stop).

History (``SolveResult.history``), one entry per recorded iteration:

``loss``         objective (fidelity + regulariser) of the iterate
``fidelity``     data term
``regularizer``  regulariser term
``params``       {name: 0-d float64 array} of each learned parameter
``step``         step size used
``time``         seconds since the start, callbacks excluded
``final_loss``   objective at the returned iterate (one value)

plus any extra per-iteration value an algorithm reports (FISTA, GD and L-BFGS:
``evaluations``, forward passes per iteration, line search included).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import _backend as B
from .._backend.validate import integer
from .alg.base import NonFiniteObjective

__all__ = ["run", "SolveResult", "SolverError", "check_count"]

#: the record keys every algorithm reports; the rest of a record are extras
_CORE = ("loss", "fidelity", "regularizer", "step")


class SolverError(FloatingPointError):
    """The objective became non-finite; ``.result`` holds the last finite iterate."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.result = result


@dataclass
class SolveResult:
    """``x``: the object; ``params``: dotted name -> recovered value (array of the
    input's library); ``history``: per-iteration records (loss, fidelity,
    regulariser, parameter values, step sizes, wall time); ``search``: the
    global-stage table when one ran; ``iterations``, ``converged``, ``message``."""

    x: object
    params: dict
    history: dict = field(default_factory=dict)
    search: dict | None = None
    iterations: int = 0
    converged: bool = False
    message: str = ""


def check_count(value, name: str, *, minimum: int = 0) -> int:
    """A count (iterations, steps, points, planes) as a Python int >= ``minimum``:
    any integer, numpy integer scalars included (``np.int64(5)``); bools, floats
    (even ``5.0``) and smaller values raise a ValueError naming ``name``."""
    return integer(value, name, minimum=minimum, type_error=ValueError)


def run(alg, problem, x0, *, iterations: int, callback: Callable | None = None,
        tol: float | None = None, progress: bool = False, label: str = "solve") -> SolveResult:
    """Run ``alg`` on ``problem`` from ``x0`` (a point of the problem) for at most
    ``iterations`` steps.

    Parameters
    ----------
    alg : an :class:`~diffimaging.optim.alg.Algorithm` (``setup(problem, x0)``,
        ``step()``, ``done``, ``x``, ``extras``, ``final_value()``), e.g.
        :class:`~diffimaging.optim.alg.FISTA`.
    problem : what ``alg`` works on; the loop itself needs ``names`` (the learned
        parameters recorded in the history) and ``variables(point)`` ->
        ``(x, params)``.
    iterations : int
        Step count limit (a step that records nothing, e.g. a FISTA restart,
        counts too).
    callback : callable(iteration, x, params, record) -> bool, optional
        Called after every recorded iteration with the record's loss, fidelity,
        regularizer and step; its time is not counted.  Returning True stops.
    tol : float, optional
        Stop when the relative change of the objective stays below tol for 5
        recorded iterations.
    progress : bool
        Show a tqdm bar (``label`` its description).

    Returns
    -------
    SolveResult (``search`` None).  A non-finite objective raises
    :class:`SolverError` whose ``.result`` holds the last finite recorded iterate
    (the start when none was recorded).
    """
    iterations = check_count(iterations, "iterations")
    names = list(problem.names)
    history = {"loss": [], "fidelity": [], "regularizer": [], "params": {k: [] for k in names},
               "step": [], "time": [], **{k: [] for k in alg.extras}}
    last = {"point": x0, "it": 0}

    def fail(value, it):
        x, params = problem.variables(last["point"])
        result = SolveResult(x=x, params=dict(params), history=history, iterations=last["it"],
                             message="non-finite objective")
        return SolverError(f"objective is {value} at iteration {it}; the result attached to this "
                           f"error (.result) holds the last finite iterate (iteration "
                           f"{last['it']})", result)

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=iterations, desc=label, leave=False)
        except ImportError:  # pragma: no cover
            bar = None
    converged, message = False, "iteration limit"
    t0 = time.perf_counter()
    paused = 0.0
    small = 0
    try:
        try:
            alg.setup(problem, x0)
        except NonFiniteObjective as exc:
            raise fail(exc.value, 0) from None
        for it in range(1, iterations + 1):
            try:
                rec = alg.step()
            except NonFiniteObjective as exc:
                raise fail(exc.value, it) from None
            if alg.done:
                converged, message = alg.converged, alg.message
                break
            if rec is None:  # a step that moved nothing (a restart)
                continue
            total = rec["loss"]
            if not math.isfinite(total):
                raise fail(total, it)
            prev = history["loss"][-1] if history["loss"] else None
            x, params = problem.variables(alg.x)
            last.update(point=alg.x, it=it)
            for key, value in rec.items():
                history[key].append(value)
            for k in names:
                history["params"][k].append(np.array(B.to_host_float64(params[k], k)))
            history["time"].append(time.perf_counter() - t0 - paused)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total:.4g}")
            stop = False
            if callback is not None:
                tc = time.perf_counter()
                stop = bool(callback(it, x, params, {k: rec[k] for k in _CORE}))
                paused += time.perf_counter() - tc
            if tol is not None and prev is not None:
                small = small + 1 if abs(prev - total) <= tol * max(abs(prev), 1e-300) else 0
                if small >= 5:
                    converged, message = True, f"relative change below tol={tol}"
                    break
            if stop:
                message = "stopped by callback"
                break
        final = alg.final_value()
        if not math.isfinite(final):
            raise fail(final, last["it"])
        history["final_loss"] = final
    finally:
        if bar is not None:
            bar.close()
    x, params = problem.variables(last["point"])
    return SolveResult(x=x, params=dict(params), history=history, iterations=last["it"],
                       converged=converged, message=message)
