"""Command line: ``diffimaging demo``, ``diffimaging holo reconstruct``,
``diffimaging holo particles``, ``diffimaging piv``.  Lengths are in metres."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import holography as H


def _zrange(text):
    try:
        a, b, n = text.split(":")
        a, b, n = float(a), float(b), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--z must be START:STOP:N in metres, e.g. 1e-3:5e-3:81 "
                                         f"(got {text!r})") from None
    if n < 1:
        raise argparse.ArgumentTypeError("--z needs N >= 1 planes")
    return np.linspace(a, b, n)


def _optics(p):
    p.add_argument("--wavelength", type=float, required=True, help="wavelength in metres (532e-9)")
    p.add_argument("--pixel-size", type=float, required=True,
                   help="sensor pixel size in metres (2e-6 for 2 um)")


def cmd_reconstruct(args):
    H.check_optics(args.wavelength, args.pixel_size, args.z)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.holograms:
        raw = H.read_hologram(path)
        holo, info = H.preprocess(raw, background=H.read_hologram(args.background)
                                  if args.background else None)
        frames = holo if holo.ndim == 3 else holo[None]
        for i, h in enumerate(frames):
            stem = Path(path).stem + (f"_{i:04d}" if len(frames) > 1 else "")
            t0 = time.perf_counter()
            vol = H.backpropagate(h, args.z, wavelength=args.wavelength, pixel_size=args.pixel_size,
                                  output="intensity", chunk=args.chunk, progress=True)
            H.write_volume(out / f"{stem}.h5", vol.astype(np.float32), z=args.z,
                           wavelength=args.wavelength, pixel_size=args.pixel_size,
                           method="backprop", crop_offset_px=np.asarray(info["offset"]))
            print(f"{path}: {vol.shape[0]} planes of {vol.shape[1]}x{vol.shape[2]} in "
                  f"{time.perf_counter() - t0:.1f} s -> {out / (stem + '.h5')}")
    return 0


def cmd_particles(args):
    vol, z, attrs = H.read_volume(args.volume)
    ps = np.asarray(attrs.get("pixel_size_m", args.pixel_size))
    if ps is None:
        raise SystemExit("pixel size unknown: pass --pixel-size (metres)")
    f = H.find_particles(vol, z, pixel_size=tuple(np.broadcast_to(ps, (2,))), polarity=args.polarity)
    H.write_particles_csv(args.output, f)
    if args.vtk:
        H.write_vtk_points(args.vtk, f.positions, scalars=f.peak)
    print(f"{len(f)} particles -> {args.output}")
    return 0


def cmd_piv(args):
    a, za, attrs = H.read_volume(args.vol_a)
    b, zb, _ = H.read_volume(args.vol_b)
    if a.shape != b.shape or not np.allclose(za, zb):
        raise SystemExit(f"{args.vol_a} and {args.vol_b} must share their grid and depths")
    sign = -1.0 if args.polarity == "dark" else 1.0
    r = H.piv(sign * a, sign * b, (args.window,) * 3, args.overlap)
    ps = np.broadcast_to(np.asarray(attrs["pixel_size_m"], dtype=np.float64), (2,))
    dzp = float(za[1] - za[0]) if len(za) > 1 else 1.0
    c = r.centers.reshape(-1, 3)
    pos = np.column_stack([c[:, 1] * ps[0], c[:, 2] * ps[1], za[0] + c[:, 0] * dzp])
    d = r.displacement.reshape(-1, 3)
    vel = np.column_stack([d[:, 1] * ps[0], d[:, 2] * ps[1], d[:, 0] * dzp]) / args.dt
    H.write_vectors_csv(args.output, pos, vel)
    if args.vtk:
        H.write_vtk_points(args.vtk, pos, vectors=vel)
    print(f"{len(pos)} vectors ({int(r.outlier.sum())} replaced) -> {args.output}")
    return 0


def _rotate(pos, angle, centre):
    c, s = np.cos(angle), np.sin(angle)
    y, x = pos[:, 0] - centre[0], pos[:, 1] - centre[1]
    return np.column_stack([centre[0] + c * y - s * x, centre[1] + s * y + c * x, pos[:, 2]])


def cmd_demo(args):
    """Simulated hologram pair -> back-propagation -> particles -> PIV and PTV."""
    lam, px, n = 532e-9, 2e-6, args.size
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    zs = np.linspace(1e-3, 3e-3, 41)
    tab = H.random_particles((n, n), px, ppp=args.ppp, z_range=(1.2e-3, 2.8e-3),
                             diameter_range=(8e-6, 12e-6), margin=8 * px, seed=args.seed)
    centre = (n * px / 2, n * px / 2)
    angle = 0.01  # rad per frame: solid-body rotation about the optical axis
    tab_b = H.ParticleTable(_rotate(tab.positions, angle, centre), tab.diameters)
    t0 = time.perf_counter()
    ha, _ = H.simulate_particles((n, n), tab, wavelength=lam, pixel_size=px, gaussian_noise=0.01,
                                 seed=args.seed + 1)
    hb, _ = H.simulate_particles((n, n), tab_b, wavelength=lam, pixel_size=px, gaussian_noise=0.01,
                                 seed=args.seed + 2)
    print(f"simulated 2 holograms of {n}x{n} px with {len(tab)} particles ({args.ppp:g} ppp) "
          f"in {time.perf_counter() - t0:.1f} s")
    results = {"particles": len(tab), "ppp": args.ppp, "size": n}
    vols, found = [], []
    for name, h, truth in (("a", ha, tab), ("b", hb, tab_b)):
        vol = H.backpropagate(h, zs, wavelength=lam, pixel_size=px, output="intensity", progress=True)
        vols.append(vol)
        f = H.find_particles(vol, zs, pixel_size=px, polarity="dark", neighborhood=(7, 7, 7))
        m = H.match(f, truth, lateral_tol=2 * px, axial_tol=30e-6)
        found.append(f)
        results[f"frame_{name}"] = dict(found=len(f), recall=m.recall, precision=m.precision,
                                        lateral_rmse_px=m.lateral_rmse / px,
                                        axial_rmse_um=m.axial_rmse * 1e6)
        print(f"frame {name}: back-propagation, {len(f)} found: recall {m.recall:.3f}, precision "
              f"{m.precision:.3f}, lateral RMSE {m.lateral_rmse / px:.2f} px, axial RMSE "
              f"{m.axial_rmse * 1e6:.1f} um")
        H.write_particles_csv(out / f"particles_{name}.csv", f)
    H.write_volume(out / "volume_a.h5", vols[0].astype(np.float32), z=zs, wavelength=lam,
                   pixel_size=px, method="backprop")
    # PIV on the particle signal (dark particles)
    r = H.piv(-vols[0], -vols[1], (8, 32, 32), 0.5)
    c = r.centers.reshape(-1, 3)
    pos = np.column_stack([c[:, 1] * px, c[:, 2] * px, zs[0] + c[:, 0] * (zs[1] - zs[0])])
    true_d = _rotate(pos, angle, centre) - pos
    d = r.displacement.reshape(-1, 3)
    got = np.column_stack([d[:, 1] * px, d[:, 2] * px, d[:, 0] * (zs[1] - zs[0])])
    lat_rmse = float(np.sqrt(np.mean(np.sum((got[:, :2] - true_d[:, :2]) ** 2, axis=1)))) / px
    results["piv"] = dict(vectors=len(pos), lateral_rmse_px=lat_rmse, replaced=int(r.outlier.sum()))
    print(f"PIV: {len(pos)} vectors, lateral RMSE {lat_rmse:.2f} px per frame")
    H.write_vectors_csv(out / "piv.csv", pos, got)
    H.write_vtk_points(out / "piv.vtk", pos, vectors=got)
    # PTV: link the found particles, predicted by the PIV field's mean displacement
    links = H.link(found[0], found[1], max_distance=4 * px, predictor=np.nanmean(got, axis=0))
    pred = _rotate(found[0].positions[links.pairs[:, 0]], angle, centre)
    ok = np.linalg.norm((found[1].positions[links.pairs[:, 1]] - pred)[:, :2], axis=1) < 1.5 * px
    results["ptv"] = dict(links=len(links.pairs), consistent=float(ok.mean()) if len(ok) else 0.0)
    print(f"PTV: {len(links.pairs)} links, {100 * results['ptv']['consistent']:.1f} % consistent "
          f"with the true rotation")
    H.write_vectors_csv(out / "ptv.csv", links.positions, links.displacement)
    (out / "metrics.json").write_text(json.dumps(results, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 3, figsize=(15, 5))
        ax[0].imshow(ha, cmap="gray")
        ax[0].set_title("hologram A")
        ax[1].imshow(vols[0].min(axis=0), cmap="gray")
        ax[1].plot(tab.positions[:, 1] / px, tab.positions[:, 0] / px, "o", mfc="none", mec="lime",
                   ms=8, label="true")
        ax[1].plot(found[0].positions[:, 1] / px, found[0].positions[:, 0] / px, "r+", label="found")
        ax[1].legend(loc="upper right")
        ax[1].set_title("min projection of the back-propagated volume")
        sel = c[:, 0] == c[len(c) // 2, 0]
        ax[2].quiver(c[sel, 2], c[sel, 1], got[sel, 1] / px, -got[sel, 0] / px, color="r",
                     label="PIV")
        ax[2].quiver(c[sel, 2], c[sel, 1], true_d[sel, 1] / px, -true_d[sel, 0] / px, color="k",
                     alpha=0.4, label="true")
        ax[2].invert_yaxis()
        ax[2].set_title("PIV (px per frame), middle depth")
        ax[2].legend()
        for a in ax:
            a.set_aspect("equal")
        fig.tight_layout()
        fig.savefig(out / "demo.png", dpi=80)
        print(f"figures -> {out / 'demo.png'}")
    except ImportError:
        print("matplotlib not installed: no figure (pip install 'diffimaging[plot]')")
    print(f"outputs in {out}/ (volume_a.h5, particles_*.csv, piv.csv/.vtk, ptv.csv, metrics.json)")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="diffimaging",
                                description="Differentiable imaging: holographic particle imaging "
                                            "(lengths in metres)")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="simulate a hologram pair and run the particle pipeline")
    d.add_argument("what", nargs="?", default="holography", choices=["holography"])
    d.add_argument("-o", "--output", default="diffimaging-demo", help="output folder")
    d.add_argument("--size", type=int, default=256, help="hologram size in pixels (default 256)")
    d.add_argument("--ppp", type=float, default=1e-3, help="particles per pixel (default 1e-3)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    h = sub.add_parser("holo", help="hologram reconstruction and particle extraction")
    hs = h.add_subparsers(dest="holo_command", required=True)
    r = hs.add_parser("reconstruct", help="back-propagate holograms to a depth stack (HDF5)")
    r.add_argument("holograms", nargs="+", help="TIFF/PNG files (2-D images or frame series)")
    _optics(r)
    r.add_argument("--z", type=_zrange, required=True,
                   help="depths START:STOP:N in metres from the sensor, e.g. 1e-3:5e-3:81")
    r.add_argument("--method", choices=["backprop"], default="backprop",
                   help="reconstruction method (the ∂H solver follows in a later release)")
    r.add_argument("--background", help="background frame to divide by (default: median of a "
                                        "series, else a smooth low-pass estimate)")
    r.add_argument("--chunk", type=int, default=16, help="planes per batch (memory)")
    r.add_argument("-o", "--output", required=True, help="output folder")
    r.set_defaults(func=cmd_reconstruct)
    q = hs.add_parser("particles", help="find particles in a reconstructed volume (CSV)")
    q.add_argument("volume", help="HDF5 volume from 'holo reconstruct'")
    q.add_argument("--polarity", choices=["dark", "bright"], default="dark",
                   help="particles are minima (back-propagated intensity) or maxima")
    q.add_argument("--pixel-size", type=float, default=None, help="metres, if not in the file")
    q.add_argument("-o", "--output", required=True, help="CSV of y_m, x_m, z_m, peak, size")
    q.add_argument("--vtk", help="also write a VTK point file")
    q.set_defaults(func=cmd_particles)
    v = sub.add_parser("piv", help="3-D PIV between two volumes (CSV of velocities in m per dt)")
    v.add_argument("vol_a")
    v.add_argument("vol_b")
    v.add_argument("--window", type=int, default=16, help="interrogation window, voxels")
    v.add_argument("--overlap", type=float, default=0.5)
    v.add_argument("--dt", type=float, default=1.0, help="frame interval in seconds")
    v.add_argument("--polarity", choices=["dark", "bright"], default="dark")
    v.add_argument("-o", "--output", required=True)
    v.add_argument("--vtk")
    v.set_defaults(func=cmd_piv)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"diffimaging: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
