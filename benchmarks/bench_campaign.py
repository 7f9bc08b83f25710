#!/usr/bin/env python
"""The command line's defaults on realistic recordings, before and after: two checkouts
of the package run as a user would run them, on the same camera files.

Every run is a fresh process ``diffimaging.cli.main(argv)`` (what ``python -m
diffimaging`` runs; an older tree may lack ``__main__``) with ``PYTHONPATH=<root>/python``
and the flags both trees know, so that what is compared is what their DEFAULTS give.
Each child reports its own peak resident memory (``VmHWM``) at exit.  The data are
simulated once with the ``--after`` tree's generators
(:mod:`diffimaging.holography.realistic`) and written as camera TIFFs: integer counts,
dark level included (``.raw``).

A. Lensless far field (``lensless_far(seed=0)``: 1024² sensor, 10 um pixels, particles
   100-160 mm away, 8-bit): ``holo reconstruct FRAME --z 0.09:0.17:51`` with
   ``--method backprop`` and with the default method (∂H, default iterations), then
   ``holo particles``: particles found against the visible truth (one-to-one within
   2 pixels laterally and 2 mm, also 5 mm, in depth), the size of the volume file and
   the peak memory of every step.
B. PIV on a campaign (``simulate_campaign(RealisticField(shape=(256, 256), ppp=1e-3,
   seed=3), frames=2)``: a Lamb-Oseen vortex about the optical axis, peak 3 pixels per
   frame, 20 % slow particles): both frames reconstructed (default method, and
   back-propagation), ``piv v0 v1`` with defaults; the vectors against the true
   displacement at their positions (the flow, rebuilt from the generator's documented
   default and checked against its truth, integrated half a frame either way): rms
   lateral error in pixels per frame and fraction with the right sense of rotation,
   over all vectors and over those whose window holds a moving particle, and
   ``holography.piv(passes=3)`` of the after tree on each tree's volumes as a reference.
C. Background of a multi-page TIFF of 4 frames with 20 % slow particles: ``holo
   reconstruct series.tif`` with defaults, ``holo particles`` on frame 0's volume;
   recall/precision of frame 0 (all, slow, moving particles) and what each tree said
   about the background; as a reference, frame 0 alone divided by the recorded empty
   frame (``--background empty.tif``, a flag both trees have).

Run (the full run takes ~15 min on 2 cores, most of it the two ∂H runs at 1024²):

    python benchmarks/bench_campaign.py --before /path/to/old/checkout [--after .] [--quick]

``--before`` / ``--after`` are source roots (each with its compiled ``_core`` in
``python/diffimaging``).  ``--quick``: 256² lensless frame, 17 planes, 128² campaigns
(a smoke run; its figures mean little).  Results: ``benchmarks/results/bench_campaign.json``
(``bench_campaign_quick.json`` with ``--quick``): every number, every command line with
its exit code, time, peak memory and output, and the commit of each tree.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_BAR = re.compile(r"\d+%\|")
TREES = ("before", "after")

# The child: the command line in-process, then its own peak RSS (VmHWM is per process
# and reset by exec, so the parent's memory is not counted).
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from diffimaging.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
peak = float("nan")
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024.0
sys.stdout.flush()
print("@@bench@@" + json.dumps({"code": code, "seconds": time.perf_counter() - t0, "peak_mib": peak}),
      file=sys.stderr)
sys.exit(code)
"""


def commit(root: Path) -> dict:
    """The checkout's commit and whether its tracked files differ from it."""
    def git(*a):
        r = subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return dict(root=str(root), commit=git("rev-parse", "HEAD"), dirty=bool(dirty) if dirty is not None else None)


class Runner:
    """Runs command lines in one tree and keeps a record of each."""

    def __init__(self, name: str, root: Path, timeout: float):
        self.name, self.root, self.timeout = name, root, timeout
        self.log = []

    def __call__(self, *argv, cwd: Path) -> dict:
        argv = [str(a) for a in argv]
        env = dict(os.environ, PYTHONPATH=str(self.root / "python"))
        t0 = time.perf_counter()
        try:
            r = subprocess.run([sys.executable, "-c", _CHILD, *argv], cwd=cwd, env=env,
                               capture_output=True, text=True, timeout=self.timeout)
            out, err, timed_out = r.stdout, r.stderr, False
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            timed_out = True
        wall = time.perf_counter() - t0
        info = dict(code=None, seconds=None, peak_mib=None)
        lines = []
        for line in err.splitlines():
            if line.startswith("@@bench@@"):
                info = json.loads(line[len("@@bench@@"):])
            elif not _BAR.search(line):
                lines.append(line)        # progress bars left out of the record
        rec = dict(tree=self.name, argv=["diffimaging", *argv], cwd=str(cwd), wall_s=wall,
                   timed_out=timed_out, code=info["code"], cli_seconds=info["seconds"],
                   peak_mib=info["peak_mib"], stdout=out.strip().splitlines()[-20:],
                   stderr=[s for s in lines if s.strip()][-20:])
        self.log.append(rec)
        state = "TIMED OUT" if timed_out else f"exit {rec['code']}"
        print(f"  [{self.name}] {' '.join(argv)[:110]} -> {state}, {wall:.0f} s, "
              f"{rec['peak_mib'] or float('nan'):.0f} MiB", flush=True)
        return rec


# ---------------------------------------------------------------- tables

def read_columns(tree: str, path: Path, H) -> dict:
    """Columns of a CSV written by a tree's command line: the after tree's through its
    own reader (commented header), the before tree's with a plain CSV read."""
    if tree == "after":
        cols, _ = H.read_table(str(path))
        return {k: np.asarray(v) for k, v in cols.items()}
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    data = np.array(body, dtype=np.float64).reshape(len(body), len(head))
    return {k: data[:, i] for i, k in enumerate(head)}


def _col(cols, *names):
    for n in names:
        if n in cols:
            return np.asarray(cols[n], dtype=np.float64)
    raise KeyError(f"none of {names} in the columns {sorted(cols)}")


def positions(cols) -> np.ndarray:
    """(N, 3) (y, x, z) metres from a table of either tree."""
    return np.column_stack([_col(cols, "y_m", "y"), _col(cols, "x_m", "x"), _col(cols, "z_m", "z")])


def velocities(cols) -> np.ndarray:
    """(N, 3) (vy, vx, vz) metres per frame (both trees' default: no --dt)."""
    return np.column_stack([_col(cols, "v_m_per_frame", "vy"), _col(cols, "u_m_per_frame", "vx"),
                            _col(cols, "w_m_per_frame", "vz")])


def score(H, found, truth, lateral, axial) -> dict:
    m = H.match(found.reshape(-1, 3), truth.reshape(-1, 3), lateral_tol=lateral, axial_tol=axial)
    return dict(found=int(len(found)), truth=int(len(truth)), matched=int(len(m.pairs)),
                recall=float(m.recall), precision=float(m.precision) if len(found) else None,
                axial_rmse_mm=float(m.axial_rmse) * 1e3 if len(m.pairs) else None)


def write_tiff(path: Path, counts: np.ndarray):
    """Camera counts as a grey TIFF, one page per frame (tifffile's default would store
    a (3 or 4, ny, nx) stack as one planar colour page)."""
    import tifffile
    tifffile.imwrite(path, counts, photometric="minisblack")
    with tifffile.TiffFile(path) as t:
        pages = len(t.pages)
    if pages != (counts.shape[0] if counts.ndim == 3 else 1):
        raise RuntimeError(f"{path}: {pages} pages written for counts of shape {counts.shape}")


def _fsize(p: Path):
    return p.stat().st_size / 2 ** 20 if p.exists() else None


# ---------------------------------------------------------------- A. lensless far field

def part_a(ctx) -> dict:
    H, R = ctx["H"], ctx["R"]
    quick = ctx["quick"]
    work = ctx["work"] / "A"
    work.mkdir()
    changes = dict(shape=(256, 256)) if quick else {}
    field = R.lensless_far(seed=0, **changes)
    t0 = time.perf_counter()
    frame = R.simulate_field(field)
    write_tiff(work / "frame.tif", frame.raw)
    vis = frame.truth.select(frame.truth.visible)
    px = field.pixel_size
    zarg = "0.09:0.17:17" if quick else "0.09:0.17:51"
    optics = ["--wavelength", "532e-9", "--pixel-size", "10e-6", "--z", zarg]
    res = dict(settings=dict(generator="lensless_far(seed=0)" + (", shape=(256, 256)" if quick else ""),
                             shape=list(field.shape), pixel_size_m=px, z_range_m=list(field.z_range),
                             bits=field.bits, dark_counts=float(frame.dark), z=zarg,
                             lateral_tol_m=2 * px, axial_tol_m=[2e-3, 5e-3]),
               truth_total=int(len(frame.truth)), truth_visible=int(len(vis)),
               generate_s=time.perf_counter() - t0, runs={})
    for method in ("backprop", "default"):
        for tree in TREES:
            run = ctx["run"][tree]
            out = work / f"{method}_{tree}"
            flags = ["--method", "backprop"] if method == "backprop" else []
            rec = run("holo", "reconstruct", "frame.tif", *optics, *flags, "-o", out, cwd=work)
            vol = out / "frame.h5"
            row = dict(reconstruct=_brief(rec), volume_mib=_fsize(vol))
            if rec["code"] == 0 and vol.exists():
                csv_path = work / f"p_{method}_{tree}.csv"
                rp = run("holo", "particles", vol, "-o", csv_path, cwd=work)
                row["particles"] = _brief(rp)
                if rp["code"] == 0:
                    found = positions(read_columns(tree, csv_path, H))
                    row["score_2mm"] = score(H, found, vis.positions, 2 * px, 2e-3)
                    row["score_5mm"] = score(H, found, vis.positions, 2 * px, 5e-3)
                if not ctx["keep"]:
                    vol.unlink()
            res["runs"][f"{method}/{tree}"] = row
    return res


def _brief(rec: dict) -> dict:
    return dict(code=rec["code"], timed_out=rec["timed_out"], wall_s=rec["wall_s"], peak_mib=rec["peak_mib"],
                said=rec["stdout"][-6:] + rec["stderr"][-6:])


# ---------------------------------------------------------------- B. PIV of a vortex

def default_flow(M, settings):
    """The flow simulate_campaign uses when none is given (its documented default)."""
    ny, nx = settings.shape
    p = float(settings.pixel_size)
    return M.vortex(peak_speed=3 * p, core_radius=0.25 * min(ny * p, nx * p),
                    centre=(0.5 * (ny - 1) * p, 0.5 * (nx - 1) * p))


def true_displacement(M, flow, pos):
    """Displacement over one frame of the particle that is at ``pos`` half-way through it
    (metres, (N, 3))."""
    a = M.move_particles((pos, np.ones(len(pos))), flow, frames=2, dt=-0.5)[1].positions
    b = M.move_particles((pos, np.ones(len(pos))), flow, frames=2, dt=0.5)[1].positions
    return b - a


def _errors(pos, vel, truth_disp, centre, px) -> dict:
    """Lateral error statistics of vectors (metres per frame) against the truth."""
    ok = np.all(np.isfinite(vel), axis=1)
    v, t, p = vel[ok, :2] / px, truth_disp[ok, :2] / px, pos[ok, :2]
    err = np.linalg.norm(v - t, axis=1)
    r = p - np.asarray(centre)[:2]
    # tangent of a positive rotation about z (+y towards +x): (r_x, -r_y) / |r|
    tang = np.column_stack([r[:, 1], -r[:, 0]])
    nrm = np.linalg.norm(tang, axis=1)
    keep = nrm > 0
    tang = tang[keep] / nrm[keep, None]
    s_meas, s_true = np.sum(v[keep] * tang, axis=1), np.sum(t[keep] * tang, axis=1)
    right = np.sign(s_meas) == np.sign(s_true)
    mean_sense = np.sign(np.mean(s_meas)) if len(s_meas) else 0.0
    some = len(err) > 0
    return dict(vectors=int(len(vel)), finite=int(ok.sum()),
                rms_error_px_per_frame=float(np.sqrt(np.mean(err ** 2))) if some else None,
                median_error_px_per_frame=float(np.median(err)) if some else None,
                median_speed_px_per_frame=float(np.median(np.linalg.norm(v, axis=1))) if some else None,
                median_true_speed_px_per_frame=float(np.median(np.linalg.norm(t, axis=1))) if some else None,
                right_sense=float(np.mean(right)) if len(right) else None,
                agree_with_mean_sense=float(np.mean(np.sign(s_meas) == mean_sense)) if len(s_meas) else None,
                rms_w_um_per_frame=float(np.sqrt(np.mean(vel[ok, 2] ** 2)) * 1e6) if some else None)


def vector_stats(pos, vel, b) -> dict:
    """Errors of all vectors, and of those whose interrogation window (16 voxels along
    each axis, both trees' default) holds the time midpoint of a moving particle and of
    no slow one: at 1e-3 particles per pixel most windows hold no particle at all."""
    truth = true_displacement(b["M"], b["flow"], pos)
    half = np.array([8 * b["px"], 8 * b["px"], 8 * b["dz"]])

    def holding(points):
        if not len(points):
            return np.zeros(len(pos), bool)
        return np.any(np.all(np.abs(pos[:, None, :] - points[None]) < half, axis=2), axis=1)

    sel = holding(b["mid"][~b["slow"]]) & ~holding(b["mid"][b["slow"]])
    return dict(all=_errors(pos, vel, truth, b["centre"], b["px"]),
                moving_windows=_errors(pos[sel], vel[sel], truth[sel], b["centre"], b["px"]))


def api_piv(H, vol_path: Path, vol_path_b: Path, passes: int):
    """``holography.piv`` of the after tree on two volume files (of either tree), with the
    command line's preparation: sign by polarity, 1-voxel blur of ∂H volumes."""
    from scipy import ndimage
    a, z, attrs = H.read_volume(str(vol_path))
    b, _, _ = H.read_volume(str(vol_path_b))
    pol = attrs.get("polarity", "dark")
    pol = pol.decode() if isinstance(pol, bytes) else str(pol)
    sign, smooth = (1.0, 1.0) if pol == "bright" else (-1.0, 0.0)

    def prep(v):
        return sign * (ndimage.gaussian_filter(v, smooth) if smooth else v)

    win = tuple(min(16, n) for n in a.shape)
    px = float(np.atleast_1d(attrs.get("pixel_size_m", attrs.get("pixel_size")))[0])
    r = H.piv(prep(a), prep(b), win, 0.5, passes=passes)
    return r.vectors(z, px, 1.0)


def part_b(ctx) -> dict:
    H, R, M = ctx["H"], ctx["R"], ctx["M"]
    quick = ctx["quick"]
    work = ctx["work"] / "B"
    work.mkdir()
    n = 128 if quick else 256
    settings = R.RealisticField(shape=(n, n), ppp=1e-3, seed=3)
    camp = R.simulate_campaign(settings, frames=2)
    px = settings.pixel_size
    flow = default_flow(M, settings)
    moving = ~camp.slow
    p1 = M.move_particles((camp.truth[0].positions[moving], camp.truth[0].diameters[moving]), flow,
                          frames=2)[1].positions
    flow_check = float(np.max(np.abs(p1 - camp.truth[1].positions[moving])) / px) if moving.any() else 0.0
    if flow_check > 0.01:
        raise RuntimeError(f"the flow rebuilt here misses simulate_campaign's truth by {flow_check:.3f} px: "
                           f"its default flow changed; update default_flow()")
    for k in range(2):
        write_tiff(work / f"frame{k}.tif", camp.raw[k])
    zarg = "0.8e-3:5.2e-3:23" if quick else "0.8e-3:5.2e-3:89"
    optics = ["--wavelength", "532e-9", "--pixel-size", str(px), "--z", zarg]
    z0, z1, nz = (float(v) for v in zarg.split(":"))
    b = dict(M=M, flow=flow, px=px, dz=(z1 - z0) / (nz - 1), slow=camp.slow,
             centre=(0.5 * (n - 1) * px, 0.5 * (n - 1) * px),
             mid=0.5 * (camp.truth[0].positions + camp.truth[1].positions))
    disp0 = camp.truth[1].positions - camp.truth[0].positions
    res = dict(settings=dict(generator=f"simulate_campaign(RealisticField(shape=({n}, {n}), ppp=1e-3, seed=3), "
                                       f"frames=2)", z=zarg, flow="vortex(peak_speed=3 px/frame, core_radius="
                                       "n/4 px, centre=sensor centre) (Lamb-Oseen)",
                             flow_check_max_px=flow_check, particles=int(len(camp.truth[0])),
                             slow=int(camp.slow.sum()),
                             moving_particle_speed_px_per_frame_max=float(
                                 np.max(np.linalg.norm(disp0[moving, :2], axis=1)) / px)),
               runs={})
    for method in ("default", "backprop"):
        vols = {}
        for tree in TREES:
            run = ctx["run"][tree]
            out = work / f"{method}_{tree}"
            flags = ["--method", "backprop"] if method == "backprop" else []
            rec = run("holo", "reconstruct", "frame0.tif", "frame1.tif", *optics, *flags, "-o", out, cwd=work)
            row = dict(reconstruct=_brief(rec))
            va, vb = out / "frame0.h5", out / "frame1.h5"
            if rec["code"] == 0 and va.exists() and vb.exists():
                vols[tree] = (va, vb)
                vec = work / f"vec_{method}_{tree}.csv"
                rv = run("piv", va, vb, "-o", vec, cwd=work)
                row["piv"] = _brief(rv)
                if rv["code"] == 0:
                    cols = read_columns(tree, vec, H)
                    pos, vel = positions(cols), velocities(cols)
                    row["vectors_cli"] = vector_stats(pos, vel, b)
                    if "outlier" in cols:
                        row["vectors_cli"]["flagged"] = int(np.sum(cols["outlier"]))
            res["runs"][f"{method}/{tree}"] = row
        for tree, (va, vb) in vols.items():
            try:
                pos, vel = api_piv(H, va, vb, passes=3)
                res["runs"][f"{method}/{tree}"]["vectors_api_3pass_after"] = vector_stats(pos, vel, b)
            except Exception as exc:     # an old file the new reader refuses: say so
                res["runs"][f"{method}/{tree}"]["vectors_api_3pass_after"] = dict(
                    error=f"{type(exc).__name__}: {exc}")
        if len(vols) == 2:
            try:
                diff = max(float(np.max(np.abs(H.read_volume(str(vols["before"][k]))[0]
                                               - H.read_volume(str(vols["after"][k]))[0]))) for k in range(2))
            except Exception as exc:
                diff = f"{type(exc).__name__}: {exc}"
            res[f"{method}_volumes_max_difference"] = diff
    return res


# ---------------------------------------------------------------- C. background of a series

def part_c(ctx) -> dict:
    H, R = ctx["H"], ctx["R"]
    quick = ctx["quick"]
    work = ctx["work"] / "C"
    work.mkdir()
    n = 128 if quick else 256
    settings = R.RealisticField(shape=(n, n), ppp=1e-3, seed=3)
    camp = R.simulate_campaign(settings, frames=4, slow_fraction=0.2)
    px = settings.pixel_size
    write_tiff(work / "series.tif", camp.raw)
    write_tiff(work / "frame0.tif", camp.raw[0])
    write_tiff(work / "empty.tif", camp.background)
    t0 = camp.truth[0]
    vis = t0.visible
    groups = dict(all=vis, slow=vis & camp.slow, moving=vis & ~camp.slow)
    zarg = "0.8e-3:5.2e-3:23" if quick else "0.8e-3:5.2e-3:89"
    optics = ["--wavelength", "532e-9", "--pixel-size", str(px), "--z", zarg]
    lat, ax = 2 * px, 200e-6
    res = dict(settings=dict(generator=f"simulate_campaign(RealisticField(shape=({n}, {n}), ppp=1e-3, seed=3), "
                                       f"frames=4, slow_fraction=0.2)", z=zarg, lateral_tol_m=lat,
                             axial_tol_m=ax, truth_visible={k: int(v.sum()) for k, v in groups.items()}),
               runs={})
    cases = dict(series_defaults=(["series.tif"], "series_0000.h5"),
                 frame0_with_empty_frame=(["frame0.tif", "--background", "empty.tif"], "frame0.h5"))
    for case, (inputs, vol_name) in cases.items():
        for tree in TREES:
            run = ctx["run"][tree]
            out = work / f"{case}_{tree}"
            rec = run("holo", "reconstruct", *inputs, *optics, "-o", out, cwd=work)
            row = dict(reconstruct=_brief(rec),
                       background_said=[s for s in rec["stdout"] + rec["stderr"] if "background" in s.lower()])
            vol = out / vol_name
            if rec["code"] == 0 and vol.exists():
                csv_path = work / f"p_{case}_{tree}.csv"
                rp = run("holo", "particles", vol, "-o", csv_path, cwd=work)
                row["particles"] = _brief(rp)
                if rp["code"] == 0:
                    found = positions(read_columns(tree, csv_path, H))
                    row["score"] = {k: score(H, found, t0.positions[g], lat, ax) for k, g in groups.items()}
            res["runs"][f"{case}/{tree}"] = row
    return res


# ---------------------------------------------------------------- report

def _f(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


def report(res: dict) -> str:
    lines = []
    a = res.get("A")
    if a:
        lines += [f"A. lensless far field: {a['settings']['generator']}, {a['truth_visible']} visible particles, "
                  f"--z {a['settings']['z']}",
                  "| method | tree | exit | s | volume MiB | peak MiB reconstruct | found | peak MiB particles | "
                  "recall/precision (2 mm) | recall/precision (5 mm) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for key, row in a["runs"].items():
            m, t = key.split("/")
            rc, pp = row["reconstruct"], row.get("particles", {})
            s2, s5 = row.get("score_2mm"), row.get("score_5mm")
            lines.append(f"| {'∂H (default)' if m == 'default' else 'backprop'} | {t} | {rc['code']}"
                         f"{' (timeout)' if rc['timed_out'] else ''} | {_f(rc['wall_s'], '{:.0f}')} | "
                         f"{_f(row['volume_mib'], '{:.0f}')} | {_f(rc['peak_mib'], '{:.0f}')} | "
                         f"{s2['found'] if s2 else '-'} | {_f(pp.get('peak_mib'), '{:.0f}')} | "
                         f"{_f(s2 and s2['recall'])} / {_f(s2 and s2['precision'])} | "
                         f"{_f(s5 and s5['recall'])} / {_f(s5 and s5['precision'])} |")
    b = res.get("B")
    if b:
        lines += ["", f"B. PIV: {b['settings']['generator']}, --z {b['settings']['z']}; vectors against the true "
                  f"vortex (lateral, pixels per frame; true speeds up to "
                  f"{b['settings']['moving_particle_speed_px_per_frame_max']:.1f}); all vectors | those whose "
                  f"window holds a moving particle and no slow one",
                  "| reconstruction | tree | PIV | vectors | rms error | median speed / true | right sense | "
                  "vectors | rms error | median speed / true | right sense |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for key, row in b["runs"].items():
            m, t = key.split("/")
            for what, label in (("vectors_cli", "CLI defaults"), ("vectors_api_3pass_after", "API 3-pass (after)")):
                v = row.get(what)
                if not v:
                    continue
                if "error" in v:
                    lines.append(f"| {m} | {t} | {label} | {v['error'][:60]} | | | | | | | |")
                    continue
                cells = []
                for sub in (v["all"], v["moving_windows"]):
                    cells += [f"{sub['vectors']}" + (f" ({sub['finite']} finite)" if sub["finite"] < sub["vectors"]
                                                     else ""),
                              _f(sub["rms_error_px_per_frame"]),
                              f"{_f(sub['median_speed_px_per_frame'])} / {_f(sub['median_true_speed_px_per_frame'])}",
                              _f(sub["right_sense"])]
                lines.append(f"| {'∂H (default)' if m == 'default' else 'backprop'} | {t} | {label} | "
                             + " | ".join(cells) + " |")
        for m in ("default", "backprop"):
            if f"{m}_volumes_max_difference" in b:
                lines.append(f"{m}: largest difference between the trees' volumes: "
                             f"{b[f'{m}_volumes_max_difference']}")
    c = res.get("C")
    if c:
        tv = c["settings"]["truth_visible"]
        lines += ["", f"C. background: {c['settings']['generator']}; frame 0: {tv['all']} visible particles "
                  f"({tv['slow']} slow); recall/precision within 2 px and 200 um",
                  "| input | tree | found | all | slow: recall | moving: recall | background said |",
                  "|---|---|---|---|---|---|---|"]
        for key, row in c["runs"].items():
            case, t = key.split("/")
            s = row.get("score")
            said = "; ".join(row["background_said"])[:120] or "(nothing)"
            lines.append(f"| {case} | {t} | {s['all']['found'] if s else '-'} | "
                         f"{_f(s and s['all']['recall'])} / {_f(s and s['all']['precision'])} | "
                         f"{_f(s and s['slow']['recall'])} | {_f(s and s['moving']['recall'])} | {said} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, type=Path, help="source root of the older checkout")
    ap.add_argument("--after", default=ROOT, type=Path, help="source root of the newer checkout "
                    "(default: this one); its generators make the data")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--parts", nargs="+", choices=("A", "B", "C"), default=["A", "B", "C"])
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per command (default 900)")
    ap.add_argument("--keep", default=None, type=Path, help="keep the data and outputs in this folder")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default "
                    "benchmarks/results/bench_campaign[_quick].json)")
    a = ap.parse_args(argv)
    before, after = a.before.resolve(), a.after.resolve()
    for name, root in (("--before", before), ("--after", after)):
        if not (root / "python" / "diffimaging" / "cli.py").exists():
            ap.error(f"{name} {root} is not a source root (no python/diffimaging/cli.py)")
    out = a.out or ROOT / "benchmarks" / "results" / f"bench_campaign{'_quick' if a.quick else ''}.json"
    sys.path.insert(0, str(after / "python"))
    import diffimaging.holography as H
    from diffimaging.holography import realistic as R
    from diffimaging.holography.analysis import motion as M

    work = Path(tempfile.mkdtemp(prefix="di-campaign-")) if a.keep is None else a.keep.resolve()
    work.mkdir(parents=True, exist_ok=True)
    ctx = dict(H=H, R=R, M=M, quick=a.quick, work=work, keep=a.keep is not None,
               run={"before": Runner("before", before, a.timeout), "after": Runner("after", after, a.timeout)})
    res = dict(trees={"before": commit(before), "after": commit(after)}, quick=a.quick,
               python=sys.version.split()[0], machine=platform.machine(), cpus=os.cpu_count(),
               date=time.strftime("%Y-%m-%d %H:%M:%S"), command="python " + " ".join(
                   [str(Path(__file__).relative_to(ROOT)) if Path(__file__).is_relative_to(ROOT)
                    else __file__] + (argv if argv is not None else sys.argv[1:])))
    t0 = time.perf_counter()
    try:
        for part, fn in (("A", part_a), ("B", part_b), ("C", part_c)):
            if part in a.parts:
                print(f"part {part} ...", flush=True)
                res[part] = fn(ctx)
    finally:
        res["total_s"] = time.perf_counter() - t0
        res["commands"] = ctx["run"]["before"].log + ctx["run"]["after"].log
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1, default=str))
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"before {res['trees']['before']['commit']}  after {res['trees']['after']['commit']}")
    print(report(res))
    print(f"\ntotal {res['total_s']:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
