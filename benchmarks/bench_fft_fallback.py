#!/usr/bin/env python
"""What the FFT layer's fallback costs: the fused ∂H engine's transforms with scipy's
pocketfft binding (output buffers, no temporaries) against the public ``scipy.fft``
fallback that runs where the binding is missing or renamed.

Per size: one padded r2c + c2c forward and one c2c + c2r cropped inverse transform
of ``HalfVolume`` (float32), median of ``--repeat`` runs of ``--count`` pairs after
a warm-up; the ratio fallback / buffers is the cost of the fallback.

Run:  python benchmarks/bench_fft_fallback.py [--sizes 256 512] [--count 20] [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    import diffimaging  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from diffimaging._backend import fft as F
from diffimaging._backend.config import config_dict
from diffimaging.holography._dhfast import HalfVolume


def _time_pairs(n, count, repeat):
    hv = HalfVolume([1e-3], (n, n), 532e-9, 2e-6, np.float32)
    img = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    buf = np.empty((hv.my, hv.nxh), hv.cdt)

    def run():
        for _ in range(count):
            buf[...] = hv.rfft_pad(img)
            hv.irfft_crop(buf, out=hv.rows[0])

    run()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) / count)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"
                                         / "bench_fft_fallback.json"))
    a = ap.parse_args(argv)
    if not F.have_buffer_engine():
        raise SystemExit("scipy's pocketfft binding is not available here: only the fallback runs")
    rows = []
    print(f"{'n':>6} {'buffers [ms]':>13} {'fallback [ms]':>14} {'ratio':>6}")
    for n in a.sizes:
        t_buf = _time_pairs(n, a.count, a.repeat)
        saved, F._PP = F._PP, None
        try:
            t_fb = _time_pairs(n, a.count, a.repeat)
        finally:
            F._PP = saved
        rows.append(dict(n=n, buffers_s=t_buf, fallback_s=t_fb, ratio=t_fb / t_buf))
        print(f"{n:>6} {1e3 * t_buf:13.3f} {1e3 * t_fb:14.3f} {t_fb / t_buf:6.2f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(config=config_dict(), rows=rows), indent=1, default=str))


if __name__ == "__main__":
    main()
