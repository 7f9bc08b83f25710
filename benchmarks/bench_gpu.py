#!/usr/bin/env python
"""GPU speed of the CUDA kernels (needs an NVIDIA GPU, CuPy and the CUDA module).

Three workloads, each timed with CUDA events (median of ``--repeat`` runs after a
warm-up) and given as ratios against three baselines measured in the same run:

- ``propagate``: one propagation of a 2048^2 complex64 field (zero-padded to the
  4096^2 FFT grid, angular spectrum, band-limited);
- ``backprop``: back-propagation of a 1024^2 hologram to 512 planes, min/max
  projections only (the PIV volume step; planes per second), batches sized from
  free device memory;
- ``dh_iteration``: one ∂H iteration at 1024^2 x 128 planes: the first-Born
  volume's forward and VJP (object planes and the distance);
- ``dh_fused``: one FISTA iteration of ``holography.reconstruct`` at 1024^2 x 128
  planes on the fused real-object engine (CUDA tables, batched proximal step),
  against the generic GPU path and the floor of its real transforms;
- ``fpm``: one pass over the 225 LEDs of ``fpm.reconstruct`` on CuPy images, with
  the CUDA fidelity kernel, with the array-API fidelity step, and on the CPU.

Baselines: (a) the cuFFT floor — the same transforms alone (cupy.fft, plans
cached); (b) a plain CuPy implementation building the transfer function per call
with CuPy elementwise operations (the package's array-API reference path on CuPy);
(c) the same reference computation in torch on the GPU (when torch has CUDA).
Targets of issue 13: within 1.2x of the cuFFT floor, >= 2x faster than the plain
CuPy implementation for the stack.

Run:  PYTHONPATH=python python benchmarks/bench_gpu.py [--repeat 5] [--quick]
      [--out benchmarks/results/bench_gpu.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

try:
    import diffimaging  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import diffimaging as di
from diffimaging._backend import capabilities as CAP
from diffimaging._backend import cuda as C
from diffimaging._backend.config import config_dict
from diffimaging.holography import backprop as HB
from diffimaging.holography import volume as HV
from diffimaging.ops import propagate as P

LAM, PX = 532e-9, 3.45e-6


def _time(fn, repeat):
    import cupy as cp

    fn()
    cp.cuda.Device().synchronize()
    ts = []
    for _ in range(repeat):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b) / 1e3)
    return float(np.median(ts))


def _torch_time(fn, repeat):
    import torch

    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(repeat):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    return float(np.median(ts))


class _Reference:
    """Route the package's operations to the array-API reference path (the plain
    implementation: transfer function built per call with the library's ops), and
    keep torch CUDA tensors in torch (no zero-copy detour through the kernels)."""

    def __enter__(self):
        self.saved = (P.route, HV.route, HB.route, C.torch_cuda_usable)
        ref = lambda op, xp: CAP.REFERENCE  # noqa: E731
        P.route = HV.route = HB.route = ref
        C.torch_cuda_usable = lambda *a: False

    def __exit__(self, *exc):
        P.route, HV.route, HB.route, C.torch_cuda_usable = self.saved


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def bench_propagate(n, repeat):
    import cupy as cp

    rng = np.random.default_rng(0)
    u = cp.asarray((rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
                   .astype(np.complex64))
    py, px = P.padded_shape((n, n))
    big = cp.zeros((py, px), cp.complex64)

    def ours():
        di.propagate(u, 5e-3, wavelength=LAM, pixel_size=PX)

    def floor():
        cp.fft.ifft2(cp.fft.fft2(u, s=(py, px)))

    out = dict(shape=[n, n], fft_grid=[py, px], ours_s=_time(ours, repeat),
               floor_s=_time(floor, repeat))
    with _Reference():
        out["plain_cupy_s"] = _time(ours, repeat)
    torch = _torch()
    if torch is not None:
        t = torch.as_tensor(cp.asnumpy(u), device="cuda")

        def tref():
            p = P.Plan.make(t, 5e-3, LAM, PX)
            P._forward_reference(p, t)

        with _Reference():
            out["torch_s"] = _torch_time(tref, repeat)
    del big
    return out


def bench_backprop(n, planes, repeat):
    import cupy as cp

    rng = np.random.default_rng(1)
    h = cp.asarray((1.0 + 0.05 * rng.standard_normal((n, n))).astype(np.float32))
    zs = np.linspace(5e-3, 50e-3, planes)
    py, px = P.padded_shape((n, n))
    batch = 32
    spec = cp.zeros((batch, py, px), cp.complex64)

    def ours():
        HB.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, output="projections")

    def floor():
        cp.fft.fft2(h.astype(cp.complex64), s=(py, px))
        for _ in range(0, planes, batch):
            cp.fft.ifft2(spec)

    out = dict(shape=[n, n], planes=planes, ours_s=_time(ours, repeat),
               floor_s=_time(floor, repeat))
    out["planes_per_s"] = planes / out["ours_s"]
    with _Reference():
        out["plain_cupy_s"] = _time(ours, max(1, repeat // 2))
    torch = _torch()
    if torch is not None:
        t = torch.as_tensor(cp.asnumpy(h), device="cuda")

        def tref():
            HB.backpropagate(t, zs, wavelength=LAM, pixel_size=PX, output="projections")

        with _Reference():
            out["torch_s"] = _torch_time(tref, max(1, repeat // 2))
    return out


def bench_dh(n, planes, repeat):
    import cupy as cp

    rng = np.random.default_rng(2)
    zs = np.linspace(5e-3, 30e-3, planes)
    o = cp.asarray((-0.1 * rng.random((planes, n, n))).astype(np.float32))
    g = cp.asarray(rng.standard_normal((n, n)).astype(np.float32))
    v = HV.Volume(zs, LAM, PX)
    py, px = P.padded_shape((n, n))
    chunk = 16
    spec = cp.zeros((chunk, py, px), cp.complex64)

    def ours():
        out, res = v.forward(o, {"dz": 0.0, "reference": 1.0})
        v.backward(res, g)

    def floor():
        for _ in range(0, planes, chunk):
            cp.fft.fft2(spec)          # the planes' spectra (forward)
            cp.fft.ifft2(spec)         # the planes' cotangents (backward)
        cp.fft.ifft2(spec[0])
        cp.fft.fft2(spec[0])

    out = dict(shape=[n, n], planes=planes, ours_s=_time(ours, repeat),
               floor_s=_time(floor, repeat))
    with _Reference():
        out["plain_cupy_s"] = _time(ours, max(1, repeat // 2))
    torch = _torch()
    if torch is not None:
        ot = torch.as_tensor(cp.asnumpy(o), device="cuda")
        gt = torch.as_tensor(cp.asnumpy(g), device="cuda")

        def tref():
            out, res = v.forward(ot, {"dz": 0.0, "reference": 1.0})
            v.backward(res, gt)

        with _Reference():
            out["torch_s"] = _torch_time(tref, max(1, repeat // 2))
    return out


def bench_dh_fused(n, planes, iterations):
    """One FISTA iteration of the full ∂H reconstruction on CuPy: the fused real-object
    engine (half spectra, the reach grid) against the generic model/solver path, each
    per iteration from the difference of two runs (2 and 2 + iterations iterations,
    the faster of two tries each, after a warm-up run: the set-up cancels).  Floor: one real forward and one real inverse transform per
    plane on the fused engine's grid (cupy.fft, batched)."""
    import time

    import cupy as cp

    from diffimaging import holography as H
    from diffimaging.holography._dhfast import reach_grid

    rng = np.random.default_rng(3)
    h = cp.asarray((1.0 + 0.05 * rng.standard_normal((n, n))).astype(np.float32))
    zs = np.linspace(5e-3, 30e-3, planes)

    def run(engine, it):
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        H.reconstruct(h, zs, wavelength=LAM, pixel_size=PX, iterations=it, engine=engine,
                      learn_z=False)
        cp.cuda.Device().synchronize()
        return time.perf_counter() - t0

    def per_iteration(engine):
        run(engine, 2)   # warm-up: cuFFT plans, CuPy's kernel compilation, memory pool
        short = min(run(engine, 2) for _ in range(2))
        long = min(run(engine, 2 + iterations) for _ in range(2))
        return (long - short) / iterations

    my, mx = reach_grid((n, n), float(zs.max()), LAM, (PX, PX))
    batch = 16
    x = cp.zeros((batch, my, mx), cp.float32)

    def floor():
        for _ in range(0, planes, batch):
            cp.fft.irfft2(cp.fft.rfft2(x), s=(my, mx))

    out = dict(shape=[n, n], planes=planes, grid=[my, mx], ours_s=per_iteration("fused"),
               floor_s=_time(floor, 5))
    out["generic_s"] = per_iteration("generic")
    out["ours_over_generic"] = out["ours_s"] / out["generic_s"]
    return out


def bench_fpm(iterations):
    """One pass over all LEDs of ``fpm.reconstruct`` (the standard 15 x 15 case,
    128^2 camera pixels) on CuPy images: with the CUDA fidelity kernel, with the
    array-API fidelity step on the GPU, and on numpy (the CPU), each per pass from
    the difference of two runs (2 and 2 + iterations passes, after a warm-up)."""
    import sys as _sys
    import time

    import cupy as cp

    from diffimaging import fpm

    R = _sys.modules["diffimaging.fpm.reconstruct"]
    data = fpm.simulate(shape=(128, 128), seed=0)
    gpu_images = cp.asarray(data.images)

    def run(images, it):
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        fpm.reconstruct(images, data.setup, iterations=it, calibrate=False)
        cp.cuda.Device().synchronize()
        return time.perf_counter() - t0

    def per_pass(images):
        run(images, 2)
        short = min(run(images, 2) for _ in range(2))
        long = min(run(images, 2 + iterations) for _ in range(2))
        return (long - short) / iterations

    out = dict(leds=int(data.setup.n_leds), shape=[128, 128], ours_s=per_pass(gpu_images))
    saved = R.route
    R.route = lambda op, xp: CAP.REFERENCE
    try:
        out["array_api_gpu_s"] = per_pass(gpu_images)
    finally:
        R.route = saved
    out["cpu_s"] = per_pass(data.images)
    out["ours_over_array_api_gpu"] = out["ours_s"] / out["array_api_gpu_s"]
    out["ours_over_cpu"] = out["ours_s"] / out["cpu_s"]
    return out


def bench_big_backprop(n=2048, planes=1000):
    """The memory case of issue 13: a 2048^2 hologram back-propagated to 1000 planes,
    projections only. The stack alone would be 1000 x 4096^2 complex64 = 134 GB (the
    padded spectra) or 33.5 GB (the cropped planes); the batches are sized from the
    free memory. Reports the time, planes/s and the largest memory the CuPy pool
    held (its total bytes after the call: the pool keeps the blocks it allocated)."""
    import time

    import cupy as cp

    from diffimaging import holography as H

    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    rng = np.random.default_rng(4)
    h = cp.asarray((1.0 + 0.05 * rng.standard_normal((n, n))).astype(np.float32))
    zs = np.linspace(5e-3, 100e-3, planes)
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    proj = H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, output="projections")
    cp.cuda.Device().synchronize()
    t = time.perf_counter() - t0
    py, px = P.padded_shape((n, n))
    return dict(shape=[n, n], planes=planes, seconds=t, planes_per_s=planes / t,
                pool_bytes=int(pool.total_bytes()),
                padded_stack_bytes=int(planes * py * px * 8),
                maps=sorted(proj))


def _ratios(r):
    for key in ("floor_s", "plain_cupy_s", "torch_s"):
        if key in r:
            r["ours_over_" + key[:-2]] = r["ours_s"] / r[key]
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--out", default="benchmarks/results/bench_gpu.json")
    ap.add_argument("--workloads", default="propagate,backprop,dh_iteration,dh_fused,fpm",
                    help="comma-separated subset of the workloads (also: big, the 2048^2 x "
                         "1000-plane back-propagation's memory)")
    a = ap.parse_args(argv)
    try:
        import cupy as cp

        ok = cp.cuda.is_available()
    except Exception:
        ok = False
    if not ok or not di._backend.kernels.have_cuda_module():
        print("bench_gpu: needs an NVIDIA GPU, CuPy and the CUDA module "
              f"(CUDA module: {di._backend.kernels.cuda_unavailable_reason() or 'built'})")
        return 2
    q = a.quick
    res = dict(device=cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
               config=config_dict())
    want = {w.strip() for w in a.workloads.split(",") if w.strip()}
    unknown = want - {"propagate", "backprop", "dh_iteration", "dh_fused", "fpm", "big"}
    if unknown:
        ap.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    if "propagate" in want:
        res["propagate"] = _ratios(bench_propagate(512 if q else 2048, a.repeat))
    if "backprop" in want:
        res["backprop"] = _ratios(bench_backprop(256 if q else 1024, 64 if q else 512, a.repeat))
    if "dh_iteration" in want:
        res["dh_iteration"] = _ratios(bench_dh(256 if q else 1024, 16 if q else 128, a.repeat))
    if "dh_fused" in want:
        res["dh_fused"] = _ratios(bench_dh_fused(256 if q else 1024, 16 if q else 128,
                                                 3 if q else 10))
    if "fpm" in want:
        res["fpm"] = bench_fpm(2 if q else 5)
    if "big" in want:
        res["big"] = bench_big_backprop()
        r = res["big"]
        print(f"{'big':13s} {r['planes']} planes of {r['shape']} in {r['seconds']:.2f} s "
              f"({r['planes_per_s']:.0f} planes/s), pool {r['pool_bytes'] / 2**30:.1f} GiB "
              f"(padded stack {r['padded_stack_bytes'] / 2**30:.1f} GiB)", flush=True)
    for name in ("propagate", "backprop", "dh_iteration"):
        if name not in res:
            continue
        r = res[name]
        line = f"{name:13s} ours {r['ours_s'] * 1e3:9.2f} ms  x floor {r['ours_over_floor']:.2f}"
        line += f"  x plain CuPy {r['ours_over_plain_cupy']:.2f}"
        if "ours_over_torch" in r:
            line += f"  x torch {r['ours_over_torch']:.2f}"
        if "planes_per_s" in r:
            line += f"  ({r['planes_per_s']:.0f} planes/s)"
        print(line, flush=True)
    if "dh_fused" in res:
        r = res["dh_fused"]
        print(f"{'dh_fused':13s} ours {r['ours_s'] * 1e3:9.2f} ms per FISTA iteration  x floor "
              f"{r['ours_over_floor']:.2f}  x generic GPU path {r['ours_over_generic']:.2f}",
              flush=True)
    if "fpm" in res:
        r = res["fpm"]
        print(f"{'fpm':13s} ours {r['ours_s'] * 1e3:9.2f} ms per pass over {r['leds']} LEDs  x "
              f"array-API GPU path {r['ours_over_array_api_gpu']:.2f}  x CPU "
              f"{r['ours_over_cpu']:.3f}", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
