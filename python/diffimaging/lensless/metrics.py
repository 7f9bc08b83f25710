"""Scores of a lensless reconstruction against the truth of a simulated set.

- :func:`psnr`: amplitude PSNR of the high-resolution field [dB];
- :func:`shift_rmse`: RMS error of the learned sensor positions [sensor pixels],
  the common (mean) translation removed (it moves the whole reconstruction,
  which the data cannot see);
- :func:`height_rmse`: RMS error of the learned heights [m];
- :func:`resolution_gain`: the finest bar group of the bar target resolved
  (Michelson contrast >= 0.2 in both orientations), as sensor pitch over
  half-pitch.
"""
from __future__ import annotations

import math

import numpy as np


__all__ = ["psnr", "shift_rmse", "height_rmse", "resolution_gain", "bar_contrasts"]


def _host_complex(a, name):
    try:
        return np.asarray(a.get() if hasattr(a, "get") else a).astype(np.complex128)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array, got {type(a).__name__}") from None


def psnr(field, truth_field, *, border=0) -> float:
    """Amplitude PSNR [dB]: ``20 log10(max|truth| / rms(|field| - |truth|))``.

    The amplitude is compared as it is, with no fitted scale or phase: a
    background-normalised capture fixes the transmission's scale (clear glass
    transmits 1), and the amplitude does not see a global phase.

    Parameters
    ----------
    field, truth_field : (NY, NX) complex arrays of the same shape
    border : int
        High-resolution pixels left out along every edge.
    """
    a = np.abs(_host_complex(field, "field"))
    b = np.abs(_host_complex(truth_field, "truth_field"))
    if a.shape != b.shape:
        raise ValueError(f"field and truth_field must have the same shape, got {a.shape} and "
                         f"{b.shape}")
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(np.mean((a - b) ** 2))
    peak = float(np.max(b))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def shift_rmse(learned, true, pixel_size) -> float:
    """RMS error of (K, 2) sensor positions [m], in sensor pixels of
    ``pixel_size`` [m], after removing the mean error (a common translation)."""
    d = np.asarray(learned, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 2:
        raise ValueError(f"learned and true must be (K, 2) positions, got shape {d.shape}")
    d = d - d.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(d * d, axis=1) / 2.0))) / float(pixel_size)


def height_rmse(learned, true) -> float:
    """RMS error of (K,) heights [m] (the mean error included: it is the
    absolute focus)."""
    d = np.asarray(learned, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def bar_contrasts(field, targets) -> list[float]:
    """Michelson contrast (max - min) / (max + min) of each bar group of the
    amplitude ``|field|`` (the window, high-resolution pixels).

    The profile across the bars is the amplitude averaged along the bars over
    the middle half of their length.  Each bar's value is the darkest profile
    pixel within half a half-pitch of its centre, each gap's the brightest
    pixel within half a half-pitch of the gap's centre (the nearest pixel when
    none is that close: bars finer than the pixels); max is the dimmest gap and
    min the brightest bar, so the contrast is positive only when every bar is
    darker than both gaps between them (0 otherwise), whatever the bars'
    position relative to the pixel grid.
    """
    a = np.abs(_host_complex(field, "field"))
    out = []
    for t in targets:
        y0, x0, y1, x1 = t["box"]
        vertical = t["orientation"] == "vertical"
        L0, L1 = (y0, y1) if vertical else (x0, x1)
        q = (L1 - L0) / 4
        lo, hi = int(round(L0 + q)), int(round(L1 - q))
        prof = a[lo:hi, :].mean(axis=0) if vertical else a[:, lo:hi].mean(axis=1)
        centres = np.arange(prof.size) + 0.5             # pixel i covers [i, i + 1)
        c = np.asarray(t["bars"], dtype=np.float64)
        h = float(t["half_pitch"])

        def values(points, pick):
            vals = []
            for u in points:
                near = np.abs(centres - u) <= h / 2
                vals.append(pick(prof[near]) if np.any(near) else
                            prof[int(np.argmin(np.abs(centres - u)))])
            return np.asarray(vals)

        bars = values(c, np.min)
        gaps = values(0.5 * (c[:-1] + c[1:]), np.max)
        mx, mn = float(np.min(gaps)), float(np.max(bars))
        out.append(max(0.0, (mx - mn) / (mx + mn)) if mx + mn > 0 else 0.0)
    return out


def resolution_gain(field, targets, *, threshold=0.2) -> float:
    """Resolution gain on the bar target: the largest group gain g (sensor
    pitch / half-pitch) such that every group of gain <= g reaches Michelson
    contrast >= ``threshold`` in both orientations (see :func:`bar_contrasts`);
    0 when even the coarsest group fails.

    Parameters
    ----------
    field : (n, n) complex
        The reconstructed window (high-resolution pixels).
    targets : list of dict
        The bar groups (``Captures.truth["targets"]``, see
        :func:`~diffimaging.lensless.simulate.bar_target`).
    """
    if not targets:
        raise ValueError("targets is empty: resolution_gain needs the bar target's groups "
                         "(captures.truth['targets'] of a simulate(obj='bars') set)")
    cs = bar_contrasts(field, targets)
    ok: dict[float, bool] = {}
    for t, c in zip(targets, cs):
        ok[t["gain"]] = ok.get(t["gain"], True) and c >= threshold
    best = 0.0
    for g in sorted(ok):
        if not ok[g]:
            break
        best = g
    return best
