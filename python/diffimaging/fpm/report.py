"""Figures and the calibration summary of a Fourier ptychographic reconstruction.

- :func:`calibration_table` / :func:`write_calibration`: the learned LED-array
  geometry next to the nominal one (and the true one of a simulated dataset),
  the pupil's Zernike coefficients, a summary of the LED brightnesses and of
  the per-image noise weights, the lowest-weight frames, and the scores
  against the truth of a simulated dataset (:func:`diffimaging.fpm.metrics.score`),
  as a dict / a JSON file.
- :func:`plot_object`, :func:`plot_objects`, :func:`plot_pupil`,
  :func:`plot_leds`, :func:`plot_weights`, :func:`plot_loss`: figures
  (matplotlib, the ``plot`` extra: ``pip install 'diffimaging[plot]'``), drawn
  on the Agg canvas without touching pyplot's state; each returns its Figure
  and, when a path is given, also saves it atomically as PNG.

Units: lengths in metres in the tables (the keys say so: ``_m``, ``_rad``,
``_deg``); micrometres for the object's axes, millimetres for the LED
positions, radians for the phases and the Zernike coefficients in the figures.
"""
from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import numpy as np

from .._backend import files as _files
from .._backend.files import atomic_open
from .._backend.namespace import to_numpy as _host
from .data import Dataset, Reconstruction

__all__ = ["calibration_table", "write_calibration", "plot_object", "plot_objects", "plot_pupil",
           "plot_leds", "plot_weights", "plot_loss", "lowest_weights"]

#: Zernike terms intensity data cannot determine (piston, tilts)
_UNIDENTIFIABLE = (1, 2, 3)


# ----------------------------------------------------------------------------- helpers

def _check_rec(rec):
    if not isinstance(rec, Reconstruction):
        raise TypeError(f"rec must be a diffimaging.fpm.Reconstruction, got {type(rec).__name__}")
    return rec


def _truth_dict(truth):
    """The truth mapping of a Dataset (simulated) or a truth dict; None otherwise."""
    if truth is None:
        return None
    if isinstance(truth, Dataset):
        return truth.truth or None
    if isinstance(truth, dict):
        return truth or None
    raise TypeError(f"truth must be a simulated diffimaging.fpm.Dataset or its truth dict, got "
                    f"{type(truth).__name__}")


class _Truth:
    """What :func:`~diffimaging.fpm.metrics.score` reads of a dataset: its truth."""

    def __init__(self, truth):
        self.truth = truth


def _geometry(g) -> dict:
    off = np.asarray(_host(np.asarray(g["offset"])), dtype=np.float64).reshape(2)
    rot = float(g["rotation"])
    return {"offset_m": off.tolist(), "rotation_rad": rot, "rotation_deg": math.degrees(rot),
            "height_m": float(g["height"]), "pitch_m": float(g["pitch"])}


def _zernike_rms(z, noll) -> float:
    """RMS [rad] of the identifiable coefficients (Noll 4 and up)."""
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    sel = np.asarray([n not in _UNIDENTIFIABLE for n in noll][:z.size], dtype=bool)
    return float(np.sqrt(np.mean(z[sel] ** 2))) if sel.any() else 0.0


def lowest_weights(rec: Reconstruction, count=5) -> list:
    """The ``count`` frames of lowest weight (1 / noise), lowest first: a list of
    dicts ``led`` (row-major index), ``row``, ``col``, ``weight``."""
    w = np.asarray(_check_rec(rec).weights, dtype=np.float64).reshape(-1)
    cols = rec.setup.cols
    order = np.argsort(w, kind="stable")[:max(0, int(count))]
    return [{"led": int(j), "row": int(j // cols), "col": int(j % cols), "weight": float(w[j])}
            for j in order]


def _plain(obj):
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _finite(obj):
    """JSON has no NaN/inf: None for them (recursively)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- tables

def calibration_table(rec: Reconstruction, truth=None) -> dict:
    """The calibration summary of a reconstruction.

    Parameters
    ----------
    rec : Reconstruction
    truth : Dataset or dict, optional
        A simulated :class:`~diffimaging.fpm.Dataset` (or its ``truth`` dict):
        adds the true geometry, Zernike coefficients and brightness errors, the
        corrupted frames and the scores (:func:`diffimaging.fpm.metrics.score`).

    Returns
    -------
    dict (JSON-ready)
        ``nominal`` / ``learned`` (/ ``true``) geometry (``offset_m`` (dy, dx),
        ``rotation_rad``, ``rotation_deg``, ``height_m``, ``pitch_m``);
        ``change`` (learned - nominal: ``offset_um``, ``rotation_deg``,
        ``height_mm``, ``pitch_um``); ``zernike`` (``noll``, ``learned_rad``,
        ``rms_rad`` of Noll >= 4, and ``true_rad``, ``error_rms_rad``);
        ``brightness`` (mean, relative spread, min, max; ``error_rms`` against the
        truth after the mean is divided out); ``noise`` (median, max of the
        noise scales; min and median of the weights); ``lowest_weight_frames``
        (:func:`lowest_weights`, with ``corrupted`` when the truth says);
        ``background``; ``learned`` (what was learned); ``loss`` (the final loss,
        the iterations, the seconds); ``calibration`` (the coarse stage's
        outcome); ``scores`` with the truth.
    """
    _check_rec(rec)
    t = _truth_dict(truth)
    nominal = _geometry(rec.setup.geometry())
    learned = _geometry(rec.geometry)
    change = {"offset_um": [(a - b) * 1e6
                            for a, b in zip(learned["offset_m"], nominal["offset_m"])],
              "rotation_deg": learned["rotation_deg"] - nominal["rotation_deg"],
              "height_mm": (learned["height_m"] - nominal["height_m"]) * 1e3,
              "pitch_um": (learned["pitch_m"] - nominal["pitch_m"]) * 1e6}
    z = np.asarray(_host(np.asarray(rec.zernike)), dtype=np.float64).reshape(-1)
    noll = [int(n) for n in rec.noll] if len(rec.noll) == z.size else list(range(1, z.size + 1))
    zern = {"noll": noll, "learned_rad": z.tolist(), "rms_rad": _zernike_rms(z, noll),
            "note": "Noll 1-3 (piston, tilts) are not determined by intensity data"}
    b = np.asarray(_host(np.asarray(rec.brightness)), dtype=np.float64).reshape(-1)
    mean = float(b.mean()) if b.size else float("nan")
    bright = {"mean": mean, "spread_relative": float(b.std() / mean) if mean else float("nan"),
              "min": float(b.min()), "max": float(b.max())}
    noise = np.asarray(_host(np.asarray(rec.noise)), dtype=np.float64).reshape(-1)
    w = 1.0 / noise
    nz = {"median": float(np.median(noise)), "max": float(noise.max()),
          "weights_min": float(w.min()), "weights_median": float(np.median(w))}
    lowest = lowest_weights(rec, min(5, w.size))
    history = rec.history or {}
    loss = history.get("loss") or []
    out = {"nominal": nominal, "learned": learned, "change": change, "zernike": zern,
           "brightness": bright, "noise": nz, "lowest_weight_frames": lowest,
           "background": float(rec.background),
           "learned_parameters": list((rec.settings or {}).get("learn", [])),
           "loss": {"final": history.get("final_loss", loss[-1] if len(loss) else None),
                    "iterations": len(loss), "seconds": history.get("seconds")}}
    cal = history.get("calibration")
    if isinstance(cal, dict):
        out["calibration"] = {k: cal[k] for k in ("used", "accepted", "residual_px", "offset",
                                                   "rotation", "height") if k in cal}
    if t:
        ts = t.get("setup")
        if ts is not None:
            out["true"] = _geometry(ts.geometry())
        if "zernike" in t:
            tz = np.asarray(t["zernike"], dtype=np.float64).reshape(-1)
            zern["true_rad"] = tz.tolist()
            n = max(z.size, tz.size)
            d = np.pad(z, (0, n - z.size)) - np.pad(tz, (0, n - tz.size))
            zern["error_rms_rad"] = _zernike_rms(d, list(range(1, n + 1)))
        if "brightness" in t:
            tb = np.asarray(t["brightness"], dtype=np.float64).reshape(-1)
            if tb.shape == b.shape:
                bright["error_rms"] = float(np.sqrt(np.mean((b / b.mean() - tb / tb.mean()) ** 2)))
        bad = {int(j) for j in np.asarray(t.get("corrupted", []), dtype=np.int64).reshape(-1)}
        if "corrupted" in t:
            out["corrupted_frames"] = sorted(bad)
            for row in lowest:
                row["corrupted"] = row["led"] in bad
        if "object" in t and ts is not None:
            from .metrics import score

            out["scores"] = score(rec, truth if isinstance(truth, Dataset) else _Truth(t))
    return _finite(json.loads(json.dumps(out, default=_plain)))


def write_calibration(path, rec: Reconstruction, truth=None, *, overwrite=True) -> Path:
    """Write :func:`calibration_table` as JSON (``.json``), atomically, with a
    description, the units, the package version and the date.  Returns the path."""
    from .. import __version__

    p = Path(path)
    if p.suffix.lower() != ".json":
        raise ValueError(f"calibration file {p} must end in .json")
    table = calibration_table(rec, truth)
    doc = {"description": "FPM calibration: learned vs nominal LED-array geometry (offset (dy, "
                          "dx), rotation, height, pitch), pupil Zernike coefficients (Noll), LED "
                          "brightness and per-image noise weights",
           "units": "lengths in metres (keys ending _m), or as the key says (_um, _mm); angles "
                    "in radians (_rad) or degrees (_deg)",
           **table,
           "diffimaging_version": __version__,
           "created": datetime.datetime.now(datetime.timezone.utc).replace(
               microsecond=0).isoformat()}
    with atomic_open(p, "w", overwrite=overwrite) as fh:
        fh.write(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    return p


# ----------------------------------------------------------------------------- figures

def _figure(**kwargs):
    return _files.figure(**kwargs)


def _save(fig, path, dpi=100):
    return _files.save_png(fig, path, dpi)


def _truth_object(truth):
    if truth is None:
        return None
    if isinstance(truth, (Dataset, dict)):
        t = _truth_dict(truth)
        return None if not t or "object" not in t else np.asarray(t["object"])
    return _host(truth)


def _aligned(a, ref):
    """``a`` times the complex constant (global scale and phase, which intensity
    data do not determine) that best matches ``ref`` (same shape) in least squares."""
    a = np.asarray(a, dtype=np.complex128)
    if ref is not None and np.shape(ref) == a.shape:
        v, n = np.vdot(a, np.asarray(ref, dtype=np.complex128)), np.vdot(a, a).real
        if abs(v) > 0 and n > 0:
            a = a * (v / n)
    return a


def plot_objects(objects: dict, pixel_size: float, path=None):
    """Amplitude (top row) and phase (bottom row) of complex objects side by
    side: ``objects`` maps a title to an (NY, NX) object (e.g. truth, EPRY,
    nominal, learned), on one scale per row, axes in um (``pixel_size`` [m] of
    the first; an object of another shape spans the same field of view).
    Intensity data do not measure the global scale and phase: each object of
    the first's shape after it is shown times the complex constant that best
    matches the first (least squares), so that all share its scale.
    Returns the Figure (saved as PNG when ``path`` is given)."""
    if not objects:
        raise ValueError("objects must map at least one title to a complex object")
    arrs = {k: np.asarray(_host(v), dtype=np.complex128) for k, v in objects.items()}
    for k, a in arrs.items():
        if a.ndim != 2:
            raise ValueError(f"object {k!r} must be 2-D (NY, NX), got shape {a.shape}")
    ref = next(iter(arrs.values()))
    arrs = {k: (a if i == 0 else _aligned(a, ref)) for i, (k, a) in enumerate(arrs.items())}
    fov = (ref.shape[0] * pixel_size * 1e6, ref.shape[1] * pixel_size * 1e6)
    fig = _files.complex_panels(arrs, {k: [0, fov[1], fov[0], 0] for k in arrs},
                                ("|o|", "arg o (rad)"), width=3.3, interpolation="nearest",
                                tick_size=7)
    fig.suptitle(f"object: {ref.shape[0]} x {ref.shape[1]} px of {pixel_size * 1e6:.3g} um",
                 fontsize=10)
    return _save(fig, path)


def plot_object(rec: Reconstruction, path=None, truth=None):
    """The reconstructed object's amplitude and phase (axes in um: pixel
    ``rec.setup.object_pixel_size``), with the truth side by side when given (a
    complex array, a simulated Dataset or its truth dict; the reconstruction's
    global scale and phase are matched to the truth's).  Returns the Figure (saved as
    PNG when ``path`` is given)."""
    _check_rec(rec)
    t = _truth_object(truth)
    objects = {"truth": t} if t is not None else {}
    objects["reconstruction"] = rec.object
    return plot_objects(objects, rec.setup.object_pixel_size, path)


def plot_pupil(rec: Reconstruction, path=None, truth_zernike=None):
    """Left: the learned pupil's phase inside the objective's NA circle
    (fftshifted for display, axes in cycles/um); right: its Zernike
    coefficients by Noll index, next to the true ones when ``truth_zernike``
    [rad] is given (Noll 1-3 are not determined by intensity data: hatched).
    Returns the Figure (saved as PNG when ``path`` is given)."""
    _check_rec(rec)
    s = rec.setup
    P = np.asarray(_host(np.asarray(rec.pupil)), dtype=np.complex128)
    if P.ndim != 2:
        raise ValueError(f"rec.pupil must be 2-D (ny, nx), got shape {P.shape}")
    ny, nx = P.shape
    fy = np.fft.fftfreq(ny, s.low_pixel_size)
    fx = np.fft.fftfreq(nx, s.low_pixel_size)
    inside = np.hypot(fy[:, None], fx[None, :]) <= s.cutoff
    phase = np.where(inside & (np.abs(P) > 0), np.angle(P), np.nan)
    phase = np.fft.fftshift(phase)
    sy, sx = np.fft.fftshift(fy) * 1e-6, np.fft.fftshift(fx) * 1e-6
    dy, dx = (sy[1] - sy[0]) if ny > 1 else 1.0, (sx[1] - sx[0]) if nx > 1 else 1.0
    ext = [sx[0] - dx / 2, sx[-1] + dx / 2, sy[-1] + dy / 2, sy[0] - dy / 2]
    fig = _figure(figsize=(11, 4.4), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    top = float(np.nanmax(np.abs(phase))) if np.isfinite(phase).any() else 0.0
    top = max(top, 0.1)
    im = ax.imshow(phase, extent=ext, cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
    c = s.cutoff * 1e-6
    th = np.linspace(0, 2 * math.pi, 256)
    ax.plot(c * np.cos(th), c * np.sin(th), "k-", lw=0.8)
    lim = 1.15 * c
    ax.set_xlim(-lim, lim)
    ax.set_ylim(lim, -lim)
    ax.set_xlabel("fx (cycles/um)")
    ax.set_ylabel("fy (cycles/um)")
    ax.set_title(f"pupil phase inside NA {s.na:g}")
    fig.colorbar(im, ax=ax, shrink=0.85, label="rad")
    ax = fig.add_subplot(1, 2, 2)
    z = np.asarray(_host(np.asarray(rec.zernike)), dtype=np.float64).reshape(-1)
    noll = [int(n) for n in rec.noll] if len(rec.noll) == z.size else list(range(1, z.size + 1))
    tz = None if truth_zernike is None else np.asarray(truth_zernike, dtype=np.float64).reshape(-1)
    n = max(len(noll), 0 if tz is None else tz.size)
    idx = np.arange(1, n + 1)
    zl = np.full(n, np.nan)
    for k, v in zip(noll, z):
        if 1 <= k <= n:
            zl[k - 1] = v
    width = 0.4 if tz is not None else 0.7
    hatch = ["//" if k in _UNIDENTIFIABLE else "" for k in idx]
    bars = ax.bar(idx - (width / 2 if tz is not None else 0), np.nan_to_num(zl), width,
                  color="tab:red",
                  label=f"learned (RMS {_zernike_rms(z, noll):.3f} rad, Noll >= 4)")
    for b_, h in zip(bars, hatch):
        b_.set_hatch(h)
    if tz is not None:
        tt = np.pad(tz, (0, n - tz.size))
        ax.bar(idx + width / 2, tt, width, color="tab:green", alpha=0.8,
               label=f"true (RMS {_zernike_rms(tt, list(idx)):.3f} rad, Noll >= 4)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(idx)
    ax.set_xlabel("Noll index (1-3 hatched: not determined by intensity data)")
    ax.set_ylabel("coefficient (rad)")
    ax.set_title("Zernike coefficients of the pupil phase")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _nice(value):
    """The largest of 1, 2, 5 x 10^k not above ``value`` (at least 1)."""
    if not (value > 1 and math.isfinite(value)):
        return 1
    e = 10 ** math.floor(math.log10(value))
    for m in (5, 2, 1):
        if m * e <= value:
            return int(m * e)
    return 1


def plot_leds(rec: Reconstruction, path=None, truth_setup=None):
    """Nominal (o) vs learned (x) LED positions (x, y in mm, in the LED plane;
    y down as in the images): the displacements from the nominal positions,
    learned (arrows to x) and true (+, when ``truth_setup``, the true
    :class:`~diffimaging.fpm.Setup`, is given), are exaggerated N times (N in
    the legend); the bright-field circle of the learned geometry (LEDs inside it
    light the camera directly) about the optical axis.  Returns the Figure
    (saved as PNG when ``path`` is given)."""
    _check_rec(rec)
    s = rec.setup
    nom = s.led_positions()[:, :2] * 1e3
    lrn = rec.led_positions()[:, :2] * 1e3
    d = lrn - nom
    tru = None if truth_setup is None else truth_setup.led_positions()[:, :2] * 1e3
    dt = None if tru is None or tru.shape != nom.shape else tru - nom
    biggest = float(np.max(np.hypot(*d.T))) if d.size else 0.0
    span = max(biggest, float(np.max(np.hypot(*dt.T))) if dt is not None and dt.size else 0.0)
    pitch = s.pitch * 1e3
    N = _nice(0.4 * pitch / span) if span > 0 else 1
    fig = _figure(figsize=(9.6, 6.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(nom[:, 1], nom[:, 0], "o", mfc="none", mec="k", ms=5, label="nominal")
    ax.quiver(nom[:, 1], nom[:, 0], N * d[:, 1], N * d[:, 0], angles="xy", scale_units="xy",
              scale=1, color="tab:red", width=0.003, alpha=0.7)
    ax.plot(nom[:, 1] + N * d[:, 1], nom[:, 0] + N * d[:, 0], "x", color="tab:red", ms=5,
            label=f"learned (displacement x{N}; largest {biggest * 1e3:.0f} um)")
    if dt is not None:
        ax.plot(nom[:, 1] + N * dt[:, 1], nom[:, 0] + N * dt[:, 0], "+", color="tab:green", ms=8,
                label=f"true (displacement x{N})")
    h = float(rec.geometry["height"]) * 1e3
    r = h * s.na / math.sqrt(1.0 - s.na ** 2)
    th = np.linspace(0, 2 * math.pi, 256)
    ax.plot(r * np.cos(th), r * np.sin(th), "--", color="tab:blue", lw=1,
            label=f"bright field (learned height {h:.2f} mm)")
    ax.plot([0], [0], "+", color="tab:blue", ms=12, mew=1.5, label="optical axis")
    ax.set_aspect("equal", adjustable="datalim")
    ax.invert_yaxis()
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    g = rec.geometry
    off = np.asarray(g["offset"], dtype=np.float64).reshape(2) - np.asarray(s.offset)
    ax.set_title(f"LED array: learned - nominal offset ({off[0] * 1e6:+.0f}, {off[1] * 1e6:+.0f}) "
                 f"um, rotation {math.degrees(float(g['rotation']) - s.rotation):+.2f} deg, "
                 f"height {(float(g['height']) - s.height) * 1e3:+.2f} mm", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _save(fig, path)


def plot_weights(rec: Reconstruction, path=None, corrupted=None):
    """The frames' weights (1 / noise): left, on the LED grid (rows x cols);
    right, sorted, lowest first, with the ``corrupted`` frames (LED indices,
    e.g. a simulated dataset's ``truth["corrupted"]``) in red and marked on the
    grid.  Returns the Figure (saved as PNG when ``path`` is given)."""
    _check_rec(rec)
    s = rec.setup
    w = np.asarray(rec.weights, dtype=np.float64).reshape(-1)
    if w.size != s.n_leds:
        raise ValueError(f"rec has {w.size} weights for {s.n_leds} LEDs")
    bad = sorted({int(j) for j in np.asarray([] if corrupted is None else corrupted,
                                              dtype=np.int64).reshape(-1)})
    fig = _figure(figsize=(12, 4.6), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    im = ax.imshow(w.reshape(s.rows, s.cols), cmap="viridis", interpolation="nearest")
    if bad:
        ax.plot([j % s.cols for j in bad], [j // s.cols for j in bad], "s", mfc="none",
                mec="tab:red", ms=9, mew=1.5, label="corrupted")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("LED column")
    ax.set_ylabel("LED row")
    ax.set_title("weight of each frame on the LED grid")
    fig.colorbar(im, ax=ax, shrink=0.85, label="weight (1 / noise)")
    ax = fig.add_subplot(1, 2, 2)
    order = np.argsort(w, kind="stable")
    colors = ["tab:red" if j in bad else "tab:blue" for j in order]
    ax.bar(np.arange(w.size), w[order], width=1.0, color=colors)
    low = order[:min(5, w.size)]
    for x, j in enumerate(low):
        ax.annotate(str(int(j)), (x, w[j]), fontsize=7, ha="center", va="bottom",
                    xytext=(0, 2), textcoords="offset points")
    if bad:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="tab:red", label="corrupted (truth)"),
                           Patch(color="tab:blue", label="other frames")], fontsize=8,
                  loc="lower right")
    ax.set_xlabel("frames, sorted by weight (the lowest labelled with their LED)")
    ax.set_ylabel("weight (1 / noise)")
    ax.set_title("sorted weights")
    return _save(fig, path)


def plot_loss(rec: Reconstruction, path=None):
    """The loss at each iteration (log scale when positive), the stages
    (warm-up, joint...) shaded.  Returns the Figure (saved as PNG when ``path``
    is given)."""
    _check_rec(rec)
    h = rec.history or {}
    loss = np.asarray(h.get("loss") or [], dtype=np.float64).reshape(-1)
    stage = h.get("stage")
    if isinstance(stage, str) or stage is None:
        stage = [stage or ""] * loss.size
    stage = list(stage)[:loss.size] + [""] * max(0, loss.size - len(stage))
    fig = _figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    it = np.arange(1, loss.size + 1)
    if loss.size:
        ax.plot(it, loss, "-", color="k", lw=1.2, marker="." if loss.size < 60 else None)
        if np.all(loss[np.isfinite(loss)] > 0):
            ax.set_yscale("log")
    colors = ["tab:orange", "tab:blue", "tab:green", "tab:purple", "tab:gray"]
    seen = {}
    start = 0
    for i in range(1, loss.size + 1):
        if i == loss.size or stage[i] != stage[start]:
            name = stage[start]
            if name:
                first = name not in seen
                col = seen.setdefault(name, colors[len(seen) % len(colors)])
                ax.axvspan(start + 0.5, i + 0.5, color=col, alpha=0.15,
                           label=name if first else None)
            start = i
    if seen:
        ax.legend(fontsize=8, title="stage", title_fontsize=8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    final = h.get("final_loss")
    title = "loss history"
    if final is not None:
        title += f" (final {float(final):.4g})"
    ax.set_title(title)
    if not loss.size:
        ax.text(0.5, 0.5, "no loss history", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)
