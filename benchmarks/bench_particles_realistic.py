"""Particle detection on realistic holograms: recall and precision with default settings.

Data: :mod:`diffimaging.holography.realistic` (its own angular-spectrum forward model,
independent of the package's propagation): log-normal diameters 5-30 um (median 12 um),
80 % opaque and 20 % partly transparent phase-shifting particles at 1-5 mm, a Gaussian
beam off-centre with parasitic fringes, out-of-volume dust at 10-40 mm, sensor defects,
PRNU/DSNU, shot and read noise, 12-bit counts at 35 % of full scale; 532 nm, 2 um pixels.

Pipeline, default settings throughout: dark level subtracted, ``preprocess`` (single
frame: low-pass background division; ``--background frame``: division by the recorded
empty frame), float32, planes 0.8-5.2 mm every 50 um (89 planes: the particles' range
with a 0.2 mm margin), then ``reconstruct(method="backprop")`` or
``reconstruct(method="dh")`` (100 iterations) and ``find_particles(rec)``.  A particle
counts as found when matched one to one within 2 pixels laterally and 200 um axially
(4 plane spacings, the depth of field D^2 / lambda of a 10 um particle).

``--baseline FILE`` also scores a previous ``particles.py`` (e.g. ``git show
<commit>:python/diffimaging/holography/analysis/particles.py > old.py``) on the same
reconstructions: the before/after table.  A peak-memory check of ``find_particles`` on a
64 x 1024^2 float32 volume (tracemalloc) is run with ``--memory``.

Run:  python benchmarks/bench_particles_realistic.py [--size 256] [--densities 1e-4,5e-4,1e-3,2e-3,5e-3]
      [--methods backprop,dh] [--background lowpass|frame] [--baseline old.py] [--memory]
Writes benchmarks/results/bench_particles_realistic[_<size>].json and prints a table.
"""
import argparse
import importlib.util
import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from diffimaging import holography as H
from diffimaging.holography import realistic as R

LAT_TOL_PX, AX_TOL = 2, 200e-6


def load_baseline(path):
    """A previous particles.py, imported as a sibling module of the current one."""
    name = "diffimaging.holography.analysis._particles_baseline"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod.find_particles


def hologram(frame, background):
    raw = frame.raw.astype(np.float32) - np.float32(frame.dark)
    bg = frame.background.astype(np.float32) - np.float32(frame.dark) if background == "frame" else None
    h, _ = H.preprocess(raw, background=bg, crop=False)
    return h.astype(np.float32)


def run(size, ppp, methods, background, baseline, seed):
    s = R.RealisticField(shape=(size, size), ppp=ppp, seed=seed)
    frame = R.simulate_field(s)
    truth = frame.truth.select(frame.truth.visible)
    px = s.pixel_size
    h = hologram(frame, background)
    zs = np.arange(89) * 50e-6 + 0.8e-3
    rows = []
    for method in methods:
        t = time.perf_counter()
        rec = H.reconstruct(h, zs, wavelength=s.wavelength, pixel_size=px, method=method)
        t_rec = time.perf_counter() - t
        finders = [("after", H.find_particles)] + ([("before", baseline)] if baseline else [])
        for label, fp in finders:
            t = time.perf_counter()
            f = fp(rec)
            t_find = time.perf_counter() - t
            m = H.match(f, truth, LAT_TOL_PX * px, AX_TOL)
            row = dict(ppp=ppp, method=method, version=label, particles=len(truth), found=len(f),
                       recall=m.recall, precision=m.precision,
                       lateral_rmse_px=m.lateral_rmse / px, axial_rmse_um=m.axial_rmse * 1e6,
                       reconstruct_s=t_rec, find_s=t_find,
                       diameter_um=getattr(f, "diameter", float("nan")) * 1e6)
            rows.append(row)
            print(f"{ppp:8.0e} {method:9s} {label:7s} {len(truth):6d} {len(f):7d} {m.recall:7.3f} "
                  f"{m.precision:7.3f} {m.lateral_rmse / px:6.2f} {m.axial_rmse * 1e6:7.1f} "
                  f"{t_rec:7.1f} {t_find:6.2f} {row['diameter_um']:6.1f}", flush=True)
    return rows


def memory(baseline):
    """Peak traced memory of find_particles on a 64 x 1024^2 float32 volume (256 MiB)."""
    rng = np.random.default_rng(0)
    v = rng.normal(0.0, 0.01, (64, 1024, 1024)).astype(np.float32)
    for n in range(200):
        k, i, j = rng.integers(2, 62), rng.integers(0, 1024), rng.integers(0, 1024)
        v[k - 2:k + 3, max(i - 2, 0):i + 3, max(j - 2, 0):j + 3] += 1.0
    zs = np.arange(64) * 50e-6 + 1e-3
    out = {"volume_mib": v.nbytes / 2 ** 20}
    for label, fp in [("after", H.find_particles)] + ([("before", baseline)] if baseline else []):
        tracemalloc.start()
        t = time.perf_counter()
        n = len(fp(v, zs, pixel_size=2e-6))
        dt = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[label] = dict(peak_mib=peak / 2 ** 20, seconds=dt, found=n)
        print(f"memory {label:7s}: peak {peak / 2 ** 20:8.1f} MiB beyond the {out['volume_mib']:.0f} MiB "
              f"volume, {dt:.1f} s, {n} found", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--densities", default="1e-4,5e-4,1e-3,2e-3,5e-3")
    ap.add_argument("--methods", default="backprop,dh")
    ap.add_argument("--background", choices=("lowpass", "frame"), default="lowpass")
    ap.add_argument("--baseline", default=None, help="a previous particles.py to compare with")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    baseline = load_baseline(a.baseline) if a.baseline else None
    print(f"{'ppp':>8s} {'method':9s} {'version':7s} {'truth':>6s} {'found':>7s} {'recall':>7s} "
          f"{'prec':>7s} {'lat px':>6s} {'ax um':>7s} {'rec s':>7s} {'find s':>6s} {'D um':>6s}")
    rows = []
    for ppp in [float(d) for d in a.densities.split(",")]:
        rows += run(a.size, ppp, a.methods.split(","), a.background, baseline, a.seed)
    result = dict(size=a.size, background=a.background, lateral_tol_px=LAT_TOL_PX, axial_tol_m=AX_TOL,
                  planes=dict(first_m=0.8e-3, spacing_m=50e-6, count=89), seed=a.seed, rows=rows,
                  machine=dict(platform=platform.platform(), python=platform.python_version()))
    if a.memory:
        result["memory"] = memory(baseline)
    out = Path(a.out) if a.out else (Path(__file__).parent / "results" /
                                     f"bench_particles_realistic_{a.size}_{a.background}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
