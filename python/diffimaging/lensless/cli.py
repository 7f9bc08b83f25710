"""Command line of pixel-super-resolution lensless imaging (lengths in metres).

- ``diffimaging lensless reconstruct CAPTURES... -o OUT``: one HDF5 capture set,
  or image files / folders / glob patterns with their geometry (a JSON or TOML
  file, or ``--shifts FILE --z ... --wavelength ... --pixel-size ... --factor``);
  writes the reconstruction (HDF5), the amplitude and phase (TIFF, PNG), the
  calibration table (CSV, JSON), figures and ``OUT/manifest.json`` last.
- ``diffimaging lensless simulate -o caps.h5``: a simulated capture set with its
  truth (and ``caps.h5.manifest.json``).
- ``diffimaging lensless demo`` (also ``diffimaging demo lensless``): simulates
  the standard case, reconstructs it with learned and with nominal geometry and
  with the classical baseline, and prints their scores.

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
                            length, number, progress_wanted, say)
from .._backend.files import atomic_open
from . import io as LIO
from . import report

log = logging.getLogger(__name__)

#: the files ``lensless reconstruct`` writes into its folder (figures when matplotlib is there)
RECONSTRUCT_FILES = ("reconstruction.h5", "field_amplitude.tif", "field_phase.tif",
                     "field_amplitude.png", "field_phase.png", "calibration.csv", "calibration.json")
RECONSTRUCT_FIGURES = ("captures.png", "field.png", "calibration.png")
#: the demonstration's standard case (the issue's): sensor pitch 1.6 um, u = 2, K = 16
DEMO_WINDOW = 256
DEMO_MIN_WINDOW = 64


def _lengths(text):
    """``--z``: one length, or one per capture separated by commas (metres)."""
    parse = length
    try:
        vals = [parse(t.strip()) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (one distance, or one per capture separated by "
                                         f"commas, in metres, e.g. 400e-6)") from None
    if not vals:
        raise argparse.ArgumentTypeError("needs at least one distance in metres, e.g. 400e-6")
    return np.asarray(vals)


def _learn(text):
    """``--learn``: names separated by commas (shift, z, offset, gain) or none."""
    from .model import LEARNABLE

    key = text.replace(" ", "").casefold()
    if key == "none":
        return ()
    names = tuple(dict.fromkeys(k for k in key.split(",") if k))
    if not names or any(k not in LEARNABLE for k in names):
        raise argparse.ArgumentTypeError(f"must be none or names from {', '.join(LEARNABLE)} "
                                         f"separated by commas (e.g. shift,z), got {text!r}")
    return names


def _z_range(text):
    try:
        lo, hi = (float(t) for t in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LO:HI in metres, e.g. 350e-6:500e-6 (got "
                                         f"{text!r})") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise argparse.ArgumentTypeError(f"must be LO:HI metres with 0 < LO <= HI (got {text!r})")
    return lo, hi


def _objects(text):
    from .simulate import OBJECTS

    names = tuple(dict.fromkeys(k for k in text.replace(" ", "").casefold().split(",") if k))
    if not names or any(k not in OBJECTS for k in names):
        raise argparse.ArgumentTypeError(f"must be names from {', '.join(OBJECTS)} separated by "
                                         f"commas, got {text!r}")
    return names


def _photons(text):
    if text.casefold() == "none":
        return None
    return number(float, low=0, low_open=True, unit="photons per pixel")(text)


def _api():
    """The reconstruction functions (imported when a command runs)."""
    from .. import lensless

    return lensless.simulate, lensless.reconstruct, lensless.classical


# -- reconstruct --------------------------------------------------------------------------

def _read_inputs(args):
    """(Captures, the input files for the manifest)."""
    given = list(args.captures)
    inputs = []
    single = len(given) == 1 and Path(given[0]).is_file() and LIO._is_hdf5(given[0])
    if single:
        inputs.append(input_file(given[0], "capture set"))
    else:
        inputs += [p for _, p in expand_inputs(given, what="capture image")]
    geometry = args.geometry
    if geometry is None and not single:
        geometry = LIO._find_geometry(given)
    if geometry is not None:
        inputs.append(input_file(geometry, "geometry file (--geometry)"))
        referenced = LIO.read_geometry(geometry).get("shifts_file")
        if referenced is not None and args.shifts is None:
            inputs.append(input_file(referenced, "shifts file (shifts_file)"))
    if args.shifts is not None:
        inputs.append(input_file(args.shifts, "shifts file (--shifts)"))
    background = args.background
    if background not in (None, "none", "lowpass"):
        inputs.append(input_file(background, "background file (--background FILE)"))
    caps = LIO.read_captures(given if not single else given[0], geometry, shifts=args.shifts,
                             z=args.z, wavelength=args.wavelength, pixel_size=args.pixel_size,
                             factor=args.factor, n_medium=args.n_medium, background=background)
    return caps, inputs


def _figures(out, caps, rec, fields, names):
    """The figures, or none (a message) without matplotlib; returns the names written."""
    if importlib.util.find_spec("matplotlib") is None:
        log.warning("matplotlib is not installed: no figures (pip install 'diffimaging[plot]')")
        return []
    written = []
    report.plot_captures(caps, out / names[0])
    written.append(names[0])
    report.plot_fields(fields, caps.hr_pixel_size, out / names[1])
    written.append(names[1])
    report.plot_calibration(rec, caps.pixel_size, out / names[2], truth=caps.truth or None)
    written.append(names[2])
    return written


def _scores(caps, rec):
    """PSNR, shift and height errors against a simulated set's truth ({} without)."""
    from . import metrics as M

    t = caps.truth or {}
    out = {}
    if "field" in t and not t.get("targets"):
        out["psnr_db"] = M.psnr(rec.field, t["field"])
    if "targets" in t and t["targets"]:
        out["resolution_gain"] = M.resolution_gain(rec.field, t["targets"])
    if "shifts" in t:
        out["shift_rmse_px"] = M.shift_rmse(rec.shifts, t["shifts"], caps.pixel_size)
    if "z" in t:
        out["height_rmse_m"] = M.height_rmse(rec.z, t["z"])
    return out


def _score_line(scores):
    parts = []
    if "psnr_db" in scores:
        parts.append(f"PSNR {scores['psnr_db']:.2f} dB")
    if "resolution_gain" in scores:
        parts.append(f"resolution gain {scores['resolution_gain']:g}")
    if "shift_rmse_px" in scores:
        parts.append(f"shift RMSE {scores['shift_rmse_px']:.3f} px")
    if "height_rmse_m" in scores:
        parts.append(f"height RMSE {scores['height_rmse_m'] * 1e6:.2f} um")
    return ", ".join(parts)


def cmd_reconstruct(args):
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o {out} exists and is not a folder: give an output folder")
    caps, inputs = _read_inputs(args)
    say(args, f"{caps.K} captures of {caps.sensor_shape[0]}x{caps.sensor_shape[1]} px "
              f"({caps.pixel_size * 1e6:.3g} um), factor {caps.factor}: field "
              f"{caps.sensor_shape[0] * caps.factor}x{caps.sensor_shape[1] * caps.factor} px of "
              f"{caps.hr_pixel_size * 1e6:.3g} um")
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(wavelength_m=caps.wavelength, pixel_size_m=caps.pixel_size, factor=caps.factor,
                    n_medium=caps.n_medium, learn=list(args.learn), iterations=args.iterations,
                    background=args.background, captures=caps.K, tv=args.tv,
                    modulo=args.modulo, z_search_m=args.z_search)
    outputs = Outputs(out / "manifest.json", "lensless reconstruct", settings,
                      overwrite=args.overwrite)
    for name in RECONSTRUCT_FILES + RECONSTRUCT_FIGURES:
        outputs.claim(out / name, inputs)
    _, reconstruct, _ = _api()
    t0 = time.perf_counter()
    rec = reconstruct(caps, learn=args.learn, iterations=args.iterations, tv=args.tv,
                      modulo=args.modulo, z_search=args.z_search,
                      progress=progress_wanted(args))
    seconds = time.perf_counter() - t0
    learned = "/".join(args.learn) or "nothing (nominal geometry)"
    say(args, f"reconstructed in {seconds:.1f} s ({args.iterations} iterations, learned {learned})")
    cal = report.calibration_table(rec, caps.pixel_size)
    d = np.column_stack([cal["delta_sy_px"], cal["delta_sx_px"]])
    say(args, f"learned - nominal: positions {np.sqrt(np.mean(np.sum((d - d.mean(0)) ** 2, 1))):.3f} "
              f"px RMS (common offset {d.mean(0)[0]:+.3f}, {d.mean(0)[1]:+.3f} px), heights "
              f"{np.sqrt(np.mean(cal['delta_z_m'] ** 2)) * 1e6:.2f} um RMS")
    if caps.truth:
        scores = _scores(caps, rec)
        settings["scores"] = scores
        say(args, f"against the simulated truth: {_score_line(scores)}")
    LIO.write_reconstruction(out / "reconstruction.h5", rec, caps)
    outputs.done(out / "reconstruction.h5")
    for f in LIO.write_field_images(out / "field", rec.field, caps.hr_pixel_size):
        outputs.done(f)
    for name in ("calibration.csv", "calibration.json"):
        report.write_calibration(out / name, rec, caps)
        outputs.done(out / name)
    fields = {"truth": caps.truth["field"]} if "field" in (caps.truth or {}) else {}
    fields["reconstruction"] = rec.field
    for name in _figures(out, caps, rec, fields, RECONSTRUCT_FIGURES):
        outputs.done(out / name)
    say(args, f"outputs in {out}/ (reconstruction.h5, field_*.tif/.png, calibration.csv/.json, "
              f"figures; manifest.json last)")
    log.info("manifest -> %s", outputs.finish())
    return 0


# -- simulate -----------------------------------------------------------------------------

def _simulate_kwargs(args):
    kw = dict(factor=args.factor, K=args.captures, obj=args.object, n_window=args.window,
              pad=args.pad, wavelength=args.wavelength, hr_pixel_size=args.hr_pixel_size,
              z_range=args.z_range, shift_error=args.shift_error, z_error=args.z_error,
              z_offset=args.z_offset, photons=args.photons, modulo=args.modulo, seed=args.seed)
    return kw


def cmd_simulate(args):
    target = Path(args.output)
    kw = _simulate_kwargs(args)
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
    outputs = Outputs(file_manifest(target), "lensless simulate", settings, overwrite=args.overwrite)
    outputs.claim(target, [])
    simulate, _, _ = _api()
    t0 = time.perf_counter()
    caps = simulate(**kw)
    LIO.write_captures(target, caps)
    outputs.done(target)
    outputs.finish()
    say(args, f"{caps.K} captures of {caps.sensor_shape[0]}x{caps.sensor_shape[1]} px "
              f"({args.object}, factor {caps.factor}, z {caps.z.min() * 1e6:.0f}-"
              f"{caps.z.max() * 1e6:.0f} um) in {time.perf_counter() - t0:.1f} s -> {target}")
    return 0


# -- demo ---------------------------------------------------------------------------------

_METHODS = ("learned", "nominal", "classical")


def cmd_demo(args):
    """Simulate the standard case (camera: PSNR; bar target: resolution gain;
    ``--objects``), reconstruct each set with learned and nominal geometry and with the
    classical baseline, print and record the scores."""
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"-o {out} exists and is not a folder: give an output folder")
    objects = args.objects
    if "bars" in objects:
        from .simulate import bar_target

        try:   # before any work: the bar target needs room
            bar_target(args.window, 2)
        except ValueError as exc:
            raise ValueError(f"--window {args.window}: {exc} (or --objects camera)") from None
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(window=args.window, iterations=args.iterations, seed=args.seed,
                    objects=list(objects))
    outputs = Outputs(out / "manifest.json", "demo lensless", settings, overwrite=args.overwrite)
    names = ["metrics.json", "calibration.csv", "calibration.json"]
    names += [f"captures_{o}.h5" for o in objects]
    names += [f"{m}_{o}.h5" for o in objects for m in _METHODS]
    names += ["captures.png", "field.png", "calibration.png"] + (["bars.png"] if "bars" in objects
                                                                   else [])
    for name in names:
        outputs.claim(out / name, [])
    simulate, reconstruct, classical = _api()
    results, sets = {}, {}
    for obj in objects:
        t0 = time.perf_counter()
        caps = simulate(obj=obj, n_window=args.window, seed=args.seed)
        say(args, f"{obj}: {caps.K} captures of {caps.sensor_shape[0]}x{caps.sensor_shape[1]} px "
                  f"({caps.pixel_size * 1e6:.2g} um pitch, factor {caps.factor}, z "
                  f"{caps.z.min() * 1e6:.0f}-{caps.z.max() * 1e6:.0f} um) simulated in "
                  f"{time.perf_counter() - t0:.1f} s")
        LIO.write_captures(out / f"captures_{obj}.h5", caps)
        outputs.done(out / f"captures_{obj}.h5")
        recs = {}
        for method in _METHODS:
            t0 = time.perf_counter()
            if method == "classical":
                rec = classical(caps)
            else:
                rec = reconstruct(caps, learn=("shift", "z") if method == "learned" else (),
                                  iterations=args.iterations, progress=progress_wanted(args))
            seconds = time.perf_counter() - t0
            scores = dict(_scores(caps, rec), seconds=seconds)
            results.setdefault(obj, {})[method] = scores
            recs[method] = rec
            say(args, f"  {method:9s} {_score_line(scores)} ({seconds:.1f} s)")
            LIO.write_reconstruction(out / f"{method}_{obj}.h5", rec, caps)
            outputs.done(out / f"{method}_{obj}.h5")
        sets[obj] = caps, recs
    caps, recs = sets[objects[0]]
    for name in ("calibration.csv", "calibration.json"):
        report.write_calibration(out / name, recs["learned"], caps)
        outputs.done(out / name)
    fields = {"truth": caps.truth["field"], **{m: recs[m].field for m in _METHODS[::-1]}}
    written = _figures(out, caps, recs["learned"], fields, ("captures.png", "field.png",
                                                            "calibration.png"))
    if written and "bars" in objects and objects[0] != "bars":
        caps, recs = sets["bars"]
        fields = {"truth": caps.truth["field"], **{m: recs[m].field for m in _METHODS[::-1]}}
        report.plot_fields(fields, caps.hr_pixel_size, out / "bars.png")
        written.append("bars.png")
    for name in written:
        outputs.done(out / name)
    results["settings"] = settings
    with atomic_open(out / "metrics.json") as fh:
        fh.write(json.dumps(results, indent=1) + "\n")
    outputs.done(out / "metrics.json")
    say(args, f"outputs in {out}/ (captures_*.h5, learned/nominal/classical_*.h5, "
              f"calibration.csv/.json, metrics.json, *.png; manifest.json last)")
    outputs.finish()
    return 0


# -- the parsers --------------------------------------------------------------------------

def _add_demo_arguments(d):
    d.add_argument("-o", "--output", default="diffimaging-lensless-demo",
                   help="output folder (default diffimaging-lensless-demo)")
    d.add_argument("--window", type=number(int, low=DEMO_MIN_WINDOW), default=DEMO_WINDOW,
                   help=f"field window in high-resolution pixels (>= {DEMO_MIN_WINDOW}, even; "
                        f"default {DEMO_WINDOW}: the standard case, 128x128 sensor pixels)")
    d.add_argument("--iterations", type=number(int, low=1), default=300,
                   help="iterations of the learned and nominal reconstructions (>= 1; default 300)")
    d.add_argument("--seed", type=number(int, low=0), default=0,
                   help="random seed of the simulation (>= 0; default 0)")
    d.add_argument("--objects", type=_objects, default=("camera", "bars"),
                   metavar="camera,bars",
                   help="the samples: camera (amplitude and phase images: PSNR, geometry errors), "
                        "bars (bar target: resolution gain; needs --window >= 128), or both "
                        "(default camera,bars)")
    add_overwrite(d)
    d.set_defaults(func=cmd_demo)


def add_commands(sub):
    """Add ``lensless reconstruct``, ``lensless simulate`` and ``lensless demo`` to
    the ``diffimaging`` command line's subparsers ``sub``."""
    lp = sub.add_parser("lensless", help="pixel-super-resolution lensless imaging: reconstruct "
                                         "capture sets, simulate them, demo")
    ls = lp.add_subparsers(dest="lensless_command", required=True)
    r = ls.add_parser("reconstruct", epilog=EXITS,
                      help="reconstruct a high-resolution complex field from K captures, learning "
                           "the sensor positions and heights",
                      description="Reconstruct the high-resolution complex transmission of a "
                                  "sample from K low-resolution\nlensless captures, learning the "
                                  "true sensor positions and heights from the nominal\nones.  "
                                  "Lengths in metres.")
    r.add_argument("captures", nargs="+",
                   help="one HDF5 capture set (from 'lensless simulate' or "
                        "diffimaging.lensless.io.write_captures: it carries its geometry), or image "
                        "files (TIFF...), folders or quoted glob patterns, one capture per image in "
                        "order (folders and patterns sorted naturally: cap2 before cap10)")
    r.add_argument("--geometry", default=None,
                   help="JSON or TOML geometry file of image captures (keys wavelength, pixel_size, "
                        "factor, n_medium, z, shifts or shifts_file; metres); default: the "
                        "geometry.toml or geometry.json of the folder given")
    r.add_argument("--shifts", default=None,
                   help="file of nominal sensor positions: two columns sy, sx in metres, one row "
                        "per capture (CSV/text, or a calibration.csv of an earlier run); default: "
                        "the geometry's")
    r.add_argument("--z", type=_lengths, default=None,
                   help="nominal sample-to-sensor distance(s) in metres: one for all captures or "
                        "one per capture separated by commas (e.g. 400e-6); default: the geometry's")
    r.add_argument("--wavelength", type=length, default=None,
                   help="vacuum wavelength in metres, e.g. 532e-9; default: the geometry's")
    r.add_argument("--pixel-size", type=length, default=None,
                   help="sensor pixel pitch in metres, e.g. 1.6e-6; default: the geometry's")
    r.add_argument("--factor", type=number(int, low=1, high=16), default=None,
                   help="super-resolution factor (1 to 16): the field's pitch is pixel size / "
                        "factor; default: the geometry's")
    r.add_argument("--n-medium", type=number(float, low=1.0, high=3.0), default=None,
                   help="refractive index between sample and sensor (1 to 3); default: the "
                        "geometry's, else 1.0 (air)")
    r.add_argument("--background", default=None, metavar="none|lowpass|FILE",
                   help="what each image capture is divided by before its normalisation to unit "
                        "mean: none, lowpass (a Gaussian low-pass of itself: uneven illumination) "
                        "or FILE (a flat field recorded without the sample). Default: none for "
                        "images; an HDF5 set is taken as stored")
    r.add_argument("--learn", type=_learn, default=("shift", "z"), metavar="shift,z|...|none",
                   help="geometry learned with the field, names separated by commas: shift, z, "
                        "offset (one common height error), gain (per-capture illumination); none: "
                        "the nominal geometry, a baseline (default shift,z)")
    r.add_argument("--iterations", type=number(int, low=1), default=300,
                   help="solver iterations (>= 1; default 300)")
    r.add_argument("--modulo", action="store_true",
                   help="the nominal positions are known only modulo one sensor pixel: the whole "
                        "pixels are found by registering the captures (default: off)")
    r.add_argument("--tv", type=number(float, low=0), default=1e-2,
                   help="weight of the total variation of the field, for captures normalised to "
                        "1 (>= 0; default 0.01)")
    r.add_argument("--z-search", type=number(float, low=0, low_open=True, unit="metres"), default=None,
                   help="half-width of the height search around the nominal heights, metres "
                        "(default 100e-6, at most half the smallest height)")
    r.add_argument("-o", "--output", required=True,
                   help="output folder (required): reconstruction.h5, field_amplitude/phase .tif "
                        "and .png, calibration.csv/.json, figures, manifest.json (written last)")
    add_overwrite(r)
    r.set_defaults(func=cmd_reconstruct)

    s = ls.add_parser("simulate", epilog=EXITS,
                      help="simulate a lensless capture set with known truth (HDF5)",
                      description="Simulate K lensless captures of a thin sample (Poisson noise, "
                                  "box pixels, a finer\nsimulation grid than the reconstruction's) "
                                  "with nominal and true geometry.\nLengths in metres.")
    s.add_argument("-o", "--output", required=True,
                   help="HDF5 capture set to write (required; and <output>.manifest.json, last)")
    s.add_argument("--object", choices=["camera", "bars"], default="camera",
                   help="the sample: camera (amplitude and phase images) or bars (a bar target "
                        "for the resolution gain); default camera")
    s.add_argument("--factor", type=number(int, low=1, high=16), default=2,
                   help="super-resolution factor (default 2)")
    s.add_argument("--captures", type=number(int, low=1), default=None,
                   help="number of captures K (default 16 for factor 2, else 2 factor^2)")
    s.add_argument("--window", type=number(int, low=8), default=256,
                   help="field window in high-resolution pixels, a multiple of --factor (default "
                        "256)")
    s.add_argument("--pad", type=number(int, low=0), default=64,
                   help="clear border around the window, high-resolution pixels (default 64)")
    s.add_argument("--wavelength", type=length, default=532e-9,
                   help="vacuum wavelength in metres (default 532e-9)")
    s.add_argument("--hr-pixel-size", type=length, default=0.8e-6,
                   help="high-resolution pitch in metres; the sensor pitch is --factor times it "
                        "(default 0.8e-6)")
    s.add_argument("--z-range", type=_z_range, default=(350e-6, 500e-6),
                   help="LO:HI range of the nominal heights in metres (default 350e-6:500e-6)")
    s.add_argument("--shift-error", type=number(float, low=0, unit="metres"), default=0.8e-6,
                   help="standard deviation of the true positions about the nominal ones, metres "
                        "(default 0.8e-6)")
    s.add_argument("--z-error", type=number(float, low=0, unit="metres"), default=25e-6,
                   help="standard deviation of the true heights about the nominal ones, metres "
                        "(default 25e-6)")
    s.add_argument("--z-offset", type=number(float, unit="metres"), default=0.0,
                   help="common error of all heights, metres (default 0)")
    s.add_argument("--photons", type=_photons, default=1e4,
                   help="mean photons per sensor pixel (Poisson noise), or none (default 1e4)")
    s.add_argument("--modulo", action="store_true",
                   help="nominal positions known only modulo one sensor pixel (default: off)")
    s.add_argument("--seed", type=number(int, low=0), default=0,
                   help="random seed (>= 0; default 0)")
    add_overwrite(s)
    s.set_defaults(func=cmd_simulate)

    d = ls.add_parser("demo", epilog=EXITS,
                      help="simulate the standard case, reconstruct it (learned, nominal, "
                           "classical) and print the scores (also 'diffimaging demo lensless')")
    _add_demo_arguments(d)
