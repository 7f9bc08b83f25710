"""PTV: link particles between frames."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from ..._backend.validate import integer
from .matching import as_positions

__all__ = ["link", "Links", "predictor_from_piv", "predictor_from_links"]


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


def link(frame_a, frame_b, max_distance, *, predictor=None, max_axial_distance=None):
    """One-to-one nearest-neighbour linking of particles between two frames.

    Each particle of A is first moved by the predicted displacement (``predictor``:
    None for zero, a (3,) displacement in metres, an (N_A, 3) array, or a callable
    positions (N, 3) -> displacements (N, 3) in metres, e.g.
    :func:`predictor_from_piv` or :func:`predictor_from_links`), then linked to a
    particle of B within ``max_distance`` metres, minimising the total distance to
    the predicted positions over one-to-one assignments (Hungarian algorithm on
    candidate pairs).

    ``max_axial_distance`` (metres; default ``max_distance``): the search region
    is the ellipsoid of lateral semi-axis ``max_distance`` and axial semi-axis
    ``max_axial_distance``, and the cost the normalised distance
    sqrt((d_lateral / max_distance)^2 + (dz / max_axial_distance)^2) — for
    holographic detections, whose depth errors are ~10x the lateral ones.

    Example
    -------
    >>> first = link(found_a, found_b, max_distance=40e-6)              # small motion
    >>> links = link(found_a, found_b, 6e-6, max_axial_distance=40e-6,
    ...              predictor=predictor_from_links(first))             # refined
    """
    A, Bp = as_positions(frame_a, "frame_a"), as_positions(frame_b, "frame_b")
    if not (np.isfinite(max_distance) and max_distance > 0):
        raise ValueError(f"max_distance must be a positive distance in metres, got {max_distance!r}")
    if max_axial_distance is None:
        max_axial_distance = max_distance
    if not (np.isfinite(max_axial_distance) and max_axial_distance > 0):
        raise ValueError(f"max_axial_distance must be a positive distance in metres, got "
                         f"{max_axial_distance!r}")
    scale = np.array([1.0, 1.0, max_distance / max_axial_distance])
    if predictor is None:
        pred = np.zeros_like(A)
    elif callable(predictor):
        pred = np.asarray(predictor(A.copy()), dtype=np.float64)
    else:
        try:
            pred = np.broadcast_to(np.asarray(predictor, dtype=np.float64), A.shape)
        except ValueError:
            raise ValueError(f"predictor must be a (3,) or (N_A, 3) = {A.shape} displacement in metres "
                             f"or a callable, got shape {np.shape(predictor)}") from None
    if pred.shape != A.shape or not np.all(np.isfinite(pred)):
        raise ValueError(f"the predictor must give finite (N_A, 3) = {A.shape} displacements in metres")
    target = (A + pred) * scale
    Bs = Bp * scale
    empty = Links(np.zeros((0, 2), np.int64), np.zeros((0, 3)), np.zeros((0, 3)))
    if len(A) == 0 or len(Bp) == 0:
        return empty
    tree = cKDTree(Bs)
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
    C[ri, cj] = np.linalg.norm(target[rows] - Bs[cols], axis=1) / max_distance - big
    r, c = linear_sum_assignment(C)
    ok = C[r, c] < 0
    pairs = np.stack([ui[r[ok]], uj[c[ok]]], axis=1).astype(np.int64)
    pairs = pairs[np.argsort(pairs[:, 0])]
    disp = Bp[pairs[:, 1]] - A[pairs[:, 0]]
    return Links(pairs, disp, A[pairs[:, 0]] + 0.5 * disp)


def predictor_from_piv(result, voxel_size, origin=(0.0, 0.0, 0.0)):
    """Displacement predictor (for :func:`link`) from a PIV field.

    ``result``: a :class:`~diffimaging.holography.PIVResult` of two volumes whose
    voxel (k, i, j) sits at (y, x, z) = (origin_y + i dy, origin_x + j dx,
    origin_z + k dz); ``voxel_size`` = (dz, dy, dx) metres (the order of
    :meth:`PIVResult.velocity`), ``origin`` = (y, x, z) metres of voxel (0, 0, 0)
    (e.g. (0, 0, z[0]) for a back-propagated stack at depths z).

    Returns a callable positions (N, 3) (y, x, z) metres -> displacements (N, 3)
    (dy, dx, dz) metres: the PIV field interpolated trilinearly (constant beyond the
    outer window centres).  PIV vectors are displacements of particles whose midpoint
    is at the window centre (with window deformation), so the field is evaluated at
    p + d(p) / 2 (one fixed-point step) for a particle at p in frame A.

    Example
    -------
    >>> r = piv(vol_a, vol_b, (8, 32, 32), passes=3)
    >>> pred = predictor_from_piv(r, (z[1] - z[0], dy, dx), origin=(0, 0, z[0]))
    >>> links = link(found_a, found_b, 6e-6, max_axial_distance=40e-6, predictor=pred)
    """
    from .piv import PIVResult

    if not isinstance(result, PIVResult):
        raise ValueError(f"result must be a PIVResult, got {type(result).__name__}")
    vs = np.asarray(voxel_size, dtype=np.float64).reshape(-1)
    if vs.size != 3 or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
        raise ValueError(f"voxel_size must be 3 positive sizes (dz, dy, dx) in metres, got {voxel_size!r}")
    org = np.asarray(origin, dtype=np.float64).reshape(-1)
    if org.size != 3 or not np.all(np.isfinite(org)):
        raise ValueError(f"origin must be the (y, x, z) position in metres of voxel (0, 0, 0), got "
                         f"{origin!r}")
    o_zyx = org[[2, 0, 1]]

    def field(p):
        vox = (p[:, [2, 0, 1]] - o_zyx) / vs
        return result.interpolate(vox)[:, [1, 2, 0]] * vs[[1, 2, 0]]

    def predict(positions):
        p = as_positions(positions, "positions")
        d = field(p)
        return field(p + 0.5 * d)

    return predict


def predictor_from_links(links, k=12, *, iterations=3):
    """Displacement predictor (for :func:`link`) from a first set of links, robust to
    wrong links: at each query position q, an affine field d(p) = d0 + G (p - q) is
    fitted to the displacements of the ``k`` nearest links (by their start positions
    in frame A) by weighted least squares — tricube weights in the distance (LOESS)
    times Tukey biweights of the residuals, re-estimated ``iterations`` times
    starting from the component-wise median — and d0 is the prediction.  A velocity
    gradient (rotation, vortex) is thus followed and wrong links are down-weighted.

    Typical use (relaxation): link once with a search radius above the largest
    motion, then again (once or a few times) with a small radius around the
    prediction (measured in tests/test_holography_motion.py at 1e-3 ppp with motions
    up to 1.6x the mean nearest-neighbour distance: 78 % correct links plain, 99 % after three
    relaxation passes).

    Returns a callable positions (N, 3) (y, x, z) metres -> displacements (N, 3)
    metres.  Needs at least 4 links (``k`` is reduced to the number of links when
    there are fewer).

    Example
    -------
    >>> first = link(a, b, max_distance=160e-6)
    >>> links = link(a, b, 6e-6, max_axial_distance=15e-6, predictor=predictor_from_links(first))
    """
    if not isinstance(links, Links):
        raise ValueError(f"links must be a Links result of link(), got {type(links).__name__}")
    k = integer(k, "k", minimum=4, hint="(neighbouring links per prediction)", type_error=ValueError)
    iterations = integer(iterations, "iterations", minimum=0, type_error=ValueError)
    D = np.asarray(links.displacement, dtype=np.float64)
    S = np.asarray(links.positions, dtype=np.float64) - 0.5 * D  # start positions (frame A)
    if len(S) < 4:
        raise ValueError(f"predictor_from_links needs at least 4 links, got {len(S)}")
    kk = int(min(k, len(S)))
    tree = cKDTree(S)

    def predict(positions):
        q = as_positions(positions, "positions")
        if len(q) == 0:
            return np.zeros((0, 3))
        _, nb = tree.query(q, k=kk)
        nb = nb.reshape(len(q), kk)
        X = S[nb] - q[:, None, :]                                   # (Q, k, 3)
        Y = D[nb]                                                   # (Q, k, 3)
        dist = np.sqrt(np.sum(X ** 2, axis=-1))                     # (Q, k)
        L = np.sqrt(np.mean(dist ** 2, axis=1))                     # neighbourhood size
        # LOESS tricube weights in the distance (local fit), times the robust weights
        tri = (1 - np.clip(dist / (1.1 * dist.max(axis=1, keepdims=True) + 1e-300), 0, 1) ** 3) ** 3
        Xn = X / np.maximum(L, 1e-300)[:, None, None]
        A = np.concatenate([np.ones(Xn.shape[:2] + (1,)), Xn], axis=-1)  # (Q, k, 4)
        ridge = np.diag([0.0, 1e-3, 1e-3, 1e-3])
        med = np.median(Y, axis=1)
        r = np.linalg.norm(Y - med[:, None, :], axis=-1)
        beta = None
        for _ in range(int(iterations) + 1):
            s = 1.4826 * np.median(r, axis=1, keepdims=True)
            s = np.maximum(s, 1e-3 * np.max(np.abs(Y), axis=(1, 2))[:, None] + 1e-300)
            u = r / (4.685 * s)
            w = np.where(u < 1, (1 - u * u) ** 2, 0.0) * tri
            Aw = A * w[..., None]
            M = np.einsum("qki,qkj->qij", Aw, A) + ridge * np.sum(w, axis=1)[:, None, None]
            b = np.einsum("qki,qkd->qid", Aw, Y)
            ok = np.sum(w > 1e-6, axis=1) >= 4
            beta = np.zeros((len(q), 4, 3))
            beta[:, 0, :] = med
            if ok.any():
                beta[ok] = np.linalg.solve(M[ok], b[ok])
            r = np.linalg.norm(Y - np.einsum("qki,qid->qkd", A, beta), axis=-1)
        return beta[:, 0, :]

    return predict
