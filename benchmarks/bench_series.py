#!/usr/bin/env python
"""Frames per second of ``holography.process_series``: sequential, then a Dask
LocalCluster of 1 and 2 workers (and more with ``--workers``), on one simulated
series (moving particles, 16-bit TIFF frames, the median background, ∂H with the
distance offset calibrated once).  Also the scaling efficiency (rate with N
workers over N times the 1-worker rate) and each worker's peak resident memory
(VmHWM of its process), which must stay bounded: frames are streamed, nothing of
the series is held.

Run:  PYTHONPATH=python python benchmarks/bench_series.py [--frames 24] [--size 256]
      [--workers 1,2] [--out benchmarks/results/bench_series.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import diffimaging  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from diffimaging import holography as H
from diffimaging._backend.config import config_dict

PX, LAM = 2e-6, 532e-9


def _peak_rss_kib():
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def make_series(folder: Path, frames: int, n: int):
    import tifffile

    tab = H.random_particles((n, n), PX, count=max(8, n * n // 2000), z_range=(1.0e-3, 2.0e-3),
                             margin=12 * PX, seed=3)
    holos, _ = H.simulate_sequence((n, n), tab, H.motion.uniform((1.0 * PX, 0.5 * PX, 0.0)),
                                   frames=frames, wavelength=LAM, pixel_size=PX,
                                   gaussian_noise=0.01, seed=4)
    for i, h in enumerate(holos):
        tifffile.imwrite(folder / f"f_{i:04d}.tif", (h * 1000).astype(np.uint16))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--planes", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--out", default="benchmarks/results/bench_series.json")
    a = ap.parse_args(argv)
    settings = dict(wavelength=LAM, pixel_size=PX, z=np.linspace(0.9e-3, 2.1e-3, a.planes),
                    iterations=a.iterations, dt=1 / 200)
    res = dict(config=config_dict(), frames=a.frames, size=a.size, planes=a.planes,
               iterations=a.iterations, runs={})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "frames").mkdir()
        make_series(tmp / "frames", a.frames, a.size)
        pattern = str(tmp / "frames" / "*.tif")

        def run(name, **kw):
            t0 = time.perf_counter()
            r = H.process_series(pattern, settings, out=tmp / name, progress=False, **kw)
            wall = time.perf_counter() - t0
            assert r.frames == a.frames and not r.failed, (r.frames, r.failed)
            return r, wall

        r, wall = run("sequential")
        res["runs"]["sequential"] = dict(seconds=wall, frames_per_s=r.frames_per_second,
                                         peak_rss_mib=(_peak_rss_kib() or 0) / 1024)
        print(f"sequential   {r.frames_per_second:6.2f} frames/s ({wall:.1f} s wall, "
              f"calibration and background included)", flush=True)
        try:
            import distributed
        except ImportError:
            print("Dask (distributed) is not installed: sequential only")
            distributed = None
        if distributed is not None:
            for n in [int(v) for v in a.workers.split(",") if v.strip()]:
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1,
                                                   processes=True, dashboard_address=None)
                client = distributed.Client(cluster)
                try:
                    r, wall = run(f"w{n}", client=client)
                    rss = client.run(_peak_rss_kib)
                finally:
                    client.close()
                    cluster.close()
                res["runs"][f"{n} workers"] = dict(
                    seconds=wall, frames_per_s=r.frames_per_second,
                    worker_peak_rss_mib=[v / 1024 for v in rss.values() if v])
                print(f"{n} worker(s)  {r.frames_per_second:6.2f} frames/s ({wall:.1f} s wall), "
                      f"worker peak RSS {max(v for v in rss.values() if v) / 1024:.0f} MiB",
                      flush=True)
            one = res["runs"].get("1 workers")
            for key, v in res["runs"].items():
                if one and key.endswith("workers"):
                    n = int(key.split()[0])
                    v["scaling_efficiency"] = v["frames_per_s"] / (n * one["frames_per_s"])
            for key, v in res["runs"].items():
                if "scaling_efficiency" in v:
                    print(f"{key}: scaling efficiency {v['scaling_efficiency']:.2f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
