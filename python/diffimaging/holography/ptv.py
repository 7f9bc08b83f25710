"""PTV: link particles between frames."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from .matching import _positions

__all__ = ["link", "Links"]


@dataclass
class Links:
    """Particle links from frame A to frame B: ``pairs`` (K, 2) indices (a, b);
    ``displacement`` (K, 3) = (dy, dx, dz) in metres; ``positions`` (K, 3) the
    midpoints (y, x, z) where each velocity applies."""

    pairs: np.ndarray
    displacement: np.ndarray
    positions: np.ndarray

    def velocity(self, dt):
        """Velocities in metres per second for a frame interval ``dt`` seconds."""
        return self.displacement / dt


def link(frame_a, frame_b, max_distance, *, predictor=None):
    """One-to-one nearest-neighbour linking of particles between two frames.

    Each particle of A is first moved by the predicted displacement (``predictor``:
    None for zero, a (3,) displacement in metres, an (N_A, 3) array, or a callable
    positions -> displacements, e.g. interpolated PIV), then linked to a particle of
    B within ``max_distance`` metres, minimising the total distance to the predicted
    positions over one-to-one assignments (Hungarian algorithm on candidate pairs).
    """
    A, Bp = _positions(frame_a, "frame_a"), _positions(frame_b, "frame_b")
    if not (np.isfinite(max_distance) and max_distance > 0):
        raise ValueError(f"max_distance must be a positive distance in metres, got {max_distance!r}")
    if predictor is None:
        pred = np.zeros_like(A)
    elif callable(predictor):
        pred = np.asarray(predictor(A), dtype=np.float64).reshape(A.shape)
    else:
        pred = np.broadcast_to(np.asarray(predictor, dtype=np.float64), A.shape)
    target = A + pred
    empty = Links(np.zeros((0, 2), np.int64), np.zeros((0, 3)), np.zeros((0, 3)))
    if len(A) == 0 or len(Bp) == 0:
        return empty
    tree = cKDTree(Bp)
    cand = tree.query_ball_point(target, r=max_distance)
    rows = [i for i, js in enumerate(cand) for _ in js]
    cols = [j for js in cand for j in js]
    if not rows:
        return empty
    rows, cols = np.array(rows), np.array(cols)
    ui, ri = np.unique(rows, return_inverse=True)
    uj, cj = np.unique(cols, return_inverse=True)
    big = 1e6
    C = np.full((len(ui), len(uj)), big)
    C[ri, cj] = np.linalg.norm(target[rows] - Bp[cols], axis=1) / max_distance - big
    r, c = linear_sum_assignment(C)
    ok = C[r, c] < 0
    pairs = np.stack([ui[r[ok]], uj[c[ok]]], axis=1).astype(np.int64)
    pairs = pairs[np.argsort(pairs[:, 0])]
    disp = Bp[pairs[:, 1]] - A[pairs[:, 0]]
    return Links(pairs, disp, A[pairs[:, 0]] + 0.5 * disp)
