"""Density sweep: ∂H versus back-propagation on simulated particle holograms.

Configuration (the issue's, with the grid size as an option): lambda = 532 nm,
2 um pixels, opaque particles 8-12 um at depths 1-5 mm (kept 0.1 mm inside the
grid), 81 planes 50 um apart, 1 % Gaussian noise; the nominal plane depths are
wrong by +3 % of the mean depth (+90 um); default settings throughout
(``reconstruct`` defaults, automatic thresholds); a particle counts as found when
matched one to one within 2 pixels laterally and 3 diameters (30 um) axially.

Back-propagation pipeline: the intensity stack of ``reconstruct(method="backprop")``
-> ``find_particles`` (dark particles, automatic threshold, window matched to
the particles' depth of field).  ∂H: ``reconstruct(method="dh")`` (first Born,
FISTA, L1 + Box(-1, 0), distance offset and illumination learned).

Run:  python benchmarks/bench_dh_density.py [--size 512] [--iterations 100]
      [--densities 1e-4,5e-4,2e-3,5e-3,1e-2] [--models born,gabor]
Writes benchmarks/results/bench_dh_density.json and prints a table.
"""
import argparse
import sys
import json
import platform
import time
from pathlib import Path

import numpy as np

from diffimaging import holography as H
from diffimaging import get_num_threads

LAM, PX = 532e-9, 2e-6


def run(size, ppp, models, iterations, seed=3, offset_frac=0.03, multislice_from=1e-2,
        dtype=np.float32):
    z0, z1, nz = 1e-3, 5e-3, 81
    tab = H.random_particles((size, size), PX, ppp=ppp, z_range=(z0 + 1e-4, z1 - 1e-4),
                             diameter_range=(8e-6, 12e-6), seed=seed)
    holo, truth = H.simulate_particles((size, size), tab, wavelength=LAM, pixel_size=PX,
                                       gaussian_noise=0.01, seed=seed + 1)
    holo = holo.astype(dtype)   # float32: the fast path (complex64 transforms)
    true_offset = offset_frac * 0.5 * (z0 + z1)
    zs = np.linspace(z0, z1, nz) + true_offset   # the user's (wrong) nominal planes
    rows = []

    def score(name, rec, t):
        f = H.find_particles(rec)
        m = H.match(f, truth, 2 * PX, 30e-6)
        row = dict(ppp=ppp, method=name, particles=len(truth), found=len(f), recall=m.recall,
                   precision=m.precision, lateral_rmse_px=m.lateral_rmse / PX,
                   axial_rmse_um=m.axial_rmse * 1e6, seconds=t,
                   dz_learned_um=rec.dz * 1e6, dz_needed_um=-true_offset * 1e6)
        rows.append(row)
        print(f"{ppp:8.0e} {name:12s} {len(truth):6d} {len(f):6d} {m.recall:7.3f} {m.precision:7.3f} "
              f"{m.lateral_rmse / PX:7.2f} {m.axial_rmse * 1e6:7.1f} {rec.dz * 1e6:8.1f} {t:8.1f}",
              flush=True)

    t = time.perf_counter()
    rb = H.reconstruct(holo, zs, wavelength=LAM, pixel_size=PX, method="backprop")
    score("backprop", rb, time.perf_counter() - t)
    del rb
    mods = list(models) + (["multislice"] if ppp >= multislice_from and "multislice" not in models else [])
    for model in mods:
        t = time.perf_counter()
        rec = H.reconstruct(holo, zs, wavelength=LAM, pixel_size=PX, method="dh", model=model,
                            iterations=iterations)
        score(f"dh-{model}", rec, time.perf_counter() - t)
        del rec
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--densities", default="1e-4,5e-4,2e-3,5e-3,1e-2")
    ap.add_argument("--models", default="born")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="precision of the hologram and the reconstruction")
    ap.add_argument("--multislice-from", type=float, default=1e-2,
                    help="add the multi-slice model from this density on (0: never)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_dh_density.json"))
    a = ap.parse_args()
    print(f"{'ppp':>8s} {'method':12s} {'true':>6s} {'found':>6s} {'recall':>7s} {'prec':>7s} "
          f"{'lat px':>7s} {'ax um':>7s} {'dz um':>8s} {'s':>8s}")
    rows = []
    for ppp in [float(v) for v in a.densities.split(",")]:
        rows += run(a.size, ppp, a.models.split(","), a.iterations,
                    multislice_from=a.multislice_from if a.multislice_from > 0 else np.inf,
                    dtype=np.dtype(a.dtype))
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(dict(
            config=dict(size=a.size, iterations=a.iterations, dtype=a.dtype,
                        command="python benchmarks/bench_dh_density.py " + " ".join(sys.argv[1:]), wavelength=LAM, pixel_size=PX, planes=81,
                        plane_spacing=50e-6, depths=(1e-3, 5e-3), noise=0.01, nominal_offset="+3 %",
                        threads=get_num_threads(), machine=platform.processor() or platform.machine()),
            rows=rows), indent=1))


if __name__ == "__main__":
    main()
