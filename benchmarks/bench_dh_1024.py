#!/usr/bin/env python
"""∂H at 1024^2 x 64 planes, 100 iterations, default settings (issue 10, item 4).

A realistic hologram: ``H.random_particles`` at 1e-3 particles per pixel, opaque
particles 8-12 um at depths 1-5 mm, 2 um pixels, 532 nm, 1 % Gaussian noise
(``H.simulate_particles``), float32.  ``reconstruct(method="dh")`` with its
defaults (first Born, FISTA, distance offset and illumination learned, the fused
real-object engine on numpy) to 64 planes over 1-5 mm, 100 iterations.

Reported:

* wall time of ``reconstruct`` and the time per iteration;
* the transforms of the run, counted by wrapping the package's FFT layer
  (``diffimaging._backend.fft``: every transform of the package goes through it),
  per kind and size, and their number per iteration (as 2-d transforms: a call on a
  (b, ny, nx) batch is b planes; rows then columns make one 2-d transform);
* the FFT floor: exactly those transforms (same kinds, sizes, axes, dtype and
  threads), bare scipy.fft (pocketfft) calls on preallocated buffers, each kind
  timed in the same run (median of ``--repeat`` runs after a warm-up) and multiplied
  by its count; the ratio wall time / floor does not depend on the machine's load
  as much as the wall time (the machine is shared); the process CPU time is given
  too (on a loaded machine wall time is time-sliced, CPU time much less so);
* recall / precision of ``find_particles`` (defaults) against the truth, matched
  one to one within 2 pixels laterally and 30 um axially: speed must not cost
  accuracy.

Target: <= 60 s for the 100 iterations at 1024^2 x 64 on the 2-core machine.

Run:  python benchmarks/bench_dh_1024.py [--quick] [--n 1024] [--planes 64]
                                         [--iterations 100] [--seeds 0]
``--quick``: 512^2, 32 planes, 30 iterations (a smoke test, ~1 min).
Writes benchmarks/results/bench_dh_1024.json (``--out``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

try:
    import diffimaging as di
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import diffimaging as di

from diffimaging import holography as H
from diffimaging._backend import fft as F
from diffimaging._backend.config import config_dict

LAM, PX = 532e-9, 2e-6
Z0, Z1 = 1e-3, 5e-3


class TransformCounter:
    """Counts the transforms of the FFT layer by kind and size while active (the
    buffer transforms ``c2c``, ``r2c``, ``c2r`` of the fused engine and the generic
    ``fftn``/``ifftn``/``rfftn``/``irfftn``)."""

    NAMES = ("c2c", "r2c", "c2r", "fftn", "ifftn", "rfftn", "irfftn")

    def __init__(self):
        self.counts = Counter()
        self._saved = {}

    def _wrap(self, name, f):
        counts = self.counts

        def wrapped(a, *args, **kw):
            if name == "c2c":
                key = (name, a.shape, str(a.dtype), tuple(args[0]), bool(args[1]), None)
            elif name == "r2c":
                key = (name, a.shape, str(a.dtype), tuple(args[0]), True, None)
            elif name == "c2r":
                key = (name, a.shape, str(a.dtype), tuple(args[0]), False, int(args[1]))
            else:
                key = (name, getattr(a, "shape", None), str(getattr(a, "dtype", "")), None, None,
                       None)
            counts[key] += 1
            return f(a, *args, **kw)

        return wrapped

    def __enter__(self):
        for name in self.NAMES:
            self._saved[name] = getattr(F, name)
            setattr(F, name, self._wrap(name, self._saved[name]))
        return self

    def __exit__(self, *exc):
        for name, f in self._saved.items():
            setattr(F, name, f)


def floor_seconds(counts, repeat, workers):
    """Time each counted transform kind bare (preallocated buffers, in place where
    the kind allows), median of ``repeat`` after a warm-up; returns the floor [s]
    (sum of count x time) and the per-kind table."""
    rows, total = [], 0.0
    for key, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        name, shape, dtype, axes, forward, n = key
        if name not in ("c2c", "r2c", "c2r"):
            raise RuntimeError(f"transform {name} {shape} not expected on the fused path; the floor "
                               f"covers the buffer transforms only")
        a = np.zeros(shape, dtype)
        if name == "c2c":
            def call(a=a, axes=axes, forward=forward):
                F.c2c(a, axes, forward, out=a, workers=workers)
        elif name == "r2c":
            oshape = list(shape)
            oshape[axes[-1]] = shape[axes[-1]] // 2 + 1
            out = np.zeros(oshape, np.result_type(a.dtype, np.complex64))

            def call(a=a, axes=axes, out=out):
                F.r2c(a, axes, out=out, workers=workers)
        else:
            oshape = list(shape)
            oshape[axes[-1]] = n
            out = np.zeros(oshape, a.real.dtype)

            def call(a=a, axes=axes, n=n, out=out):
                F.c2r(a, axes, n, out=out, workers=workers)
        call()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            call()
            ts.append(time.perf_counter() - t0)
        t = float(np.median(ts))
        total += count * t
        rows.append(dict(kind=name, shape=list(shape), dtype=dtype, axes=list(axes),
                         forward=forward, n=n, count=count, seconds_each=t, seconds=count * t))
    return total, rows


def case(n, nz, iterations, seed, ppp, repeat, workers, noise=0.01):
    tab = H.random_particles((n, n), PX, ppp=ppp, z_range=(Z0 + 1e-4, Z1 - 1e-4), seed=seed)
    holo, truth = H.simulate_particles((n, n), tab, wavelength=LAM, pixel_size=PX,
                                       gaussian_noise=noise, seed=seed + 1000)
    holo = holo.astype(np.float32)
    zs = np.linspace(Z0, Z1, nz)
    with TransformCounter() as tc:
        c0, t0 = time.process_time(), time.perf_counter()
        rec = H.reconstruct(holo, zs, wavelength=LAM, pixel_size=PX, method="dh",
                            iterations=iterations)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    c0 = time.process_time()
    floor, table = floor_seconds(tc.counts, repeat, workers)
    floor_cpu = (time.process_time() - c0) / (repeat + 1) * floor / max(
        sum(r["seconds_each"] for r in table), 1e-300)
    # one call transforms a batch of planes along one axis (a (b, ny, nx) array: b
    # planes); a 2-d transform is two such passes (rows, then columns)
    ntr = sum(c * (k[1][0] if len(k[1]) == 3 else 1) for k, c in tc.counts.items()) / 2
    calls = sum(tc.counts.values())
    found = H.find_particles(rec)
    m = H.match(found, truth, 2 * PX, 30e-6)
    steps = len(rec.history["time"])
    evals = rec.history.get("evaluations", [])
    grid = max((r["shape"][-2:] for r in table if r["kind"] == "c2c"), key=lambda s: s[0] * s[1])
    row = dict(n=n, planes=nz, iterations=iterations, seed=seed, ppp=ppp, particles=len(truth),
               seconds=wall, seconds_per_iteration=wall / iterations,
               fft_calls=calls, transforms_2d=ntr, transforms_2d_per_iteration=ntr / iterations,
               transforms_2d_per_plane_per_iteration=ntr / iterations / nz,
               fft_grid_half_spectrum=grid,
               cpu_seconds=cpu, floor_seconds=floor, ratio=wall / floor,
               floor_cpu_seconds_estimate=floor_cpu, recorded_steps=steps,
               evaluations_per_step=float(np.mean(evals)) if len(evals) else None,
               found=len(found), recall=m.recall, precision=m.precision,
               lateral_rmse_px=m.lateral_rmse / PX, axial_rmse_um=m.axial_rmse * 1e6,
               dz_um=rec.dz * 1e6, floor_table=table)
    print(f"{n:5d}^2 x {nz:3d} planes, {iterations} it, seed {seed}: {wall:7.1f} s "
          f"({wall / iterations:.3f} s/it); {ntr / iterations:.1f} 2-d transforms/it "
          f"({ntr / iterations / nz:.2f} per plane) on the {grid[-2]}x{grid[-1]} half spectrum; "
          f"FFT floor {floor:.1f} s, ratio {wall / floor:.2f}; CPU {cpu:.1f} s; recall {m.recall:.3f} "
          f"precision {m.precision:.3f} ({len(found)} found / {len(truth)} true)", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512^2, 32 planes, 30 iterations")
    ap.add_argument("--n", type=int, default=None, help="hologram size (default 1024; 512 quick)")
    ap.add_argument("--planes", type=int, default=None, help="planes (default 64; 32 quick)")
    ap.add_argument("--iterations", type=int, default=None, help="default 100; 30 quick")
    ap.add_argument("--ppp", type=float, default=1e-3, help="particles per pixel (default 1e-3)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (one case each)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per floor transform (median)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    n = a.n or (512 if a.quick else 1024)
    nz = a.planes or (32 if a.quick else 64)
    its = a.iterations or (30 if a.quick else 100)
    w = di.get_num_threads()
    print(f"∂H benchmark: {n}^2 x {nz} planes, {its} iterations, {w} threads "
          f"(target at 1024^2 x 64 x 100: <= 60 s)")
    rows = [case(n, nz, its, int(s), a.ppp, a.repeat, w) for s in a.seeds.split(",")]
    name = "bench_dh_1024_quick.json" if a.quick and a.out is None else "bench_dh_1024.json"
    out = Path(a.out) if a.out else Path(__file__).resolve().parent / "results" / name
    res = dict(benchmark="bench_dh_1024", target_seconds=60.0, cases=rows, threads=w,
               config=config_dict(), date=time.strftime("%Y-%m-%d %H:%M:%S"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
