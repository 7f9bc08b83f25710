"""3-D PIV: cross-correlation of two volumes on interrogation windows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .._threads import get_num_threads

__all__ = ["piv", "PIVResult", "normalized_median_test"]


@dataclass
class PIVResult:
    """``centers`` (nwz, nwy, nwx, 3) window centres (z, y, x) in voxels;
    ``displacement`` (nwz, nwy, nwx, 3) displacement (dz, dy, dx) in voxels from
    volume A to volume B; ``peak_ratio`` correlation peak / second peak (quality);
    ``outlier`` boolean mask of vectors replaced by the normalised median test."""

    centers: np.ndarray
    displacement: np.ndarray
    peak_ratio: np.ndarray
    outlier: np.ndarray

    def velocity(self, voxel_size, dt=1.0):
        """Displacements in metres per ``dt`` seconds, voxel_size = (dz, dy, dx) metres."""
        return self.displacement * np.asarray(voxel_size, dtype=np.float64) / dt


def _gauss3(cm, c0, cp):
    """Sub-voxel offset of a peak from three positive samples (Gaussian fit)."""
    lm, l0, lp = np.log(np.maximum([cm, c0, cp], 1e-30))
    den = 2.0 * (lm - 2.0 * l0 + lp)
    return 0.0 if den == 0 else float((lm - lp) / den)


def normalized_median_test(disp, eps=0.1, threshold=2.0):
    """Westerweel & Scarano (2005) normalised median test on a (..., 3) vector
    grid: a vector is an outlier when |u - median(neighbours)| / (median(|neighbours
    - their median|) + eps) exceeds ``threshold`` for any component (3x3x3
    neighbourhood, centre excluded).  Returns the boolean outlier mask."""
    d = np.asarray(disp, dtype=np.float64)
    grid = d.shape[:-1]
    out = np.zeros(grid, dtype=bool)
    for idx in np.ndindex(*grid):
        sl = tuple(slice(max(i - 1, 0), i + 2) for i in idx)
        block = d[sl]
        nb = block.reshape(-1, 3)
        centre = np.ravel_multi_index(tuple(i - s.start for i, s in zip(idx, sl)), block.shape[:-1])
        nb = np.delete(nb, centre, axis=0)
        if len(nb) < 2:
            continue
        med = np.median(nb, axis=0)
        res = np.median(np.abs(nb - med), axis=0)
        out[idx] = bool(np.any(np.abs(d[idx] - med) / (res + eps) > threshold))
    return out


def piv(vol_a, vol_b, window=(16, 16, 16), overlap=0.5, *, replace_outliers=True,
        outlier_threshold=2.0):
    """3-D cross-correlation PIV between two (nz, ny, nx) volumes (e.g. particle
    intensities of two frames).

    Each interrogation window of ``window`` voxels (overlapping by ``overlap``) is
    mean-subtracted and cross-correlated with the same window of volume B by FFT
    (circular, zero-padded to twice the window); the highest peak is refined with a
    three-point Gaussian fit per axis (sub-voxel).  Vectors failing the normalised
    median test are replaced by the median of their neighbours.  Displacements are
    in voxels from A to B (use :meth:`PIVResult.velocity` for metres per second).
    Displacements must stay below half a window.
    """
    a = np.asarray(vol_a, dtype=np.float64)
    b = np.asarray(vol_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"vol_a and vol_b must be (nz, ny, nx) volumes of one shape, got {a.shape} "
                         f"and {b.shape}")
    win = tuple(int(w) for w in window)
    if len(win) != 3 or min(win) < 4 or any(w > n for w, n in zip(win, a.shape)):
        raise ValueError(f"window must be 3 sizes >= 4 voxels that fit in the volume {a.shape}, "
                         f"got {window!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    step = tuple(max(int(round(w * (1 - overlap))), 1) for w in win)
    starts = [np.arange(0, n - w + 1, s) for n, w, s in zip(a.shape, win, step)]
    grid = tuple(len(s) for s in starts)
    centers = np.zeros(grid + (3,))
    disp = np.zeros(grid + (3,))
    ratio = np.zeros(grid)
    pad = tuple(2 * w for w in win)
    w = get_num_threads()
    for gi in np.ndindex(*grid):
        o = [starts[k][gi[k]] for k in range(3)]
        sl = tuple(slice(o[k], o[k] + win[k]) for k in range(3))
        wa = a[sl] - a[sl].mean()
        wb = b[sl] - b[sl].mean()
        centers[gi] = [o[k] + (win[k] - 1) / 2 for k in range(3)]
        if not wa.any() or not wb.any():
            disp[gi] = np.nan
            continue
        fa = sfft.rfftn(wa, s=pad, workers=w)
        fb = sfft.rfftn(wb, s=pad, workers=w)
        corr = sfft.irfftn(np.conj(fa) * fb, s=pad, workers=w)
        corr = np.fft.fftshift(corr)
        p = np.unravel_index(int(np.argmax(corr)), corr.shape)
        sub = []
        for k in range(3):
            if 0 < p[k] < pad[k] - 1:
                i_m = list(p)
                i_p = list(p)
                i_m[k] -= 1
                i_p[k] += 1
                sub.append(_gauss3(corr[tuple(i_m)], corr[p], corr[tuple(i_p)]))
            else:
                sub.append(0.0)
        disp[gi] = [p[k] - pad[k] // 2 + sub[k] for k in range(3)]
        peak = corr[p]
        c2 = corr.copy()
        c2[tuple(slice(max(q - 2, 0), q + 3) for q in p)] = -np.inf
        second = c2.max()
        ratio[gi] = peak / second if second > 0 else np.inf
    bad = ~np.all(np.isfinite(disp), axis=-1)
    filled = np.where(bad[..., None], 0.0, disp)
    out = normalized_median_test(filled, threshold=outlier_threshold) | bad
    if replace_outliers and out.any():
        for idx in zip(*np.nonzero(out)):
            sl = tuple(slice(max(i - 1, 0), i + 2) for i in idx)
            nb = disp[sl].reshape(-1, 3)
            ok = np.all(np.isfinite(nb), axis=1) & ~out[sl].reshape(-1)
            if ok.any():
                disp[idx] = np.median(nb[ok], axis=0)
    return PIVResult(centers, disp, ratio, out)
