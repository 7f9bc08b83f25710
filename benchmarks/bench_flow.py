#!/usr/bin/env python
"""Flow measurement through the full holographic pipeline.

A solid-body rotation about the optical axis is imaged as two in-line holograms
(``holography.motion.simulate_sequence``: 2 um pixels, 532 nm, opaque particles of
8-12 um at depths 1-3 mm, 1e-3 particles per pixel, 1 % Gaussian noise); each
hologram is preprocessed (``preprocess``: background division by a low-pass estimate,
as only two frames exist), back-propagated to an intensity stack
(``backpropagate(..., output="intensity")``), and then

* PIV: ``piv`` on the negated stacks (opaque particles are dark), window
  deformation with ``--passes`` passes; the vectors are compared with the exact
  displacement of the rotation (of the particle whose midpoint is at each window
  centre, and the chord at the centre) -> RMSE in voxels (targets: <= 0.2 voxel);
* PTV, ∂H detection: ``reconstruct(method="dh")`` of each frame (defaults, fused
  engine, ``--dh-iterations``) -> ``find_particles`` (automatic threshold) -> ``link``;
* PTV, back-propagation detection: ``find_particles`` (dark; a 7^3 neighbourhood as in ``diffimaging demo``, and
  the neighbourhood matched to 10 um particles where ``find_particles`` offers it)
  in each stack, then ``link``
  (plain, and predicted by the PIV field through ``ptv.predictor_from_piv``).  A
  link is *correct* when both its ends are matched (``match``, 2 px lateral, 30 um
  axial) to the same true particle in frames a and b (target: >= 90 % of the
  links).  Reported too: detection recall / precision, the fraction correct among
  the links whose both ends are matched (the linker's own accuracy), the fraction
  of links consistent with the true motion (end point within 1.5 px laterally of
  the rotated start), and the correct fraction with a 100 um axial tolerance.  A
  further detection variant smooths the stacks along z (Gaussian, ``--z-smooth``
  metres) before ``find_particles`` (diagnostic: the back-propagated intensity
  minima of opaque particles often sit ~+-40 um off focus).

Times: medians of ``--repeat`` runs after a warm-up for back-propagation, detection
and linking; PIV once per setting (``--piv-repeat``).  Baselines measured in the same
run: the FFT floor of back-propagation (1 forward + nz inverse padded transforms per
frame) and of PIV (the window FFTs of all passes, batched as in ``piv``).

Run:  PYTHONPATH=python python benchmarks/bench_flow.py [--n 256] [--passes 3] [--repeat 3]
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft as sfft
from scipy.ndimage import gaussian_filter1d

try:
    import diffimaging as di
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
    import diffimaging as di

from diffimaging import holography as H
from diffimaging._backend.config import config_dict
from diffimaging.holography import motion as M
from diffimaging.holography.analysis.ptv import predictor_from_piv

LAM, PX = 532e-9, 2e-6


def _median_time(fn, repeat):
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), ts


def _piv_truth(field, centers, zs):
    """(dz, dy, dx) voxels: displacement of the particle whose midpoint is at each centre,
    and the chord at the centre."""
    vox = np.array([zs[1] - zs[0], PX, PX])
    c = centers.reshape(-1, 3)
    m = np.column_stack([c[:, 1] * PX, c[:, 2] * PX, zs[0] + c[:, 0] * vox[0]])
    p = m.copy()
    for _ in range(40):
        p = m - 0.5 * field.displacement(p)

    def tovox(d):
        return np.column_stack([d[:, 2] / vox[0], d[:, 0] / PX, d[:, 1] / PX])

    return tovox(field.displacement(p)), tovox(field.displacement(m))


def _rmse(e):
    return float(np.sqrt(np.mean(np.sum(e ** 2, axis=1))))


def _ends(links, found, truth, axial_tol):
    """True-particle index of each link end (-1: unmatched), matching at 2 px laterally
    and ``axial_tol`` in depth."""
    ids = []
    for f, t in zip(found, truth):
        m = H.match(f, t, lateral_tol=2 * PX, axial_tol=axial_tol)
        i = np.full(len(f), -1)
        i[m.pairs[:, 0]] = m.pairs[:, 1]
        ids.append(i)
    return ids[0][links.pairs[:, 0]], ids[1][links.pairs[:, 1]]


def _link_scores(links, found, truth, field):
    """correct fraction (both ends matched to the same true particle), fraction among
    links with both ends matched, consistency with the true motion; the correct
    fraction again with a 100 um axial tolerance (diagnostic of the depth errors)."""
    a, b = _ends(links, found, truth, 30e-6)
    k = len(links.pairs)
    both = (a >= 0) & (b >= 0)
    ok = both & (a == b)
    a1, b1 = _ends(links, found, truth, 100e-6)
    ok100 = (a1 >= 0) & (a1 == b1)
    pa = found[0].positions[links.pairs[:, 0]]
    pb = found[1].positions[links.pairs[:, 1]]
    end = pa + field.displacement(pa)
    cons = np.hypot(*(pb - end)[:, :2].T) < 1.5 * PX
    return dict(links=k, correct=int(ok.sum()), correct_fraction=float(ok.mean()) if k else float("nan"),
                both_matched=int(both.sum()),
                correct_among_matched=float(ok.sum() / both.sum()) if both.any() else float("nan"),
                consistent_fraction=float(cons.mean()) if k else float("nan"),
                correct_fraction_axial_100um=float(ok100.mean()) if k else float("nan"))


def _ptv_rows(detection, found, truth, field, dmax, pred, repeat, **times):
    """Detection scores of both frames and the links, plain and PIV-predicted."""
    det = [H.match(f, t, lateral_tol=2 * PX, axial_tol=30e-6) for f, t in zip(found, truth)]
    rows = []
    for lname, kw in (("plain, 3 px + max motion", dict(max_distance=(3 + dmax) * PX)),
                      ("PIV predictor, 3 px", dict(max_distance=3 * PX, predictor=pred))):
        kw["max_axial_distance"] = 100e-6

        def run_link(kw=kw):
            return H.link(found[0], found[1], **kw)

        t_link, _ = _median_time(run_link, repeat)
        links = run_link()
        rows.append(dict(detection=detection, linking=lname, found=[len(f) for f in found],
                         recall=[d.recall for d in det], precision=[d.precision for d in det],
                         axial_rmse_um=[d.axial_rmse * 1e6 for d in det], link_seconds=t_link,
                         **times, **_link_scores(links, found, truth, field)))
    return rows


def _piv_fft_floor(shape, window, overlap, passes, workers):
    """The batched window FFTs of ``piv`` alone (2 forward + 1 inverse real FFTs per
    window and pass, float32, batches as in piv)."""
    win = tuple(window)
    step = tuple(max(int(round(w * (1 - overlap))), 1) for w in win)
    nwin = int(np.prod([len(range(0, n - w + 1, s)) for n, w, s in zip(shape, win, step)]))
    pad = tuple(sfft.next_fast_len(w + max(w // 2, 4), real=True) for w in win)
    batch = max(1, (1 << 22) // int(np.prod(pad)))
    x = np.random.default_rng(0).standard_normal((batch,) + win).astype(np.float32)

    def run():
        for _ in range(passes):
            for s in range(0, nwin, batch):
                m = min(batch, nwin - s)
                fa = sfft.rfftn(x[:m], s=pad, axes=(1, 2, 3), workers=workers)
                fb = sfft.rfftn(x[:m], s=pad, axes=(1, 2, 3), workers=workers)
                sfft.irfftn(fa * fb, s=pad, axes=(1, 2, 3), workers=workers)

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="hologram size (pixels)")
    ap.add_argument("--ppp", type=float, default=1e-3, help="particles per pixel")
    ap.add_argument("--angle", type=float, default=0.02, help="rotation per frame (rad)")
    ap.add_argument("--planes", type=int, default=81, help="depth planes over 1-3 mm")
    ap.add_argument("--window", type=int, nargs=3, default=(16, 32, 32), help="PIV window (z y x)")
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--passes", type=int, default=3, help="PIV passes (window deformation)")
    ap.add_argument("--deform-order", type=int, default=3)
    ap.add_argument("--z-smooth", type=float, default=40e-6, help="sigma (m) of the z smoothing "
                    "of the detection variant")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--piv-repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dh-iterations", type=int, default=100, help="∂H iterations of the ∂H "
                    "detection variant (0: skip it)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "bench_flow.json"))
    a = ap.parse_args(argv)
    n = a.n
    w = di.get_num_threads()
    zs = np.linspace(1e-3, 3e-3, a.planes)
    dz = zs[1] - zs[0]
    vox = (dz, PX, PX)

    # -- simulation ------------------------------------------------------------------------
    tab = H.random_particles((n, n), PX, ppp=a.ppp, z_range=(1e-3, 3e-3), diameter_range=(8e-6, 12e-6),
                             seed=a.seed)
    field = M.solid_rotation(a.angle, (n * PX / 2, n * PX / 2, 2e-3))
    t0 = time.perf_counter()
    holos, truth = M.simulate_sequence((n, n), tab, field, frames=2, wavelength=LAM, pixel_size=PX,
                                       gaussian_noise=0.01, seed=a.seed + 1)
    t_sim = time.perf_counter() - t0
    dmax = float(np.max(np.hypot(*field.displacement(tab.positions)[:, :2].T)) / PX)
    print(f"bench_flow: {n}x{n} px of {PX * 1e6:g} um, {LAM * 1e9:g} nm, {len(tab)} particles "
          f"({a.ppp:g} ppp) at 1-3 mm, rotation {a.angle:g} rad/frame about z (up to {dmax:.2f} px), "
          f"{a.planes} planes ({dz * 1e6:.0f} um), {w} threads")

    # -- preprocess + back-propagation -----------------------------------------------------
    t0 = time.perf_counter()
    hp, info = H.preprocess(holos)
    t_pre = time.perf_counter() - t0
    assert info["offset"] == (0, 0), info  # n is FFT-friendly: no crop, positions unchanged

    def bp(h):
        return H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, output="intensity")

    t_bp, t_bp_all = _median_time(lambda: bp(hp[0]), a.repeat)
    vols = [bp(h) for h in hp]
    m_fft = sfft.next_fast_len(2 * n)
    buf = np.zeros((1, m_fft, m_fft), np.complex128)

    def bp_floor():
        for s in range(0, a.planes, 16):
            sfft.fft2(buf, workers=w, overwrite_x=True)
            for _ in range(min(16, a.planes - s)):
                sfft.ifft2(buf, workers=w, overwrite_x=True)

    t_bpf, _ = _median_time(bp_floor, a.repeat)

    # -- PIV -------------------------------------------------------------------------------
    piv_rows = []
    results_piv = None
    for passes in sorted({1, a.passes}):
        ts = []
        for _ in range(a.piv_repeat):
            t0 = time.perf_counter()
            r = H.piv(-vols[0], -vols[1], tuple(a.window), a.overlap, passes=passes,
                      deform_order=a.deform_order)
            ts.append(time.perf_counter() - t0)
        mid, chord = _piv_truth(field, r.centers, zs)
        d = r.displacement.reshape(-1, 3)
        floor_fn = _piv_fft_floor(vols[0].shape, a.window, a.overlap, passes, w)
        t_floor, _ = _median_time(floor_fn, 1)
        row = dict(passes=passes, vectors=int(len(d)), rmse_voxels=_rmse(d - mid),
                   rmse_voxels_chord=_rmse(d - chord),
                   rmse_per_component=[float(x) for x in np.sqrt(np.mean((d - mid) ** 2, axis=0))],
                   lateral_rmse_px=float(np.sqrt(np.mean(np.sum((d - mid)[:, 1:] ** 2, axis=1)))),
                   outliers=int(r.outlier.sum()), seconds=float(np.median(ts)), times=ts,
                   fft_floor_seconds=t_floor, ratio_to_fft_floor=float(np.median(ts)) / t_floor)
        piv_rows.append(row)
        if passes == a.passes:
            results_piv = r

    # -- detection + PTV -------------------------------------------------------------------
    ptv_rows = []
    pred = predictor_from_piv(results_piv, vox, origin=(0.0, 0.0, zs[0]))
    sig = a.z_smooth / dz
    def ident(v):
        return v

    variants = [("intensity, 7^3", ident, dict(neighborhood=(7, 7, 7)))]
    if "diameter" in inspect.signature(H.find_particles).parameters:
        # window matched to the particle's extent (2 ceil(D^2 / (lambda dz)) + 1 planes)
        variants.append(("intensity, matched", ident, dict(diameter=10e-6, wavelength=LAM)))
    if a.z_smooth > 0:
        variants.append((f"z-smoothed {a.z_smooth * 1e6:g} um, 7^3",
                         lambda v: gaussian_filter1d(v, sig, axis=0, mode="nearest"),
                         dict(neighborhood=(7, 7, 7))))
    for vname, prep, fkw in variants:
        def detect(v, prep=prep, fkw=fkw):
            return H.find_particles(prep(v), zs, pixel_size=PX, polarity="dark", **fkw)

        t_find, _ = _median_time(lambda: detect(vols[0]), a.repeat)
        found = [detect(v) for v in vols]
        ptv_rows += _ptv_rows(vname, found, truth, field, dmax, pred, a.repeat, find_seconds=t_find)

    # ∂H detection: reconstruct(method="dh") per frame (fused engine, defaults), then
    # find_particles on the particle map with its automatic threshold
    if a.dh_iterations > 0:
        t0 = time.perf_counter()
        recs = [H.reconstruct(h.astype(np.float32), zs, wavelength=LAM, pixel_size=PX, method="dh",
                              iterations=a.dh_iterations) for h in hp]
        t_dh = (time.perf_counter() - t0) / len(recs)
        t0 = time.perf_counter()
        found = [H.find_particles(r) for r in recs]
        t_find = (time.perf_counter() - t0) / len(recs)
        ptv_rows += _ptv_rows(f"dH ({a.dh_iterations} it.)", found, truth, field, dmax, pred, a.repeat,
                              find_seconds=t_find, reconstruct_seconds=t_dh)

    # -- report ----------------------------------------------------------------------------
    print(f"\ntimes: simulate {t_sim:.2f} s (2 frames), preprocess {t_pre:.3f} s, back-propagation "
          f"{t_bp:.2f} s/frame (FFT floor {t_bpf:.2f} s, ratio {t_bp / t_bpf:.2f})")
    print("\nPIV  (window {} voxels, overlap {:g}; voxel {:.0f} x {:g} x {:g} um)".format(
        "x".join(map(str, a.window)), a.overlap, dz * 1e6, PX * 1e6, PX * 1e6))
    print(f"{'passes':>6} {'vectors':>8} {'RMSE vox':>9} {'(chord)':>8} {'lat px':>7} {'outl':>5} "
          f"{'time s':>7} {'/FFT floor':>10}  target <= 0.2 voxel")
    for r in piv_rows:
        print(f"{r['passes']:>6} {r['vectors']:>8} {r['rmse_voxels']:>9.3f} {r['rmse_voxels_chord']:>8.3f} "
              f"{r['lateral_rmse_px']:>7.3f} {r['outliers']:>5} {r['seconds']:>7.2f} "
              f"{r['ratio_to_fft_floor']:>10.2f}  {'met' if r['rmse_voxels'] <= 0.2 else 'MISSED'}")
    print("\nPTV  (correct: both ends matched to the same true particle, 2 px / 30 um; target >= 90 %)")
    print(f"{'detection':<26} {'linking':<26} {'recall a/b':>11} {'prec a/b':>10} {'links':>6} "
          f"{'correct':>8} {'among matched':>13} {'consistent':>10} {'@100um':>7} {'find s':>7} "
          f"{'link s':>7}")
    for r in ptv_rows:
        print(f"{r['detection']:<26} {r['linking']:<26} {r['recall'][0]:>5.2f}/{r['recall'][1]:<5.2f} "
              f"{r['precision'][0]:>4.2f}/{r['precision'][1]:<5.2f} {r['links']:>6} "
              f"{100 * r['correct_fraction']:>7.1f}% {100 * r['correct_among_matched']:>12.1f}% "
              f"{100 * r['consistent_fraction']:>9.1f}% {100 * r['correct_fraction_axial_100um']:>6.1f}% "
              f"{r['find_seconds']:>7.2f} {r['link_seconds']:>7.3f}")
    best_bp = max(r["correct_fraction"] for r in ptv_rows if r["detection"].startswith("intensity"))
    best = max(r["correct_fraction"] for r in ptv_rows)
    print(f"\nPTV target (>= 90 % correct links): {'met' if best >= 0.9 else 'MISSED'} "
          f"({100 * best:.1f} % best; back-propagation detection {100 * best_bp:.1f} %)")
    res = dict(benchmark="bench_flow", n=n, ppp=a.ppp, particles=len(tab), angle=a.angle,
               max_displacement_px=dmax, planes=a.planes, plane_spacing_m=dz, window=list(a.window),
               overlap=a.overlap, deform_order=a.deform_order, preprocess=info["background"],
               simulate_seconds=t_sim, preprocess_seconds=t_pre, backprop_seconds=t_bp,
               backprop_times=t_bp_all, backprop_fft_floor_seconds=t_bpf, piv=piv_rows, ptv=ptv_rows,
               piv_target_met=bool([r for r in piv_rows if r["passes"] == a.passes][0]["rmse_voxels"] <= 0.2),
               ptv_target_met=bool(best >= 0.9), ptv_best_correct=best,
               ptv_best_correct_backprop=best_bp, command=" ".join(["python", "benchmarks/bench_flow.py"]
                                                                  + (argv or sys.argv[1:])),
               config=config_dict())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
