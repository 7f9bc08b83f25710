"""Command line: ``diffimaging demo``, ``diffimaging holo reconstruct``,
``diffimaging holo particles``, ``diffimaging piv``.  Lengths are in metres.

Outputs: every file goes through an atomic writer (complete or absent), and a run
writes its manifest last (:func:`~diffimaging._backend.files.write_manifest`):
``<folder>/manifest.json`` for the commands that write a folder (``demo``,
``holo reconstruct``), ``<file>.manifest.json`` next to the output of the others.
The manifest lists every output (size, SHA-256), the inputs and the settings, and
records which input each output came from: an existing file is replaced only when
the manifest records it as the output of the same input(s); anything else (another
input's output, a file of unknown origin such as an interrupted run's) is refused
before any work, unless ``--overwrite``.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from .. import holography as H
from .._backend import files as _files
from .._backend.cli import EXITS as _EXITS, Outputs as _Outputs, add_overwrite as _overwrite
from .._backend.cli import expand_inputs as _expand_inputs, file_manifest as _file_manifest
from .._backend.cli import input_file as _input, length as _length, number as _number
from .._backend.cli import progress_wanted as _progress, savefig as _savefig, say as _say
from .preprocess import MEDIAN_MAX_CONTRAST, MEDIAN_MIN_FRAMES, background_contrast
from .analysis import plane_spacing
from .backprop import check_depth_range
from .io import is_projections

log = logging.getLogger(__name__)

#: smallest ``demo --size`` (pixels): room for 8-pixel margins and a 32-pixel PIV window
DEMO_MIN_SIZE = 64
#: largest ``demo --ppp`` (particles per pixel): beyond, in-line holograms lose their
#: reference wave
DEMO_MAX_PPP = 0.05


# -- argument types: refused by argparse itself (exit 2, one line) ------------------

def _zrange(text):
    try:
        a, b, n = text.split(":")
        a, b, n = float(a), float(b), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--z must be START:STOP:N in metres, e.g. 1e-3:5e-3:81 "
                                         f"(got {text!r})") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise argparse.ArgumentTypeError(f"START and STOP must be finite, in metres (got {text!r})")
    if n < 1:
        raise argparse.ArgumentTypeError("--z needs N >= 1 planes")
    if n > 1 and a == b:
        raise argparse.ArgumentTypeError(f"START and STOP must differ for N = {n} planes "
                                         f"(got {text!r})")
    return np.linspace(a, b, n)


def _optics(p):
    p.add_argument("--wavelength", type=_length, required=True,
                   help="vacuum wavelength in metres, e.g. 532e-9 (required)")
    p.add_argument("--pixel-size", type=_length, required=True,
                   help="sensor pixel size in metres, e.g. 2e-6 for 2 um (required)")
    p.add_argument("--n-medium", type=_number(float, low=1.0, high=3.0), default=1.0,
                   help="refractive index of the medium between particles and sensor (1 to 3; "
                        "default 1.0 air; 1.33 water): light propagates with wavelength / n")


# -- volume attributes: absent, None and NaN alike mean "not recorded" --------------

def _attr_positive(attrs, key):
    """The attribute ``key`` as a float64 array when present, finite and positive;
    None when absent or not usable (None, NaN, text, <= 0)."""
    v = attrs.get(key)
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        return None
    return a


def _pixel_size(args, attrs, path):
    """(dy, dx) metres: ``--pixel-size`` if given, else the volume file's."""
    if args.pixel_size is not None:
        return (args.pixel_size, args.pixel_size)
    a = _attr_positive(attrs, "pixel_size_m")
    if a is None or a.size not in (1, 2):
        raw = attrs.get("pixel_size_m")
        got = "" if raw is None else f" (pixel_size_m = {raw!r})"
        raise ValueError(f"{path} records no usable pixel size{got}: pass --pixel-size in metres "
                         f"(e.g. 2e-6)")
    return tuple(float(x) for x in np.broadcast_to(a, (2,)))


def _polarity(args, attrs):
    if args.polarity:
        return args.polarity
    p = attrs.get("polarity", "dark")
    return p.decode() if isinstance(p, bytes) else str(p)


# -- inputs: files, folders, globs; frames; background ---------------------------------

#: most frames a median background is computed from (evenly spaced over the series)
MEDIAN_MAX_FRAMES = 64


def _frames(path):
    """The frames (ny, nx) of one hologram file and their count."""
    raw = H.read_hologram(path)
    frames = raw if raw.ndim == 3 else raw[None]
    return frames, len(frames)


def _series_sample(holos):
    """One pass over the series: the number of frames and at most about
    :data:`MEDIAN_MAX_FRAMES` of them, evenly spaced (float32), or None when the
    frames differ in size."""
    kept, stride, count, shape = [], 1, 0, None
    for _, path in holos:
        frames, n = _frames(path)
        for f in frames:
            if shape is None:
                shape = f.shape
            elif f.shape != shape:
                return count + 1, None
            if count % stride == 0:
                kept.append((count, f.astype(np.float32)))
            count += 1
            if len(kept) > 2 * MEDIAN_MAX_FRAMES:
                stride *= 2
                kept = [(i, f) for i, f in kept if i % stride == 0]
    return count, np.stack([f for _, f in kept])


def _background(args, holos):
    """The background of the series, by ``--background``: returns (how, array or
    None, record): ``how`` is "median", "lowpass" (per frame), "file" or "none"."""
    choice = args.background
    if choice not in ("auto", "median", "lowpass", "none"):
        path = _input(choice, "background file (--background FILE)")
        bg = H.read_hologram(path)
        if bg.ndim == 3:
            bg = np.median(bg, axis=0)
        log.info("background: divided by the frame in %s", path)
        return "file", bg, {"method": "file", "file": path}
    if choice in ("lowpass", "none"):
        log.info("background: %s", "Gaussian low-pass of each frame" if choice == "lowpass" else
                 "none (each frame normalised to unit mean)")
        return choice, None, {"method": choice}
    count, sample = _series_sample(holos)
    if choice == "auto":
        if sample is None or count < MEDIAN_MIN_FRAMES:
            why = ("frames of different sizes" if sample is None else
                   f"{count} frame{'s' if count != 1 else ''} < {MEDIAN_MIN_FRAMES}")
            log.info("background: Gaussian low-pass of each frame (%s; a per-pixel median needs "
                     "at least %d frames of one size)", why, MEDIAN_MIN_FRAMES)
            return "lowpass", None, {"method": "lowpass", "frames": count, "chosen": "auto", "why": why}
    elif sample is None:
        raise ValueError("--background median needs frames of one size; the series holds frames of "
                         "different sizes: use --background lowpass or a FILE")
    elif count < 3:
        raise ValueError(f"--background median needs a series of at least 3 frames, got {count}: use "
                         f"--background lowpass or a FILE recorded without particles")
    bg = np.median(sample, axis=0)
    held = background_contrast(sample, bg)
    log.info("background: per-pixel median of %d of the %d frames (it holds %.0f %% of the frames' "
             "fringe contrast)", len(sample), count, 100 * held)
    if count < MEDIAN_MIN_FRAMES:
        log.warning("background: a median over only %d frames keeps every particle that moves less "
                    "than 2 diameters over the series and removes it from the data: use "
                    "--background lowpass, a FILE recorded without particles, or more frames", count)
    if held > MEDIAN_MAX_CONTRAST:
        log.warning("background: the per-pixel median holds %.0f %% of the frames' fringe contrast "
                    "(> %.0f %%): static or slow particles are in it and dividing by it removes them "
                    "(or the sensor has a strong fixed pattern, which it rightly removes); if particles "
                    "move slowly use --background lowpass or a FILE recorded without particles",
                    100 * held, 100 * MEDIAN_MAX_CONTRAST)
    rec = {"method": "median", "frames": count, "frames_used": len(sample),
           "median_contrast": round(held, 4)}
    if choice == "auto":
        rec["chosen"] = "auto"
    return "median", bg, rec


# -- commands -------------------------------------------------------------------------

def _stream_backprop(target, holo, z, args, **attrs):
    """Back-propagate ``--chunk`` planes at a time straight into the HDF5 file: the
    memory is one batch of planes, whatever the number of planes."""
    from tqdm.auto import tqdm

    z = np.asarray(z, dtype=np.float64)
    with H.open_volume(target, (z.size,) + holo.shape, z=z, wavelength=args.wavelength,
                       pixel_size=args.pixel_size, method="backprop", polarity="dark",
                       reference=1.0, **attrs) as w:
        for s in tqdm(range(0, z.size, args.chunk), desc="back-propagation", unit="chunk",
                      leave=False, disable=not _progress(args)):
            w.write(s, H.backpropagate(holo, z[s:s + args.chunk], wavelength=args.wavelength,
                                       pixel_size=args.pixel_size, output="intensity",
                                       chunk=args.chunk, n_medium=args.n_medium))


#: the maps of a projections file (``holo reconstruct --save projections``)
def _crop_offset_m(attrs, ps):
    """(y, x) metres of the volume's pixel (0, 0) on the sensor: the crop to an
    FFT-friendly size recorded as ``crop_offset_px`` (0 when absent)."""
    off = attrs.get("crop_offset_px")
    if off is None:
        return np.zeros(2)
    off = np.asarray(off, dtype=np.float64).reshape(-1)
    if off.size != 2 or not np.all(np.isfinite(off)):
        raise ValueError(f"the attribute crop_offset_px = {attrs.get('crop_offset_px')!r} must be "
                         f"(y0, x0) pixels")
    return off * np.asarray(ps, dtype=np.float64)


def _output_name(out, stem, frame, save):
    suffix = ".projections.h5" if save == "projections" else ".h5"
    return out / (stem + ("" if frame is None else f"_{frame:04d}") + suffix)


def cmd_reconstruct(args):
    H.check_optics(args.wavelength, args.pixel_size, args.z)
    if args.save == "projections" and args.method != "backprop":
        raise ValueError("--save projections needs --method backprop (∂H solves for the whole volume)")
    out = Path(args.output)
    holos = _expand_inputs(args.holograms)
    # one output name per input: two inputs of one name (a/x.tif, b/x.tif, x.png) would
    # overwrite each other's volume
    by_stem = {}
    for given, path in holos:
        key = Path(path).stem.casefold()
        if key in by_stem:
            first, first_path = by_stem[key]
            if first_path == path:
                raise ValueError(f"{given} is given twice")
            target = _output_name(out, Path(path).stem, None, args.save)
            raise ValueError(f"{first} and {given} would both write {target}: rename one, or run "
                             f"them separately with different -o folders")
        by_stem[key] = (given, path)
    # the depths against the sensor, before any work (a unit slip runs for minutes)
    check_depth_range(args.z, _frames(holos[0][1])[0].shape, wavelength=args.wavelength,
                      pixel_size=args.pixel_size, n_medium=args.n_medium, name="--z")
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(wavelength_m=args.wavelength, pixel_size_m=args.pixel_size, n_medium=args.n_medium,
                    z_m=args.z, method=args.method, model=args.model, iterations=args.iterations,
                    sparsity=args.sparsity, fixed_z=args.fixed_z, background=args.background,
                    chunk=args.chunk, save=args.save)
    outputs = _Outputs(out / "manifest.json", "holo reconstruct", settings, overwrite=args.overwrite)
    for _, path in holos:   # before any work: outputs of a single image or of a frame series
        stem = Path(path).stem
        suffix = ".projections.h5" if args.save == "projections" else ".h5"
        series = glob.glob(str(out / f"{glob.escape(stem)}_[0-9][0-9][0-9][0-9]{suffix}"))
        for f in [out / f"{stem}{suffix}"] + sorted(Path(g) for g in series):
            outputs.check(f, [path])
    how, bg, record = _background(args, holos)
    settings["background_used"] = record
    _say(args, f"background: {how}" + (f" ({record['frames']} frame{'s' if record['frames'] != 1 else ''})" if "frames" in record else "")
         + (f" from {record['file']}" if how == "file" else ""))
    z, learn = np.asarray(args.z, dtype=np.float64), not args.fixed_z
    settings["learned_z_m"] = None
    from tqdm.auto import tqdm

    bar = tqdm(total=len(holos), desc="holograms", unit="file", disable=not _progress(args))
    try:
        for given, path in holos:
            frames, n = _frames(path)
            for i, raw in enumerate(frames):
                if how == "lowpass":
                    h, info = H.preprocess(raw, method="lowpass")
                elif how == "none":
                    h, info = H.preprocess(raw, method="none")
                else:
                    h, info = H.preprocess(raw, background=bg)
                target = _output_name(out, Path(path).stem, i if n > 1 else None, args.save)
                outputs.claim(target, [path], i if n > 1 else None)
                check_depth_range(z, h.shape, wavelength=args.wavelength, pixel_size=args.pixel_size,
                                  n_medium=args.n_medium, name="--z")
                t0 = time.perf_counter()
                attrs = dict(crop_offset_px=np.asarray(info["offset"]), n_medium=args.n_medium,
                             background=how)
                learned = ""
                if args.save == "projections":
                    proj = H.backpropagate(h.astype(np.float32), z, wavelength=args.wavelength,
                                           pixel_size=args.pixel_size, output="projections",
                                           chunk=args.chunk, n_medium=args.n_medium,
                                           progress=_progress(args))
                    H.write_projections(target, proj, z=z, wavelength=args.wavelength,
                                        pixel_size=args.pixel_size, settings=settings,
                                        **attrs)
                elif args.method == "backprop":
                    _stream_backprop(target, h.astype(np.float32), z, args, settings=settings,
                                     **attrs)
                else:
                    rec = H.reconstruct(h.astype(np.float32), z, wavelength=args.wavelength,
                                        pixel_size=args.pixel_size, method="dh",
                                        progress=_progress(args), model=args.model,
                                        iterations=args.iterations, learn_z=learn,
                                        sparsity=args.sparsity, n_medium=args.n_medium)
                    # the recording distance belongs to the set-up, not to a frame: learned on
                    # the first hologram, held for the rest (so that a series shares one grid)
                    z, learn = rec.z, False
                    settings["learned_z_m"] = z
                    H.write_volume(target, np.asarray(rec.volume, dtype=np.float32), z=rec.z,
                                   wavelength=args.wavelength, pixel_size=args.pixel_size,
                                   z_offset=rec.dz, settings=settings,
                                   method="dh", polarity=rec.polarity, reference=rec.reference,
                                   **attrs)
                    learned = (f", learned offset dz = {rec.dz * 1e6:+.2f} um, illumination "
                               f"{rec.reference:.4f}")
                outputs.done(target)
                frame = f" frame {i}" if n > 1 else ""
                _say(args, f"{given}{frame}: {len(z)} planes of {h.shape[0]}x{h.shape[1]} "
                           f"({args.method}, background {how}) in {time.perf_counter() - t0:.1f} s"
                           f"{learned} -> {target}")
            bar.update(1)
    finally:
        bar.close()
    log.info("manifest -> %s", outputs.finish())
    return 0


def cmd_series(args):
    import os

    from .series import process_series

    settings = dict(wavelength=args.wavelength, pixel_size=args.pixel_size, z=args.z,
                    method=args.method, iterations=args.iterations, sparsity=args.sparsity,
                    n_medium=args.n_medium, background=args.background,
                    calibrate=int(args.calibrate) if args.calibrate.lstrip("-").isdigit()
                    else args.calibrate, keep=args.keep, dt=args.dt,
                    max_distance=args.max_distance, device=args.device)
    client, workers = None, args.workers
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--scheduler needs Dask: pip install \".[dask]\"") from None
        client = Client(args.scheduler)
    elif workers is None:
        try:
            import distributed  # noqa: F401
            workers = os.cpu_count() or 1
        except ImportError:
            workers = 0
    try:
        r = process_series(args.frames, settings, out=args.output, client=client,
                           workers=workers, resume=not args.no_resume, retries=args.retries,
                           progress=_progress(args))
    finally:
        if client is not None:
            client.close()
    _say(args, f"{r.frames} of {r.total} frames ({r.skipped} from an earlier run), {r.pairs} "
               f"pairs, {len(r.failed)} failed, {r.frames_per_second:.2f} frames/s; distance "
               f"offset {r.dz * 1e6:+.2f} um -> {r.out}")
    for name, err in r.failed.items():
        _say(args, f"  failed: {name}: {err}")
    return 0 if not r.failed else 3


def _read_signal(path):
    """(data, z, attrs) of a volume file or a projections file (data: a dict)."""
    return H.read_projections(path) if is_projections(path) else H.read_volume(path)


def cmd_particles(args):
    src = _input(args.volume, "volume file")
    settings = dict(polarity=args.polarity, diameter_m=args.diameter, pixel_size_m=args.pixel_size)
    outputs = _Outputs(_file_manifest(args.output), "holo particles", settings, overwrite=args.overwrite)
    targets = [Path(args.output)] + ([Path(args.vtk)] if args.vtk else [])
    for t in targets:
        outputs.claim(t, [src])
    vol, z, attrs = _read_signal(src)
    ps = _pixel_size(args, attrs, args.volume)
    wl = _attr_positive(attrs, "wavelength_m")
    wl = None if wl is None else float(wl[0])
    f = H.find_particles(vol, z, pixel_size=ps, polarity=_polarity(args, attrs),
                         diameter=args.diameter, wavelength=wl,
                         n_medium=float(attrs.get("n_medium", 1.0)))
    # positions on the sensor: the volume was cropped to an FFT-friendly size
    offset = _crop_offset_m(attrs, ps)
    settings["crop_offset_m"] = offset.tolist()
    settings["diameter_used_m"] = float(f.diameter)
    f.positions = f.positions + np.array([offset[0], offset[1], 0.0])
    H.write_particles_csv(args.output, f, wavelength=wl, pixel_size=ps,
                          n_medium=attrs.get("n_medium"), meta={"source": str(src)})
    outputs.done(args.output)
    if args.vtk:
        H.write_particles_vtk(args.vtk, f)
        outputs.done(args.vtk)
    outputs.finish()
    how = "given" if args.diameter is not None else "estimated from the data"
    _say(args, f"{len(f)} particles (diameter {f.diameter * 1e6:.3g} um, {how}) -> {args.output}")
    return 0


def _window(text):
    """``--window``: one size (cubic) or wz,wy,wx voxels, each an integer >= 4."""
    parts = text.split(",")
    if len(parts) not in (1, 3):
        raise argparse.ArgumentTypeError(f"must be one size or wz,wy,wx (voxels), got {text!r}")
    sizes = tuple(_number(int, low=4)(t.strip()) for t in parts)
    return sizes * 3 if len(sizes) == 1 else sizes


def _numbered(path, i, n):
    """The output of pair ``i`` of ``n``: ``path`` itself for one pair, else
    ``<stem>_<i:04d><suffix>``."""
    p = Path(path)
    return p if n == 1 else p.with_name(f"{p.stem}_{i:04d}{p.suffix}")


def cmd_piv(args):
    if len(args.volumes) < 2:
        raise ValueError(f"piv needs at least 2 volumes (consecutive frames), got {len(args.volumes)}")
    srcs = [_input(v, "volume file") for v in args.volumes]
    for i, s in enumerate(srcs):
        if s in srcs[:i]:
            raise ValueError(f"{args.volumes[i]} is given twice")
    npairs = len(srcs) - 1
    settings = dict(window=args.window, overlap=args.overlap, passes=args.passes, dt_s=args.dt,
                    smooth=args.smooth, polarity=args.polarity, pixel_size_m=args.pixel_size,
                    volumes=len(srcs))
    outputs = _Outputs(_file_manifest(args.output), "piv", settings, overwrite=args.overwrite)
    for i in range(npairs):
        for t in [args.output] + ([args.vtk] if args.vtk else []):
            outputs.claim(_numbered(t, i, npairs), srcs[i:i + 2], i if npairs > 1 else None)
    from scipy import ndimage
    from tqdm.auto import tqdm

    def load(i):
        v, zz, at = H.read_volume(srcs[i])
        plane_spacing(zz, v.shape[0], name=f"{args.volumes[i]}: z")
        return v, zz, at

    a, za, attrs = load(0)
    ps = _pixel_size(args, attrs, args.volumes[0])
    pol = _polarity(args, attrs)
    sign = -1.0 if pol == "dark" else 1.0
    smooth = args.smooth if args.smooth is not None else (1.0 if pol == "bright" else 0.0)
    win = args.window or tuple(min(16, n) for n in a.shape)
    settings.update(window_used=list(win), smooth_used=smooth, polarity_used=pol)
    offset = _crop_offset_m(attrs, ps)

    def prepare(v):
        # sparse ∂H volumes hold a few voxels per particle: a Gaussian blur gives the
        # correlation peaks a width the sub-voxel fit can use
        return sign * (ndimage.gaussian_filter(v, smooth) if smooth > 0 else v)

    pa = prepare(a)
    total = replaced = empty = 0
    for i in tqdm(range(npairs), desc="PIV", unit="pair", disable=not _progress(args)):
        b, zb, attrs_b = load(i + 1)
        name_a, name_b = args.volumes[0], args.volumes[i + 1]
        if a.shape != b.shape:
            raise ValueError(f"{name_a} {a.shape} and {name_b} {b.shape} must share their grid "
                             f"(volumes of one shape)")
        if not np.allclose(za, zb, rtol=1e-9, atol=0):
            raise ValueError(f"{name_a} and {name_b} must share their depths (z differs)")
        if args.pixel_size is None:
            ps_b = _pixel_size(args, attrs_b, name_b)
            if not np.allclose(ps, ps_b, rtol=1e-9, atol=0):
                raise ValueError(f"{name_a} and {name_b} have different pixel sizes ({ps} and "
                                 f"{ps_b} m)")
        pb = prepare(b)
        r = H.piv(pa, pb, win, args.overlap, passes=args.passes)
        pos, vel = r.vectors(za, ps, 1.0 if args.dt is None else args.dt)
        pos = pos + np.array([offset[0], offset[1], 0.0])    # sensor coordinates
        out_csv = _numbered(args.output, i, npairs)
        H.write_vectors_csv(out_csv, pos, vel, dt=args.dt, outlier=r.outlier,
                            peak_ratio=r.peak_ratio, wavelength=attrs.get("wavelength_m"),
                            pixel_size=ps, n_medium=attrs.get("n_medium"),
                            meta={"sources": [str(name_a), str(name_b)]})
        outputs.done(out_csv)
        if args.vtk:
            out_vtk = _numbered(args.vtk, i, npairs)
            H.write_piv_vtk(out_vtk, r, z=za, pixel_size=ps, dt=args.dt, offset=offset)
            outputs.done(out_vtk)
        total += len(pos)
        replaced += int(r.outlier.sum())
        empty += int(np.sum(~np.all(np.isfinite(vel), axis=1)))
        pa = pb
    outputs.finish()
    note = (f", {empty} without a correlation peak (NaN: featureless windows, no particles?)"
            if empty else "")
    where = args.output if npairs == 1 else f"{_numbered(args.output, 0, npairs)} ... ({npairs} pairs)"
    _say(args, f"{total} vectors ({replaced} replaced{note}) -> {where}")
    return 0


def _read_positions_csv(path):
    """(N, 3) positions (y, x, z) in metres from a particle table (``H.read_table``;
    columns x_m, y_m, z_m, or x, y, z)."""
    cols, _ = H.read_table(path)
    names = {k.strip().casefold(): k for k in cols}
    pos = []
    for axis in ("y", "x", "z"):
        key = names.get(f"{axis}_m", names.get(axis))
        if key is None:
            raise ValueError(f"{path}: no column {axis!r} (or {axis}_m) in its header {list(cols)}: "
                             f"not a particle table from 'holo particles'")
        pos.append(cols[key])
    pos = np.column_stack(pos).astype(np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"{path}: non-finite positions")
    return pos


def cmd_ptv(args):
    if len(args.particles) < 2:
        raise ValueError(f"ptv needs at least 2 particle tables (consecutive frames), got "
                         f"{len(args.particles)}")
    srcs = [_input(p, "particle table") for p in args.particles]
    settings = dict(max_distance_m=args.max_distance, max_axial_distance_m=args.max_axial_distance,
                    dt_s=args.dt, passes=args.passes, tables=len(srcs))
    outputs = _Outputs(_file_manifest(args.output), "ptv", settings, overwrite=args.overwrite)
    for t in [args.output] + ([args.vtk] if args.vtk else []):
        outputs.claim(t, srcs)
    from tqdm.auto import tqdm

    frames = [_read_positions_csv(s) for s in srcs]
    ids = np.arange(len(frames[0]))
    next_id = len(frames[0])
    rows = []
    for k in tqdm(range(len(frames) - 1), desc="PTV", unit="pair", disable=not _progress(args)):
        a, b = frames[k], frames[k + 1]
        kw = dict(max_axial_distance=args.max_axial_distance)
        links = H.link(a, b, args.max_distance, **kw)
        for _ in range(args.passes - 1):
            if len(links.pairs) < 4:
                break
            # the links' own displacement field predicts each particle's motion
            links = H.link(a, b, args.max_distance, predictor=H.predictor_from_links(links), **kw)
        new_ids = np.full(len(b), -1)
        per = 1.0 if args.dt is None else args.dt
        for (ia, ib), mid, d in zip(links.pairs, links.positions, links.displacement):
            new_ids[ib] = ids[ia]
            # track id, frame, particle row in frame k, midpoint (y, x, z), velocity (vy, vx, vz)
            rows.append([ids[ia], k, ia, *mid, *(np.asarray(d) / per)])
        fresh = new_ids < 0
        new_ids[fresh] = np.arange(next_id, next_id + int(fresh.sum()))
        next_id += int(fresh.sum())
        ids = new_ids
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 9)
    track, frame = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    H.write_vectors_csv(args.output, arr[:, 3:6], arr[:, 6:9], dt=args.dt, track_id=track,
                        frame=frame, particle_id=arr[:, 2].astype(np.int64),
                        meta={"sources": [str(x) for x in srcs]},
                        description="PTV links from frame to frame + 1: the link's midpoint "
                                    "(sensor coordinates) and velocity; particle_id: the particle's "
                                    "row in its frame's table")
    outputs.done(args.output)
    if args.vtk:
        H.write_tracks_vtk(args.vtk, arr[:, 3:6], track, frame, vectors=arr[:, 6:9], dt=args.dt)
        outputs.done(args.vtk)
    outputs.finish()
    tracks = len({r[0] for r in rows})
    _say(args, f"{len(rows)} links in {tracks} tracks over {len(frames)} frames -> {args.output}")
    return 0


_DEMO_FILES = ("volume_a.h5", "particles_a.csv", "particles_a.vtk", "particles_b.csv",
               "particles_b.vtk", "piv.csv", "piv.vtk", "ptv.csv", "metrics.json", "hologram.png",
               "volume.png", "distance.png", "piv.png")


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
    settings = {"size": n, "ppp": args.ppp, "iterations": args.iterations, "seed": args.seed}
    outputs = _Outputs(out / "manifest.json", "demo", settings, overwrite=args.overwrite)
    for name in _DEMO_FILES:
        outputs.claim(out / name, [])
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
        H.write_particles_csv(out / f"particles_{name}.csv", f, wavelength=lam, pixel_size=px)
        outputs.done(out / f"particles_{name}.csv")
        H.write_particles_vtk(out / f"particles_{name}.vtk", f)
        outputs.done(out / f"particles_{name}.vtk")
    H.write_volume(out / "volume_a.h5", np.asarray(recs[0].volume, dtype=np.float32), z=recs[0].z,
                   wavelength=lam, pixel_size=px, z_offset=recs[0].dz, settings=settings, method="dh",
                   polarity="bright")
    outputs.done(out / "volume_a.h5")
    zr = recs[0].z
    # a sparse ∂H volume holds a few voxels per particle: a 1-voxel Gaussian blur
    # gives the correlation peaks a width the sub-voxel fit can use
    from scipy import ndimage

    va, vb = (ndimage.gaussian_filter(np.asarray(rc_.volume, dtype=np.float32), 1.0) for rc_ in recs)
    win = (min(16, va.shape[0]), min(64, va.shape[1]), min(64, va.shape[2]))
    r = H.piv(va, vb, win, 0.5, passes=3)   # window deformation: 3 passes
    c = r.centers.reshape(-1, 3)
    pos, got = r.vectors(zr, px)          # metres, metres per frame
    true_d = _rotate(pos, angle, centre) - pos
    lat_rmse = float(np.sqrt(np.mean(np.sum((got[:, :2] - true_d[:, :2]) ** 2, axis=1)))) / px
    results["piv"] = dict(vectors=len(pos), lateral_rmse_px=lat_rmse, replaced=int(r.outlier.sum()))
    print(f"PIV: {len(pos)} vectors, lateral RMSE {lat_rmse:.2f} px per frame")
    H.write_vectors_csv(out / "piv.csv", pos, got, outlier=r.outlier, peak_ratio=r.peak_ratio,
                        wavelength=lam, pixel_size=px)
    outputs.done(out / "piv.csv")
    H.write_piv_vtk(out / "piv.vtk", r, z=zr, pixel_size=px)
    outputs.done(out / "piv.vtk")
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
    outputs.done(out / "ptv.csv")
    with _files.atomic_open(out / "metrics.json") as fh:
        fh.write(json.dumps(results, indent=1))
    outputs.done(out / "metrics.json")
    for name in _demo_figures(out, ha, recs[0], tab, found[0], traj, z_window, c, got, true_d, px):
        outputs.done(out / name)
    print(f"outputs in {out}/ (volume_a.h5, particles_*.csv/.vtk, piv.csv/.vtk, ptv.csv, metrics.json, "
          f"*.png; manifest.json last)")
    outputs.finish()
    return 0


def _demo_figures(out, ha, rec, tab, found, traj, z_true, c, got, true_d, px):
    """The demo's figures; returns the names of the files written (none without
    matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figures (pip install 'diffimaging[plot]')")
        return []
    names = []
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(ha, cmap="gray")
    ax.set_title("hologram A (background divided)")
    names.append(_savefig(fig, out / "hologram.png"))
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
    names.append(_savefig(fig, out / "volume.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.asarray(traj) * 1e3, ".-", label="learned")
    ax.axhline(z_true * 1e3, color="k", ls="--", label="true")
    ax.set_xlabel("iteration")
    ax.set_ylabel("recording distance (mm)")
    ax.legend()
    ax.set_title("distance calibration (∂H, planar sample)")
    fig.tight_layout()
    names.append(_savefig(fig, out / "distance.png"))
    sel = c[:, 0] == c[len(c) // 2, 0]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.quiver(c[sel, 2], c[sel, 1], got[sel, 1] / px, -got[sel, 0] / px, color="r", label="PIV")
    ax.quiver(c[sel, 2], c[sel, 1], true_d[sel, 1] / px, -true_d[sel, 0] / px, color="k", alpha=0.4,
              label="true")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title("PIV (px per frame), middle depth")
    ax.legend()
    names.append(_savefig(fig, out / "piv.png"))
    print(f"figures -> {out}/{', '.join(names)}")
    return names


def add_commands(sub):
    """Add the holography commands (``demo``, ``holo reconstruct``, ``holo particles``,
    ``piv``) to the ``diffimaging`` command line's subparsers ``sub``."""
    d = sub.add_parser("demo", epilog=_EXITS,
                       help="simulate a calibration hologram and a hologram pair, learn the "
                            "recording distance, reconstruct with ∂H, find particles, PIV, PTV")
    d.add_argument("what", nargs="?", default="holography", choices=["holography"],
                   help="the demonstration to run (default holography)")
    d.add_argument("-o", "--output", default="diffimaging-demo",
                   help="output folder (default diffimaging-demo)")
    d.add_argument("--size", type=_number(int, low=DEMO_MIN_SIZE), default=256,
                   help=f"hologram size in pixels (>= {DEMO_MIN_SIZE}; default 256)")
    d.add_argument("--ppp", type=_number(float, low=0, low_open=True, high=DEMO_MAX_PPP),
                   default=2e-3, help=f"particles per pixel (0 < ppp <= {DEMO_MAX_PPP:g}; default 2e-3)")
    d.add_argument("--iterations", type=_number(int, low=1), default=100,
                   help="∂H iterations per frame (>= 1; default 100)")
    d.add_argument("--seed", type=_number(int, low=0), default=0,
                   help="random seed (>= 0; default 0)")
    _overwrite(d)
    d.set_defaults(func=cmd_demo)
    h = sub.add_parser("holo", help="hologram reconstruction and particle extraction")
    hs = h.add_subparsers(dest="holo_command", required=True)
    r = hs.add_parser("reconstruct", epilog=_EXITS,
                      help="reconstruct holograms to a depth stack (HDF5): ∂H or back-propagation")
    r.add_argument("holograms", nargs="+",
                   help="hologram files (TIFF/PNG..., 2-D images or multi-page frame series), folders "
                        "(their image files) or quoted glob patterns ('run/*.tif'); folders and "
                        "patterns are sorted naturally (frame2 before frame10).  Each file writes "
                        "<name>.h5 (<name>_0000.h5, ... for a multi-page file), so names must differ")
    _optics(r)
    r.add_argument("--z", type=_zrange, required=True,
                   help="depths START:STOP:N in metres from the sensor, e.g. 1e-3:5e-3:81 "
                        "(required; depths far beyond what the sensor resolves are refused)")
    r.add_argument("--method", choices=["dh", "backprop"], default="dh",
                   help="dh: the ∂H inverse problem (sparse volume, distance offset and illumination "
                        "learned; the volume holds -o, particles bright); backprop: back-propagated "
                        "intensity (particles dark). Default dh")
    r.add_argument("--save", choices=["volume", "projections"], default="volume",
                   help="volume: the (nz, ny, nx) stack; projections (with --method backprop): only "
                        "the 2-D min/max maps over depth and the depths where they occur "
                        "(<name>.projections.h5, a few MB whatever the plane count; 'holo particles' "
                        "reads it). Default volume")
    r.add_argument("--model", choices=["born", "gabor", "multislice"], default="born",
                   help="∂H scattering model (default born)")
    r.add_argument("--iterations", type=_number(int, low=1), default=100,
                   help="∂H solver iterations (>= 1; default 100)")
    r.add_argument("--sparsity", type=_number(float, low=0), default=0.01,
                   help="∂H L1 weight for unit-mean holograms (>= 0; default 0.01; about the noise "
                        "sigma)")
    r.add_argument("--fixed-z", action="store_true",
                   help="do not learn the distance offset (default: learned on the first hologram "
                        "and held for the following ones)")
    r.add_argument("--background", default="auto", metavar="auto|median|lowpass|none|FILE",
                   help="how the illumination is removed: median (per-pixel median over the series: "
                        "particles must move more than 2 diameters over it), lowpass (Gaussian "
                        "low-pass of each frame), none (unit-mean normalisation only) or FILE (a "
                        "frame recorded without particles; a series: its median).  Default auto: "
                        f"median for {MEDIAN_MIN_FRAMES} or more frames of one size, else lowpass; "
                        "the method used is printed and recorded in the manifest")
    r.add_argument("--chunk", type=_number(int, low=1), default=16,
                   help="planes per batch (>= 1; default 16; lower it when memory runs out)")
    r.add_argument("-o", "--output", required=True,
                   help="output folder (required; volumes and manifest.json, written last)")
    _overwrite(r)
    r.set_defaults(func=cmd_reconstruct)
    se = hs.add_parser("series", epilog=_EXITS + "; 3 some frames failed (each named, with its "
                                                 "error, on stdout and in the manifest)",
                       help="a hologram time series: particles per frame and PTV velocities "
                            "between frames, on Dask workers, resumable")
    se.add_argument("frames", help="the frames, in time order: a quoted glob pattern "
                                   "('run/*.tif'), a folder or a multi-page TIFF")
    _optics(se)
    se.add_argument("--z", type=_zrange, required=True,
                    help="depths START:STOP:N in metres from the sensor (required)")
    se.add_argument("--method", choices=["dh", "backprop"], default="dh",
                    help="dh (∂H, the distance offset learned once on --calibrate) or backprop "
                         "(default dh)")
    se.add_argument("--iterations", type=_number(int, low=1), default=100,
                    help="∂H iterations per frame (default 100)")
    se.add_argument("--sparsity", type=_number(float, low=0), default=0.01,
                    help="∂H L1 weight (default 0.01)")
    se.add_argument("--background", choices=["median", "lowpass", "none"], default="median",
                    help="median (per-pixel median of the series, computed once; default), "
                         "lowpass (per frame) or none")
    se.add_argument("--calibrate", default="0", metavar="FRAME|FILE",
                    help="the frame (index) or a calibration recording (file) on which the "
                         "distance offset is learned, then fixed for the series (default 0)")
    se.add_argument("--keep", choices=["particles", "projections", "volume"], default="particles",
                    help="what each frame keeps beside its particles (default particles: a "
                         "campaign of thousands of frames fits on disk)")
    se.add_argument("--dt", type=_number(float, low=0, low_open=True), default=1.0,
                    help="seconds between frames (velocities in m/s; default 1)")
    se.add_argument("--max-distance", type=_length, default=None,
                    help="PTV link radius in metres (default 10 pixels)")
    g = se.add_mutually_exclusive_group()
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786) to run the frames on "
                        "(default: none, a local cluster: see --workers)")
    g.add_argument("--workers", type=_number(int, low=0), default=None,
                   help="worker processes of a local Dask cluster (default: the machine's cores "
                        "when Dask is installed; 0: sequential in this process)")
    se.add_argument("--no-resume", action="store_true",
                    help="redo every frame (default: skip the frames an earlier run of the same "
                         "settings finished, verified by SHA-256)")
    se.add_argument("--retries", type=_number(int, low=0), default=2,
                    help="tries after a failure before a frame is reported as failed (default 2)")
    se.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                    help="where the frames are reconstructed: gpu (CuPy; one worker per GPU with "
                         "dask-cuda), cpu, or auto (default: the GPU when CuPy sees one)")
    se.add_argument("-o", "--output", required=True, help="output folder (required)")
    se.set_defaults(func=cmd_series)
    q = hs.add_parser("particles", epilog=_EXITS,
                      help="find particles in a reconstructed volume or projections file (CSV)")
    q.add_argument("volume", help="HDF5 volume or projections file from 'holo reconstruct'")
    q.add_argument("--polarity", choices=["dark", "bright"], default=None,
                   help="particles are minima (back-propagated intensity) or maxima (∂H); default: "
                        "read from the file")
    q.add_argument("--diameter", type=_length, default=None,
                   help="typical particle diameter in metres (sets the lateral search window); "
                        "default: estimated from the strongest particle images")
    q.add_argument("--pixel-size", type=_length, default=None,
                   help="metres; default: the file's (needed when the file records none)")
    q.add_argument("-o", "--output", required=True,
                   help="CSV of positions in metres on the sensor (and <output>.manifest.json, "
                        "written last); required")
    q.add_argument("--vtk", default=None, help="also write a VTK point file (default: none)")
    _overwrite(q)
    q.set_defaults(func=cmd_particles)
    v = sub.add_parser("piv", epilog=_EXITS,
                       help="3-D PIV between consecutive volumes (CSV of velocities in m per dt)")
    v.add_argument("volumes", nargs="+",
                   help="HDF5 volumes of consecutive frames (2 or more, same grid and depths): one "
                        "vector table per pair of consecutive frames")
    v.add_argument("--window", type=_window, default=None,
                   help="interrogation window in voxels: one size (16) or wz,wy,wx (8,16,16), each "
                        ">= 4; default 16 along each axis (the volume's size along a shorter axis)")
    v.add_argument("--overlap", type=_number(float, low=0, high=1, high_open=True),
                   default=0.5, help="window overlap fraction in [0, 1) (default 0.5)")
    v.add_argument("--passes", type=_number(int, low=1), default=3,
                   help="correlation passes (>= 1; default 3): 2 or more deform the windows by the "
                        "previous pass's field (sub-voxel accuracy; 1: plain correlation)")
    v.add_argument("--dt", type=_number(float, low=0, low_open=True, unit="seconds"), default=None,
                   help="frame interval in seconds (> 0); velocities in m/s. Default: none, "
                        "velocities in metres per frame")
    v.add_argument("--smooth", type=_number(float, low=0), default=None,
                   help="Gaussian blur (voxels, >= 0) before correlation; default 1 for ∂H volumes, "
                        "0 for back-propagated ones")
    v.add_argument("--polarity", choices=["dark", "bright"], default=None,
                   help="default: read from the file (dark for back-propagation, bright for ∂H)")
    v.add_argument("--pixel-size", type=_length, default=None,
                   help="metres; default: the files' (needed when they record none)")
    v.add_argument("-o", "--output", required=True,
                   help="CSV of positions and velocities (required; for N > 2 volumes one per pair: "
                        "<name>_0000.csv, ...; and <output>.manifest.json, written last)")
    v.add_argument("--vtk", default=None,
                   help="also write VTK point files (default: none; numbered like -o)")
    _overwrite(v)
    v.set_defaults(func=cmd_piv)
    t = sub.add_parser("ptv", epilog=_EXITS,
                       help="PTV: link particles over consecutive frames into tracks (CSV)")
    t.add_argument("particles", nargs="+",
                   help="particle tables (CSV from 'holo particles') of consecutive frames, 2 or more")
    t.add_argument("--max-distance", type=_length, required=True,
                   help="largest lateral displacement between two frames, metres (required)")
    t.add_argument("--max-axial-distance", type=_length, default=None,
                   help="largest displacement in depth between two frames, metres (default: "
                        "--max-distance; holographic depths are ~10x less precise than x, y)")
    t.add_argument("--passes", type=_number(int, low=1), default=2,
                   help="linking passes (>= 1; default 2): each after the first predicts every "
                        "particle's motion from its neighbours' links")
    t.add_argument("--dt", type=_number(float, low=0, low_open=True, unit="seconds"), default=None,
                   help="frame interval in seconds (> 0); velocities in m/s. Default: none, "
                        "velocities in metres per frame")
    t.add_argument("-o", "--output", required=True,
                   help="CSV of links: track, frame, midpoint x, y, z (m), velocity u, v, w (m/s); "
                        "required (and <output>.manifest.json, written last)")
    t.add_argument("--vtk", default=None, help="also write a VTK point file (default: none)")
    _overwrite(t)
    t.set_defaults(func=cmd_ptv)
