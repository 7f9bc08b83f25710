#!/usr/bin/env python
"""Joint object / distance recovery: time per iteration and where it goes.

Run from the repository root (after ``pip install .``)::

    python benchmarks/bench_solve.py              # 512^2, ~1-2 min on 2 cores
    python benchmarks/bench_solve.py --quick      # 128^2 smoke test

Model: amplitude object -> Propagate(z, carrier=False, pad=True) -> Intensity,
L2 loss, Box(0, 1) constraint, L-BFGS (numpy, float64 object, complex128 fields;
``--dtype float32`` for the single-precision path).  Per iteration it reports:

- FFT time: every scipy.fft call made by the propagation (timed by wrapping them);
- kernel time: the C++ kernels (transfer multiply / pullback, crop copy, |u|^2);
- Python overhead: the fixed per-iteration cost, measured as the time per
  iteration of the same solve at 16^2, where array work is negligible;
- other array work: the rest (loss, projections, solver vector operations,
  padding copies).

Target: Python overhead <= 10 % of the iteration at 512^2.
The script also records what L-BFGS and Adam reach on the 128^2 recovery case of
the tests (distance started 10 % off, global stage, 400 iterations).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import numpy as np

try:
    import diffimaging as di
except ImportError:  # source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import diffimaging as di

from diffimaging._backend import fft as _fft
from diffimaging._backend import kernels as _kernels
from diffimaging._backend.config import config_dict
from diffimaging.optim import Box

LAM, PX = 532e-9, 2e-6


def make_case(n, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    amp = np.ones((n, n))
    for _ in range(max(4, n * n // 1400)):
        cy, cx, r = rng.uniform(0.1 * n, 0.9 * n, 2).tolist() + [rng.uniform(3, 8)]
        amp[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = 0.3
    z_true = 1e-3 * (n / 128) ** 0.5 if n > 128 else 1e-3
    model = di.Model(di.Propagate(di.Param(1.1 * z_true, bounds=(0.5 * z_true, 2 * z_true)), LAM, PX),
                     di.Intensity())
    y = model(amp.astype(dtype), {"propagate.z": z_true})
    return model, amp.astype(dtype), y, z_true


class _Timer:
    """Wraps callables and accumulates their wall time."""

    def __init__(self):
        self.t = 0.0
        self.n = 0

    def wrap(self, fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t += time.perf_counter() - t0
                self.n += 1
        return timed


class _FFTProxy:
    def __init__(self, mod, timer):
        self._mod, self._timer = mod, timer

    def __getattr__(self, name):
        attr = getattr(self._mod, name)
        return self._timer.wrap(attr) if name in ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn") else attr


def time_solve(n, iterations, dtype, instrument):
    model, amp, y, _ = make_case(n, dtype=dtype)
    x0 = np.ones_like(amp)
    kw = dict(method="lbfgs", iterations=iterations, constraint=Box(0.0, 1.0), progress=False)
    fft_t, ker_t = _Timer(), _Timer()
    saved = {}
    if instrument:
        saved["sfft"] = _fft._sfft
        _fft._sfft = _FFTProxy(_fft._sfft, fft_t)
        for name in ("transfer_apply", "transfer_pullback", "crop_copy", "intensity"):
            saved[name] = getattr(_kernels, name)
            setattr(_kernels, name, ker_t.wrap(saved[name]))
    try:
        di.solve(model, y, x0, **{**kw, "iterations": 2})  # warm-up (workspace, imports)
        fft_t.t = ker_t.t = 0.0
        fft_t.n = ker_t.n = 0
        t0 = time.perf_counter()
        r = di.solve(model, y, x0, **kw)
        total = time.perf_counter() - t0
    finally:
        if instrument:
            _fft._sfft = saved.pop("sfft")
            for name, fn in saved.items():
                setattr(_kernels, name, fn)
    its = max(r.iterations, 1)
    return dict(n=n, iterations=r.iterations, per_iter_ms=1e3 * total / its,
                fft_ms=1e3 * fft_t.t / its, fft_calls=fft_t.n / its,
                kernel_ms=1e3 * ker_t.t / its, kernel_calls=ker_t.n / its)


def accuracy(iterations=400):
    """What L-BFGS and Adam reach on the 128^2 test case."""
    model, amp, y, z_true = make_case(128)
    out = {}
    for method in ("lbfgs", "adam"):
        t0 = time.perf_counter()
        r = di.solve(model, y, np.ones_like(amp), method=method, iterations=iterations,
                     constraint=Box(0.0, 1.0), progress=False,
                     search={"propagate.z": np.linspace(0.85e-3, 1.15e-3, 61)})
        out[method] = dict(
            z_rel_error=abs(float(r.params["propagate.z"]) - z_true) / z_true,
            object_rel_error=float(np.linalg.norm(r.x - amp) / np.linalg.norm(amp)),
            iterations=r.iterations, seconds=time.perf_counter() - t0)
    out["do_nothing"] = dict(z_rel_error=0.1,
                             object_rel_error=float(np.linalg.norm(1 - amp) / np.linalg.norm(amp)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--quick", action="store_true", help="128^2, fewer iterations, no accuracy runs")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "bench_solve.json"))
    args = ap.parse_args(argv)
    n = 128 if args.quick else args.n
    its = 5 if args.quick else args.iterations
    dtype = np.float32 if args.dtype == "float32" else np.float64

    big = time_solve(n, its, dtype, instrument=True)
    plain = time_solve(n, its, dtype, instrument=False)  # same solve without the timing wrappers
    tiny = time_solve(16, its, dtype, instrument=False)
    per = plain["per_iter_ms"]
    overhead = tiny["per_iter_ms"]
    other = max(per - big["fft_ms"] - big["kernel_ms"] - overhead, 0.0)
    rows = [
        ("iteration (L-BFGS, forward + pullback + line search)", per, 1.0),
        (f"  FFTs ({big['fft_calls']:.1f} calls)", big["fft_ms"], big["fft_ms"] / per),
        (f"  C++ kernels ({big['kernel_calls']:.1f} calls)", big["kernel_ms"], big["kernel_ms"] / per),
        ("  other array work (loss, projection, solver vectors)", other, other / per),
        ("  Python overhead (per-iteration time at 16^2)", overhead, overhead / per),
    ]
    print(f"joint recovery, {n}x{n} {args.dtype} object, {its} iterations, "
          f"{di.get_num_threads()} threads")
    print(f"{'part':58s} {'ms/iter':>9s} {'share':>7s}")
    for name, ms, share in rows:
        print(f"{name:58s} {ms:9.2f} {100 * share:6.1f}%")
    met = overhead / per <= 0.10
    print(f"Python overhead {100 * overhead / per:.1f}% of the iteration (target <= 10%): "
          f"{'met' if met else 'MISSED'}")
    result = dict(benchmark="bench_solve", date=_dt.datetime.now().isoformat(timespec="seconds"),
                  config=config_dict(), n=n, dtype=args.dtype, iterations=its,
                  per_iter_ms=per, fft_ms=big["fft_ms"], kernel_ms=big["kernel_ms"],
                  other_ms=other, overhead_ms=overhead, overhead_share=overhead / per,
                  overhead_target_met=met, instrumented=big, plain=plain, tiny=tiny)
    if not args.quick:
        acc = accuracy()
        result["accuracy_128"] = acc
        print("\nrecovery on the 128^2 case (distance started 10% off, global stage, 400 iterations):")
        print(f"{'method':12s} {'z rel. error':>13s} {'object rel. error':>18s} {'time s':>8s}")
        for k, v in acc.items():
            print(f"{k:12s} {v['z_rel_error']:13.2e} {v['object_rel_error']:18.4f} "
                  f"{v.get('seconds', 0.0):8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
