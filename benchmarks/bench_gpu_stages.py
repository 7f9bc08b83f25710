#!/usr/bin/env python
"""Where the GPU time of bench_gpu.py's workloads goes: each stage alone (padded FFT,
transfer kernels, inverse FFT and crop, min/max projection, the volume's forward and
VJP), host (CPU) and device (GPU) time from ``cupyx.profiler.benchmark``.

Needs an NVIDIA GPU, CuPy and the CUDA module.

Run:  PYTHONPATH=python python benchmarks/bench_gpu_stages.py [--out benchmarks/results/bench_gpu_stages.json]
"""
import argparse
import json
import sys
from pathlib import Path

try:
    import diffimaging  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import numpy as np
import cupy as cp
from cupyx.profiler import benchmark
import diffimaging as di
from diffimaging.ops import propagate as P
from diffimaging.holography import volume as HV
from diffimaging._backend import cuda_propagate as KC
from diffimaging._backend import cuda_pointwise as KP

LAM, PX = 532e-9, 3.45e-6
ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
ap.add_argument("--out", default="benchmarks/results/bench_gpu_stages.json")
args = ap.parse_args()
out = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode()}
def b(name, fn, n=10):
    r = benchmark(fn, n_repeat=n, n_warmup=2)
    out[name] = dict(cpu_ms=float(np.mean(r.cpu_times) * 1e3), gpu_ms=float(np.mean(r.gpu_times[0]) * 1e3))
    print(f"{name:40s} cpu {out[name]['cpu_ms']:8.3f} ms  gpu {out[name]['gpu_ms']:8.3f} ms", flush=True)

rng = np.random.default_rng(0)
n = 2048
u = cp.asarray((rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64))
b("propagate 2048 (public)", lambda: di.propagate(u, 5e-3, wavelength=LAM, pixel_size=PX))
b("Plan.make", lambda: P.Plan.make(u, 5e-3, LAM, PX))
p = P.Plan.make(u, 5e-3, LAM, PX)
b("device_spectrum (pad+fft)", lambda: p.device_spectrum(u))
U = p.device_spectrum(u)
b("fft2 s=(4096,4096) (floor half)", lambda: cp.fft.fft2(u, s=(p.py, p.px)))
b("transfer_apply 4096^2", lambda: KC.transfer_apply(U, U, p, 5e-3, conjugate=False))
b("inverse_crop", lambda: p.inverse_crop(U))
b("ifft2 4096^2", lambda: cp.fft.ifft2(U))
# stack
h = cp.asarray((1.0 + 0.05 * rng.standard_normal((1024, 1024))).astype(np.float32))
p2 = P.Plan.make(h, -5e-3, LAM, PX, pad=True, carrier=False, op="backpropagate")
U2 = p2.device_spectrum(h)
zs = KC.device_distances(-np.linspace(5e-3, 50e-3, 32))
S = cp.empty((32, 1, p2.py, p2.px), cp.complex64)
b("transfer_stack 32 x 2048^2", lambda: KC.transfer_stack(U2, S, zs, p2))
b("ifft2 32 x 2048^2", lambda: cp.fft.ifft2(S))
planes = cp.reshape(p2.inverse_crop(S), (32, 1024, 1024))
proj = {"min": cp.full((1024, 1024), np.inf, cp.float32), "argmin_z": cp.zeros((1024, 1024), cp.float32),
        "max": cp.full((1024, 1024), -np.inf, cp.float32), "argmax_z": cp.zeros((1024, 1024), cp.float32)}
b("minmax_project 32 x 1024^2", lambda: KP.minmax_project(planes, 0.0, np.linspace(5e-3, 50e-3, 32), proj))
b("transfer_stack_adjoint 32 -> 1", lambda: KC.transfer_stack_adjoint(S, U2, zs, p2, accumulate=False))
b("transfer_stack_dz 32", lambda: KC.transfer_stack_dz(U2, S, zs, p2))
b("transfer_pullback 1 plane", lambda: KC.transfer_pullback(U2, U2, U2.copy(), p2, 0.0, accumulate=False))
# dh
o = cp.asarray((-0.1 * rng.random((128, 1024, 1024))).astype(np.float32))
g = cp.asarray(rng.standard_normal((1024, 1024)).astype(np.float32))
v = HV.Volume(np.linspace(5e-3, 30e-3, 128), LAM, PX)
b("volume forward 1024^2 x 128", lambda: v.forward(o, {"dz": 0.0, "reference": 1.0}), n=3)
_, res = v.forward(o, {"dz": 0.0, "reference": 1.0})
b("volume backward 1024^2 x 128", lambda: v.backward(res, g), n=3)
Path(args.out).parent.mkdir(parents=True, exist_ok=True)
Path(args.out).write_text(json.dumps(out, indent=1))
