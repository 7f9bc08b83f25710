"""Command line of Fourier ptychographic microscopy (FPM; lengths in metres).

- ``diffimaging fpm reconstruct IMAGES... -o OUT``: one HDF5 dataset (the
  PtyLab FPM layout, or the package's own file), or image files / folders /
  glob patterns with their setup (``--setup setup.toml``, or the setup.toml of
  the folder given); learns the object with the pupil, the LED-array geometry,
  the LED brightnesses and the per-image noise weights; writes the
  reconstruction (HDF5), the object's amplitude and phase (TIFF, PNG), the
  calibration (JSON), figures and ``OUT/manifest.json`` last.
- ``diffimaging fpm simulate -o data.h5``: a simulated dataset with its truth
  (and ``data.h5.manifest.json``).
- ``diffimaging fpm demo`` (also ``diffimaging demo fpm``): simulates the
  standard case, reconstructs it with the geometry learned, with the geometry
  frozen at its nominal value and with the classical baseline (EPRY), and
  prints their scores.

The command-line contract (exit codes, one-line errors, outputs claimed before
any work, manifest last, ``--overwrite``) is :mod:`diffimaging.cli`'s.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from .._backend.cli import (EXITS, Outputs, add_overwrite, expand_inputs, file_manifest, input_file,
                            number, progress_wanted, say)
from .._backend.files import atomic_open

log = logging.getLogger(__name__)

#: the files ``fpm reconstruct`` writes into its folder (figures when matplotlib is there)
RECONSTRUCT_FILES = ("reconstruction.h5", "object_amplitude.tif", "object_amplitude.png",
                     "object_phase.tif", "object_phase.png", "calibration.json")
FIGURES = ("object.png", "pupil.png", "leds.png", "weights.png", "loss.png")
#: ``--large``: the misalignment of a badly set-up array
LARGE = dict(offset=(600e-6, -400e-6), rotation=math.radians(1.5), height_error=4e-3)
#: the demonstration's cases: (LEDs per side, image pixels per side, iterations)
STANDARD = (15, 64, 250)
QUICK = (9, 32, 40)
#: the demo's methods, in the order of its table
METHODS = ("learned", "nominal", "epry")


# -- argument types -----------------------------------------------------------------------

def _learn(text):
    """``--learn``: names separated by commas (pupil, leds, pitch, brightness, noise) or none."""
    from .reconstruct import LEARN

    key = text.replace(" ", "").casefold()
    if key == "none":
        return ()
    names = tuple(dict.fromkeys(k for k in key.split(",") if k))
    if not names or any(k not in LEARN for k in names):
        raise argparse.ArgumentTypeError(f"must be none or names from {', '.join(LEARN)} "
                                         f"separated by commas (e.g. pupil,leds), got {text!r}")
    return names


def _photons(text):
    if text.casefold() == "none":
        return None
    return number(float, low=0, low_open=True, unit="photons")(text)


def _pair(text, minimum, what, example):
    """N (N x N) or AxB, each at least ``minimum``."""
    parts = text.casefold().replace("*", "x").split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2) or any(v < minimum for v in vals):
        raise argparse.ArgumentTypeError(f"must be {what} (e.g. {example}), got {text!r}")
    return (vals[0], vals[-1])


def _leds(text):
    """``--leds``: N (an N x N array) or ROWSxCOLS."""
    return _pair(text, 1, "N or ROWSxCOLS LEDs", "15 or 15x13")


def _shape(text):
    """``--shape``: N (N x N) or NYxNX camera pixels, at least 8."""
    return _pair(text, 8, "N or NYxNX camera pixels, each at least 8", "64 or 64x48")


def _api():
    """The package's FPM functions (imported when a command runs)."""
    from .. import fpm

    return fpm


def _epry():
    """The classical baseline, or None where the package has none."""
    try:
        from .classical import epry
    except ImportError:
        return None
    return epry


# -- shared pieces ------------------------------------------------------------------------

def _output_folder(path):
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o {out} exists and is not a folder: give an output folder")
    return out


def _figures(out, rec, truth, names=FIGURES):
    """The figures of ``rec`` (with the truth of a simulated dataset), or none (a
    message) without matplotlib; returns the names written."""
    if importlib.util.find_spec("matplotlib") is None:
        log.warning("matplotlib is not installed: no figures (pip install 'diffimaging[plot]')")
        return []
    from . import report

    t = truth.truth if truth is not None and truth.truth else None
    obj, pupil, leds, weights, loss = names
    report.plot_object(rec, out / obj, truth=t)
    report.plot_pupil(rec, out / pupil, truth_zernike=None if t is None else t.get("zernike"))
    report.plot_leds(rec, out / leds, truth_setup=None if t is None else t.get("setup"))
    report.plot_weights(rec, out / weights, corrupted=None if t is None else t.get("corrupted"))
    report.plot_loss(rec, out / loss)
    return list(names)


def _summary(rec, seconds):
    """The one line of the learned calibration."""
    from .report import calibration_table, lowest_weights

    cal = calibration_table(rec)
    ch = cal["change"]
    low = ", ".join(f"{r['led']} ({r['weight']:.2f})" for r in lowest_weights(rec, 3))
    return (f"learned: offset ({ch['offset_um'][0]:+.1f}, {ch['offset_um'][1]:+.1f}) um, rotation "
            f"{ch['rotation_deg']:+.3f} deg, height {ch['height_mm']:+.3f} mm (vs nominal), "
            f"Zernike RMS {cal['zernike']['rms_rad']:.3f} rad, lowest-weight frames {low}; "
            f"{seconds:.1f} s")


def _score_line(s):
    return (f"PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.3f}, k_max {s['k_max']:.2f} px, "
            f"rotation error {s['rotation_error']:+.3f} deg, height error "
            f"{s['height_error'] * 1e6:+.0f} um, Zernike RMS {s['zernike_rms']:.3f} rad")


# -- reconstruct --------------------------------------------------------------------------

def _read_inputs(args):
    """(Dataset, the input files for the manifest)."""
    from . import io as FIO

    given = list(args.images)
    single = len(given) == 1 and Path(given[0]).is_file() and FIO._is_hdf5(given[0])
    if single:
        if args.setup is not None:
            raise ValueError(f"{given[0]} is an HDF5 dataset: it carries its setup (drop --setup, "
                             f"or give image files with --setup)")
        inputs = [input_file(given[0], "FPM dataset")]
        return FIO.read_dataset(given[0]), inputs
    inputs = [p for _, p in expand_inputs(given, what="FPM image")]
    setup = args.setup
    if setup is None:
        setup = FIO._find_setup(given)
        if setup is None:
            raise ValueError(f"no setup for the {len(inputs)} image file(s): give --setup "
                             f"setup.toml (keys: {', '.join(FIO._SETUP_KEYS)}; lengths in metres) "
                             f"or put {FIO.SETUP_NAMES[0]} in the folder of the images")
    inputs.append(input_file(setup, "setup file (--setup)"))
    return FIO.read_dataset(given, setup=setup), inputs


def cmd_reconstruct(args):
    out = _output_folder(args.output)
    data, inputs = _read_inputs(args)
    s = data.setup
    ny, nx = data.image_shape
    NY, NX = data.object_shape
    say(args, f"{s.n_leds} images ({s.rows} x {s.cols} LEDs) of {ny}x{nx} px "
              f"({s.low_pixel_size * 1e6:.3g} um at the sample), NA {s.na:g}: object {NY}x{NX} px "
              f"of {s.object_pixel_size * 1e6:.3g} um")
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(learn=list(args.learn), loss=args.loss, iterations=args.iterations,
                    pad=args.pad, calibrate=not args.no_calibrate, background=args.background,
                    zernike=args.zernike, images=s.n_leds, setup=s.to_dict())
    outputs = Outputs(out / "manifest.json", "fpm reconstruct", settings, overwrite=args.overwrite)
    figures = () if args.no_figures else FIGURES
    for name in RECONSTRUCT_FILES + figures:
        outputs.claim(out / name, inputs)
    fpm = _api()
    from . import io as FIO
    from . import report

    t0 = time.perf_counter()
    rec = fpm.reconstruct(data, learn=args.learn, loss=args.loss, iterations=args.iterations,
                          pad=args.pad, calibrate=False if args.no_calibrate else "auto",
                          zernike=args.zernike, background=args.background,
                          progress=progress_wanted(args))
    seconds = time.perf_counter() - t0
    learned = "/".join(args.learn) or "nothing (nominal setup)"
    say(args, f"reconstructed in {seconds:.1f} s ({args.iterations} iterations, {args.loss} loss, "
              f"learned {learned})")
    say(args, _summary(rec, seconds))
    truth = data if data.truth else None
    if truth is not None and "object" in data.truth and "setup" in data.truth:
        scores = fpm.metrics.score(rec, data)
        settings["scores"] = scores
        say(args, f"against the simulated truth: {_score_line(scores)}")
    FIO.write_reconstruction(out / "reconstruction.h5", rec)
    outputs.done(out / "reconstruction.h5")
    for f in FIO.write_images(out / "object", rec):
        outputs.done(f)
    report.write_calibration(out / "calibration.json", rec, truth)
    outputs.done(out / "calibration.json")
    if figures:
        for name in _figures(out, rec, truth):
            outputs.done(out / name)
    say(args, f"outputs in {out}/ (reconstruction.h5, object_*.tif/.png, calibration.json"
              f"{', figures' if figures else ''}; manifest.json last)")
    log.info("manifest -> %s", outputs.finish())
    return 0


# -- simulate -----------------------------------------------------------------------------

def _simulate_kwargs(args):
    fpm = _api()
    rows, cols = args.leds
    kw = dict(setup=fpm.standard_setup(rows=rows, cols=cols), shape=args.shape, obj=args.obj,
              photons=args.photons, corrupted=args.corrupted, seed=args.seed)
    if args.large:
        kw.update(LARGE)
    if args.corrupted > rows * cols:
        raise ValueError(f"--corrupted {args.corrupted}: the {rows} x {cols} array has only "
                         f"{rows * cols} frames")
    return kw


def cmd_simulate(args):
    target = Path(args.output)
    kw = _simulate_kwargs(args)
    settings = {k: (v.to_dict() if k == "setup" else list(v) if isinstance(v, tuple) else v)
                for k, v in kw.items()}
    outputs = Outputs(file_manifest(target), "fpm simulate", settings, overwrite=args.overwrite)
    outputs.claim(target, [])
    fpm = _api()
    from . import io as FIO

    t0 = time.perf_counter()
    data = fpm.simulate(**kw)
    FIO.write_dataset(target, data)
    outputs.done(target)
    outputs.finish()
    s, t = data.setup, data.truth
    ts = t["setup"]
    dy, dx = (np.asarray(ts.offset) - np.asarray(s.offset)) * 1e6
    bad = f", {len(t['corrupted'])} corrupted frames" if t["corrupted"] else ""
    say(args, f"{s.n_leds} images ({s.rows} x {s.cols} LEDs) of {data.image_shape[0]}x"
              f"{data.image_shape[1]} px ({args.obj}; true array offset ({dy:+.0f}, {dx:+.0f}) um, "
              f"rotation {math.degrees(ts.rotation - s.rotation):+.2f} deg, height "
              f"{(ts.height - s.height) * 1e3:+.2f} mm{bad}) in {time.perf_counter() - t0:.1f} s "
              f"-> {target}")
    return 0


# -- demo ---------------------------------------------------------------------------------

def cmd_demo(args):
    """Simulate the standard case (or the quick one), reconstruct it with the
    geometry learned, with it frozen at the nominal value (``learn=()``) and with
    EPRY; print the scores and the PSNR differences, write the figures (with the
    truth) and the scores."""
    out = _output_folder(args.output)
    leds, side, iters = QUICK if args.quick else STANDARD
    rows, cols = args.leds or (leds, leds)
    shape = args.shape or (side, side)
    iterations = args.iterations or iters
    epry = _epry()
    methods = [m for m in METHODS if m != "epry" or epry is not None]
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(quick=args.quick, leds=[rows, cols], shape=list(shape), iterations=iterations,
                    pad=args.pad, epry_iterations=args.epry_iterations, corrupted=args.corrupted,
                    seed=args.seed)
    outputs = Outputs(out / "manifest.json", "demo fpm", settings, overwrite=args.overwrite)
    names = ["data.h5", "metrics.json", "calibration.json"] + [f"{m}.h5" for m in methods]
    figures = list(FIGURES) + ["objects.png"]
    for name in names + figures:
        outputs.claim(out / name, [])
    fpm = _api()
    from . import io as FIO
    from . import report
    from .reconstruct import DEFAULT_LEARN

    t0 = time.perf_counter()
    data = fpm.simulate(setup=fpm.standard_setup(rows=rows, cols=cols), shape=shape,
                        corrupted=args.corrupted, seed=args.seed)
    s = data.setup
    say(args, f"{s.n_leds} images ({rows} x {cols} LEDs) of {shape[0]}x{shape[1]} px, object "
              f"{data.object_shape[0]}x{data.object_shape[1]} px, simulated in "
              f"{time.perf_counter() - t0:.1f} s")
    FIO.write_dataset(out / "data.h5", data)
    outputs.done(out / "data.h5")
    recs, results = {}, {}
    for method in methods:
        t0 = time.perf_counter()
        if method == "epry":
            rec = epry(data, iterations=args.epry_iterations, progress=progress_wanted(args))
        else:
            learn = DEFAULT_LEARN if method == "learned" else ()
            rec = fpm.reconstruct(data, learn=learn, iterations=iterations, pad=args.pad,
                                  progress=progress_wanted(args))
        seconds = time.perf_counter() - t0
        results[method] = dict(fpm.metrics.score(rec, data), seconds=seconds)
        recs[method] = rec
        log.info("%s: %s (%.1f s)", method, _score_line(results[method]), seconds)
        FIO.write_reconstruction(out / f"{method}.h5", rec)
        outputs.done(out / f"{method}.h5")
    _table(args, results)
    rec = recs["learned"]
    report.write_calibration(out / "calibration.json", rec, data)
    outputs.done(out / "calibration.json")
    written = _figures(out, rec, data)
    if written:
        objects = {"truth": data.truth["object"]}
        objects.update({m: recs[m].object for m in reversed(methods)})
        report.plot_objects(objects, s.object_pixel_size, out / "objects.png")
        written.append("objects.png")
    for name in written:
        outputs.done(out / name)
    doc = dict(results, settings=settings)
    doc["psnr_gain_db"] = {f"learned-{m}": results["learned"]["psnr"] - results[m]["psnr"]
                           for m in methods if m != "learned"}
    with atomic_open(out / "metrics.json") as fh:
        fh.write(json.dumps(doc, indent=1) + "\n")
    outputs.done(out / "metrics.json")
    say(args, f"outputs in {out}/ (data.h5, {', '.join(f'{m}.h5' for m in methods)}, "
              f"calibration.json, metrics.json, *.png; manifest.json last)")
    outputs.finish()
    return 0


def _table(args, results):
    """The scores, one method a row, and the PSNR differences."""
    head = (f"{'method':9s} {'PSNR dB':>8s} {'SSIM':>6s} {'k_max px':>9s} {'rot err deg':>12s} "
            f"{'height err um':>14s} {'Zernike RMS rad':>16s} {'time s':>7s}")
    say(args, head)
    for m, r in results.items():
        say(args, f"{m:9s} {r['psnr']:8.2f} {r['ssim']:6.3f} {r['k_max']:9.2f} "
                  f"{r['rotation_error']:+12.3f} {r['height_error'] * 1e6:+14.0f} "
                  f"{r['zernike_rms']:16.3f} {r['seconds']:7.1f}")
    gains = [f"{results['learned']['psnr'] - r['psnr']:+.2f} dB vs {m}"
             for m, r in results.items() if m != "learned"]
    if gains:
        say(args, f"PSNR of the learned setup: {', '.join(gains)}")


# -- the parsers --------------------------------------------------------------------------

def _add_demo_arguments(d):
    d.add_argument("-o", "--output", default="fpm-demo",
                   help="output folder (default fpm-demo)")
    d.add_argument("--quick", action="store_true",
                   help=f"a small case: {QUICK[0]} x {QUICK[0]} LEDs, {QUICK[1]}x{QUICK[1]} px "
                        f"images, "
                        f"{QUICK[2]} iterations (default: off, the standard case: {STANDARD[0]} x "
                        f"{STANDARD[0]} LEDs, {STANDARD[1]}x{STANDARD[1]} px, {STANDARD[2]} "
                        f"iterations, a few minutes)")
    d.add_argument("--iterations", type=number(int, low=1), default=None,
                   help=f"iterations of the learned and nominal reconstructions (>= 1; default "
                        f"{STANDARD[2]}, {QUICK[2]} with --quick)")
    d.add_argument("--pad", type=number(int, low=0), default=8,
                   help="camera pixels of object beyond the field of view on each side, in the "
                        "learned and nominal reconstructions (>= 0; default 8)")
    d.add_argument("--epry-iterations", type=number(int, low=1), default=30,
                   help="sweeps of the EPRY baseline (>= 1; default 30)")
    d.add_argument("--leds", type=_leds, default=None, metavar="N|ROWSxCOLS",
                   help=f"the LED array (default {STANDARD[0]}, {QUICK[0]} with --quick)")
    d.add_argument("--shape", type=_shape, default=None, metavar="N|NYxNX",
                   help=f"camera pixels of the images (default {STANDARD[1]}, {QUICK[1]} with "
                        f"--quick)")
    d.add_argument("--corrupted", type=number(int, low=0), default=0,
                   help="corrupted frames in the simulated data (>= 0; default 0)")
    d.add_argument("--seed", type=number(int, low=0), default=0,
                   help="random seed of the simulation (>= 0; default 0)")
    add_overwrite(d)
    d.set_defaults(func=cmd_demo)


def add_commands(sub):
    """Add ``fpm reconstruct``, ``fpm simulate`` and ``fpm demo`` to the
    ``diffimaging`` command line's subparsers ``sub``."""
    fp = sub.add_parser("fpm", help="Fourier ptychographic microscopy: reconstruct datasets "
                                    "(learning pupil, LED geometry, brightness, noise), simulate "
                                    "them, demo")
    fs = fp.add_subparsers(dest="fpm_command", required=True)
    r = fs.add_parser("reconstruct", epilog=EXITS,
                      help="reconstruct the high-resolution complex object from one image per "
                           "LED, learning the pupil, the LED geometry, brightness and noise",
                      description="Reconstruct the high-resolution complex transmission of a "
                                  "sample from the\nlow-resolution images of a Fourier "
                                  "ptychographic microscope (one per\nLED), learning with it the "
                                  "pupil aberrations, the LED array's offset,\nrotation and "
                                  "height, the LED brightnesses and the per-image noise\nweights.  "
                                  "Lengths in metres.")
    r.add_argument("images", nargs="+",
                   help="one HDF5 dataset (PtyLab FPM layout, or from 'fpm simulate' / "
                        "diffimaging.fpm.io.write_dataset: it carries its setup), or image files "
                        "(TIFF...), folders or quoted glob patterns, one image per LED in the "
                        "setup's order (folders and patterns sorted naturally: img2 before img10)")
    r.add_argument("--setup", default=None,
                   help="TOML or JSON setup file of image inputs (rows, cols, pitch, height, "
                        "wavelength, na, pixel_size, magnification, optional upsampling, offset, "
                        "rotation, order; metres, radians); default: the setup.toml of the folder "
                        "given")
    r.add_argument("--learn", type=_learn, default=("pupil", "leds", "brightness", "noise"),
                   metavar="pupil,leds,brightness,noise|none",
                   help="what is learned with the object, names separated by commas: pupil "
                        "(Zernike), leds (array offset, rotation, height), pitch, brightness, "
                        "noise (per-image weights); none: the nominal setup, a baseline (default "
                        "pupil,leds,brightness,noise)")
    r.add_argument("--loss", choices=["amplitude", "poisson", "huber"], default="amplitude",
                   help="the fidelity: amplitude, poisson (photon counts at low light) or huber "
                        "(default amplitude)")
    r.add_argument("--iterations", type=number(int, low=1), default=250,
                   help="passes over all LEDs (>= 1; default 250)")
    r.add_argument("--pad", type=number(int, low=0), default=8,
                   help="camera pixels of object beyond the field of view on each side (>= 0; "
                        "default 8)")
    r.add_argument("--no-calibrate", action="store_true",
                   help="skip the coarse search of the LED array's geometry from the "
                        "bright-field images (default: done when leds are learned)")
    r.add_argument("--background", type=number(float, low=0, unit="photons"), default=0.0,
                   help="known offset of the images, e.g. the camera's dark level (>= 0; default "
                        "0)")
    r.add_argument("--zernike", type=number(int, low=1, high=36), default=9,
                   help="Zernike modes of the pupil, Noll 1..N (1 to 36; default 9)")
    r.add_argument("--no-figures", action="store_true",
                   help="write no figures (default: object, pupil, leds, weights, loss .png when "
                        "matplotlib is installed)")
    r.add_argument("-o", "--output", required=True,
                   help="output folder (required): reconstruction.h5, object_amplitude/phase .tif "
                        "and .png, calibration.json, figures, manifest.json (written last)")
    add_overwrite(r)
    r.set_defaults(func=cmd_reconstruct)

    s = fs.add_parser("simulate", epilog=EXITS,
                      help="simulate an FPM dataset with known truth (HDF5)",
                      description="Simulate the images of a thin sample under a misaligned LED "
                                  "array with pupil\naberrations, uneven LED brightness and "
                                  "Poisson noise (the standard case:\n15 x 15 LEDs, 64x64 px "
                                  "images, a 256x256 px object).  Lengths in metres.")
    s.add_argument("-o", "--output", required=True,
                   help="HDF5 dataset to write (required; and <output>.manifest.json, last)")
    s.add_argument("--obj", choices=["camera", "bars"], default="camera",
                   help="the sample: camera (amplitude and phase images) or bars (a resolution "
                        "target); default camera")
    s.add_argument("--photons", type=_photons, default=5000.0,
                   help="mean photons of the on-axis bright-field image (Poisson noise), or none "
                        "(default 5000)")
    s.add_argument("--corrupted", type=number(int, low=0), default=0,
                   help="corrupted frames (stray light, moved sample, hot pixels) at random LEDs "
                        "(>= 0; default 0)")
    s.add_argument("--seed", type=number(int, low=0), default=0,
                   help="random seed (>= 0; default 0)")
    s.add_argument("--large", action="store_true",
                   help="a large misalignment: array offset (600, -400) um, rotation 1.5 deg, "
                        "height +4 mm (default: off, (200, -150) um, 0.5 deg, +1.5 mm)")
    s.add_argument("--leds", type=_leds, default=(15, 15), metavar="N|ROWSxCOLS",
                   help="the LED array, N x N or ROWSxCOLS (default 15)")
    s.add_argument("--shape", type=_shape, default=(64, 64), metavar="N|NYxNX",
                   help="camera pixels of the images, at least 8 (default 64)")
    add_overwrite(s)
    s.set_defaults(func=cmd_simulate)

    d = fs.add_parser("demo", epilog=EXITS,
                      help="simulate the standard case, reconstruct it (learned, nominal, EPRY) "
                           "and print the scores (also 'diffimaging demo fpm')")
    _add_demo_arguments(d)
