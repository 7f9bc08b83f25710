"""Figures and calibration tables of a lensless reconstruction.

- :func:`calibration_table` / :func:`write_calibration`: the learned sensor
  positions and heights of every capture next to the nominal ones (and the true
  ones of a simulated set), as a CSV with a commented header (``# key: <JSON>``
  lines; :func:`diffimaging.holography.read_table` and
  ``pandas.read_csv(path, comment="#")`` read it) or as JSON.  The learned
  positions of a calibration run can serve as the nominal ones of the next run
  (:func:`diffimaging.lensless.io.read_shifts` reads the table).
- :func:`plot_captures`, :func:`plot_fields`, :func:`plot_calibration`: figures
  (matplotlib, the ``plot`` extra: ``pip install 'diffimaging[plot]'``), drawn
  on the Agg canvas without touching pyplot's state, saved atomically as PNG
  when a path is given.

Positions in the figures and the ``*_px`` columns are in sensor pixels;
heights in micrometres in the figures, metres in the tables.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from .._backend import files as _files
from .._backend.files import atomic_open
from .._backend.namespace import to_numpy as _host
from .captures import Captures, Reconstruction

__all__ = ["calibration_table", "write_calibration", "plot_captures", "plot_fields",
           "plot_calibration"]

_NOTES = {
    "capture": "capture index, in the order of the captures",
    "nominal_sy_m": "nominal sensor position y (m)", "nominal_sx_m": "nominal sensor position x (m)",
    "learned_sy_m": "learned sensor position y (m)", "learned_sx_m": "learned sensor position x (m)",
    "delta_sy_px": "learned - nominal y, sensor pixels",
    "delta_sx_px": "learned - nominal x, sensor pixels",
    "nominal_z_m": "nominal sample-to-sensor distance (m)", "learned_z_m": "learned distance (m)",
    "delta_z_m": "learned - nominal distance (m)",
    "true_sy_m": "true sensor position y (m), simulated set", "true_sx_m": "true sensor position x (m)",
    "true_z_m": "true distance (m), simulated set",
}


def _arrays(rec: Reconstruction):
    out = {}
    for k in ("shifts", "nominal_shifts", "z", "nominal_z"):
        a = np.asarray(getattr(rec, k), dtype=np.float64)
        out[k] = a
    K = out["z"].size
    if out["shifts"].shape != (K, 2) or out["nominal_shifts"].shape != (K, 2) or \
            out["nominal_z"].shape != (K,):
        raise ValueError(f"the reconstruction's geometry is inconsistent: shifts "
                         f"{out['shifts'].shape}, nominal_shifts {out['nominal_shifts'].shape}, z "
                         f"{out['z'].shape}, nominal_z {out['nominal_z'].shape} (expected (K, 2) and "
                         f"(K,))")
    return out


def calibration_table(rec: Reconstruction, pixel_size: float, truth: dict | None = None) -> dict:
    """Per-capture learned vs nominal geometry.

    Parameters
    ----------
    rec : Reconstruction
    pixel_size : float [m]
        Sensor pitch (the ``*_px`` columns are in its pixels).
    truth : dict, optional
        ``captures.truth`` of a simulated set: adds the true positions and heights.

    Returns a dict of columns (1-d arrays, one row per capture; names and meaning
    in :data:`_NOTES`).
    """
    a = _arrays(rec)
    P = float(pixel_size)
    if not P > 0:
        raise ValueError(f"pixel_size must be the sensor pitch in metres, got {pixel_size!r}")
    K = a["z"].size
    d = a["shifts"] - a["nominal_shifts"]
    cols = {"capture": np.arange(K),
            "nominal_sy_m": a["nominal_shifts"][:, 0], "nominal_sx_m": a["nominal_shifts"][:, 1],
            "learned_sy_m": a["shifts"][:, 0], "learned_sx_m": a["shifts"][:, 1],
            "delta_sy_px": d[:, 0] / P, "delta_sx_px": d[:, 1] / P,
            "nominal_z_m": a["nominal_z"], "learned_z_m": a["z"], "delta_z_m": a["z"] - a["nominal_z"]}
    if truth:
        if "shifts" in truth:
            ts = np.asarray(truth["shifts"], dtype=np.float64).reshape(K, 2)
            cols["true_sy_m"], cols["true_sx_m"] = ts[:, 0], ts[:, 1]
        if "z" in truth:
            cols["true_z_m"] = np.asarray(truth["z"], dtype=np.float64).reshape(K)
    return cols


def _summary(cols, P):
    """Headline numbers: the common offset of the learned positions (a shift of
    the whole field, which the data cannot tell) and the RMS of the rest."""
    d = np.column_stack([cols["delta_sy_px"], cols["delta_sx_px"]])
    common = d.mean(axis=0)
    out = {"captures": int(len(d)),
           "common_shift_px": common.tolist(),
           "shift_change_rms_px": float(np.sqrt(np.mean(np.sum((d - common) ** 2, axis=1)))),
           "common_z_change_m": float(np.mean(cols["delta_z_m"])),
           "z_change_rms_m": float(np.sqrt(np.mean(cols["delta_z_m"] ** 2)))}
    if "true_sy_m" in cols:
        e = np.column_stack([cols["learned_sy_m"] - cols["true_sy_m"],
                             cols["learned_sx_m"] - cols["true_sx_m"]]) / P
        e -= e.mean(axis=0)
        out["learned_shift_rmse_px"] = float(np.sqrt(np.mean(np.sum(e ** 2, axis=1))))
        n = np.column_stack([cols["nominal_sy_m"] - cols["true_sy_m"],
                             cols["nominal_sx_m"] - cols["true_sx_m"]]) / P
        n -= n.mean(axis=0)
        out["nominal_shift_rmse_px"] = float(np.sqrt(np.mean(np.sum(n ** 2, axis=1))))
    if "true_z_m" in cols:
        out["learned_z_rmse_m"] = float(np.sqrt(np.mean((cols["learned_z_m"] - cols["true_z_m"]) ** 2)))
        out["nominal_z_rmse_m"] = float(np.sqrt(np.mean((cols["nominal_z_m"] - cols["true_z_m"]) ** 2)))
    return out


def write_calibration(path, rec: Reconstruction, captures: Captures | None = None, *,
                      pixel_size: float | None = None, overwrite=True) -> Path:
    """Write the calibration table (see :func:`calibration_table`), atomically:
    ``.csv`` (commented header: what the table is, each column's meaning, the
    sensor pitch, a summary, the version and the date) or ``.json`` (the same,
    columns as lists).  The sensor pitch is ``captures.pixel_size`` or
    ``pixel_size``; ``captures.truth`` adds the true values.  Returns the path."""
    from .. import __version__

    p = Path(path)
    if captures is not None:
        pixel_size = captures.pixel_size
    if pixel_size is None:
        raise ValueError("write_calibration needs the captures or pixel_size (the sensor pitch, m)")
    truth = captures.truth if captures is not None else None
    cols = calibration_table(rec, pixel_size, truth)
    meta = {"description": "lensless calibration: learned vs nominal sensor position (sy, sx) and "
                           "height z of each capture",
            "columns": {k: _NOTES[k] for k in cols},
            "pixel_size_m": float(pixel_size),
            "learned": (rec.settings or {}).get("learn"),
            "summary": _summary(cols, float(pixel_size)),
            "diffimaging_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()}
    suffix = p.suffix.lower()
    if suffix == ".json":
        doc = dict(meta, table={k: np.asarray(v).tolist() for k, v in cols.items()})
        with atomic_open(p, "w", overwrite=overwrite) as fh:
            fh.write(json.dumps(doc, indent=1, default=_plain) + "\n")
    elif suffix == ".csv":
        keys = list(cols)
        with atomic_open(p, "w", overwrite=overwrite, newline="") as fh:
            for k, v in meta.items():
                fh.write(f"# {k}: {json.dumps(v, default=_plain)}\r\n")
            fh.write(",".join(keys) + "\r\n")
            for i in range(len(cols["capture"])):
                fh.write(",".join(str(int(cols[k][i])) if k == "capture" else repr(float(cols[k][i]))
                                  for k in keys) + "\r\n")
    else:
        raise ValueError(f"calibration file {p} must end in .csv or .json")
    return p


def _plain(obj):
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


# ----------------------------------------------------------------------------- figures

def _figure(**kwargs):
    return _files.figure(**kwargs)


def _save(fig, path, dpi=100):
    return _files.save_png(fig, path, dpi)


def plot_captures(captures: Captures, path=None, *, max_captures=16):
    """A montage of (up to ``max_captures``) captures, each titled with its
    nominal height (um) and position (sensor pixels).  Returns the Figure (and
    saves it as PNG when ``path`` is given)."""
    imgs = _host(captures.images)
    K = min(captures.K, int(max_captures))
    cols = int(np.ceil(np.sqrt(K)))
    rows = int(np.ceil(K / cols))
    fig = _figure(figsize=(2.4 * cols, 2.5 * rows), layout="constrained")
    P = captures.pixel_size
    lo, hi = np.percentile(imgs[:K], [0.5, 99.5])
    for k in range(K):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(imgs[k], cmap="gray", vmin=lo, vmax=hi)
        sy, sx = captures.shifts[k] / P
        ax.set_title(f"{k}: z {captures.z[k] * 1e6:.0f} um\ns ({sy:+.2f}, {sx:+.2f}) px", fontsize=8)
        ax.set_axis_off()
    more = f" (first {K} of {captures.K})" if K < captures.K else ""
    fig.suptitle(f"captures{more}: {captures.sensor_shape[0]}x{captures.sensor_shape[1]} px of "
                 f"{P * 1e6:.2f} um")
    return _save(fig, path)


def plot_fields(fields: dict, hr_pixel_size: float, path=None):
    """Amplitude (top row) and phase (bottom row) of one or more complex fields
    side by side: ``fields`` maps a title to a (NY, NX) field (e.g. truth,
    classical, nominal, learned), shown on one scale per row, extent in um.

    Intensity captures do not measure the global phase: each field after the
    first is shown with the constant phase that best matches the first one's
    (the phases are then comparable), on one scale spanning their range.
    Returns the Figure (saved as PNG when ``path`` is given)."""
    if not fields:
        raise ValueError("fields must map at least one title to a complex field")
    arrs = {k: _host(v).astype(np.complex128) for k, v in fields.items()}
    ref = next(iter(arrs.values()))
    for k, a in arrs.items():
        if a.shape == ref.shape:
            arrs[k] = a * np.exp(1j * np.angle(np.vdot(a, ref)))
    fig = _files.complex_panels(
        arrs, {k: [0, a.shape[1] * hr_pixel_size * 1e6, a.shape[0] * hr_pixel_size * 1e6, 0]
               for k, a in arrs.items()}, ("|t|", "arg t (rad)"), width=3.2)
    return _save(fig, path)


def plot_calibration(rec: Reconstruction, pixel_size: float, path=None, *, truth: dict | None = None):
    """Learned vs nominal geometry: left, the sensor positions in sensor pixels
    (nominal o, learned x, an arrow from one to the other; true + for a
    simulated set); right, the heights per capture in um.  Returns the Figure
    (saved as PNG when ``path`` is given)."""
    cols = calibration_table(rec, pixel_size, truth)
    P = float(pixel_size)
    fig = _figure(figsize=(11, 4.6), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    ny, nx = cols["nominal_sy_m"] / P, cols["nominal_sx_m"] / P
    ly, lx = cols["learned_sy_m"] / P, cols["learned_sx_m"] / P
    ax.quiver(nx, ny, lx - nx, ly - ny, angles="xy", scale_units="xy", scale=1, color="tab:red",
              width=0.004, alpha=0.7)
    ax.plot(nx, ny, "o", mfc="none", mec="k", label="nominal")
    ax.plot(lx, ly, "x", color="tab:red", label="learned")
    if "true_sy_m" in cols:
        ax.plot(cols["true_sx_m"] / P, cols["true_sy_m"] / P, "+", color="tab:green", ms=10,
                label="true")
    for k in range(len(nx)):
        ax.annotate(str(k), (nx[k], ny[k]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.invert_yaxis()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("sx (sensor pixels)")
    ax.set_ylabel("sy (sensor pixels)")
    ax.set_title("sensor positions")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    k = cols["capture"]
    ax.plot(k, cols["nominal_z_m"] * 1e6, "o", mfc="none", mec="k", label="nominal")
    ax.plot(k, cols["learned_z_m"] * 1e6, "x", color="tab:red", label="learned")
    if "true_z_m" in cols:
        ax.plot(k, cols["true_z_m"] * 1e6, "+", color="tab:green", ms=10, label="true")
    ax.set_xlabel("capture")
    ax.set_ylabel("z (um)")
    ax.set_title("heights")
    ax.legend(fontsize=8)
    return _save(fig, path)
