#!/usr/bin/env python
"""Back-propagation throughput and the ∂H iteration time (issue 4 speed targets).

Streams a 1024^2 hologram to 64 depth planes (min/max projections only, chunks of 16
planes: one forward FFT per chunk), numpy complex64, and compares with the FFT floor
of the same transforms measured in the same run: per chunk one forward and 16 inverse
in-place scipy.fft transforms on the padded grid.  Target (issue 4): <= 1.3x.

Second part: one ∂H gradient evaluation (the first-Born volume model's forward
pass + its VJP, the work of one iteration) at 512^2 x 64 planes, float32 object,
against the FFT floor of the same transforms: 64 forward + 1 inverse (forward
pass), 1 forward + 64 inverse (VJP) full padded transforms.  Also the wall time
per FISTA iteration of ``holography.reconstruct`` (its backtracking line search
adds evaluations).

Run:  python benchmarks/bench_holo.py [--n 1024] [--planes 64] [--repeat 3]
                                      [--dh-n 512] [--dh-planes 64]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft as sfft

try:
    import diffimaging as di
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import diffimaging as di

from diffimaging import holography as H
from diffimaging._config import config_dict


def bench_dh(n, nz, repeat, w):
    lam, px = 532e-9, 2e-6
    zs = np.linspace(1e-3, 1e-3 + (nz - 1) * 50e-6, nz)
    tab = H.random_particles((n, n), px, ppp=2e-3, z_range=(zs[0], zs[-1]), seed=1)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=lam, pixel_size=px, gaussian_noise=0.01,
                                   seed=2)
    holo = holo.astype(np.float32)
    model = di.Model(H.Volume(zs, lam, px, dz=di.Param(0.0), reference=di.Param(1.0)), di.Intensity())
    o = np.zeros((nz, n, n), np.float32)
    o[:, n // 4:n // 4 + 5, n // 4:n // 4 + 5] = -1.0
    m = sfft.next_fast_len(2 * n)
    buf = np.zeros((m, m), np.complex64)

    def evaluate():
        y, pb = di.vjp(model, o)
        pb(y - holo)

    def floor():
        for _ in range(nz + 1):
            sfft.fft2(buf, workers=w, overwrite_x=True)
        for _ in range(nz + 1):
            sfft.ifft2(buf, workers=w, overwrite_x=True)

    evaluate()
    floor()
    te, tf = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        evaluate()
        te.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        floor()
        tf.append(time.perf_counter() - t0)
    t_eval, t_floor = float(np.median(te)), float(np.median(tf))
    its = 5
    t0 = time.perf_counter()
    rec = H.reconstruct(holo, zs, wavelength=lam, pixel_size=px, iterations=its)
    t_solve = (time.perf_counter() - t0) / its
    evals = t_solve / t_eval
    print(f"∂H {n}x{n} x {nz} planes, float32 object, {w} threads")
    print(f"  gradient evaluation {t_eval:.2f} s; FFT floor ({2 * nz + 2} padded transforms) "
          f"{t_floor:.2f} s; ratio {t_eval / t_floor:.2f} (target <= 1.3: "
          f"{'met' if t_eval / t_floor <= 1.3 else 'MISSED'})")
    print(f"  reconstruct(): {t_solve:.2f} s per FISTA iteration = {evals:.2f} evaluations "
          f"(line search), {t_solve / t_floor:.2f}x the floor of one evaluation")
    return dict(n=n, planes=nz, eval_seconds=t_eval, floor_seconds=t_floor, ratio=t_eval / t_floor,
                eval_times=te, floor_times=tf, fista_iteration_seconds=t_solve,
                evaluations_per_iteration=evals, final_loss=rec.history["loss"][-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--planes", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dh-n", type=int, default=512)
    ap.add_argument("--dh-planes", type=int, default=64)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "bench_holo.json"))
    a = ap.parse_args(argv)
    n, nz, ch = a.n, a.planes, a.chunk
    tab = H.random_particles((n, n), 2e-6, ppp=1e-3, seed=0)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=532e-9, pixel_size=2e-6)
    holo = holo.astype(np.float32)
    zs = np.linspace(1e-3, 5e-3, nz)
    m = sfft.next_fast_len(2 * n)
    buf = np.zeros((1, m, m), np.complex64)
    w = di.get_num_threads()

    def floor():
        for s in range(0, nz, ch):
            sfft.fft2(buf, workers=w, overwrite_x=True)
            for _ in range(min(ch, nz - s)):
                sfft.ifft2(buf, workers=w, overwrite_x=True, norm="ortho")

    def run():
        H.backpropagate(holo, zs, wavelength=532e-9, pixel_size=2e-6, chunk=ch)

    run()
    floor()
    t_run, t_floor = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        run()
        t_run.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        floor()
        t_floor.append(time.perf_counter() - t0)
    tr, tf = float(np.median(t_run)), float(np.median(t_floor))
    ratio = tr / tf
    print(f"back-propagation {n}x{n} -> {nz} planes (projections, chunks of {ch}), complex64, "
          f"{w} threads")
    print(f"  time {tr:.2f} s = {nz / tr:.1f} planes/s; FFT floor {tf:.2f} s; ratio {ratio:.2f} "
          f"(target <= 1.3: {'met' if ratio <= 1.3 else 'MISSED'})")
    dh = bench_dh(a.dh_n, a.dh_planes, a.repeat, w)
    res = dict(benchmark="bench_holo", n=n, planes=nz, chunk=ch, seconds=tr, floor_seconds=tf,
               ratio=ratio, planes_per_second=nz / tr, times=t_run, floor_times=t_floor,
               dh=dh, config=config_dict())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
