#!/usr/bin/env python
"""Autofocus accuracy (bias and scatter of each criterion) and speed.

Single particles: ``--count`` random opaque disks (diameters 8-12 um, depths uniform
in 1-5 mm, lateral position within 4 px of the centre of an ``--n``^2 hologram,
lambda 532 nm, 2 um pixels, ``--noise`` relative Gaussian noise), one particle per
hologram, each focused with every criterion at its true lateral position (default
window: the whole hologram for these sizes; z_range 1-5 mm, coarse=41).  Reported
per criterion: bias = mean(z - z_true), std = standard deviation of z - z_true over
the particles (mostly systematic: the bias depends on diameter and depth), rms,
the largest |error|, the median z_std, the share of particles with
|z - z_true - bias| <= 3 z_std (the bias varies from particle to particle, so this
share is well below 1 where std >> z_std), and the time per autofocus (median over the
particles after a warm-up) with its ratio to one single-plane ``propagate`` of the
window (baseline measured in the same run).

Planar samples (whole-hologram mode): ``--planar`` samples of 8 particles (8-12 um)
on one plane at a random depth in 1.5-4.5 mm, 40 um from the edges, 1 % noise,
(a) on 128^2 pixels of 2 um and (b) simulated on 256^2 pixels of 2 um and binned
to 128^2 pixels of 4 um (the same particles seen by a sensor twice as wide).

Noise calibration: one 10 um particle on 128^2 (at 2.5 mm with 1 % noise, at 4.5 mm
with 3 %), ``--mc`` independent noise draws: the scatter of z against the median z_std.

Microscope spheres (``--mie``, default 15): Lorenz-Mie holograms (holography.mie) of
one sphere near the centre of a 512^2 frame with two neighbouring spheres 10-18 um
away: polystyrene (1.59), silica (1.45) and absorbing (1.59 + 0.3i) spheres of radius
0.4-1.0 um in water (1.33), depths 8-26 um, lambda 405 / 532 / 660 nm, objective pixels
0.05 / 0.075 / 0.1 um, a non-uniform illumination (15 % fringe + gradient), 2 % noise,
10-bit counts divided by an imperfect background estimate (2 % error); autofocus over
3-40 um at the true lateral position, with the default criterion.  Pass: |z - z_true|
<= max(1 um, 3 radius, 0.2 z); coverage: |z - z_true| <= 3 z_std.  ``--before REF``
also runs the autofocus of git revision REF on the same cases (the "old" column).

Run:  PYTHONPATH=python python benchmarks/bench_autofocus.py [--n 128 256] [--count 20]
      [--planar 10] [--mc 30] [--mie 15] [--before REF] [--quick]
      (about 8 minutes on 2 busy cores, plus some 20 s per sphere with --before)
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

try:
    import diffimaging  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from diffimaging._backend.config import config_dict
from diffimaging.holography import simulate_particles
from diffimaging.holography.autofocus import autofocus
from diffimaging.holography.mie import mie_hologram
from diffimaging.ops.propagate import propagate

LAM, PX = 532e-9, 2e-6
Z_RANGE = (1e-3, 5e-3)
CRITERIA = ("quadrature", "min_intensity", "variance", "gradient")


def _stats(err, std, times, t_prop):
    err, std = np.asarray(err), np.asarray(std)
    bias = float(np.mean(err))
    return dict(bias_um=bias * 1e6, std_um=float(np.std(err, ddof=1)) * 1e6,
                rms_um=float(np.sqrt(np.mean(err ** 2))) * 1e6, max_abs_um=float(np.max(np.abs(err))) * 1e6,
                median_z_std_um=float(np.median(std)) * 1e6,
                within_3_z_std=float(np.mean(np.abs(err - bias) <= 3 * std)),
                seconds=float(np.median(times)), ratio_to_propagate=float(np.median(times) / t_prop),
                errors_um=[float(e * 1e6) for e in err], z_std_um=[float(s * 1e6) for s in std])


def _time_propagate(n, pixel=PX, repeat=7):
    """Median time of one single-plane propagate of an n^2 window (the baseline)."""
    u = np.random.default_rng(0).standard_normal((n, n))
    propagate(u, -3e-3, wavelength=LAM, pixel_size=pixel, carrier=False)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        propagate(u, -3e-3, wavelength=LAM, pixel_size=pixel, carrier=False)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def single_particles(n, count, noise, seed):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        y, x = (n / 2 + rng.uniform(-4, 4, 2)) * PX
        z, d = rng.uniform(*Z_RANGE), rng.uniform(8e-6, 12e-6)
        h, _ = simulate_particles((n, n), (np.array([[y, x, z]]), [d]), wavelength=LAM, pixel_size=PX,
                                  gaussian_noise=noise, seed=seed * 1000 + i)
        cases.append((h, (y, x), z, d))
    t_prop = _time_propagate(n)
    out = {}
    for crit in CRITERIA:
        kw = dict(wavelength=LAM, pixel_size=PX, criterion=crit)
        autofocus(cases[0][0], Z_RANGE, position=cases[0][1], **kw)  # warm-up
        err, std, times = [], [], []
        for h, pos, z, _ in cases:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = autofocus(h, Z_RANGE, position=pos, **kw)
            times.append(time.perf_counter() - t0)
            err.append(r.z - z)
            std.append(r.z_std)
        out[crit] = _stats(err, std, times, t_prop)
    return out, [dict(z_m=c[2], diameter_m=c[3], position_m=list(c[1])) for c in cases]


def planar(count, binned, seed):
    rng = np.random.default_rng(seed)
    n_sim, px, n = (256, PX, 128) if binned else (128, PX, 128)
    pix = 2 * PX if binned else PX
    cases = []
    for i in range(count):
        z = rng.uniform(1.5e-3, 4.5e-3)
        pos = np.column_stack([rng.uniform(40e-6, n_sim * px - 40e-6, 8),
                               rng.uniform(40e-6, n_sim * px - 40e-6, 8), np.full(8, z)])
        d = rng.uniform(8e-6, 12e-6, 8)
        h, _ = simulate_particles((n_sim, n_sim), (pos, d), wavelength=LAM, pixel_size=px,
                                  gaussian_noise=0.01, seed=seed * 1000 + i,
                                  bin_factor=2 if binned else 1)
        cases.append((h, z))
    t_prop = _time_propagate(n, pix)
    out = {}
    for crit in CRITERIA:
        err, std, times = [], [], []
        for h, z in cases:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = autofocus(h, Z_RANGE, wavelength=LAM, pixel_size=pix, criterion=crit)
            times.append(time.perf_counter() - t0)
            err.append(r.z - z)
            std.append(r.z_std)
        out[crit] = _stats(err, std, times, t_prop)
    return out


def noise_calibration(draws, seed):
    """Monte Carlo check of z_std: the same particle (10 um, 128^2) under ``draws``
    independent noise draws; the scatter of z against the median z_std."""
    out = {}
    rng = np.random.default_rng(seed + 7)
    for z_true, noise in ((2.5e-3, 0.01), (4.5e-3, 0.03)):
        pos = (64 * PX + 0.3e-6, 64 * PX - 0.6e-6)
        clean, _ = simulate_particles((128, 128), (np.array([[pos[0], pos[1], z_true]]), [10e-6]),
                                      wavelength=LAM, pixel_size=PX)
        holos = [clean + rng.normal(0.0, noise, clean.shape) for _ in range(draws)]
        for crit in CRITERIA:
            zs, ss = [], []
            for h in holos:
                r = autofocus(h, Z_RANGE, wavelength=LAM, pixel_size=PX, position=pos, criterion=crit)
                zs.append(r.z)
                ss.append(r.z_std)
            out[f"{crit} z={z_true * 1e3:g}mm noise={noise:g}"] = dict(
                scatter_um=float(np.std(zs, ddof=1)) * 1e6, median_z_std_um=float(np.median(ss)) * 1e6,
                ratio=float(np.std(zs, ddof=1) / np.median(ss)), mean_error_um=float(np.mean(zs) - z_true) * 1e6)
    return out


def mie_case(seed, n=512):
    """One realistic microscope hologram (see the module docstring) and its truth."""
    rng = np.random.default_rng(seed)
    d = float(rng.choice([0.05e-6, 0.075e-6, 0.1e-6]))
    lam = float(rng.choice([405e-9, 532e-9, 660e-9]))
    index = (1.59, 1.45, 1.59 + 0.3j)[seed % 3]
    a, z = rng.uniform(0.4e-6, 1.0e-6), rng.uniform(8e-6, 26e-6)
    c = n * d / 2 + rng.uniform(-1e-6, 1e-6, 2)
    pos, radii, indices = [[c[0], c[1], z]], [a], [index]
    for _ in range(2):
        ang, r = rng.uniform(0, 2 * np.pi), rng.uniform(10e-6, 18e-6)
        pos.append([c[0] + r * np.sin(ang), c[1] + r * np.cos(ang), rng.uniform(8e-6, 26e-6)])
        radii.append(rng.uniform(0.4e-6, 1e-6))
        indices.append(float(rng.choice([1.59, 1.45])))
    yy, xx = np.mgrid[0:n, 0:n] / n
    ill = 1 + 0.15 * np.cos(2 * np.pi * (0.7 * yy + 0.4 * xx) + rng.uniform(0, 6)) \
        + 0.05 * rng.standard_normal() * xx
    counts = mie_hologram((n, n), np.array(pos), radius=radii, n_particle=indices, n_medium=1.33,
                          wavelength=lam, pixel_size=d, illumination=ill, gaussian_noise=0.02, bits=10,
                          seed=seed)
    estimate = ill * (1 + 0.02 * np.sin(2 * np.pi * (xx + 0.3 * yy)))
    h = counts / (counts.mean() / ill.mean()) / estimate
    return h, dict(position_m=[float(c[0]), float(c[1])], z_m=float(z), radius_m=float(a),
                   n_particle=str(index), wavelength_m=lam, pixel_size_m=d)


def _autofocus_at(ref):
    """autofocus() of git revision ``ref`` (run in this package's namespace)."""
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", f"{ref}:python/diffimaging/holography/autofocus.py"], cwd=root,
                         check=True, capture_output=True, text=True).stdout
    path = Path(__file__).resolve().parent / "results" / "_autofocus_before.py"
    path.write_text(src)
    try:
        spec = importlib.util.spec_from_file_location("diffimaging.holography._autofocus_before", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    finally:
        path.unlink()
    return mod.autofocus


def mie_spheres(count, seed, before=None):
    old = _autofocus_at(before) if before else None
    rows = []
    for i in range(count):
        h, t = mie_case(seed * 1000 + i)
        kw = dict(wavelength=t["wavelength_m"], pixel_size=t["pixel_size_m"], position=t["position_m"])
        band = max(1e-6, 3 * t["radius_m"], 0.2 * t["z_m"])
        row = dict(t, band_m=band)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            r = autofocus(h, (3e-6, 40e-6), n_medium=1.33, **kw)
            row.update(new_z_m=r.z, new_z_std_m=r.z_std, new_criterion=r.criterion,
                       new_seconds=time.perf_counter() - t0, new_warnings=[str(w.message) for w in caught])
            if old is not None:
                # the old code had no n_medium: it is given the wavelength in the medium
                kw["wavelength"] = t["wavelength_m"] / 1.33
                t0 = time.perf_counter()
                ro = old(h, (3e-6, 40e-6), **kw)
                row.update(old_z_m=ro.z, old_z_std_m=ro.z_std, old_seconds=time.perf_counter() - t0)
        rows.append(row)
    return rows


def _print_mie(rows):
    print("microscope spheres (Lorenz-Mie, 512^2, neighbours, non-uniform background, 2 % noise, "
          "10 bits): um")
    print(f"  {'index':<12}{'a':>5}{'lam':>5}{'px':>6}{'true z':>8}{'band':>6}{'old z':>8}{'old s':>7}"
          f"{'new z':>8}{'z_std':>7}{'new s':>7}  ok  <=3z_std")
    for r in rows:
        old = (f"{r['old_z_m'] * 1e6:8.2f}{r['old_seconds']:7.1f}" if "old_z_m" in r else f"{'-':>8}{'-':>7}")
        err = r["new_z_m"] - r["z_m"]
        print(f"  {r['n_particle']:<12}{r['radius_m'] * 1e6:5.2f}{r['wavelength_m'] * 1e9:5.0f}"
              f"{r['pixel_size_m'] * 1e6:6.3f}{r['z_m'] * 1e6:8.2f}{r['band_m'] * 1e6:6.2f}{old}"
              f"{r['new_z_m'] * 1e6:8.2f}{r['new_z_std_m'] * 1e6:7.2f}{r['new_seconds']:7.2f}"
              f"  {'y' if abs(err) <= r['band_m'] else 'N':<3} {'y' if abs(err) <= 3 * r['new_z_std_m'] else 'N'}")
    within = np.mean([abs(r["new_z_m"] - r["z_m"]) <= r["band_m"] for r in rows])
    cover = np.mean([abs(r["new_z_m"] - r["z_m"]) <= 3 * r["new_z_std_m"] for r in rows])
    msg = f"  new: {within:.0%} within the band, {cover:.0%} within 3 z_std"
    if "old_z_m" in rows[0]:
        msg += f"; old: {np.mean([abs(r['old_z_m'] - r['z_m']) <= r['band_m'] for r in rows]):.0%} within"
    print(msg)


def _print(title, table):
    print(title)
    print(f"  {'criterion':<14}{'bias um':>9}{'std um':>9}{'rms um':>9}{'|max| um':>10}"
          f"{'z_std um':>10}{'<=3z_std':>9}{'s/call':>8}{'x prop':>8}")
    for crit, s in table.items():
        print(f"  {crit:<14}{s['bias_um']:9.2f}{s['std_um']:9.2f}{s['rms_um']:9.2f}"
              f"{s['max_abs_um']:10.2f}{s['median_z_std_um']:10.3f}{s['within_3_z_std']:9.2f}"
              f"{s['seconds']:8.3f}{s['ratio_to_propagate']:8.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--planar", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--mc", type=int, default=30, help="noise draws for the z_std check (0: skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mie", type=int, default=15, help="microscope Lorenz-Mie spheres (0: skip)")
    ap.add_argument("--before", default=None, help="git revision whose autofocus is run for comparison")
    ap.add_argument("--quick", action="store_true", help="4 particles, 2 planar samples, 128^2 only")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"
                                         / "bench_autofocus.json"))
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.count, a.planar, a.mc, a.mie = [128], 4, 2, 5, 3
    res = dict(benchmark="bench_autofocus", wavelength_m=LAM, pixel_size_m=PX, z_range_m=list(Z_RANGE),
               noise=a.noise, count=a.count, seed=a.seed, single={}, planar={})
    for n in a.n:
        table, cases = single_particles(n, a.count, a.noise, a.seed)
        res["single"][f"{n}x{n}"] = dict(criteria=table, particles=cases)
        _print(f"single opaque particles, 8-12 um at 1-5 mm, {n}^2 x 2 um, {a.noise:g} noise, "
               f"{a.count} particles (z - z_true):", table)
    if a.mie:
        rows = mie_spheres(a.mie, a.seed, a.before)
        res["mie_spheres"] = dict(before=a.before, cases=rows)
        _print_mie(rows)
    if a.planar:
        for binned in (False, True):
            key = "128x128_4um_binned" if binned else "128x128_2um"
            table = planar(a.planar, binned, a.seed)
            res["planar"][key] = table
            _print(f"whole hologram, planar samples of 8 particles (8-12 um) at 1.5-4.5 mm, {key}, "
                   f"{a.planar} samples:", table)
    if a.mc:
        cal = noise_calibration(a.mc, a.seed)
        res["noise_calibration"] = cal
        print(f"z_std check, 10 um particle on 128^2, {a.mc} noise draws: scatter of z / median z_std")
        for k, v in cal.items():
            print(f"  {k:<42} scatter {v['scatter_um']:6.3f} um  z_std {v['median_z_std_um']:6.3f} um  "
                  f"ratio {v['ratio']:5.2f}")
    res["config"] = config_dict()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
