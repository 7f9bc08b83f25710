"""3-D PIV: cross-correlation of two volumes on interrogation windows, with
optional window deformation (multi-pass, predictor-corrector)."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.interpolate import RegularGridInterpolator

from ..._backend import fft as F
from ..._backend import validate as V
from ..._backend.threads import get_num_threads

__all__ = ["piv", "PIVResult", "normalized_median_test", "plane_spacing"]


def plane_spacing(z, nz, name="z"):
    """The first depth and the spacing ``(z0, dz)`` in metres of the ``nz`` planes of
    a volume at depths ``z``; ``dz`` is 0.0 for a single plane.

    Raises ``ValueError`` naming ``name`` unless ``z`` holds exactly ``nz`` finite,
    equally spaced (relative tolerance 1e-6), distinct depths.
    """
    try:
        zs = np.asarray(z, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be the depths of the planes in metres, got {z!r}") from None
    if zs.size != nz:
        raise ValueError(f"{name} has {zs.size} depths for a volume of {nz} planes (one depth per "
                         f"plane, metres)")
    if not np.all(np.isfinite(zs)):
        raise ValueError(f"{name} must be finite depths in metres, got {zs!r}")
    if nz == 1:
        return float(zs[0]), 0.0
    dz = float(zs[1] - zs[0])
    if dz == 0.0:
        raise ValueError(f"{name} holds coincident planes (the first two are both at {zs[0]!r} m): "
                         f"the depths must be distinct and equally spaced")
    if not np.allclose(np.diff(zs), dz, rtol=1e-6, atol=0):
        raise ValueError(f"{name} must be equally spaced (spacing {dz!r} m between the first two "
                         f"planes, {np.diff(zs).min()!r} to {np.diff(zs).max()!r} m overall)")
    return float(zs[0]), dz


@dataclass
class PIVResult:
    """``centers`` (nwz, nwy, nwx, 3) window centres (z, y, x) in voxels;
    ``displacement`` (nwz, nwy, nwx, 3) displacement (dz, dy, dx) in voxels from
    volume A to volume B (with window deformation: of the particles whose midpoint is
    at the centre); ``peak_ratio`` correlation peak / second peak (quality, of the
    last pass); ``outlier`` boolean mask of vectors flagged by the normalised median
    test (replaced by the median of their neighbours unless
    ``replace_outliers=False``)."""

    centers: np.ndarray
    displacement: np.ndarray
    peak_ratio: np.ndarray
    outlier: np.ndarray
    #: (nz, ny, nx) of the correlated volumes (None when unknown)
    shape: tuple | None = None

    def velocity(self, voxel_size, dt=1.0):
        """Displacements in metres per ``dt`` seconds, voxel_size = (dz, dy, dx) metres
        (or one size for cubic voxels); ``dt`` > 0 seconds."""
        vs = np.asarray(voxel_size, dtype=np.float64)
        if vs.ndim > 1 or vs.size not in (1, 3) or not np.all(np.isfinite(vs)) or np.any(vs <= 0):
            raise ValueError(f"voxel_size must be (dz, dy, dx) positive, finite sizes in metres, got "
                             f"{voxel_size!r}")
        dt = V.positive_scalar(dt, "dt (the time between the two volumes)", "s")
        return self.displacement * vs / dt

    def vectors(self, z, pixel_size, dt=1.0):
        """The vectors in metres: ``(positions, velocities)``, each (M, 3).

        ``positions`` are the window centres (y, x, z) in metres (voxel (k, i, j) at
        (i dy, j dx, z[k])), ``velocities`` (vy, vx, vz) in metres per second for
        volumes ``dt`` seconds apart (metres per frame for ``dt=1``).  ``z``: the
        depths of the volumes' planes (one per plane, equally spaced, metres);
        ``pixel_size``: float or (dy, dx) metres.
        """
        nz = self.shape[0] if self.shape is not None else None
        if nz is None:
            nz = np.asarray(z).size
        z0, dz = plane_spacing(z, nz)
        if dz == 0.0:
            raise ValueError("z must hold the depths of at least 2 planes for 3-D vectors")
        dy, dx = V.pixel_size(pixel_size)
        c = self.centers.reshape(-1, 3)
        pos = np.column_stack([c[:, 1] * dy, c[:, 2] * dx, z0 + c[:, 0] * dz])
        vel = self.velocity((dz, dy, dx), dt).reshape(-1, 3)[:, [1, 2, 0]]
        return pos, vel

    def interpolate(self, points):
        """Displacements (M, 3) (dz, dy, dx) voxels at ``points`` (M, 3) = (z, y, x) in
        voxels: trilinear between the window centres, extrapolated linearly beyond
        the outer ones up to the volume's edges (points further out are clamped to
        them).  Non-finite vectors are replaced by the median of the finite ones."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        axes = [np.unique(self.centers[..., k]) for k in range(3)]
        d = _fill_nonfinite(np.asarray(self.displacement, dtype=np.float64))
        # the volume spans [0, last centre + first centre] (the first window starts at 0)
        lo = np.zeros(3)
        hi = np.array([a[-1] + a[0] for a in axes])
        q = np.clip(pts, lo, hi)
        keep = [k for k in range(3) if len(axes[k]) > 1]
        out = np.empty((len(pts), 3))
        sl = tuple(slice(None) if k in keep else 0 for k in range(3))
        for c in range(3):
            vals = d[..., c][sl]
            if not keep:
                out[:, c] = float(vals)
                continue
            f = RegularGridInterpolator([axes[k] for k in keep], vals, method="linear",
                                        bounds_error=False, fill_value=None)
            out[:, c] = f(q[:, keep])
        return out


def _gauss3(cm, c0, cp):
    """Sub-voxel offset of a peak from three samples: three-point Gaussian fit when
    all three are positive, else a parabola (arrays or scalars)."""
    cm, c0, cp = (np.asarray(v, dtype=np.float64) for v in (cm, c0, cp))
    pos = (cm > 0) & (c0 > 0) & (cp > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lm, l0, lp = (np.log(np.where(pos, v, 1.0)) for v in (cm, c0, cp))
        den_g = 2.0 * (lm - 2.0 * l0 + lp)
        den_p = 2.0 * (cm - 2.0 * c0 + cp)
        g = np.where(den_g != 0, (lm - lp) / np.where(den_g != 0, den_g, 1.0), 0.0)
        p = np.where(den_p != 0, (cm - cp) / np.where(den_p != 0, den_p, 1.0), 0.0)
    out = np.clip(np.where(pos, g, p), -0.5, 0.5)
    return float(out) if out.ndim == 0 else out


def _neighbours(d, border):
    """The 26 neighbours of every vector of a (..., 3) grid: (26, *grid, 3), NaN where
    there is none.  ``border="truncate"``: none beyond the grid; ``"extrapolate"``:
    the grid is extended by linear extrapolation (2 u_0 - u_1), so that a linear field
    has the same neighbourhood median at its borders as inside."""
    g = d.shape[:-1]
    pad = d
    for k in range(len(g)):
        n = pad.shape[k]
        first = np.take(pad, [0], axis=k)
        last = np.take(pad, [n - 1], axis=k)
        if border == "extrapolate":
            if n >= 2:
                first = 2 * first - np.take(pad, [1], axis=k)
                last = 2 * last - np.take(pad, [n - 2], axis=k)
        else:
            first = np.full_like(first, np.nan)
            last = np.full_like(last, np.nan)
        pad = np.concatenate([first, pad, last], axis=k)
    views = []
    for off in np.ndindex(*(3,) * len(g)):
        if all(o == 1 for o in off):
            continue
        views.append(pad[tuple(slice(o, o + n) for o, n in zip(off, g))])
    return np.stack(views)


def _nanmedian(a, axis):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN
        return np.nanmedian(a, axis=axis)


def normalized_median_test(disp, eps=0.1, threshold=2.0, *, border="truncate"):
    """Westerweel & Scarano (2005) normalised median test on a (..., 3) vector
    grid: a vector is an outlier when |u - median(neighbours)| / (median(|neighbours
    - their median|) + eps) exceeds ``threshold`` for any component (3x3x3
    neighbourhood, centre excluded; vectors with fewer than 2 neighbours are kept).
    Non-finite vectors are not neighbours (and are not flagged here).

    ``border``: ``"truncate"`` (default): vectors at the grid's borders have only
    their neighbours inside the grid, so in a velocity gradient their neighbourhood
    median is biased and valid border vectors may be flagged; ``"extrapolate"``: the
    grid is extended by linear extrapolation first (what :func:`piv` uses), so a
    linear field (e.g. a solid rotation) passes everywhere.  Returns the boolean
    outlier mask."""
    if border not in ("truncate", "extrapolate"):
        raise ValueError(f"border must be 'truncate' or 'extrapolate', got {border!r}")
    d = np.array(disp, dtype=np.float64)
    if d.ndim < 2 or d.shape[-1] != 3:
        raise ValueError(f"disp must be a (..., 3) grid of vectors, got shape {d.shape}")
    d[~np.all(np.isfinite(d), axis=-1)] = np.nan
    nb = _neighbours(d, border)
    nb[~np.all(np.isfinite(nb), axis=-1)] = np.nan
    count = np.sum(np.all(np.isfinite(nb), axis=-1), axis=0)
    med = _nanmedian(nb, 0)
    res = _nanmedian(np.abs(nb - med), 0)
    with np.errstate(invalid="ignore"):
        out = np.any(np.abs(d - med) / (res + eps) > threshold, axis=-1)
    return out & (count >= 2)


def _fill_nonfinite(d):
    """Copy of a (..., 3) vector grid with non-finite vectors set to the median of the
    finite ones (0 when there are none)."""
    d = np.array(d, dtype=np.float64)
    bad = ~np.all(np.isfinite(d), axis=-1)
    if bad.any():
        good = d[~bad]
        d[bad] = np.median(good, axis=0) if len(good) else 0.0
    return d


def _replace(disp, out, border="extrapolate"):
    """Outliers replaced by the median of their valid (finite, not outlier) neighbours
    (on the grid extended as in :func:`normalized_median_test`)."""
    d = np.array(disp, dtype=np.float64)
    valid = d.copy()
    valid[out | ~np.all(np.isfinite(d), axis=-1)] = np.nan
    nb = _neighbours(valid, border)
    nb[~np.all(np.isfinite(nb), axis=-1)] = np.nan
    med = _nanmedian(nb, 0)
    ok = out & np.all(np.isfinite(med), axis=-1)
    d[ok] = med[ok]
    return d


def _correlate(a, b, origins, win, pad, workers):
    """Displacement (M, 3) voxels (NaN for featureless windows) and peak ratio (M,) of
    the windows of ``win`` voxels at ``origins`` (M, 3), by zero-padded FFT
    cross-correlation of the mean-subtracted windows, processed in batches."""
    m_all = len(origins)
    disp = np.full((m_all, 3), np.nan)
    ratio = np.zeros(m_all)
    va = np.lib.stride_tricks.sliding_window_view(a, win)
    vb = np.lib.stride_tricks.sliding_window_view(b, win)
    npad = int(np.prod(pad))
    batch = max(1, (1 << 22) // npad)
    half = np.array([p // 2 for p in pad])
    reach = [p - w for p, w in zip(pad, win)]
    lo = np.array([max(h - c, 0) for h, c in zip(half, reach)])
    box = tuple(slice(int(l), int(min(h + c + 1, p))) for l, h, c, p in zip(lo, half, reach, pad))
    off = np.arange(-2, 3)
    for s in range(0, m_all, batch):
        o = origins[s:s + batch]
        m = len(o)
        # mean-subtracted in double precision, correlated in single (2x faster FFTs;
        # the peak's sub-voxel fit needs only a few digits)
        wa = va[o[:, 0], o[:, 1], o[:, 2]].astype(np.float64)
        wb = vb[o[:, 0], o[:, 1], o[:, 2]].astype(np.float64)
        wa = (wa - wa.mean(axis=(1, 2, 3), keepdims=True)).astype(np.float32)
        wb = (wb - wb.mean(axis=(1, 2, 3), keepdims=True)).astype(np.float32)
        valid = np.any(wa != 0, axis=(1, 2, 3)) & np.any(wb != 0, axis=(1, 2, 3))
        fa = F.rfftn(wa, s=pad, axes=(1, 2, 3), xp=np, workers=workers)
        fb = F.rfftn(wb, s=pad, axes=(1, 2, 3), xp=np, workers=workers)
        fa = np.conj(fa, out=fa)
        fa *= fb
        del fb
        corr = F.irfftn(fa, s=pad, axes=(1, 2, 3), xp=np, workers=workers)
        del fa
        corr = F.fftshift(corr, axes=(1, 2, 3), xp=np)
        r = np.arange(m)
        # the peak is searched among the lags free of wrap-around, |lag| <= pad - window
        sub = corr[(slice(None),) + box]
        p = np.stack(np.unravel_index(np.argmax(sub.reshape(m, -1), axis=1), sub.shape[1:]), axis=1)
        p += lo
        c0 = corr[r, p[:, 0], p[:, 1], p[:, 2]]
        d = (p - half).astype(np.float64)
        for k in range(3):
            inner = (p[:, k] > 0) & (p[:, k] < pad[k] - 1)
            pm, pp = p.copy(), p.copy()
            pm[:, k] = np.clip(p[:, k] - 1, 0, pad[k] - 1)
            pp[:, k] = np.clip(p[:, k] + 1, 0, pad[k] - 1)
            cm = corr[r, pm[:, 0], pm[:, 1], pm[:, 2]]
            cp = corr[r, pp[:, 0], pp[:, 1], pp[:, 2]]
            d[:, k] += np.where(inner, _gauss3(cm, c0, cp), 0.0)
        # second peak: the highest value outside 5^3 voxels around the first
        iz, iy, ix = (np.clip(p[:, k, None] + off, 0, pad[k] - 1) for k in range(3))
        corr[r[:, None, None, None], iz[:, :, None, None], iy[:, None, :, None],
             ix[:, None, None, :]] = -np.inf
        second = corr[(slice(None),) + box].reshape(m, -1).max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[s:s + m] = np.where(second > 0, c0 / np.where(second > 0, second, 1.0), np.inf)
        d[~valid] = np.nan
        disp[s:s + m] = d
    return disp, ratio


def _interp_matrices(grid, first_centre, step, shape):
    """Per axis, the (n_voxels, n_centres) weights of the trilinear interpolation
    (extrapolated linearly beyond the outer centres) of values on the window
    centres to every voxel."""
    mats = []
    for k in range(3):
        nc = grid[k]
        x = np.arange(shape[k], dtype=np.float64)
        M = np.zeros((shape[k], nc))
        if nc == 1:
            M[:, 0] = 1.0
        else:
            g = (x - first_centre[k]) / step[k]
            i0 = np.clip(np.floor(g).astype(int), 0, nc - 2)
            f = g - i0  # outside [0, 1] beyond the outer centres: linear extrapolation
            M[np.arange(shape[k]), i0] += 1 - f
            M[np.arange(shape[k]), i0 + 1] += f
        mats.append(M)
    return mats


def _deform(vol, dense, sign, order):
    """vol sampled at x + sign * dense(x) / 2 (cubic B-spline by default)."""
    coords = np.indices(vol.shape, dtype=np.float64)
    coords += (0.5 * sign) * np.moveaxis(dense, -1, 0)
    return ndimage.map_coordinates(vol, coords, order=order, mode="nearest")


def _predictor_grid(predictor, centers, grid):
    if predictor is None:
        return np.zeros(grid + (3,))
    if isinstance(predictor, PIVResult):
        return predictor.interpolate(centers.reshape(-1, 3)).reshape(grid + (3,))
    if callable(predictor):
        v = np.asarray(predictor(centers.reshape(-1, 3).copy()), dtype=np.float64)
        if v.shape != (int(np.prod(grid)), 3):
            raise ValueError(f"the predictor callable must map (M, 3) window centres (z, y, x) voxels "
                             f"to (M, 3) displacements (dz, dy, dx) voxels, got shape {v.shape}")
        return v.reshape(grid + (3,))
    v = np.asarray(predictor, dtype=np.float64)
    if v.shape == (3,):
        return np.broadcast_to(v, grid + (3,)).copy()
    if v.shape == grid + (3,):
        return v.copy()
    raise ValueError(f"predictor must be None, a (3,) displacement (dz, dy, dx) in voxels, a {grid + (3,)} "
                     f"array on the window centres, a PIVResult or a callable; got shape {v.shape}")


def piv(vol_a, vol_b, window=(16, 16, 16), overlap=0.5, *, replace_outliers=True,
        outlier_threshold=2.0, passes=1, predictor=None, deform_order=3):
    """3-D cross-correlation PIV between two (nz, ny, nx) volumes (e.g. particle
    intensities of two frames).

    Each interrogation window of ``window`` voxels (overlapping by ``overlap``) is
    mean-subtracted and cross-correlated with the same window of volume B by FFT
    (single precision, zero-padded by half a window: a linear correlation; the peak
    is searched among the lags up to half a window, free of wrap-around); the
    highest peak is refined with a three-point Gaussian fit per axis (a parabola
    where a neighbour is not positive).  Vectors failing the normalised median test
    (:func:`normalized_median_test`, with the grid extended by linear extrapolation
    so that the border vectors of a velocity gradient are not flagged) are replaced
    by the median of their neighbours.  Displacements are in voxels from A to B
    (use :meth:`PIVResult.velocity` for metres per second).

    Window deformation (``passes`` >= 2, or a ``predictor``): the current
    displacement field (the predictor, then the validated result of the previous
    pass) is interpolated trilinearly to every voxel, d(x) (extrapolated linearly
    beyond the outer centres), and the volumes are resampled symmetrically,
    A(x - d(x)/2) and B(x + d(x)/2) (cubic B-splines, ``deform_order``); the
    correlation then measures the window mean of the residual, and the new vector is
    the window mean of the applied d plus that residual (the window mean of the true
    displacement, which for a linear field is its value at the centre; an error of
    one centre's prediction is thus corrected in one pass).  This removes the bias
    of the linear correlation towards zero displacement (the overlap of the windows
    shrinks with the shift) and towards whole voxels, and the loss of pairs at the
    window edges, follows velocity gradients inside a window, and makes each vector
    the displacement of a particle whose *midpoint* lies at the window centre
    (second-order accurate in time).  Each extra pass costs 2 volume resamplings on
    top of the correlations.  Measured on a simulated solid rotation (Gaussian
    particle images, 16^3 windows, 2.8 voxels at most): RMSE 0.26-0.31 voxel with 1
    pass, 0.08-0.09 with 2, 0.03 with 3 (tests/test_holography_motion.py).

    Parameters
    ----------
    vol_a, vol_b : (nz, ny, nx) real, finite volumes of one shape (at least 4 voxels
        along every axis: 3-D PIV; a NaN or Inf raises ``ValueError`` naming the
        first).  A featureless window (no particle in it in either volume) gives no
        correlation peak: its vector is flagged in ``outlier`` and replaced by its
        neighbours' median, or is NaN when none has one (volumes without particles:
        all NaN)
    window : window size (wz, wy, wx) in voxels (integers >= 4 each; one integer for
        a cube)
    overlap : fraction in [0, 1) by which neighbouring windows overlap
    replace_outliers : replace the vectors flagged by :func:`normalized_median_test`
    outlier_threshold : threshold of that test
    passes : number of correlation passes (1: plain correlation, >= 2: window
        deformation with the previous pass as the predictor; 2-3 are usually enough)
    predictor : initial displacement (dz, dy, dx) in voxels for the first pass: None
        (zero), a (3,) vector, an array on the window-centre grid (nwz, nwy, nwx, 3),
        a :class:`PIVResult` (e.g. of a coarser window, interpolated) or a callable
        centres (M, 3) (z, y, x voxels) -> (M, 3) displacements
    deform_order : spline order of the resampling (1 to 5)

    Without deformation the displacements must stay below half a window; with a
    predictor only the residual must.

    Example
    -------
    >>> r = piv(vol_a, vol_b, window=(16, 16, 16), overlap=0.5, passes=3)
    >>> v = r.velocity((dz, dy, dx), dt)           # metres per second
    """
    a = np.asarray(vol_a, dtype=np.float64)
    b = np.asarray(vol_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"vol_a and vol_b must be (nz, ny, nx) volumes of one shape, got {a.shape} "
                         f"and {b.shape}")
    for v, name in ((a, "vol_a"), (b, "vol_b")):
        V.check_finite(v, name, ("z", "y", "x"), what="voxel", hint=V.CORRUPT_VOLUME)
    if isinstance(window, (numbers.Integral, np.integer)):
        window = (window,) * 3
    win = tuple(np.atleast_1d(window))
    if (len(win) != 3 or not all(isinstance(w, (numbers.Integral, np.integer)) and not isinstance(w, bool)
                                 for w in win)):
        raise ValueError(f"window must be 3 integer sizes (wz, wy, wx) in voxels, got {window!r}")
    win = tuple(int(w) for w in win)
    if min(a.shape) < 4:
        raise ValueError(f"the volumes {a.shape} are too small for 3-D PIV: windows need at least 4 "
                         f"voxels (4 planes) along every axis")
    if min(win) < 4 or any(w > n for w, n in zip(win, a.shape)):
        raise ValueError(f"window must be 3 sizes >= 4 voxels that fit in the volume {a.shape}, "
                         f"got {window!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Real) or not 0 <= overlap < 1:
        raise ValueError(f"overlap must be a fraction in [0, 1), got {overlap!r}")
    if (isinstance(outlier_threshold, bool) or not isinstance(outlier_threshold, numbers.Real)
            or not np.isfinite(outlier_threshold) or outlier_threshold <= 0):
        raise ValueError(f"outlier_threshold must be a positive number, got {outlier_threshold!r}")
    passes = V.integer(passes, "passes", minimum=1, type_error=ValueError)
    if deform_order not in (1, 2, 3, 4, 5):
        raise ValueError(f"deform_order must be a spline order 1 to 5, got {deform_order!r}")
    step = tuple(max(int(round(w * (1 - overlap))), 1) for w in win)
    starts = [np.arange(0, n - w + 1, s) for n, w, s in zip(a.shape, win, step)]
    grid = tuple(len(s) for s in starts)
    origins = np.stack(np.meshgrid(*starts, indexing="ij"), axis=-1).reshape(-1, 3)
    first = np.array([(w - 1) / 2 for w in win])
    centers = (origins + first).reshape(grid + (3,)).astype(np.float64)
    # zero padding by half a window: a linear correlation, free of wrap-around for
    # displacements up to half a window
    pad = tuple(F.next_fast_len(w + max(w // 2, 4), real=True) for w in win)
    workers = get_num_threads()
    pred = _predictor_grid(predictor, centers, grid)
    deform = predictor is not None
    if deform or passes > 1:
        mats = _interp_matrices(grid, first, step, a.shape)
        # window means of the interpolation weights: the mean over each window of the
        # dense field interpolated from the centres
        wmean = [np.stack([M[o:o + w].mean(axis=0) for o in st]) for M, st, w in zip(mats, starts, win)]
    for it in range(int(passes)):
        if deform:
            dense = np.einsum("ai,bj,ck,ijkd->abcd", *mats, pred, optimize=True)
            aa = _deform(a, dense, -1.0, deform_order)
            bb = _deform(b, dense, +1.0, deform_order)
            del dense
            # the correlation measures the window mean of (true - applied deformation):
            # add the window mean of the applied deformation (not the centre value, so
            # that an error of one centre's predictor is corrected in one pass)
            base = np.einsum("ai,bj,ck,ijkd->abcd", *wmean, pred, optimize=True)
        else:
            aa, bb, base = a, b, pred
        res, ratio = _correlate(aa, bb, origins, win, pad, workers)
        disp = base + res.reshape(grid + (3,))
        ratio = ratio.reshape(grid)
        bad = ~np.all(np.isfinite(disp), axis=-1)
        out = normalized_median_test(disp, threshold=outlier_threshold, border="extrapolate") | bad
        if it < passes - 1:
            # the validated field predicts the next pass
            pred = _fill_nonfinite(_replace(disp, out) if out.any() else disp)
            deform = True
    if replace_outliers and out.any():
        disp = _replace(disp, out)
    return PIVResult(centers, disp, ratio, out, a.shape)
