#!/usr/bin/env python
"""Pixel-super-resolution lensless imaging: speed and quality.

Speed: one gradient evaluation of the lensless model (forward + VJP for the
field, the K heights and the K shifts) and one FISTA iteration of
:func:`diffimaging.lensless.reconstruct`, at a 256^2 high-resolution window
(+ 64 px padding: a 384^2 field, 768^2 FFT grid) x K = 16 captures, complex64,
each as a ratio to its FFT floor measured in the same run: the 2K + 3
in-place FFTs of the padded grid that a gradient evaluation needs (forward: 1
forward + K inverse; backward: K forward + 1 inverse + the field's spectrum for
the height gradient).  Median of ``--repeat`` runs after a warm-up.

Quality on the generator of issue 11 (``diffimaging.lensless.simulate``: 532 nm,
0.8 um high-resolution pitch, u = 2, K = 16, heights 350-500 um, shift sigma
0.8 um, height sigma 25 um), at 1e4 and 1e3 photons per pixel, for ``--seeds``:

- oracle: ``reconstruct`` with the true geometry, nothing learned;
- learned: ``reconstruct`` with the default schedule (``learn=("shift", "z")``);
  (``modulo=True`` for the modulo case);
- joint (``--methods``): the same with ``schedule="joint"`` (one joint solve from the
  nominal geometry);
- nominal: ``reconstruct(learn=())`` with the nominal geometry;
- classical: interpolation super-resolution + multi-height Gerchberg-Saxton.

Scores (``diffimaging.lensless.metrics``): amplitude PSNR [dB] on the "camera"
sample; shift RMSE [sensor px, mean removed]; height RMSE [um]; resolution gain
on the bar target (a second simulation with ``obj="bars"``, same geometry and
noise draws' seed; its own learned geometry).  ``--hard`` adds the harder
cases (positions known modulo one pixel, a +40 um common height error, u = 4),
learned only.

Run:  PYTHONPATH=python python benchmarks/bench_lensless.py [--seeds 1 2] [--iterations 300]
      [--hard] [--quick] [--out benchmarks/results/bench_lensless.json]
      (each 300-iteration reconstruction at 256^2 x 16 takes ~1.5-2 min on 2 busy cores;
      the default run, 2 seeds, ~1 h; --quick: 128^2 window, 60 iterations, one seed)
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    import diffimaging  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import scipy.fft

import diffimaging as d
from diffimaging._backend.config import config_dict
from diffimaging._backend.threads import get_num_threads
from diffimaging.lensless import (Captures, SensorPreconditioner, classical, field_shape, model,
                                  reconstruct, simulate)
from diffimaging.lensless import metrics as M
from diffimaging.optim import FISTA, ModelProblem, run
from diffimaging.optim import constraints as C
from diffimaging.optim import regularizers as R

STANDARD = dict(factor=2, shift_error=0.8e-6, z_error=25e-6)
HARD = {"modulo": dict(STANDARD, modulo=True),
        "offset +40 um": dict(STANDARD, z_offset=40e-6),
        "u = 4": dict(factor=4, shift_error=0.8e-6, z_error=25e-6)}


def _median_time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), ts


def speed(n_window, K, repeat):
    c = simulate(n_window=n_window, K=K, seed=0)
    pad = 64
    m = model(c.sensor_shape, c.shifts, c.z, wavelength=c.wavelength, pixel_size=c.pixel_size,
              factor=c.factor, pad=pad)
    shape = field_shape(c.sensor_shape, c.factor, pad)
    x = np.ones(shape, np.complex64)
    grid = tuple(2 * n for n in shape)
    g = np.ones((K,) + c.sensor_shape, np.float32)

    def grad():
        _, pb = d.vjp(m, x)
        pb(g)

    buf = np.ones(grid, np.complex64)
    workers = get_num_threads()

    def floor():
        for _ in range(2 * K + 3):
            scipy.fft.fft2(buf, overwrite_x=True, workers=workers)

    # the final stage of reconstruct: TV 1e-2, |t| <= 1, the sensor preconditioner
    prob = ModelProblem(m, c.images, regularizers=[R.TV(1e-2, prox_iterations=10)],
                        constraint=C.AmplitudeAtMost(1.0), prox_split=True,
                        preconditioner=SensorPreconditioner(c.factor))
    start = prob.start(x)

    def fista10():
        run(FISTA(), prob, start, iterations=10)

    t_grad, raw_grad = _median_time(grad, repeat)
    t_floor, raw_floor = _median_time(floor, repeat)
    t_it, raw_it = _median_time(fista10, max(1, repeat // 2))
    t_it /= 10
    return dict(n_window=n_window, K=K, field=list(shape), fft_grid=list(grid), dtype="complex64",
                gradient_s=t_grad, fft_floor_s=t_floor, gradient_over_floor=t_grad / t_floor,
                fista_iteration_s=t_it, fista_iteration_over_floor=t_it / t_floor,
                raw=dict(gradient=raw_grad, floor=raw_floor, fista10=raw_it))


def _scores(rec, caps, bars_rec=None, bars=None):
    tr, P = caps.truth, caps.pixel_size
    out = dict(psnr=M.psnr(rec.field, tr["field"]),
               shift_rmse_px=M.shift_rmse(rec.shifts, tr["shifts"], P),
               height_rmse_um=M.height_rmse(rec.z, tr["z"]) * 1e6)
    if bars_rec is not None:
        out["resolution_gain"] = M.resolution_gain(bars_rec.field, bars.truth["targets"])
        out["bars_height_rmse_um"] = M.height_rmse(bars_rec.z, bars.truth["z"]) * 1e6
    return out


def _oracle(caps):
    tr = caps.truth
    return Captures(caps.images, tr["shifts"], tr["z"], wavelength=caps.wavelength,
                    pixel_size=caps.pixel_size, factor=caps.factor, n_medium=caps.n_medium)


def quality_case(sim, n_window, photons, seed, iterations, methods):
    caps = simulate(n_window=n_window, photons=photons, seed=seed, **sim)
    bars = simulate(n_window=n_window, photons=photons, seed=seed, obj="bars", **sim)
    out = {}
    for name in methods:
        t0 = time.perf_counter()
        if name == "oracle":
            r, rb = (reconstruct(_oracle(c), learn=(), iterations=iterations) for c in (caps, bars))
        elif name == "learned":
            r, rb = (reconstruct(c, iterations=iterations, modulo=bool(sim.get("modulo")))
                     for c in (caps, bars))
        elif name == "joint":
            r, rb = (reconstruct(c, iterations=iterations, schedule="joint") for c in (caps, bars))
        elif name == "nominal":
            r, rb = (reconstruct(c, learn=(), iterations=iterations) for c in (caps, bars))
        else:
            r, rb = classical(caps), classical(bars)
        s = _scores(r, caps, rb, bars)
        s["time_s"] = time.perf_counter() - t0
        if name == "learned" and "focus" in r.history:
            s["focus_offset_um"] = r.history["focus"]["offset"] * 1e6
        if name == "learned" and "capture focus" in r.history:
            cf, cfb = r.history["capture focus"], rb.history["capture focus"]
            s["capture_focus"] = dict(
                criterion=cf["criterion"], bars_criterion=cfb["criterion"],
                height_rmse_um=M.height_rmse(cf["heights"], caps.truth["z"]) * 1e6,
                bars_height_rmse_um=M.height_rmse(cfb["heights"], bars.truth["z"]) * 1e6)
        out[name] = s
        print(f"    {name:9s} PSNR {s['psnr']:6.2f} dB  shift {s['shift_rmse_px']:.3f} px  "
              f"height {s['height_rmse_um']:6.2f} um  gain {s['resolution_gain']:.2f}  "
              f"({s['time_s']:.0f} s)", flush=True)
    nom = dict(shift_rmse_px=M.shift_rmse(caps.shifts, caps.truth["shifts"], caps.pixel_size),
               height_rmse_um=M.height_rmse(caps.z, caps.truth["z"]) * 1e6)
    out["nominal_geometry_error"] = nom
    return out


def _git():
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--photons", type=float, nargs="+", default=[1e4, 1e3])
    ap.add_argument("--methods", nargs="+", default=["oracle", "learned", "nominal", "classical"],
                    help="also 'joint' (learned with schedule='joint')")
    ap.add_argument("--hard", action="store_true", help="also the harder cases (learned only)")
    ap.add_argument("--cases", nargs="+", choices=["standard"] + list(HARD),
                    help="run only these cases (harder ones learned only)")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="128^2 window, 60 iterations, one seed")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_lensless.json"))
    a = ap.parse_args(argv)
    n_window = 128 if a.quick else 256
    if a.quick:
        a.iterations, a.seeds, a.repeat = 60, a.seeds[:1], 2
    result = dict(config=config_dict(), numpy=np.__version__, platform=platform.platform(),
                  git=_git(), date=time.strftime("%Y-%m-%d %H:%M:%S"), n_window=n_window,
                  iterations=a.iterations, seeds=a.seeds)
    if not a.no_speed:
        sp = speed(n_window, 16, a.repeat)
        result["speed"] = sp
        print(f"speed {n_window}^2 x 16 (field {sp['field']}, FFT grid {sp['fft_grid']}, c64): "
              f"gradient {sp['gradient_s'] * 1e3:.0f} ms = {sp['gradient_over_floor']:.2f} x FFT floor "
              f"({sp['fft_floor_s'] * 1e3:.0f} ms); FISTA iteration {sp['fista_iteration_s'] * 1e3:.0f} ms"
              f" = {sp['fista_iteration_over_floor']:.2f} x floor", flush=True)
    cases = [("standard", STANDARD, a.methods)]
    if a.hard:
        cases += [(k, v, ["learned"]) for k, v in HARD.items()]
    if a.cases:
        cases = [("standard", STANDARD, a.methods)] if "standard" in a.cases else []
        cases += [(k, v, ["learned"]) for k, v in HARD.items() if k in a.cases]
    result["quality"] = []
    for seed in a.seeds:
        for name, sim, methods in cases:
            for photons in a.photons:
                print(f"{name}, {photons:g} photons, seed {seed}:", flush=True)
                rows = quality_case(sim, n_window, photons, seed, a.iterations, methods)
                result["quality"].append(dict(case=name, photons=photons, seed=seed,
                                              simulation=sim, results=rows))
                Path(a.out).parent.mkdir(parents=True, exist_ok=True)
                Path(a.out).write_text(json.dumps(result, indent=1, default=float))
    # summary: mean over seeds
    print("\nmean over seeds:")
    summary = {}
    for q in result["quality"]:
        for m_, s in q["results"].items():
            if m_ == "nominal_geometry_error":
                continue
            summary.setdefault((q["case"], q["photons"], m_), []).append(s)
    result["summary"] = []
    for (case, photons, m_), ss in summary.items():
        row = dict(case=case, photons=photons, method=m_,
                   **{k: float(np.mean([s[k] for s in ss])) for k in
                      ("psnr", "shift_rmse_px", "height_rmse_um", "resolution_gain")})
        result["summary"].append(row)
        print(f"  {case:14s} {photons:7g} {m_:9s} PSNR {row['psnr']:6.2f}  shift "
              f"{row['shift_rmse_px']:.3f} px  height {row['height_rmse_um']:6.2f} um  gain "
              f"{row['resolution_gain']:.2f}")
    Path(a.out).write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
