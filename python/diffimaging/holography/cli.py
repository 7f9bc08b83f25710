"""Command line: ``diffimaging demo``, ``diffimaging holo reconstruct``,
``diffimaging holo particles``, ``diffimaging piv``.  Lengths are in metres."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .. import holography as H


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
    z, learn = np.asarray(args.z, dtype=np.float64), not args.fixed_z
    for path in args.holograms:
        raw = H.read_hologram(path)
        holo, info = H.preprocess(raw, background=H.read_hologram(args.background)
                                  if args.background else None)
        frames = holo if holo.ndim == 3 else holo[None]
        for i, h in enumerate(frames):
            stem = Path(path).stem + (f"_{i:04d}" if len(frames) > 1 else "")
            t0 = time.perf_counter()
            extra = {}
            if args.method == "dh":
                extra = dict(model=args.model, iterations=args.iterations, learn_z=learn,
                             sparsity=args.sparsity)
            else:
                extra = dict(chunk=args.chunk)
            rec = H.reconstruct(h.astype(np.float32), z, wavelength=args.wavelength,
                                pixel_size=args.pixel_size, method=args.method, progress=True, **extra)
            # the recording distance belongs to the set-up, not to a frame: learned on the
            # first hologram, held for the rest (so that a series shares one grid)
            z, learn = rec.z, False
            H.write_volume(out / f"{stem}.h5", np.asarray(rec.volume, dtype=np.float32), z=rec.z,
                           wavelength=args.wavelength, pixel_size=args.pixel_size, dz=rec.dz,
                           method=args.method, polarity=rec.polarity, reference=rec.reference,
                           crop_offset_px=np.asarray(info["offset"]))
            learned = (f", learned offset dz = {rec.dz * 1e6:+.2f} um, illumination {rec.reference:.4f}"
                       if args.method == "dh" else "")
            print(f"{path}: {rec.volume.shape[0]} planes of {rec.volume.shape[1]}x{rec.volume.shape[2]} "
                  f"({args.method}) in {time.perf_counter() - t0:.1f} s{learned} -> {out / (stem + '.h5')}")
    return 0


def _polarity(args, attrs):
    if args.polarity:
        return args.polarity
    p = attrs.get("polarity", "dark")
    return p.decode() if isinstance(p, bytes) else str(p)


def cmd_particles(args):
    vol, z, attrs = H.read_volume(args.volume)
    ps = np.asarray(attrs.get("pixel_size_m", args.pixel_size))
    if ps is None:
        raise SystemExit("pixel size unknown: pass --pixel-size (metres)")
    wl = attrs.get("wavelength_m")
    f = H.find_particles(vol, z, pixel_size=tuple(np.broadcast_to(ps, (2,))), polarity=_polarity(args, attrs),
                         diameter=args.diameter if wl is not None else None, wavelength=wl)
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
    pol = _polarity(args, attrs)
    sign = -1.0 if pol == "dark" else 1.0
    smooth = args.smooth if args.smooth is not None else (1.0 if pol == "bright" else 0.0)
    if smooth > 0:
        # sparse ∂H volumes hold a few voxels per particle: a Gaussian blur gives the
        # correlation peaks a width the sub-voxel fit can use
        from scipy import ndimage

        a, b = ndimage.gaussian_filter(a, smooth), ndimage.gaussian_filter(b, smooth)
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
    """Calibration of a deliberately wrong distance, then a hologram pair -> ∂H
    volumes -> particles -> PIV and PTV."""
    lam, px, n = 532e-9, 2e-6, args.size
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    results = {"size": n, "ppp": args.ppp, "wavelength_m": lam, "pixel_size_m": px}
    # 1. the recording distance: the flow cell's inner window is at 1.0 mm from the
    #    sensor, but the setup says 1.03 mm (+3 %).  A hologram of particles settled on
    #    the window (a planar sample) fixes it: ∂H learns the distance with the object.
    z_window, nominal = 1.0e-3, 1.03e-3
    cal = H.random_particles((n, n), px, count=max(8, n * n // 4000), z_range=(z_window, z_window),
                             margin=8 * px, seed=args.seed + 10)
    hc, _ = H.simulate_particles((n, n), cal, wavelength=lam, pixel_size=px, gaussian_noise=0.01,
                                 seed=args.seed + 11)
    t0 = time.perf_counter()
    rc = H.reconstruct(hc, [nominal], wavelength=lam, pixel_size=px, iterations=40)
    z_cal = float(rc.z[0])
    traj = [nominal + v for v in rc.history["params"]["volume.dz"]]
    results["calibration"] = dict(true_m=z_window, nominal_m=nominal, learned_m=z_cal,
                                  error_percent=100 * (z_cal - z_window) / z_window,
                                  seconds=time.perf_counter() - t0)
    print(f"distance calibration: nominal {nominal * 1e3:.3f} mm (+3 %), learned {z_cal * 1e3:.4f} mm, "
          f"true {z_window * 1e3:.3f} mm (error {results['calibration']['error_percent']:+.3f} %) "
          f"in {time.perf_counter() - t0:.1f} s")
    # 2. the flow: particles fill the cell from 0.2 to 1.8 mm behind the window; the
    #    planes are placed from the learned distance
    zs = z_cal + np.linspace(0.0, 2e-3, 41)
    tab = H.random_particles((n, n), px, ppp=args.ppp, z_range=(z_window + 0.2e-3, z_window + 1.8e-3),
                             diameter_range=(8e-6, 12e-6), margin=8 * px, seed=args.seed)
    centre = (n * px / 2, n * px / 2)
    angle = 0.01  # rad per frame: solid-body rotation about the optical axis
    tab_b = H.ParticleTable(_rotate(tab.positions, angle, centre), tab.diameters)
    t0 = time.perf_counter()
    ha, _ = H.simulate_particles((n, n), tab, wavelength=lam, pixel_size=px, gaussian_noise=0.01,
                                 seed=args.seed + 1)
    hb, _ = H.simulate_particles((n, n), tab_b, wavelength=lam, pixel_size=px, gaussian_noise=0.01,
                                 seed=args.seed + 2)
    print(f"simulated 2 holograms of {n}x{n} px with {len(tab)} particles ({args.ppp:g} ppp), "
          f"rotating {angle} rad per frame, in {time.perf_counter() - t0:.1f} s")
    results["particles"] = len(tab)
    recs, found, matches = [], [], []
    learn = True
    for name, h, truth in (("a", ha, tab), ("b", hb, tab_b)):
        t0 = time.perf_counter()
        rec = H.reconstruct(h.astype(np.float32), zs, wavelength=lam, pixel_size=px, method="dh",
                            iterations=args.iterations, learn_z=learn)
        zs, learn = rec.z, False   # frame b on frame a's grid (one set-up, one distance)
        t_rec = time.perf_counter() - t0
        recs.append(rec)
        f = H.find_particles(rec)
        m = H.match(f, truth, lateral_tol=2 * px, axial_tol=30e-6)
        found.append(f)
        matches.append(m)
        results[f"frame_{name}"] = dict(found=len(f), recall=m.recall, precision=m.precision,
                                        lateral_rmse_px=m.lateral_rmse / px,
                                        axial_rmse_um=m.axial_rmse * 1e6, dz_m=rec.dz,
                                        reference=rec.reference, seconds=t_rec)
        print(f"frame {name}: ∂H ({args.iterations} iterations, {t_rec:.1f} s), {len(f)} found: recall "
              f"{m.recall:.3f}, precision {m.precision:.3f}, lateral RMSE {m.lateral_rmse / px:.2f} px, "
              f"axial RMSE {m.axial_rmse * 1e6:.1f} um")
        H.write_particles_csv(out / f"particles_{name}.csv", f)
        H.write_vtk_points(out / f"particles_{name}.vtk", f.positions, scalars=f.peak)
    H.write_volume(out / "volume_a.h5", np.asarray(recs[0].volume, dtype=np.float32), z=recs[0].z,
                   wavelength=lam, pixel_size=px, dz=recs[0].dz, method="dh", polarity="bright")
    zr = recs[0].z
    # a sparse ∂H volume holds a few voxels per particle: a 1-voxel Gaussian blur
    # gives the correlation peaks a width the sub-voxel fit can use
    from scipy import ndimage

    va, vb = (ndimage.gaussian_filter(np.asarray(rc_.volume, dtype=np.float32), 1.0) for rc_ in recs)
    win = (min(16, va.shape[0]), min(64, va.shape[1]), min(64, va.shape[2]))
    r = H.piv(va, vb, win, 0.5, passes=3)   # window deformation: 3 passes
    c = r.centers.reshape(-1, 3)
    pos = np.column_stack([c[:, 1] * px, c[:, 2] * px, zr[0] + c[:, 0] * (zr[1] - zr[0])])
    true_d = _rotate(pos, angle, centre) - pos
    d = r.displacement.reshape(-1, 3)
    got = np.column_stack([d[:, 1] * px, d[:, 2] * px, d[:, 0] * (zr[1] - zr[0])])
    lat_rmse = float(np.sqrt(np.mean(np.sum((got[:, :2] - true_d[:, :2]) ** 2, axis=1)))) / px
    results["piv"] = dict(vectors=len(pos), lateral_rmse_px=lat_rmse, replaced=int(r.outlier.sum()))
    print(f"PIV: {len(pos)} vectors, lateral RMSE {lat_rmse:.2f} px per frame")
    H.write_vectors_csv(out / "piv.csv", pos, got)
    H.write_vtk_points(out / "piv.vtk", pos, vectors=got)
    # PTV: link the found particles around the displacement predicted by the PIV field
    predictor = H.predictor_from_piv(r, (zr[1] - zr[0], px, px), origin=(0.0, 0.0, zr[0]))
    links = H.link(found[0], found[1], max_distance=3 * px, max_axial_distance=40e-6,
                   predictor=predictor)
    pred = _rotate(found[0].positions[links.pairs[:, 0]], angle, centre)
    ok = np.linalg.norm((found[1].positions[links.pairs[:, 1]] - pred)[:, :2], axis=1) < 1.5 * px
    # a link is correct when both its ends are matched to the same true particle
    ids = []
    for m in matches:
        t = np.full(max(len(f) for f in found) + 1, -1)
        t[m.pairs[:, 0]] = m.pairs[:, 1]
        ids.append(t)
    ta, tb = ids[0][links.pairs[:, 0]], ids[1][links.pairs[:, 1]]
    correct = (ta >= 0) & (ta == tb)
    results["ptv"] = dict(links=len(links.pairs), consistent=float(ok.mean()) if len(ok) else 0.0,
                          correct=float(correct.mean()) if len(correct) else 0.0)
    print(f"PTV: {len(links.pairs)} links, {100 * results['ptv']['correct']:.1f} % correct (both ends "
          f"the same true particle), {100 * results['ptv']['consistent']:.1f} % consistent with the "
          f"true rotation")
    H.write_vectors_csv(out / "ptv.csv", links.positions, links.displacement)
    (out / "metrics.json").write_text(json.dumps(results, indent=1))
    _demo_figures(out, ha, recs[0], tab, found[0], traj, z_window, c, got, true_d, px)
    print(f"outputs in {out}/ (volume_a.h5, particles_*.csv/.vtk, piv.csv/.vtk, ptv.csv, metrics.json, "
          f"*.png)")
    return 0


def _demo_figures(out, ha, rec, tab, found, traj, z_true, c, got, true_d, px):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figures (pip install 'diffimaging[plot]')")
        return
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(ha, cmap="gray")
    ax.set_title("hologram A (background divided)")
    fig.savefig(out / "hologram.png", dpi=80)
    plt.close(fig)
    vol = np.asarray(rec.volume)
    fig, ax = plt.subplots(1, 2, figsize=(12, 5))
    ax[0].imshow(vol.max(axis=0), cmap="magma")
    ax[0].plot(tab.positions[:, 1] / px, tab.positions[:, 0] / px, "o", mfc="none", mec="lime", ms=8,
               label="true")
    ax[0].plot(found.positions[:, 1] / px, found.positions[:, 0] / px, "c+", label="found")
    ax[0].legend(loc="upper right")
    ax[0].set_title("∂H volume: max over depth (x-y)")
    ax[1].imshow(vol.max(axis=1), cmap="magma", aspect="auto",
                 extent=[0, vol.shape[2], rec.z[-1] * 1e3, rec.z[0] * 1e3])
    ax[1].plot(tab.positions[:, 1] / px, tab.positions[:, 2] * 1e3, "o", mfc="none", mec="lime", ms=6)
    ax[1].plot(found.positions[:, 1] / px, found.positions[:, 2] * 1e3, "c+")
    ax[1].set_ylabel("z (mm)")
    ax[1].set_title("max over y (x-z)")
    fig.tight_layout()
    fig.savefig(out / "volume.png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.asarray(traj) * 1e3, ".-", label="learned")
    ax.axhline(z_true * 1e3, color="k", ls="--", label="true")
    ax.set_xlabel("iteration")
    ax.set_ylabel("recording distance (mm)")
    ax.legend()
    ax.set_title("distance calibration (∂H, planar sample)")
    fig.tight_layout()
    fig.savefig(out / "distance.png", dpi=80)
    plt.close(fig)
    sel = c[:, 0] == c[len(c) // 2, 0]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.quiver(c[sel, 2], c[sel, 1], got[sel, 1] / px, -got[sel, 0] / px, color="r", label="PIV")
    ax.quiver(c[sel, 2], c[sel, 1], true_d[sel, 1] / px, -true_d[sel, 0] / px, color="k", alpha=0.4,
              label="true")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title("PIV (px per frame), middle depth")
    ax.legend()
    fig.savefig(out / "piv.png", dpi=80)
    plt.close(fig)
    print(f"figures -> {out}/hologram.png, volume.png, distance.png, piv.png")


def add_commands(sub):
    """Add the holography commands (``demo``, ``holo reconstruct``, ``holo particles``,
    ``piv``) to the ``diffimaging`` command line's subparsers ``sub``."""
    d = sub.add_parser("demo", help="simulate a calibration hologram and a hologram pair, learn the "
                                    "recording distance, reconstruct with ∂H, find particles, PIV, PTV")
    d.add_argument("what", nargs="?", default="holography", choices=["holography"])
    d.add_argument("-o", "--output", default="diffimaging-demo", help="output folder")
    d.add_argument("--size", type=int, default=256, help="hologram size in pixels (default 256)")
    d.add_argument("--ppp", type=float, default=2e-3, help="particles per pixel (default 2e-3)")
    d.add_argument("--iterations", type=int, default=100, help="∂H iterations per frame (default 100)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)
    h = sub.add_parser("holo", help="hologram reconstruction and particle extraction")
    hs = h.add_subparsers(dest="holo_command", required=True)
    r = hs.add_parser("reconstruct", help="reconstruct holograms to a depth stack (HDF5): ∂H or "
                                          "back-propagation")
    r.add_argument("holograms", nargs="+", help="TIFF/PNG files (2-D images or frame series)")
    _optics(r)
    r.add_argument("--z", type=_zrange, required=True,
                   help="depths START:STOP:N in metres from the sensor, e.g. 1e-3:5e-3:81")
    r.add_argument("--method", choices=["dh", "backprop"], default="dh",
                   help="dh: the ∂H inverse problem (sparse volume, distance offset and illumination "
                        "learned; the volume holds -o, particles bright); backprop: back-propagated "
                        "intensity (particles dark). Default dh")
    r.add_argument("--model", choices=["born", "gabor", "multislice"], default="born",
                   help="∂H scattering model (default born)")
    r.add_argument("--iterations", type=int, default=100, help="∂H solver iterations (default 100)")
    r.add_argument("--sparsity", type=float, default=0.01,
                   help="∂H L1 weight for unit-mean holograms (default 0.01; about the noise sigma)")
    r.add_argument("--fixed-z", action="store_true",
                   help="do not learn the distance offset (by default it is learned on the first "
                        "hologram and held for the following ones)")
    r.add_argument("--background", help="background frame to divide by (default: median of a "
                                        "series, else a smooth low-pass estimate)")
    r.add_argument("--chunk", type=int, default=16, help="planes per batch (memory)")
    r.add_argument("-o", "--output", required=True, help="output folder")
    r.set_defaults(func=cmd_reconstruct)
    q = hs.add_parser("particles", help="find particles in a reconstructed volume (CSV)")
    q.add_argument("volume", help="HDF5 volume from 'holo reconstruct'")
    q.add_argument("--polarity", choices=["dark", "bright"], default=None,
                   help="particles are minima (back-propagated intensity) or maxima (∂H); default: "
                        "read from the file")
    q.add_argument("--diameter", type=float, default=10e-6,
                   help="typical particle diameter in metres (sets the search window; default 10e-6)")
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
    v.add_argument("--smooth", type=float, default=None,
                   help="Gaussian blur (voxels) before correlation; default 1 for ∂H volumes, 0 for "
                        "back-propagated ones")
    v.add_argument("--polarity", choices=["dark", "bright"], default=None,
                   help="default: read from the file (dark for back-propagation, bright for ∂H)")
    v.add_argument("-o", "--output", required=True)
    v.add_argument("--vtk")
    v.set_defaults(func=cmd_piv)
