"""One-to-one matching of found particles to the truth: recall, precision, RMSE."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["match", "MatchResult", "as_positions"]


@dataclass
class MatchResult:
    """Outcome of :func:`match`.

    ``pairs``: (K, 2) int array of (found index, truth index) matched one-to-one;
    ``recall`` = K / n_truth (the extraction rate); ``precision`` = K / n_found;
    ``lateral_rmse`` and ``axial_rmse`` in metres over the matched pairs;
    ``errors``: (K, 3) signed (dy, dx, dz) = found - truth, metres.
    """

    pairs: np.ndarray
    recall: float
    precision: float
    lateral_rmse: float
    axial_rmse: float
    errors: np.ndarray
    n_found: int
    n_truth: int

    def __repr__(self):
        return (f"MatchResult(matched={len(self.pairs)}/{self.n_truth} truth, {self.n_found} found; "
                f"recall={self.recall:.4f}, precision={self.precision:.4f}, "
                f"lateral_rmse={self.lateral_rmse:.3g} m, axial_rmse={self.axial_rmse:.3g} m)")


def as_positions(t, name="positions"):
    """(N, 3) float64 array of (y, x, z) positions in metres from an array or from a
    table with a ``positions`` attribute (e.g. :class:`ParticleTable`); raises naming
    ``name`` when the shape is not (N, 3) or a value is not finite."""
    pos = getattr(t, "positions", t)
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"{name} must be an (N, 3) array of (y, x, z) positions in metres, or a "
                         f"table with .positions; got shape {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"{name} positions must be finite")
    return pos


def match(found, truth, lateral_tol, axial_tol) -> MatchResult:
    """Match found particles to true ones, one-to-one.

    A found particle may match a true one when they are within ``lateral_tol``
    metres laterally (in y, x) *and* ``axial_tol`` metres in depth.  Among all
    admissible one-to-one assignments the one with the most pairs and, among
    those, the smallest total normalised distance sqrt((d_lat/lateral_tol)^2 +
    (dz/axial_tol)^2) is taken (Hungarian algorithm on each connected group of
    candidates, so thousands of particles stay cheap).

    Parameters
    ----------
    found, truth : (N, 3) arrays of (y, x, z) in metres, or tables with ``.positions``
    lateral_tol, axial_tol : float, metres (e.g. 2 pixels and 3 diameters)

    Example
    -------
    >>> m = match(found, truth, lateral_tol=2 * 2e-6, axial_tol=3 * 10e-6)
    >>> m.recall, m.precision, m.lateral_rmse
    """
    F = as_positions(found, "found")
    T = as_positions(truth, "truth")
    for v, name in ((lateral_tol, "lateral_tol"), (axial_tol, "axial_tol")):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive distance in metres, got {v!r}")
    nf, nt = len(F), len(T)
    pairs = np.zeros((0, 2), dtype=np.int64)
    if nf and nt:
        tree = cKDTree(T[:, :2])
        cand = tree.query_ball_point(F[:, :2], r=lateral_tol)
        rows, cols, cost = [], [], []
        for i, js in enumerate(cand):
            for j in js:
                dz = abs(F[i, 2] - T[j, 2])
                if dz <= axial_tol:
                    dl = np.hypot(*(F[i, :2] - T[j, :2]))
                    rows.append(i)
                    cols.append(j)
                    cost.append(np.hypot(dl / lateral_tol, dz / axial_tol))
        if rows:
            rows, cols, cost = np.array(rows), np.array(cols), np.array(cost)
            # connected groups of the bipartite candidate graph (found i -> node i, truth j -> nf + j)
            g = coo_matrix((np.ones(len(rows)), (rows, nf + cols)), shape=(nf + nt, nf + nt))
            _, label = connected_components(g, directed=False)
            out = []
            comp = label[rows]
            order = np.argsort(comp, kind="stable")
            bounds = np.flatnonzero(np.diff(comp[order])) + 1
            for idx in np.split(order, bounds):
                fi, fu = np.unique(rows[idx], return_inverse=True)
                ti, tu = np.unique(cols[idx], return_inverse=True)
                # maximise the number of pairs first: admissible edges cost (c - BIG)
                big = 1e6
                C = np.full((len(fi), len(ti)), big)
                C[fu, tu] = cost[idx] - big
                r, c = linear_sum_assignment(C)
                ok = C[r, c] < 0
                out.append(np.stack([fi[r[ok]], ti[c[ok]]], axis=1))
            pairs = np.concatenate(out).astype(np.int64)
            pairs = pairs[np.argsort(pairs[:, 1])]
    err = F[pairs[:, 0]] - T[pairs[:, 1]] if len(pairs) else np.zeros((0, 3))
    k = len(pairs)
    lat = float(np.sqrt(np.mean(err[:, 0] ** 2 + err[:, 1] ** 2))) if k else float("nan")
    ax = float(np.sqrt(np.mean(err[:, 2] ** 2))) if k else float("nan")
    return MatchResult(pairs=pairs, recall=k / nt if nt else float("nan"),
                       precision=k / nf if nf else float("nan"), lateral_rmse=lat, axial_rmse=ax,
                       errors=err, n_found=nf, n_truth=nt)
