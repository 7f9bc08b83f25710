#!/usr/bin/env python
"""Core benchmarks of diffimaging on numpy (CPU kernels + scipy.fft).

Run from the repository root::

    PYTHONPATH=python python benchmarks/bench_core.py            # full run (~1-3 min on 2 cores)
    PYTHONPATH=python python benchmarks/bench_core.py --quick    # smoke test (sizes / 4, 2 repeats)
    PYTHONPATH=python python benchmarks/bench_core.py --repeat 9 --out /tmp/b.json

Every time is the median of ``--repeat`` runs after ``--warmup`` untimed calls.
Each measurement is timed *interleaved* with its baseline (A B B A A B ...), so
that drift on a noisy machine hits both alike, and each speed is reported as a
ratio against that baseline measured in the same run (CONVENTIONS.md, Benchmarks):

1. ``propagate`` (complex64, asm, lambda = 532 nm, pixel 2 um, z = 5 mm) vs the
   FFT floor: ``scipy.fft.fft2`` + ``scipy.fft.ifft2`` in place on a
   preallocated complex64 buffer of the FFT grid size (n^2 unpadded,
   next_fast_len(2n)^2 padded), workers = diffimaging.get_num_threads().
   Ratio = propagate / floor, target <= 1.2.
2. A 64-plane stack at 512^2 (pad=True) vs one forward + 64 inverse in-place
   FFTs on the padded grid.  Target <= 1.2.
3. The VJP pullback of propagate for (field, z) vs the forward call, timed
   interleaved.  Ratio = pullback / forward, target <= 2.5.
4. ``bin`` (float32, 4096^2) forward and pullback vs plain numpy
   (reshape-and-sum; ``np.repeat`` twice for the pullback, the adjoint of the
   unshifted reshape-sum).  Ratio = numpy / diffimaging (speed-up), target >= 2.
5. A plain numpy ASM propagation that builds the transfer function per call
   (float64 fftfreq grids, np.sqrt, np.exp(1j*phase), np.fft with ``s=``
   padding) vs ``propagate``.  Ratio = numpy / diffimaging (speed-up), no target.

Untimed sanity checks (accuracy against the plain numpy implementation,
adjoint dot tests of the pullbacks, bin against numpy) are printed too and
stored in the JSON.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.fft as sfft

try:
    import diffimaging as di
except ImportError:  # running from a source checkout without PYTHONPATH=python
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import diffimaging as di

from diffimaging._backend import config as di_config

WAVELENGTH = 532e-9  # m
PIXEL = 2e-6  # m
Z = 5e-3  # m
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "bench_core.json"


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------

def time_interleaved(fns: dict, repeat: int, warmup: int = 1) -> dict:
    """Median-ready timings (seconds) of the callables in ``fns``, interleaved.

    ``warmup`` untimed rounds first (plans, caches, page faults), then
    ``repeat`` rounds; the call order alternates every round (ABBA...) so that
    slow drifts of a noisy machine affect all callables alike.  The result of a
    call is freed after the clock stops.
    """
    items = list(fns.items())
    for _ in range(warmup):
        for _, f in items:
            r = f()
            del r
    times = {k: [] for k in fns}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rnd in range(repeat):
            order = items if rnd % 2 == 0 else items[::-1]
            for k, f in order:
                t0 = time.perf_counter()
                r = f()
                t1 = time.perf_counter()
                del r
                times[k].append(t1 - t0)
    finally:
        if was_enabled:
            gc.enable()
    return times


def _ms(ts) -> float:
    return float(np.median(ts)) * 1e3


# --------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------

def _rng(seed=0):
    return np.random.default_rng(seed)


def random_field(shape, seed=0, dtype=np.complex64):
    g = _rng(seed)
    return (g.standard_normal(shape) + 1j * g.standard_normal(shape)).astype(dtype)


def fft_grid(n: int, pad: bool) -> int:
    return int(sfft.next_fast_len(2 * n)) if pad else n


def make_fft_floor(m: int, workers: int):
    """fft2 then ifft2, in place, on a preallocated complex64 (m, m) buffer.
    The round trip returns the data to its scale, so repeated calls stay on
    normal floats."""
    buf = random_field((m, m), seed=1)

    def floor():
        sfft.fft2(buf, workers=workers, overwrite_x=True)
        sfft.ifft2(buf, workers=workers, overwrite_x=True)
        return None

    return floor


def make_stack_floor(m: int, nz: int, workers: int):
    """One forward + nz inverse FFTs, in place, on a preallocated (m, m) buffer.

    With the default norm, nz successive in-place inverse transforms would
    scale the data by 1/m each (rms) and drive it into float32 denormals, then
    zeros, within ~13 planes, which is not what a real stack computes.  So the
    first nz-1 inverses use norm="ortho" (unitary) and the last one the default
    norm, which undoes the forward's growth: the buffer keeps its scale from
    call to call.  pocketfft applies the scale factor in the same way for both
    norms (1/N or 1/sqrt(N), != 1 either way), so the work is that of nz
    default-norm inverses.  The forward uses the default norm, as the package does.
    """
    buf = random_field((m, m), seed=2)

    def floor():
        sfft.fft2(buf, workers=workers, overwrite_x=True)
        for _ in range(nz - 1):
            sfft.ifft2(buf, workers=workers, overwrite_x=True, norm="ortho")
        sfft.ifft2(buf, workers=workers, overwrite_x=True)
        return None

    return floor, buf


def propagate_numpy_plain(u, z, *, wavelength, pixel_size, pad=True, band_limit=True, carrier=True,
                          tf_dtype=None):
    """Plain numpy angular-spectrum propagation of a (ny, nx) field by z metres.

    Builds the transfer function on every call: float64 ``np.fft.fftfreq``
    grids, ``np.sqrt``, ``np.exp(1j*phase)``; evanescent waves dropped; the
    Matsushima-Shimobaba band limit and the carrier option as in diffimaging.
    H is cast to ``tf_dtype`` (default: the field's complex dtype, so a
    complex64 field stays complex64), then ``np.fft.fft2`` with ``s=`` zero
    padding, multiply, ``np.fft.ifft2``, crop.
    """
    ny, nx = u.shape[-2:]
    py, px = (fft_grid(ny, True), fft_grid(nx, True)) if pad else (ny, nx)
    fy = np.fft.fftfreq(py, d=pixel_size)[:, None]
    fx = np.fft.fftfreq(px, d=pixel_size)[None, :]
    inv_l = 1.0 / wavelength
    s = inv_l * inv_l - (fy * fy + fx * fx)
    keep = s > 0
    kz = np.sqrt(np.where(keep, s, 0.0))
    phase = (2 * np.pi * z) * (kz if carrier else kz - inv_l)
    if band_limit:
        def f_lim(n):
            df = 1.0 / (n * pixel_size)
            return 1.0 / (wavelength * np.sqrt((2.0 * df * abs(z)) ** 2 + 1.0))
        keep = keep & (np.abs(fy) <= f_lim(py)) & (np.abs(fx) <= f_lim(px))
    dt = u.dtype if tf_dtype is None else tf_dtype
    H = np.where(keep, np.exp(1j * phase), 0).astype(dt)
    U = np.fft.fft2(u, s=(py, px))
    v = np.fft.ifft2(U * H)
    return np.ascontiguousarray(v[..., :ny, :nx])


def bin_numpy(img, f):
    n0, n1 = img.shape
    return img.reshape(n0 // f, f, n1 // f, f).sum(axis=(1, 3))


def bin_adjoint_numpy(g, f):
    """Adjoint of the unshifted reshape-sum."""
    return np.repeat(np.repeat(g, f, 0), f, 1)


def rel_err(a, b) -> float:
    a = np.asarray(a, dtype=np.complex128)
    b = np.asarray(b, dtype=np.complex128)
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


# --------------------------------------------------------------------------
# benchmark cases
# --------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.rows = []

    def add(self, name, size, t, b, *, kind, target, baseline, params, ratio_kind):
        """kind: 'le' (ratio = t / b <= target) or 'ge' (ratio = b / t >= target)."""
        tm, bm = _ms(t), _ms(b)
        # ratio of the medians (the table's time and baseline columns), and the
        # median of the per-round ratios of adjacent calls (robust to drift)
        if ratio_kind == "time/baseline":
            ratio = tm / bm
            paired = float(np.median([a / c for a, c in zip(t, b)]))
        else:
            ratio = bm / tm
            paired = float(np.median([c / a for a, c in zip(t, b)]))
        if target is None:
            met = None
        elif kind == "le":
            met = ratio <= target
        else:
            met = ratio >= target
        row = {
            "name": name, "size": size, "time_ms": tm, "baseline_ms": bm, "ratio": ratio,
            "ratio_paired": paired, "ratio_kind": ratio_kind, "target": target,
            "target_op": {"le": "<=", "ge": ">="}[kind] if target is not None else None,
            "met": met, "baseline": baseline, "params": params,
            "times_ms": [x * 1e3 for x in t], "baseline_times_ms": [x * 1e3 for x in b],
        }
        self.rows.append(row)
        print(f"  {name:48s} {size:>12s}  {tm:9.2f} ms  base {bm:9.2f} ms  ratio {ratio:6.2f} (paired {paired:.2f})",
              flush=True)
        return row


def bench_propagate(rec, sizes, repeat, warmup, workers, checks):
    """1. propagate vs the FFT floor (+ accuracy vs plain numpy, untimed)."""
    for n in sizes:
        u = random_field((n, n), seed=10 + n % 97)
        for pad in (False, True):
            m = fft_grid(n, pad)
            floor = make_fft_floor(m, workers)
            for carrier in (False, True):
                kw = dict(wavelength=WAVELENGTH, pixel_size=PIXEL, method="asm", pad=pad,
                          carrier=carrier)
                t = time_interleaved({"prop": lambda: di.propagate(u, Z, **kw), "floor": floor},
                                     repeat, warmup)
                rec.add(f"propagate pad={pad} carrier={carrier}", f"{n}x{n}", t["prop"], t["floor"],
                        kind="le", target=1.2, ratio_kind="time/baseline",
                        baseline=f"FFT floor: scipy fft2+ifft2 in place, {m}x{m} c64, workers={workers}",
                        params=dict(n=n, fft_grid=m, z=Z, **kw, dtype="complex64"))
                # untimed accuracy check against the plain numpy implementation
                out = di.propagate(u, Z, **kw)
                ref = propagate_numpy_plain(u, Z, wavelength=WAVELENGTH, pixel_size=PIXEL, pad=pad,
                                            carrier=carrier)
                checks.add(f"propagate {n}x{n} pad={pad} carrier={carrier} vs numpy plain (c64)",
                           rel_err(out, ref), 1e-5, "rel. L2")
                del out, ref


def bench_stack(rec, n, nz, repeat, warmup, workers, checks):
    """2. stack of nz planes vs 1 forward + nz inverse FFTs; 3b. its pullback vs its forward."""
    u = random_field((n, n), seed=3)
    zs = np.linspace(1e-3, 5e-3, nz)
    m = fft_grid(n, True)
    kw = dict(wavelength=WAVELENGTH, pixel_size=PIXEL, method="asm", pad=True, carrier=False)
    floor, buf = make_stack_floor(m, nz, workers)

    def prop():
        return di.propagate(u, zs, **kw)

    t = time_interleaved({"prop": prop, "floor": floor}, repeat, warmup)
    checks.add("stack floor buffer stayed on normal floats (rms)",
               0.0 if 1e-3 < float(np.sqrt(np.mean(np.abs(buf) ** 2))) < 1e3 else 1.0, 0.0, "0 = ok")
    rec.add(f"propagate stack nz={nz}", f"{nz}x{n}x{n}", t["prop"], t["floor"], kind="le",
            target=1.2, ratio_kind="time/baseline",
            baseline=f"FFT floor: 1 fft2 + {nz} ifft2 in place, {m}x{m} c64, workers={workers}",
            params=dict(n=n, nz=nz, fft_grid=m, z="linspace(1e-3, 5e-3, nz)", **kw, dtype="complex64"))

    out, pullback = di.vjp(di.propagate, u, zs, **kw)
    g = random_field(out.shape, seed=4)
    t = time_interleaved({"pull": lambda: pullback(g), "fwd": prop}, repeat, warmup)
    rec.add(f"pullback stack nz={nz} (field, z)", f"{nz}x{n}x{n}", t["pull"], t["fwd"], kind="le",
            target=2.5, ratio_kind="time/baseline", baseline="forward propagate (same stack)",
            params=dict(n=n, nz=nz, fft_grid=m, **kw, dtype="complex64"))

    # untimed checks: planes vs plain numpy, and the adjoint dot test
    for k in (0, nz // 2, nz - 1):
        ref = propagate_numpy_plain(u, float(zs[k]), wavelength=WAVELENGTH, pixel_size=PIXEL,
                                    pad=True, carrier=False)
        checks.add(f"stack plane {k} (z={zs[k]:.3g}) vs numpy plain (c64)", rel_err(out[k], ref),
                   1e-5, "rel. L2")
    du, dz = pullback(g)
    checks.add(f"stack pullback dot test {nz}x{n}x{n}", dot_test(out, g, u, du), 1e-5,
               "|<Au,g>-<u,A^H g>|/(|Au||g|)")
    checks.add(f"stack pullback dz shape/dtype", 0.0 if (dz.shape == zs.shape and dz.dtype == zs.dtype)
               else 1.0, 0.0, "0 = ok")


def dot_test(Au, g, u, AHg) -> float:
    lhs = np.vdot(Au.astype(np.complex128).ravel(), g.astype(np.complex128).ravel())
    rhs = np.vdot(u.astype(np.complex128).ravel(), AHg.astype(np.complex128).ravel())
    return float(abs(lhs - rhs) / (np.linalg.norm(Au.ravel()) * np.linalg.norm(g.ravel())))


def bench_pullback(rec, sizes, repeat, warmup, checks):
    """3. pullback of propagate for (field, z) vs the forward call."""
    for n in sizes:
        u = random_field((n, n), seed=20 + n % 89)
        kw = dict(wavelength=WAVELENGTH, pixel_size=PIXEL, method="asm", pad=True, carrier=False)
        out, pullback = di.vjp(di.propagate, u, Z, **kw)
        g = random_field(out.shape, seed=5)
        t = time_interleaved({"pull": lambda: pullback(g), "fwd": lambda: di.propagate(u, Z, **kw)},
                             repeat, warmup)
        rec.add("pullback propagate (field, z)", f"{n}x{n}", t["pull"], t["fwd"], kind="le",
                target=2.5, ratio_kind="time/baseline", baseline="forward propagate (same call)",
                params=dict(n=n, fft_grid=fft_grid(n, True), z=Z, **kw, dtype="complex64"))
        du, dz = pullback(g)
        checks.add(f"pullback dot test {n}x{n}", dot_test(out, g, u, du), 1e-5,
                   "|<Au,g>-<u,A^H g>|/(|Au||g|)")
        del out, pullback, du


def bench_bin(rec, n, repeat, warmup, checks):
    """4. bin forward and pullback vs plain numpy."""
    img = _rng(6).random((n, n), dtype=np.float32)
    for f in (2, 4):
        t = time_interleaved({"di": lambda: di.bin(img, factor=f), "np": lambda: bin_numpy(img, f)},
                             repeat, warmup)
        rec.add(f"bin f={f}", f"{n}x{n}", t["di"], t["np"], kind="ge", target=2.0,
                ratio_kind="baseline/time", baseline="numpy reshape(n/f,f,n/f,f).sum((1,3))",
                params=dict(n=n, factor=f, shift=None, dtype="float32"))
        out, pullback = di.vjp(di.bin, img, factor=f)
        g = _rng(7).random(out.shape, dtype=np.float32)
        t = time_interleaved({"di": lambda: pullback(g), "np": lambda: bin_adjoint_numpy(g, f)},
                             repeat, warmup)
        rec.add(f"bin pullback f={f}", f"{n}x{n}", t["di"], t["np"], kind="ge", target=2.0,
                ratio_kind="baseline/time",
                baseline="numpy np.repeat(np.repeat(g,f,0),f,1) (adjoint of unshifted reshape-sum)",
                params=dict(n=n, factor=f, shift=None, dtype="float32"))
        ref = bin_numpy(img.astype(np.float64), f)
        checks.add(f"bin f={f} vs numpy reshape-sum (float64)", rel_err(out, ref), 1e-6, "rel. L2")
        (du,) = pullback(g)
        checks.add(f"bin pullback f={f} vs np.repeat", float(np.max(np.abs(du - bin_adjoint_numpy(g, f)))),
                   0.0, "max abs diff")
        del out, pullback, du

    f, shift = 4, (0.3, -0.2)
    t = time_interleaved({"di": lambda: di.bin(img, shift, factor=f), "np": lambda: bin_numpy(img, f)},
                         repeat, warmup)
    # numpy has no shifted exact-area binning: the shifted rows are informational
    # (no target), compared with the unshifted numpy operations
    rec.add(f"bin f={f} shift={shift}", f"{n}x{n}", t["di"], t["np"], kind="ge", target=None,
            ratio_kind="baseline/time",
            baseline="numpy reshape-sum, UNSHIFTED (a lower bound for a shifted numpy bin)",
            params=dict(n=n, factor=f, shift=shift, dtype="float32"))
    out, pullback = di.vjp(di.bin, img, shift, factor=f)
    g = _rng(8).random(out.shape, dtype=np.float32)
    t = time_interleaved({"di": lambda: pullback(g), "np": lambda: bin_adjoint_numpy(g, f)},
                         repeat, warmup)
    rec.add(f"bin pullback f={f} shift={shift} (img, shift)", f"{n}x{n}", t["di"], t["np"], kind="ge",
            target=None, ratio_kind="baseline/time",
            baseline="numpy np.repeat x2, UNSHIFTED adjoint (no shift gradient)",
            params=dict(n=n, factor=f, shift=shift, dtype="float32",
                        note="diffimaging also computes the shift cotangent"))
    du, dshift = pullback(g)
    lhs = float(np.vdot(out.astype(np.float64).ravel(), g.astype(np.float64).ravel()))
    rhs = float(np.vdot(img.astype(np.float64).ravel(), du.astype(np.float64).ravel()))
    checks.add(f"bin f={f} shift={shift} pullback dot test", abs(lhs - rhs) /
               (np.linalg.norm(out.ravel()) * np.linalg.norm(g.ravel())), 1e-5,
               "|<Bu,g>-<u,B^T g>|/(|Bu||g|)")
    checks.add(f"bin shift cotangent finite", 0.0 if np.all(np.isfinite(dshift)) and np.shape(dshift) == (2,)
               else 1.0, 0.0, "0 = ok")


def bench_numpy_plain(rec, sizes, repeat, warmup, checks):
    """5. plain numpy propagation (transfer function built per call) vs propagate."""
    for n in sizes:
        u = random_field((n, n), seed=30 + n % 83)
        kw = dict(wavelength=WAVELENGTH, pixel_size=PIXEL, pad=True, carrier=True)
        t = time_interleaved({"di": lambda: di.propagate(u, Z, method="asm", **kw),
                              "np": lambda: propagate_numpy_plain(u, Z, **kw)}, repeat, warmup)
        rec.add("propagate vs plain numpy", f"{n}x{n}", t["di"], t["np"], kind="ge", target=None,
                ratio_kind="baseline/time",
                baseline="plain numpy ASM (TF built per call, np.fft, c64 data path)",
                params=dict(n=n, fft_grid=fft_grid(n, True), z=Z, method="asm", **kw, dtype="complex64"))
        if n == max(sizes):
            # accuracy of both single-precision paths against a complex128 computation
            out = di.propagate(u, Z, method="asm", **kw)
            ref64 = propagate_numpy_plain(u.astype(np.complex128), Z, **kw)
            checks.add(f"propagate {n}x{n} c64 vs numpy plain c128", rel_err(out, ref64), 1e-5, "rel. L2")
            ref32 = propagate_numpy_plain(u, Z, **kw)
            checks.add(f"numpy plain {n}x{n} c64 vs numpy plain c128 (for scale)", rel_err(ref32, ref64),
                       1e-5, "rel. L2")
            del out, ref64, ref32


class Checks:
    def __init__(self):
        self.items = []

    def add(self, name, value, tol, metric):
        ok = bool(value <= tol)
        self.items.append({"name": name, "value": float(value), "tol": tol, "metric": metric, "ok": ok})


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------

def config_info(args) -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = None
    try:
        root = Path(__file__).resolve().parents[1]
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        git = {"head": head or None, "dirty": bool(dirty)}
    except Exception:
        pass
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "diffimaging": di_config.config_dict(),
        "diffimaging_file": di.__file__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "threads": di.get_num_threads(),
        "fft_workers": di.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("DIFFIMAGING_NUM_THREADS", "OMP_NUM_THREADS",
                                               "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "git": git,
        "args": vars(args),
        "constants": {"wavelength_m": WAVELENGTH, "pixel_size_m": PIXEL, "z_m": Z},
    }


def format_table(rows) -> str:
    hdr = (f"{'name':48s} {'size':>12s} {'time ms':>10s} {'baseline ms':>12s} {'ratio':>7s} "
           f"{'paired':>7s} {'target':>8s} {'met':>4s}  baseline")
    lines = [hdr, "-" * len(hdr)]
    for r in rows:
        if r["target"] is None:
            tgt, met = "-", "n/a"
        else:
            tgt = f"{r['target_op']} {r['target']:g}"
            met = "yes" if r["met"] else "no"
        rk = "t/b" if r["ratio_kind"] == "time/baseline" else "b/t"
        lines.append(f"{r['name']:48s} {r['size']:>12s} {r['time_ms']:10.2f} {r['baseline_ms']:12.2f} "
                     f"{r['ratio']:7.2f} {r['ratio_paired']:7.2f} {tgt:>8s} {met:>4s}  [{rk}] {r['baseline']}")
    lines.append("ratio [t/b] = time / baseline (lower is better); [b/t] = baseline / time (speed-up); "
                 "both columns are medians of the repeats.")
    lines.append("paired = median over repeats of the ratio of the two adjacent calls (less sensitive to "
                 "drift); 'met' uses ratio.")
    return "\n".join(lines)


def format_checks(items) -> str:
    lines = [f"{'check':66s} {'value':>10s} {'tol':>8s}  ok   metric"]
    for c in items:
        lines.append(f"{c['name']:66s} {c['value']:10.2e} {c['tol']:8.0e}  {'yes' if c['ok'] else 'NO ':3s}"
                     f"  {c['metric']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed runs per measurement, median reported (default 5; 2 with --quick)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up calls per callable (default 1)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: sizes divided by 4, 16 stack planes, 2 repeats")
    args = ap.parse_args(argv)
    if args.repeat is None:
        args.repeat = 2 if args.quick else 5
    if args.repeat < 1 or args.warmup < 0:
        ap.error("--repeat must be >= 1 and --warmup >= 0")
    return args


def run(args) -> dict:
    from diffimaging._backend import kernels as _kernels

    if not _kernels.have_cpu():
        raise SystemExit("bench_core: the compiled CPU kernels are not in use (diffimaging._core did "
                         "not import); install the package (pip install .) before benchmarking")
    t_start = time.perf_counter()
    div = 4 if args.quick else 1
    prop_sizes = [1024 // div, 2048 // div]
    stack_n, stack_nz = 512 // div, (16 if args.quick else 64)
    bin_n = 4096 // div
    workers = di.get_num_threads()
    cfg = config_info(args)

    di.show_config()
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, cpu_count {os.cpu_count()}, "
          f"affinity {cfg['cpu_affinity']}, threads/FFT workers {workers}, repeat {args.repeat}, "
          f"warmup {args.warmup}{', QUICK' if args.quick else ''}")
    print("measuring (median of repeats, interleaved with the baseline):", flush=True)

    rec, checks = Recorder(), Checks()
    bench_propagate(rec, prop_sizes, args.repeat, args.warmup, workers, checks)
    bench_stack(rec, stack_n, stack_nz, args.repeat, args.warmup, workers, checks)
    bench_pullback(rec, prop_sizes, args.repeat, args.warmup, checks)
    bench_bin(rec, bin_n, args.repeat, args.warmup, checks)
    bench_numpy_plain(rec, prop_sizes, args.repeat, args.warmup, checks)
    elapsed = time.perf_counter() - t_start

    print()
    print(format_table(rec.rows))
    print()
    print("sanity checks (untimed):")
    print(format_checks(checks.items))
    n_t = sum(r["met"] is not None for r in rec.rows)
    n_met = sum(bool(r["met"]) for r in rec.rows)
    n_ok = sum(c["ok"] for c in checks.items)
    print(f"\ntargets met: {n_met}/{n_t}; checks passed: {n_ok}/{len(checks.items)}; "
          f"total {elapsed:.1f} s")

    result = {"benchmark": "bench_core", "config": cfg, "rows": rec.rows, "checks": checks.items,
              "summary": {"targets_met": n_met, "targets": n_t, "checks_passed": n_ok,
                          "checks": len(checks.items), "elapsed_s": elapsed}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {out}")
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run(args)
    return 0 if all(c["ok"] for c in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
