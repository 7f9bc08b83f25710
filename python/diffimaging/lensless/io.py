"""Files of pixel-super-resolution lensless imaging: capture sets in, reconstructions out.

Capture sets (:func:`read_captures`, :func:`write_captures`)
-------------------------------------------------------------
Two layouts are read:

* **One HDF5 file** (what :func:`write_captures` and ``diffimaging lensless
  simulate`` write)::

      /captures        (K, ny, nx) background-normalised intensities; units "1"
      /nominal_shifts  (K, 2) nominal sensor positions (sy, sx); units "m"
      /nominal_z       (K,) nominal sample-to-sensor distances; units "m"
      /capture         (K,) capture index, /y, /x sensor pixel positions (m),
                       /axis ("y", "x"): dimension scales of the datasets above
      /truth/...       optional, simulated sets: captures.truth (arrays as datasets,
                       a complex field as <key>_real, <key>_imag; the rest JSON
                       attributes)
      attributes: wavelength (vacuum, m), pixel_size (sensor pitch, m), factor,
                  n_medium, wavelength_units "m", pixel_size_units "m",
                  diffimaging_version, created

  ``wavelength_m`` and ``pixel_size_m`` (the names of the package's volume
  files) are read as well.

* **Image files** (TIFF, or any format :func:`diffimaging.holography.read_hologram`
  reads, colour averaged to grey), one capture each in the order given (a
  folder or a glob pattern is sorted naturally: cap2 before cap10; a multi-page
  TIFF contributes each page), plus a **geometry file** in JSON or TOML (TOML
  needs Python 3.11+ or the ``tomli`` package).  Its keys, lengths in metres::

      wavelength = 532e-9        # vacuum wavelength (required)
      pixel_size = 1.12e-6       # sensor pixel pitch (required)
      factor = 2                 # super-resolution factor (required)
      n_medium = 1.0             # refractive index sample-sensor (default 1.0)
      z = 400e-6                 # one distance for all captures, or one per capture
      shifts = [[0.0, 0.0], [0.0, 0.56e-6], ...]   # (sy, sx) per capture
      # or, instead of shifts:
      shifts_file = "stage.csv"  # relative to the geometry file (see read_shifts)

  A folder that holds the images and one ``geometry.json`` or
  ``geometry.toml`` needs no other argument.  Each image is divided by its
  background (``background=``) and normalised to unit mean.

Every error names the file and the key, and lengths that cannot be metres
(a pixel size of 1.12, a height of 400) are refused with the likely slip.

Reconstructions (:func:`write_reconstruction`, :func:`read_reconstruction`,
:func:`write_field_images`)
-------------------------------------------------------------------------
A self-describing HDF5 file (xarray opens it:
``xr.open_dataset(path, engine="h5netcdf", phony_dims="access")``)::

    /amplitude (NY, NX) |t| of the complex transmission t; units "1"
    /phase     (NY, NX) arg t; units "rad"
    /y, /x     (NY,), (NX,) positions of the high-resolution pixels, metres
               (pixel (i, j) at (i dy, j dx)); dimension scales of both
    /capture   (K,) capture index, /axis ("y", "x"): dimension scales of the
               parameters
    /shifts, /nominal_shifts   (K, 2) learned and nominal (sy, sx); units "m"
    /z, /nominal_z             (K,) learned and nominal heights; units "m"
    /loss      (iterations,) the solver's loss trace, when recorded (scale /iteration)
    attributes: title, wavelength, pixel_size (sensor), hr_pixel_size, factor,
                n_medium, learned (what was learned), *_units, settings (JSON),
                diffimaging_version, created

and, for the image tools of a lab, float32 TIFF (amplitude, phase in radians;
the pixel size in the resolution tags) and 8-bit PNG previews.  Every writer is
atomic (:mod:`diffimaging.files`): a file is complete or absent.
"""
from __future__ import annotations

import datetime
import io as _io
import json
import math
from pathlib import Path

import numpy as np

from .._backend.cli import IMAGE_SUFFIXES, expand_inputs
from .._backend import files as _files
from .._backend.files import atomic_open, atomic_path
from .._backend.namespace import to_numpy as _host
from ..holography import check_optics, preprocess, read_hologram, read_table
from .captures import Captures, Reconstruction

__all__ = ["read_captures", "write_captures", "read_geometry", "read_shifts",
           "write_reconstruction", "read_reconstruction", "write_field_images",
           "HDF5_SUFFIXES", "GEOMETRY_NAMES"]

#: suffixes read as HDF5 capture sets
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nc")
#: geometry files a folder of captures may hold (used when no geometry is given)
GEOMETRY_NAMES = ("geometry.toml", "geometry.json")
#: keys of a geometry file
_GEOMETRY_KEYS = ("wavelength", "pixel_size", "factor", "n_medium", "z", "shifts", "shifts_file")
_REQUIRED = ("wavelength", "pixel_size", "factor")


def _version():
    from .. import __version__

    return __version__


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def _is_hdf5(path) -> bool:
    p = Path(path)
    if p.suffix.lower() in HDF5_SUFFIXES:
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


# ----------------------------------------------------------------------------- geometry

def _load_mapping(path: Path) -> dict:
    """The top-level table of a JSON or TOML file."""
    return _files.load_mapping(path, "geometry", _GEOMETRY_KEYS)


def read_geometry(path) -> dict:
    """Read a geometry file (JSON or TOML; keys in the module notes).

    Returns a dict with the keys present among ``wavelength``, ``pixel_size``
    (metres), ``factor`` (int), ``n_medium``, ``z`` (float or (K,) array, metres)
    and ``shifts`` ((K, 2) array, metres; read from ``shifts_file`` when that is
    given, relative to the geometry file; ``shifts_file`` is then the path read).
    Unknown keys are refused (a typo would otherwise be ignored); the lengths are
    checked to be plausible metres.
    """
    p = Path(path)
    doc = _load_mapping(p)
    unknown = sorted(set(doc) - set(_GEOMETRY_KEYS))
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {unknown}; a geometry file holds "
                         f"{', '.join(_GEOMETRY_KEYS)} (lengths in metres)")
    if "shifts" in doc and "shifts_file" in doc:
        raise ValueError(f"{p}: give 'shifts' or 'shifts_file', not both")
    out = {}
    for key in ("wavelength", "pixel_size", "n_medium"):
        if key in doc:
            v = doc[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{p}: '{key}' must be a number (metres for lengths), got {v!r}")
            out[key] = float(v)
    if "factor" in doc:
        f = doc["factor"]
        if isinstance(f, bool) or not isinstance(f, int):
            raise ValueError(f"{p}: 'factor' must be an integer (the super-resolution factor, e.g. "
                             f"2), got {f!r}")
        out["factor"] = f
    if "z" in doc:
        out["z"] = _numbers(doc["z"], f"{p}: 'z'", ndim=(0, 1))
    if "shifts" in doc:
        out["shifts"] = _numbers(doc["shifts"], f"{p}: 'shifts'", ndim=(2,))
    if "shifts_file" in doc:
        name = doc["shifts_file"]
        if not isinstance(name, str):
            raise ValueError(f"{p}: 'shifts_file' must be a file name, got {name!r}")
        sp = Path(name) if Path(name).is_absolute() else p.parent / name
        out["shifts"] = read_shifts(sp)
        out["shifts_file"] = str(sp)
    _check_lengths(out, str(p))
    return out


def _numbers(value, what, ndim):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must hold numbers (metres), got {value!r}") from None
    if a.ndim not in ndim:
        shape = {0: "one number", 1: "a list of numbers", 2: "a list of [sy, sx] pairs"}
        raise ValueError(f"{what} must be {' or '.join(shape[n] for n in ndim)}, got shape {a.shape}")
    if a.ndim == 2 and a.shape[1] != 2:
        raise ValueError(f"{what} must be [sy, sx] pairs (metres), one per capture, got rows of "
                         f"{a.shape[1]} values")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be finite")
    return a


def _check_lengths(g: dict, where: str):
    """Plausible metres: the usual slips (micrometres, nanometres, millimetres)
    give a message that says so."""
    if "wavelength" in g or "pixel_size" in g:
        try:
            check_optics(g.get("wavelength", 532e-9), g.get("pixel_size", 1e-6))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if "z" in g:
        z = np.atleast_1d(g["z"])
        if np.any(z <= 0):
            raise ValueError(f"{where}: z must be positive sample-to-sensor distances in metres, got "
                             f"{z.tolist()}")
        if np.any(z > 0.1):
            raise ValueError(f"{where}: z up to {z.max():g} m is implausible for a lensless "
                             f"microscope: lengths are in metres (e.g. 400e-6 for 400 um)")
    if "shifts" in g:
        s = np.abs(g["shifts"])
        if s.size and s.max() > 1e-3:
            raise ValueError(f"{where}: shifts up to {s.max():g} m are implausible (sub-pixel to "
                             f"a few pixels expected): lengths are in metres (e.g. 0.5e-6 for "
                             f"0.5 um)")


def read_shifts(path) -> np.ndarray:
    """Read nominal sensor positions (K, 2) (sy, sx) in metres from a file.

    Accepted: a text or CSV file of two numeric columns sy, sx (``#`` comments,
    comma or white-space separated); a CSV with a header row naming the
    columns ``sy_m, sx_m`` (or ``sy, sx``; or ``learned_sy_m, learned_sx_m``: a
    calibration table written by :func:`diffimaging.lensless.report.write_calibration`,
    whose learned positions then serve as the nominal ones of a new run); a
    JSON file holding a list of [sy, sx] pairs or ``{"shifts": [...]}``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"shifts file not found: {p}")
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            if "shifts" not in doc:
                raise ValueError(f"{p}: a JSON shifts file holds a list of [sy, sx] pairs or "
                                 f"{{\"shifts\": [...]}}, got keys {sorted(doc)}")
            doc = doc["shifts"]
        s = _numbers(doc, f"{p}: shifts", ndim=(2,))
    else:
        s = _shifts_table(p)
    _check_lengths({"shifts": s}, str(p))
    return s


def _shifts_table(p: Path) -> np.ndarray:
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    rows = [ln for ln in lines if ln and not ln.startswith("#")]
    if not rows:
        raise ValueError(f"{p}: no shifts (the file holds no data rows)")
    first = rows[0].replace(",", " ").split()
    try:
        [float(t) for t in first]
        header = False
    except ValueError:
        header = True
    if header:
        cols, _ = read_table(p)
        names = {k.strip().casefold(): k for k in cols}
        for ky, kx in (("sy_m", "sx_m"), ("sy", "sx"), ("learned_sy_m", "learned_sx_m")):
            if ky in names and kx in names:
                s = np.column_stack([cols[names[ky]], cols[names[kx]]]).astype(np.float64)
                break
        else:
            raise ValueError(f"{p}: no shift columns in its header {list(cols)}: name them sy_m, sx_m "
                             f"(metres), or give two columns without a header")
    else:
        try:
            s = np.array([[float(t) for t in r.replace(",", " ").split()] for r in rows])
        except ValueError as exc:
            raise ValueError(f"{p}: not a table of numbers ({exc})") from None
        if s.ndim != 2 or s.shape[1] != 2:
            widths = sorted({len(r.replace(",", " ").split()) for r in rows})
            raise ValueError(f"{p}: a shifts file has two columns sy, sx (metres), one row per "
                             f"capture; got rows of {widths} values")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{p}: shifts must be finite")
    return s


# ----------------------------------------------------------------------------- captures

def read_captures(path, geometry=None, *, shifts=None, z=None, wavelength=None, pixel_size=None,
                  factor=None, n_medium=None, background=None) -> Captures:
    """Read a set of lensless captures with its nominal geometry.

    Parameters
    ----------
    path : path, or list of paths
        One HDF5 capture set, or image files (TIFF...): files, folders (their
        image files) and glob patterns, one capture per image (per page of a
        multi-page file), in order.
    geometry : path, optional
        JSON or TOML geometry file for image inputs (see the module notes);
        default: the ``geometry.toml`` / ``geometry.json`` of the (single)
        folder given.
    shifts, z, wavelength, pixel_size, factor, n_medium : optional
        Override the file's values: ``shifts`` an array (K, 2) in metres or a
        shifts file (:func:`read_shifts`); ``z`` one distance or (K,) metres.
    background : None, "none", "lowpass", path or array, optional
        What each image is divided by before its normalisation to unit mean
        (:func:`diffimaging.holography.preprocess`, no crop): "none" nothing,
        "lowpass" a Gaussian low-pass of the image itself (uneven illumination;
        it also removes the sample's coarsest structure), a flat-field image
        recorded without the sample (file or array).  Default None: images are
        normalised to unit mean; an HDF5 set is taken as stored.

    Returns a :class:`~diffimaging.lensless.Captures` (float32 images).
    Errors name the file and the key: ``FileNotFoundError``, ``ValueError``
    (captures of different shapes, a shift table of the wrong length, a
    missing geometry key, lengths that are not metres).
    """
    items = [path] if isinstance(path, (str, Path)) else list(path)
    if not items:
        raise ValueError("no captures given")
    over = dict(wavelength=wavelength, pixel_size=pixel_size, factor=factor, n_medium=n_medium)
    over = {k: v for k, v in over.items() if v is not None}
    if isinstance(shifts, (str, Path)):
        shifts = read_shifts(shifts)
    if len(items) == 1 and Path(items[0]).is_file() and _is_hdf5(items[0]):
        if geometry is not None:
            raise ValueError(f"{items[0]} is an HDF5 capture set: it carries its geometry (give no "
                             f"geometry file; override single values with keywords)")
        images, geo, truth, where = _read_hdf5(Path(items[0]))
        if background is not None:
            images = _normalise(images, background)
    else:
        files = expand_inputs([str(i) for i in items], what="capture image", suffixes=IMAGE_SUFFIXES)
        seen = {}
        for given, f in files:
            if _is_hdf5(f):
                raise ValueError(f"{given} is an HDF5 capture set: give it alone (one set at a time), "
                                 f"or image files")
            if f in seen:
                also = "" if seen[f] == given else f" (also as {seen[f]})"
                raise ValueError(f"{given} is given twice{also}: each capture once")
            seen[f] = given
        images = _read_images([f for _, f in files])
        if geometry is None:
            geometry = _find_geometry(items)
        geo = read_geometry(geometry) if geometry is not None else {}
        truth = {}
        where = str(geometry) if geometry is not None else "the arguments"
        images = _normalise(images, "none" if background is None else background)
    geo.update(over)
    if shifts is not None:
        geo["shifts"] = shifts
    if z is not None:
        geo["z"] = z
    return _captures(images, geo, truth, where)


def _find_geometry(items):
    if len(items) != 1 or not Path(items[0]).is_dir():
        return None
    found = [Path(items[0]) / n for n in GEOMETRY_NAMES if (Path(items[0]) / n).is_file()]
    if len(found) > 1:
        raise ValueError(f"{items[0]} holds both {GEOMETRY_NAMES[0]} and {GEOMETRY_NAMES[1]}: "
                         f"remove one or name the geometry file")
    return found[0] if found else None


def _read_images(files):
    """(K, ny, nx) float32 from image files (each a capture or a series of them)."""
    stack, shape = [], None
    for f in files:
        a = read_hologram(f)
        frames = a if a.ndim == 3 else a[None]
        for i, fr in enumerate(frames):
            name = f if len(frames) == 1 else f"{f} (page {i})"
            if shape is None:
                shape, first = fr.shape, name
            elif fr.shape != shape:
                raise ValueError(f"captures must share one size: {first} is {shape[0]}x{shape[1]} "
                                 f"pixels, {name} is {fr.shape[0]}x{fr.shape[1]} (crop them to one "
                                 f"size, the same region of the sensor)")
            stack.append(fr.astype(np.float32))
    return np.stack(stack)


def _normalise(images, background):
    """Divide by the background (see :func:`read_captures`) and normalise each
    capture to unit mean."""
    if isinstance(background, str) and background in ("none", "lowpass"):
        out, _ = preprocess(images, method=background, crop=False)
    else:
        if isinstance(background, (str, Path)):
            background = read_hologram(background)
            if background.ndim == 3:
                background = np.median(background, axis=0)
        b = np.asarray(background, dtype=np.float64)
        if b.shape != images.shape[-2:]:
            raise ValueError(f"the background (flat field) is {b.shape}, the captures are "
                             f"{images.shape[-2:]}: it must be recorded on the same sensor region")
        out, _ = preprocess(images, background=b, crop=False)
    return np.asarray(out, dtype=np.float32)


def _captures(images, geo, truth, where):
    K = images.shape[0]
    missing = [k for k in _REQUIRED + ("z", "shifts") if k not in geo]
    if missing:
        flags = {"wavelength": "--wavelength", "pixel_size": "--pixel-size", "factor": "--factor",
                 "z": "--z", "shifts": "--shifts"}
        raise ValueError(f"the geometry of the {K} captures lacks {', '.join(missing)} "
                         f"({where}): give it in a geometry file (keys "
                         f"{', '.join(_GEOMETRY_KEYS)}, metres) or as "
                         f"{', '.join(flags[m] for m in missing)}")
    s = np.asarray(geo["shifts"], dtype=np.float64)
    zz = np.asarray(geo["z"], dtype=np.float64)
    zz = zz.reshape(()) if zz.size == 1 else zz
    _check_lengths({k: geo[k] for k in ("wavelength", "pixel_size") if k in geo} |
                   {"z": zz, "shifts": s}, where)
    if s.ndim != 2 or s.shape[1] != 2:
        raise ValueError(f"shifts must be (K, 2) (sy, sx) pairs in metres, got shape {s.shape}")
    if len(s) != K:
        raise ValueError(f"{len(s)} shifts for {K} captures ({where}): one (sy, sx) pair per "
                         f"capture, in the order of the captures")
    if zz.ndim == 1 and zz.size != K:
        raise ValueError(f"{zz.size} heights z for {K} captures ({where}): give one z for all or "
                         f"one per capture")
    return Captures(images, s, zz, wavelength=geo["wavelength"], pixel_size=geo["pixel_size"],
                    factor=geo["factor"], n_medium=geo.get("n_medium", 1.0), truth=truth)


def _attr(attrs, *names):
    for n in names:
        if n in attrs:
            v = attrs[n]
            return v.decode() if isinstance(v, bytes) else v
    return None


def _read_hdf5(p: Path):
    import h5py

    f = _files.open_hdf5(p)
    with f:
        data = {}
        for key, ndim in (("captures", 3), ("nominal_shifts", 2), ("nominal_z", 1)):
            d = f.get(key)
            if not isinstance(d, h5py.Dataset):
                raise ValueError(f"{p}: not a lensless capture set: no dataset {key!r} (it holds "
                                 f"{sorted(f.keys())}); a capture set holds captures (K, ny, nx), "
                                 f"nominal_shifts (K, 2) and nominal_z (K,) in metres")
            if d.dtype.kind not in "uif":
                raise ValueError(f"{p}: dataset {key!r} is not real numbers (type {d.dtype})")
            if d.ndim != ndim and not (key == "nominal_z" and d.ndim == 0):
                raise ValueError(f"{p}: dataset {key!r} must have {ndim} dimensions, got shape "
                                 f"{d.shape}")
            for unit_key in ("nominal_shifts", "nominal_z"):
                if key == unit_key:
                    u = _attr(d.attrs, "units")
                    if u not in (None, "m"):
                        raise ValueError(f"{p}: dataset {key!r} is in {u!r}; the reader expects "
                                         f"metres (units 'm')")
            try:
                data[key] = np.asarray(d[()])
            except OSError as exc:
                raise ValueError(f"{p} is truncated or corrupt: {key!r} cannot be decoded "
                                 f"({exc})") from exc
        attrs = dict(f.attrs)
        geo = {"shifts": data["nominal_shifts"].astype(np.float64),
               "z": data["nominal_z"].astype(np.float64)}
        for key, names in (("wavelength", ("wavelength", "wavelength_m")),
                           ("pixel_size", ("pixel_size", "pixel_size_m")),
                           ("factor", ("factor",)), ("n_medium", ("n_medium",))):
            v = _attr(attrs, *names)
            if v is not None:
                a = np.asarray(v).reshape(-1)
                geo[key] = int(a[0]) if key == "factor" else float(a[0])
        for key in ("wavelength", "pixel_size"):
            u = _attr(attrs, f"{key}_units")
            if u not in (None, "m"):
                raise ValueError(f"{p}: attribute {key!r} is in {u!r}; the reader expects metres")
        g = f.get("truth")
        truth = _read_truth(g) if isinstance(g, h5py.Group) else {}
    images = data["captures"]
    if images.dtype.kind != "f":
        images = images.astype(np.float32)
    return images, geo, truth, str(p)


def _scale(f, name, values, units, long_name):
    d = f.create_dataset(name, data=values)
    if units is not None:
        d.attrs["units"] = units
    d.attrs["long_name"] = long_name
    d.make_scale(name)
    return d


def _axis_scale(f):
    """The scale of the (sy, sx) axis of shift tables: the names "y", "x"."""
    import h5py

    d = f.create_dataset("axis", data=np.array(["y", "x"], dtype=object),
                         dtype=h5py.string_dtype())
    d.attrs["long_name"] = "component of a shift: y (rows) then x (columns)"
    d.make_scale("axis")
    return d


def _attach(d, *scales):
    for axis, s in enumerate(scales):
        if s is not None:
            d.dims[axis].attach_scale(s)
            d.dims[axis].label = s.name.lstrip("/")


def _write_hdf5(path, build, overwrite):
    """Build the HDF5 file in memory (``build(f)``), then write its bytes
    atomically: a full disk is a clean ``OSError``, never a partial file."""
    import h5py

    buf = _io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
        f.attrs["diffimaging_version"] = _version()
        f.attrs["created"] = _now()
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fh.write(buf.getbuffer())
    return Path(path)


def write_captures(path, captures: Captures, *, overwrite=True) -> Path:
    """Write a capture set to one self-describing HDF5 file (layout in the
    module notes), atomically; :func:`read_captures` reads it back.  The truth
    of a simulated set is kept in ``/truth``.  ``overwrite=False`` refuses
    (``FileExistsError``) to replace a file.  Returns the path."""
    if not isinstance(captures, Captures):
        raise TypeError(f"captures must be a diffimaging.lensless.Captures, got "
                        f"{type(captures).__name__}")
    images = _host(captures.images)
    K, ny, nx = images.shape
    P = captures.pixel_size

    def build(f):
        c = _scale(f, "capture", np.arange(K, dtype=np.int64), None, "capture index")
        y = _scale(f, "y", np.arange(ny) * P, "m", "sensor row position (pixel i at i * pixel_size)")
        x = _scale(f, "x", np.arange(nx) * P, "m",
                   "sensor column position (pixel j at j * pixel_size)")
        d = f.create_dataset("captures", data=images, compression="gzip", compression_opts=4,
                             chunks=(1, ny, nx))
        d.attrs["units"] = "1"
        d.attrs["long_name"] = "captured intensity, background-normalised (about 1 where clear)"
        _attach(d, c, y, x)
        s = f.create_dataset("nominal_shifts", data=np.asarray(captures.shifts, dtype=np.float64))
        s.attrs["units"] = "m"
        s.attrs["long_name"] = ("nominal sensor position (sy, sx) of each capture relative to the "
                                "high-resolution window")
        _attach(s, c, _axis_scale(f))
        z = f.create_dataset("nominal_z", data=np.asarray(captures.z, dtype=np.float64))
        z.attrs["units"] = "m"
        z.attrs["long_name"] = "nominal sample-to-sensor distance of each capture"
        _attach(z, c)
        _optics_attrs(f, captures)
        f.attrs["title"] = "diffimaging lensless capture set"
        if captures.truth:
            _write_truth(f.create_group("truth"), captures.truth)

    return _write_hdf5(path, build, overwrite)


def _write_truth(g, truth):
    """``captures.truth``: numeric arrays as datasets (a complex field as
    ``<key>_real`` and ``<key>_imag``), anything else as a JSON attribute."""
    g.attrs["long_name"] = "the truth of a simulated set (for scoring only)"
    for key, value in truth.items():
        a = _host(value) if hasattr(value, "shape") else None
        if a is not None and a.ndim >= 1 and a.dtype.kind in "uifc":
            if a.dtype.kind == "c":
                g.create_dataset(f"{key}_real", data=a.real, compression="gzip")
                g.create_dataset(f"{key}_imag", data=a.imag, compression="gzip")
            else:
                d = g.create_dataset(key, data=a)
                if key in ("shifts", "z", "nominal_shifts"):
                    d.attrs["units"] = "m"
        else:
            g.attrs[key] = json.dumps(value, default=_json_value)


def _read_truth(g):
    truth = {}
    for key in g:
        if key.endswith("_imag"):
            continue
        if key.endswith("_real") and f"{key[:-5]}_imag" in g:
            truth[key[:-5]] = np.asarray(g[key][()]) + 1j * np.asarray(g[f"{key[:-5]}_imag"][()])
        else:
            truth[key] = np.asarray(g[key][()])
    for key, value in g.attrs.items():
        if key != "long_name":
            truth[key] = json.loads(value)
    return truth


def _optics_attrs(f, caps):
    a = f.attrs
    a["wavelength"] = float(caps.wavelength)
    a["wavelength_units"] = "m"
    a["pixel_size"] = float(caps.pixel_size)
    a["pixel_size_units"] = "m"
    a["factor"] = int(caps.factor)
    a["n_medium"] = float(caps.n_medium)


# ----------------------------------------------------------------------------- reconstructions

def _geometry_of(rec: Reconstruction, captures):
    """(wavelength, pixel_size, factor, n_medium) from the captures or the settings."""
    if captures is not None:
        return captures.wavelength, captures.pixel_size, captures.factor, captures.n_medium
    s = rec.settings or {}
    try:
        return (float(s["wavelength"]), float(s["pixel_size"]), int(s["factor"]),
                float(s.get("n_medium", 1.0)))
    except (KeyError, TypeError, ValueError):
        raise ValueError("the reconstruction's settings do not record wavelength, pixel_size and "
                         "factor: pass the captures it was made from") from None


def write_reconstruction(path, rec: Reconstruction, captures: Captures | None = None, *,
                         overwrite=True) -> Path:
    """Write a reconstruction to one self-describing HDF5 file (layout in the
    module notes), atomically: the complex field as amplitude and phase on
    x, y scales in metres, the learned geometry next to the nominal one, the
    loss trace, the settings (JSON), the version and the units.

    ``captures`` (the set it was made from) supplies the optics; without it they
    are taken from ``rec.settings``.  Returns the path.
    """
    if not isinstance(rec, Reconstruction):
        raise TypeError(f"rec must be a diffimaging.lensless.Reconstruction, got {type(rec).__name__}")
    wl, P, factor, n_medium = _geometry_of(rec, captures)
    field = _host(rec.field)
    if field.ndim != 2:
        raise ValueError(f"rec.field must be a 2-D complex field (NY, NX), got shape {field.shape}")
    ny, nx = field.shape
    hr = P / factor
    real = np.float32 if field.dtype in (np.complex64, np.float32) else np.float64
    settings = json.dumps(rec.settings or {}, default=_json_value, allow_nan=True)
    learned = (rec.settings or {}).get("learn")

    def build(f):
        y = _scale(f, "y", np.arange(ny) * hr, "m",
                   "position of the high-resolution pixel row (pixel i at i * hr_pixel_size)")
        x = _scale(f, "x", np.arange(nx) * hr, "m",
                   "position of the high-resolution pixel column (pixel j at j * hr_pixel_size)")
        for name, values, units, long_name in (
                ("amplitude", np.abs(field), "1", "amplitude |t| of the sample's complex transmission"),
                ("phase", np.angle(field), "rad", "phase arg(t) of the sample's complex transmission")):
            d = f.create_dataset(name, data=values.astype(real), compression="gzip",
                                 compression_opts=4)
            d.attrs["units"] = units
            d.attrs["long_name"] = long_name
            _attach(d, y, x)
        K = len(np.asarray(rec.z).reshape(-1))
        c = _scale(f, "capture", np.arange(K, dtype=np.int64), None, "capture index")
        axis = _axis_scale(f)
        for name, values, long_name in (
                ("shifts", rec.shifts, "learned sensor position (sy, sx) of each capture"),
                ("nominal_shifts", rec.nominal_shifts, "nominal sensor position (sy, sx)"),
                ("z", rec.z, "learned sample-to-sensor distance of each capture"),
                ("nominal_z", rec.nominal_z, "nominal sample-to-sensor distance")):
            d = f.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            d.attrs["units"] = "m"
            d.attrs["long_name"] = long_name
            _attach(d, c, axis if d.ndim == 2 else None)
        loss = (rec.history or {}).get("loss")
        if loss is not None and len(loss):
            it = _scale(f, "iteration", np.arange(len(loss), dtype=np.int64), None,
                        "solver iteration")
            d = f.create_dataset("loss", data=np.asarray(loss, dtype=np.float64))
            d.attrs["long_name"] = "the solver's loss at each iteration"
            _attach(d, it)
        a = f.attrs
        a["title"] = "diffimaging lensless pixel-super-resolution reconstruction"
        a["wavelength"] = float(wl)
        a["wavelength_units"] = "m"
        a["pixel_size"] = float(P)
        a["pixel_size_units"] = "m"
        a["hr_pixel_size"] = float(hr)
        a["hr_pixel_size_units"] = "m"
        a["factor"] = int(factor)
        a["n_medium"] = float(n_medium)
        if learned is not None:
            a["learned"] = ",".join(learned) if not isinstance(learned, str) else learned
        a["settings"] = settings

    return _write_hdf5(path, build, overwrite)


def _json_value(obj):
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (tuple, set)):
        return list(obj)
    return str(obj)


def read_reconstruction(path) -> tuple[Reconstruction, dict]:
    """Read a file written by :func:`write_reconstruction`: returns
    ``(Reconstruction, attrs)`` (``attrs``: the file's attributes, ``settings``
    decoded).  The field is ``amplitude * exp(1j * phase)``."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"reconstruction file not found: {p}")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise ValueError(f"cannot read {p} as HDF5 ({exc})") from exc
    with f:
        missing = [k for k in ("amplitude", "phase", "shifts", "nominal_shifts", "z", "nominal_z")
                   if k not in f]
        if missing:
            raise ValueError(f"{p}: not a lensless reconstruction: no {', '.join(missing)}")
        amp, ph = f["amplitude"][()], f["phase"][()]
        ds = {k: np.asarray(f[k][()], dtype=np.float64)
              for k in ("shifts", "nominal_shifts", "z", "nominal_z")}
        loss = np.asarray(f["loss"][()]) if "loss" in f else np.zeros(0)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    settings = json.loads(attrs.get("settings", "{}"))
    attrs["settings"] = settings
    cdt = np.complex64 if amp.dtype == np.float32 else np.complex128
    field = (amp * np.exp(1j * ph)).astype(cdt)
    rec = Reconstruction(field=field, shifts=ds["shifts"], z=ds["z"],
                         nominal_shifts=ds["nominal_shifts"], nominal_z=ds["nominal_z"],
                         history={"loss": loss}, settings=settings)
    return rec, attrs


def write_field_images(prefix, field, pixel_size, *, formats=("tif", "png"), overwrite=True):
    """Write the amplitude and phase of a complex field as images, atomically.

    ``<prefix>_amplitude.tif`` and ``<prefix>_phase.tif``: float32, the phase in
    radians, the pixel pitch ``pixel_size`` (metres, of the field) in the TIFF
    resolution tags (pixels per centimetre) and in the image description (JSON).
    ``<prefix>_amplitude.png`` and ``<prefix>_phase.png``: 8-bit previews (amplitude
    from 0 to its 99.9th percentile, phase from -pi to pi).  Returns the paths
    written."""
    fmts = tuple(formats)
    bad = [f for f in fmts if f not in ("tif", "png")]
    if bad:
        raise ValueError(f"formats must be among 'tif', 'png', got {bad}")
    fld = _host(field)
    if fld.ndim != 2:
        raise ValueError(f"field must be 2-D (NY, NX), got shape {fld.shape}")
    px = float(pixel_size)
    if not (math.isfinite(px) and px > 0):
        raise ValueError(f"pixel_size must be a positive length in metres, got {pixel_size!r}")
    parts = {"amplitude": (np.abs(fld).astype(np.float32), "1"),
             "phase": (np.angle(fld).astype(np.float32), "rad")}
    out = []
    for name, (img, unit) in parts.items():
        if "tif" in fmts:
            out.append(_write_tiff(Path(f"{prefix}_{name}.tif"), img, px, name, unit, overwrite))
        if "png" in fmts:
            if name == "phase":
                lo, hi = -math.pi, math.pi
            else:
                lo, hi = 0.0, float(np.percentile(img, 99.9)) or 1.0
            out.append(_write_png(Path(f"{prefix}_{name}.png"), img, lo, hi, overwrite))
    return out


def _write_tiff(path, img, px, name, unit, overwrite):
    import tifffile

    desc = json.dumps({"quantity": name, "units": unit, "pixel_size_m": px,
                       "diffimaging_version": _version()})
    per_cm = 0.01 / px
    with atomic_path(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, img, description=desc, resolution=(per_cm, per_cm),
                         resolutionunit="CENTIMETER", photometric="minisblack", metadata=None)
    return path


def _write_png(path, img, lo, hi, overwrite):
    from PIL import Image

    u8 = np.clip(np.round((img - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(u8, mode="L").save(tmp, format="PNG")
    return path
