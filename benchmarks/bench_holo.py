#!/usr/bin/env python
"""Back-propagation throughput and the ∂H iteration time.

Streams a 1024^2 hologram to 64 depth planes (min/max projections only: one forward
transform of the hologram, then per plane the fused transfer-function multiply, a
pruned inverse transform and the fused min/max update), numpy complex64, and
compares with the FFT floor of the same transforms measured in the same run: one
padded forward transform and 64 pruned inverse transforms (rows, then the kept
columns), bare scipy.fft calls in place.  Target: <= 1.3x.

Second part: one ∂H iteration (first Born, FISTA, distance offset and
illumination learned) at 512^2 x 64 planes, float32 object, with the fused
real-object engine that ``holography.reconstruct`` uses on numpy, against the FFT
floor of the same transforms measured in the same run: per plane one padded
rfft2 and one cropped irfft2, plus two of each at the sensor.  Target:
<= 1.3x.  The generic model/solver path (``engine="generic"``) is timed too.

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
from diffimaging._backend.config import config_dict


def transforms_floor(hv, count, w):
    """``count`` x (padded rfft2 + cropped irfft2) of the engine's grid, bare: the FFT
    layer's buffer transforms (pocketfft on preallocated buffers where scipy's binding
    is available) on the real-to-complex rows of the image's ny rows, the column
    transforms of the half spectrum, and back; no copies or zero fills."""
    from diffimaging._backend import fft as F

    rows = np.zeros((hv.ny, hv.mx), np.float32)
    col = np.zeros((hv.my, hv.nxh), np.complex64)
    col2 = np.zeros((hv.my, hv.nxh), np.complex64)
    out = np.zeros((hv.ny, hv.mx), np.float32)

    def run():
        for _ in range(count):
            F.r2c(rows, (1,), out=col[: hv.ny], workers=w)
            F.c2c(col, (0,), True, out=col, workers=w)
            F.c2c(col2, (0,), False, out=col2, workers=w)
            F.c2r(col2[: hv.ny], (1,), hv.mx, out=out, workers=w)

    return run


def bench_dh(n, nz, repeat, w, iterations=8):
    """The ∂H iteration at n^2 x nz planes: the fused engine (holography.reconstruct's
    default on numpy) against the FFT floor of its own transforms, and the generic
    model/solver path (engine="generic") for comparison, all in one run."""
    from diffimaging.holography._dhfast import HalfVolume

    lam, px = 532e-9, 2e-6
    zs = np.linspace(1e-3, 1e-3 + (nz - 1) * 50e-6, nz)
    tab = H.random_particles((n, n), px, ppp=2e-3, z_range=(zs[0], zs[-1]), seed=1)
    holo, _ = H.simulate_particles((n, n), tab, wavelength=lam, pixel_size=px, gaussian_noise=0.01,
                                   seed=2)
    holo = holo.astype(np.float32)
    hv = HalfVolume(zs, (n, n), lam, px, np.float32)
    floor = transforms_floor(hv, nz + 2, w)

    def fused():
        rec = H.reconstruct(holo, zs, wavelength=lam, pixel_size=px, iterations=iterations,
                            engine="fused")
        t = np.diff(np.asarray(rec.history["time"]))
        return float(np.median(t[1:])), rec

    floor()
    t_it, t_fl = [], []
    for _ in range(repeat):
        ti, rec = fused()
        t_it.append(ti)
        t0 = time.perf_counter()
        floor()
        t_fl.append(time.perf_counter() - t0)
    t_fused, t_floor = float(np.median(t_it)), float(np.median(t_fl))
    its = 3
    t0 = time.perf_counter()
    rg = H.reconstruct(holo, zs, wavelength=lam, pixel_size=px, iterations=its, engine="generic")
    t_generic_total = time.perf_counter() - t0
    t_generic = float(np.median(np.diff(np.asarray(rg.history["time"]))))
    print(f"∂H {n}x{n} x {nz} planes, float32 object, {w} threads (first Born, FISTA)")
    print(f"  fused engine: {t_fused:.3f} s per iteration; FFT floor ({nz + 2} rfft2 + {nz + 2} irfft2, "
          f"padded/cropped) {t_floor:.3f} s; ratio {t_fused / t_floor:.2f} (target <= 1.3: "
          f"{'met' if t_fused / t_floor <= 1.3 else 'MISSED'}); "
          f"{np.mean(rec.history['evaluations'][1:]):.2f} sensor evaluations per iteration")
    print(f"  generic model/solver path: {t_generic:.3f} s per iteration "
          f"({t_generic / t_fused:.1f}x the fused engine; {t_generic_total:.1f} s for {its} "
          f"iterations with its initial step search)")
    return dict(n=n, planes=nz, fused_iteration_seconds=t_fused, floor_seconds=t_floor,
                ratio=t_fused / t_floor, fused_times=t_it, floor_times=t_fl,
                generic_iteration_seconds=t_generic, generic_total_seconds=t_generic_total,
                generic_iterations=its, speedup_vs_generic=t_generic / t_fused)


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
        # the transforms back-propagation does: one forward transform of the padded
        # hologram (its zero rows skipped), then per plane a pruned inverse (rows,
        # then only the columns that survive the crop), bare and in place
        b = buf[0]
        sfft.fft(b[:n], axis=-1, workers=w, overwrite_x=True)
        sfft.fft(b, axis=0, workers=w, overwrite_x=True)
        for _ in range(nz):
            sfft.ifft(b, axis=-1, workers=w, overwrite_x=True)
            sfft.ifft(b[:, :n], axis=0, workers=w, overwrite_x=True)

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
    print(f"back-propagation {n}x{n} -> {nz} planes (projections, streamed plane by plane), complex64, "
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
