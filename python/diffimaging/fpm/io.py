"""Files of Fourier ptychographic microscopy (FPM): datasets in, reconstructions out.

Datasets (:func:`read_dataset`, :func:`write_dataset`)
------------------------------------------------------
Three layouts are read:

* **An HDF5 file in the PtyLab FPM layout** (the field names of PtyLab's
  ``ExperimentalData`` in ``operationMode="FPM"``; all values in metres)::

      /ptychogram     (J, Ny, Nx) one camera image per LED
      /encoder        (J, 2) LED positions (y, x) in the LED plane, relative to
                      the optical axis, metres ((2, J) is accepted: MATLAB order)
      /wavelength     vacuum wavelength, m
      /dxd            camera pixel pitch on the sensor, m
      /zled           LED-array-to-sample distance, m
      /magnification  sample-to-camera magnification
      /NA             numerical aperture of the objective
      /upsampling     optional: object pixels per camera pixel (default 4)

  Scalars may be datasets (0-d, or (1,) / (1, 1) as MATLAB writes them) or
  attributes of the root group.  An ``orientation`` other than 0 is refused
  (flip the images before writing the file).

  *The encoder convention.*  PtyLab (github.com/PtyLab/PtyLab.py) reads
  ``encoder`` in ``PtyLab/io/readHdf5.py`` (transposing a (2, J) array) and turns
  it into Fourier-plane positions in ``Reconstruction.positions``
  (``PtyLab/Reconstruction/Reconstruction.py``): ``round(-dxo Np / wavelength *
  encoder / sqrt(encoder[:, 0]**2 + encoder[:, 1]**2 + zled**2))``, positions
  documented as "row-column order" and plotted with column 1 on the horizontal
  axis.  So column 0 is y (rows), column 1 is x (columns), and the encoder
  holds the physical transverse LED positions relative to the optical axis (the
  distance to the sample is ``sqrt(y**2 + x**2 + zled**2)``); the minus sign is
  PtyLab's own choice of where to cut the spectrum, not part of the file.
  FPM simulations written for PtyLab store ``encoder = stack((LY, LX), -1)``
  likewise.  This is the package's convention too: positions are (y, x).
  (PtyLab additionally subtracts the mean of a transposed encoder; this reader
  does not: the offset of the array is kept.)

  The package models a *regular* LED grid, so the encoder positions are fitted
  by one: the pitch from the median nearest-neighbour spacing, the rotation
  from the dominant neighbour direction (modulo 90 degrees), each LED's (row,
  column) by rounding the de-rotated positions, then pitch, rotation and
  offset (the grid's centre) by least squares.  The images are reordered into
  the package's row-major order (LED j = r * cols + c).  A file whose LEDs
  deviate from the fitted grid by more than 0.25 pitch, whose grid has holes or
  two LEDs on one node is refused, naming the file and the LED.

* **The package's own dataset file** (what :func:`write_dataset` writes): the
  PtyLab layout above (encoder in row-major order) plus the attributes
  ``setup`` (the full :class:`~diffimaging.fpm.Setup` as JSON; when present it
  is used exactly, with no grid fit), ``upsampling``, ``title``,
  ``diffimaging_version``, ``created``, and, for simulated data, a group
  ``/truth`` (arrays as datasets, a complex array as ``<key>_real`` and
  ``<key>_imag``, a Setup as JSON, the rest JSON attributes).  PtyLab reads
  this file as it is.

* **Image files** (TIFF, or any format :func:`diffimaging.holography.read_hologram`
  reads, colour averaged to grey, as float64), one image per LED (a folder or a
  glob pattern is sorted naturally: img2 before img10; a multi-page TIFF
  contributes each page), plus a **setup file** in TOML (or JSON): ``setup.toml``
  in the folder by default.  Its keys are exactly the fields of
  :class:`~diffimaging.fpm.Setup`, lengths in metres, angles in radians::

      rows = 15
      cols = 15
      pitch = 4e-3               # LED spacing
      height = 90e-3             # LED array to sample
      wavelength = 629.7e-9
      na = 0.1                   # objective NA
      pixel_size = 6.5e-6        # camera pixel on the sensor
      magnification = 4.0
      upsampling = 4             # optional (default 4)
      offset = [0.0, 0.0]        # optional (dy, dx) of the array's centre
      rotation = 0.0             # optional, radians
      order = "row-major"        # optional: the order of the image files

  ``order`` is ``"row-major"`` (file k is LED k = r * cols + c),
  ``"column-major"`` (file k is row k % rows, column k // rows) or
  ``"serpentine"`` (row-major with every odd row right to left).  The image
  count must be rows * cols.

Every error names the file and the key; unknown keys are refused, and lengths
that cannot be metres (a pitch of 4, a height of 90) are refused with the
likely slip.

Setup files (:func:`read_setup`, :func:`write_setup`): the TOML or JSON file
above.

Reconstructions (:func:`write_reconstruction`, :func:`read_reconstruction`,
:func:`write_images`)
--------------------------------------------------------------------------
A self-describing HDF5 file (xarray opens it:
``xr.open_dataset(path, engine="h5netcdf", phony_dims="access")``)::

    /amplitude, /phase   (NY, NX) |o| and arg o of the object; units "1", "rad"
    /y, /x               (NY,), (NX,) object pixel positions, metres (pixel
                         (i, j) at (i d, j d), d = setup.object_pixel_size);
                         dimension scales of both
    /object_real, /object_imag   (NY, NX) the object exactly
    /pupil_real, /pupil_imag     (ny, nx) the pupil (FFT order); /fy, /fx its
                                 frequencies, 1/m (dimension scales)
    /zernike             (M,) Zernike coefficients, rad; attribute noll and
                         the scale /noll (the Noll index of each)
    /led (J,) LED index, /axis ("y", "x"), /axis3 ("y", "x", "z"): scales
    /brightness, /noise, /weights         (J,)
    /led_positions, /nominal_led_positions   (J, 3) (y, x, z), m
    /wavevectors, /nominal_wavevectors       (J, 2) (ky, kx), 1/m
    /loss                (iterations,) the loss trace (scale /iteration)
    attributes: offset, rotation, height, pitch (learned) and nominal_offset,
                nominal_rotation, nominal_height, nominal_pitch; background;
                object_pixel_size; *_units; setup, settings, history (JSON: the
                JSON-able history entries other than the loss); title,
                diffimaging_version, created

and, for the image tools of a lab (:func:`write_images`), float32 TIFF
(amplitude, phase in radians; the pixel size in the resolution tags) and 8-bit
PNG previews.  Every writer is atomic (:mod:`diffimaging.files`): a file is
complete or absent.
"""
from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import numpy as np

from .._backend import files as _files
from .._backend.cli import IMAGE_SUFFIXES, expand_inputs
from .._backend.files import atomic_open, atomic_path
from .._backend.namespace import to_numpy as _host
from ..holography import check_optics, read_hologram
from .data import Dataset, Reconstruction, Setup

__all__ = ["read_dataset", "write_dataset", "read_setup", "write_setup", "write_reconstruction",
           "read_reconstruction", "write_images", "fit_led_grid", "HDF5_SUFFIXES", "SETUP_NAMES",
           "ORDERS"]

#: suffixes read as HDF5 datasets
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nc")
#: setup files a folder of images may hold (used when no setup is given)
SETUP_NAMES = ("setup.toml", "setup.json")
#: orders of the image files of a folder
ORDERS = ("row-major", "column-major", "serpentine")
#: keys of a setup file
_SETUP_KEYS = tuple(Setup.__dataclass_fields__) + ("order",)
#: the PtyLab fields read from an HDF5 dataset (key: (Setup field, what))
_PTYLAB_SCALARS = {"wavelength": ("wavelength", "vacuum wavelength, m"),
                   "dxd": ("pixel_size", "camera pixel pitch on the sensor, m"),
                   "zled": ("height", "LED-array-to-sample distance, m"),
                   "magnification": ("magnification", "magnification"),
                   "NA": ("na", "numerical aperture of the objective")}
#: the largest deviation from the fitted grid, in pitches
_GRID_TOLERANCE = 0.25
_SETUP_MARK = "diffimaging.fpm.Setup"


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


def _decode(v):
    return v.decode() if isinstance(v, bytes) else v


# ----------------------------------------------------------------------------- setup files

def _load_mapping(path: Path) -> dict:
    """The top-level table of a TOML or JSON file."""
    return _files.load_mapping(path, "setup", _SETUP_KEYS)


#: plausible ranges of the setup's lengths in metres, and the example of each message
_LENGTHS = {"pitch": (1e-5, 0.1, "4e-3 for 4 mm"),
            "height": (1e-3, 2.0, "90e-3 for 90 mm"),
            "offset": (0.0, 0.1, "[0.5e-3, -0.2e-3] for (0.5 mm, -0.2 mm)")}


def _check_lengths(d: dict, where: str):
    """Plausible metres for the lengths of a setup mapping: the usual slips
    (millimetres, micrometres, nanometres) give a message that says so."""
    for key in ("wavelength", "pixel_size"):
        v = d.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                check_optics(v if key == "wavelength" else 532e-9,
                             v if key == "pixel_size" else 1e-6)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
    for key, (lo, hi, hint) in _LENGTHS.items():
        v = d.get(key)
        if key == "offset":
            try:
                a = np.abs(np.asarray(v, dtype=np.float64)) if v is not None else None
            except (TypeError, ValueError):
                raise ValueError(f"{where}: 'offset' must be a [dy, dx] pair of numbers in metres, "
                                 f"got {v!r}") from None
            if a is not None and a.size and np.all(np.isfinite(a)) and a.max() > hi:
                raise ValueError(f"{where}: offset = {v!r} m is implausibly large: lengths are in "
                                 f"metres, did you give millimetres? (e.g. {hint})")
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
            if v > hi:
                raise ValueError(f"{where}: {key} = {v!r} m is implausibly large: lengths are in "
                                 f"metres, did you give millimetres? (e.g. {hint})")
            if v < lo:
                raise ValueError(f"{where}: {key} = {v!r} m is implausibly small: lengths are in "
                                 f"metres (e.g. {hint})")


def _make_setup(d: dict, where: str) -> Setup:
    """A Setup from a mapping of its fields; every error prefixed with ``where``."""
    _check_lengths(d, where)
    try:
        return Setup.from_dict(d, where)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        raise type(exc)(msg if msg.startswith(where) else f"{where}: {msg}") from None


def _read_setup_file(path) -> tuple[Setup, str]:
    p = Path(path)
    doc = _load_mapping(p)
    unknown = sorted(set(doc) - set(_SETUP_KEYS))
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {unknown}; a setup file holds "
                         f"{', '.join(_SETUP_KEYS)} (lengths in metres, angles in radians)")
    doc = dict(doc)
    order = doc.pop("order", "row-major")
    if order not in ORDERS:
        raise ValueError(f"{p}: 'order' must be one of {', '.join(repr(o) for o in ORDERS)} (the "
                         f"order of the image files), got {order!r}")
    return _make_setup(doc, str(p)), order


def read_setup(path) -> Setup:
    """Read a setup file (TOML or JSON; keys in the module notes): a
    :class:`~diffimaging.fpm.Setup`.  Unknown keys are refused (a typo would
    otherwise be ignored), missing ones named, and the lengths checked to be
    plausible metres.  The optional key ``order`` (of the image files) is
    checked and not part of the Setup."""
    return _read_setup_file(path)[0]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


_SETUP_COMMENTS = {"rows": "LEDs along y", "cols": "LEDs along x", "pitch": "LED spacing, m",
                   "height": "LED array to sample, m", "wavelength": "vacuum wavelength, m",
                   "na": "numerical aperture of the objective",
                   "pixel_size": "camera pixel pitch on the sensor, m",
                   "magnification": "sample to camera",
                   "upsampling": "object pixels per camera pixel",
                   "offset": "(dy, dx) of the array's centre from the optical axis, m",
                   "rotation": "of the array about the optical axis, rad",
                   "order": "of the image files: row-major, column-major or serpentine"}


def write_setup(path, setup: Setup, *, order: str | None = None, overwrite=True) -> Path:
    """Write a setup file, atomically: TOML (``.toml``; one ``key = value`` line
    per field, floats written exactly) or JSON (``.json``).  ``order`` (of the
    image files, see the module notes) is written when given.  :func:`read_setup`
    reads it back exactly.  Returns the path."""
    if not isinstance(setup, Setup):
        raise TypeError(f"setup must be a diffimaging.fpm.Setup, got {type(setup).__name__}")
    if order is not None and order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(repr(o) for o in ORDERS)}, got {order!r}")
    p = Path(path)
    d = setup.to_dict()
    d["offset"] = [float(v) for v in d["offset"]]
    if order is not None:
        d["order"] = order
    suffix = p.suffix.lower()
    if suffix == ".toml":
        lines = ["# diffimaging FPM setup: lengths in metres, angles in radians",
                 f"# written by diffimaging {_version()} on {_now()}"]
        width = max(len(k) for k in d)
        for k, v in d.items():
            lines.append(f"{k.ljust(width)} = {_toml_value(v)}    # {_SETUP_COMMENTS[k]}")
        text = "\n".join(lines) + "\n"
    elif suffix == ".json":
        text = json.dumps(d, indent=2) + "\n"
    else:
        raise ValueError(f"setup file {p} must be .toml or .json, got {suffix or 'no suffix'!r}")
    with atomic_open(p, "w", overwrite=overwrite) as fh:
        fh.write(text)
    return p


# ----------------------------------------------------------------------------- grid fit

def fit_led_grid(positions, where="the LED positions"):
    """Fit a regular, rotated LED grid to measured LED positions.

    Parameters
    ----------
    positions : array (J, 2)
        LED positions (y, x) in metres, in any order.
    where : str
        Names the source in the errors (a file name).

    Returns
    -------
    dict
        ``rows``, ``cols``, ``pitch`` [m], ``rotation`` [rad], ``offset`` (dy, dx)
        [m] (the grid's centre), ``index`` (J,) the row-major grid index
        r * cols + c of each given LED, and ``residual`` (J,) its distance from
        its fitted node [m].

    Raises ``ValueError`` (naming ``where``) when a position deviates from the
    fitted grid by more than 0.25 pitch (the worst LED named), when grid nodes
    are missing (a grid with holes) or when two LEDs share one node.
    """
    from scipy.spatial import cKDTree

    P = np.asarray(positions, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 2:
        raise ValueError(f"{where}: LED positions must be (J, 2) (y, x) pairs, got shape {P.shape}")
    J = len(P)
    if J < 2:
        raise ValueError(f"{where}: {J} LED position(s) cannot define a grid (its pitch and "
                         f"rotation): give a setup file instead")
    if not np.all(np.isfinite(P)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(P), axis=1))[0])
        raise ValueError(f"{where}: LED {bad} has a non-finite position {P[bad].tolist()}")
    tree = cKDTree(P[:, ::-1])
    dist, nn = tree.query(P[:, ::-1], k=2)
    dnn, inn = dist[:, 1], nn[:, 1]
    if np.any(dnn == 0):
        a = int(np.flatnonzero(dnn == 0)[0])
        raise ValueError(f"{where}: LEDs {a} and {int(inn[a])} share the position "
                         f"{P[a].tolist()} m: each grid node once")
    pitch0 = float(np.median(dnn))
    # refine with every neighbour pair near that spacing (the nearest one alone is biased
    # low by noise); the dominant direction modulo 90 degrees is the mean of exp(4 i phi)
    dist, nn = tree.query(P[:, ::-1], k=min(J, 9))
    pair = (np.abs(dist - pitch0) < _GRID_TOLERANCE * pitch0) & (np.arange(dist.shape[1]) > 0)
    a_idx = np.broadcast_to(np.arange(J)[:, None], dist.shape)[pair]
    vec = P[nn[pair]] - P[a_idx]
    pitch1 = float(np.median(dist[pair]))
    phi = np.arctan2(vec[:, 0], vec[:, 1])
    rot0 = float(np.angle(np.sum(np.exp(4j * phi)))) / 4.0
    # grow from the LED nearest the centroid: assign (c, r) by rounding within a radius,
    # fit x = A c - B r + ox, y = B c + A r + oy by least squares, double the radius
    ref = int(np.argmin(np.hypot(*(P - P.mean(axis=0)).T)))
    A, B = pitch1 * math.cos(rot0), pitch1 * math.sin(rot0)
    oy, ox = P[ref]
    dref = np.hypot(*(P - P[ref]).T)
    radius = 3.0 * pitch1
    while True:
        sel = dref <= radius
        c, r = _grid_index(P, A, B, oy, ox)
        A, B, oy, ox = _grid_lstsq(P[sel], c[sel], r[sel])
        if sel.all():
            break
        radius *= 2.0
    c, r = _grid_index(P, A, B, oy, ox)
    c, r = c - c.min(), r - r.min()
    rows, cols = int(r.max()) + 1, int(c.max()) + 1
    up, vp = c - (cols - 1) / 2.0, r - (rows - 1) / 2.0
    A, B, oy, ox = _grid_lstsq(P, up, vp)
    pitch = float(math.hypot(A, B))
    rotation = float(math.atan2(B, A))
    residual = np.hypot(A * up - B * vp + ox - P[:, 1], B * up + A * vp + oy - P[:, 0])
    worst = int(np.argmax(residual))
    if residual[worst] > _GRID_TOLERANCE * pitch:
        raise ValueError(f"{where}: the LEDs are not on a regular grid: LED {worst} at (y, x) = "
                         f"({P[worst, 0]:.6g}, {P[worst, 1]:.6g}) m lies "
                         f"{residual[worst] / pitch:.2f} pitch from its node (row {int(r[worst])}, "
                         f"column {int(c[worst])}) of the fitted {rows} x {cols} grid "
                         f"(pitch {pitch:.6g} m, rotation {math.degrees(rotation):.3g} deg); at "
                         f"most {_GRID_TOLERANCE} pitch is accepted")
    index = r * cols + c
    order = np.argsort(index, kind="stable")
    same = np.flatnonzero(np.diff(index[order]) == 0)
    if same.size:
        a, b2 = int(order[same[0]]), int(order[same[0] + 1])
        raise ValueError(f"{where}: LEDs {a} and {b2} fall on the same node (row "
                         f"{int(r[a])}, column {int(c[a])}) of the fitted {rows} x {cols} grid: "
                         f"each grid node once ({same.size} duplicate(s))")
    missing = rows * cols - J
    if missing:
        holes = np.setdiff1d(np.arange(rows * cols), index)
        first = int(holes[0])
        raise ValueError(f"{where}: the LED grid has holes: {missing} of the {rows} x {cols} "
                         f"nodes have no LED (the first at row {first // cols}, column "
                         f"{first % cols}); the model needs a full rectangular grid (crop the "
                         f"data to one, or give a setup file)")
    return dict(rows=rows, cols=cols, pitch=pitch, rotation=rotation, offset=(float(oy), float(ox)),
                index=index, residual=residual)


def _grid_index(P, A, B, oy, ox):
    """(c, r): the nearest node of the grid x = A c - B r + ox, y = B c + A r + oy."""
    dx, dy = P[:, 1] - ox, P[:, 0] - oy
    n2 = A * A + B * B
    return (np.round((A * dx + B * dy) / n2).astype(np.int64),
            np.round((-B * dx + A * dy) / n2).astype(np.int64))


def _grid_lstsq(P, c, r):
    """(A, B, oy, ox) of the grid x = A c - B r + ox, y = B c + A r + oy closest to P."""
    n = len(P)
    one, zero = np.ones(n), np.zeros(n)
    M = np.concatenate([np.column_stack([c, -r, zero, one]),        # x equations
                        np.column_stack([r, c, one, zero])])        # y equations
    b = np.concatenate([P[:, 1], P[:, 0]])
    sol, *_ = np.linalg.lstsq(M, b, rcond=None)
    return tuple(float(v) for v in sol)


# ----------------------------------------------------------------------------- datasets

def read_dataset(path_or_paths, setup=None) -> Dataset:
    """Read an FPM dataset with its nominal setup.

    Parameters
    ----------
    path_or_paths : path, or list of paths
        One HDF5 file (the PtyLab FPM layout, or the package's own file written
        by :func:`write_dataset`), or image files (TIFF...): files, folders
        (their image files) and glob patterns, one image per LED (per page of a
        multi-page file), in the order named by the setup file's ``order``.
    setup : Setup or path, optional
        For image inputs: the nominal setup, or its TOML/JSON file (see the
        module notes); default: the ``setup.toml`` (or ``setup.json``) of the
        (single) folder given.  An HDF5 file carries its setup (give none).

    Returns a :class:`~diffimaging.fpm.Dataset` with the images in the
    package's row-major LED order: float64 for image files, an HDF5 float
    stack as stored (integers become float64).  Errors name the file and the
    key: ``FileNotFoundError``, ``ValueError`` (a missing field, lengths that
    are not metres, LED positions off a regular grid, an image count that is
    not rows * cols, images of different sizes).
    """
    items = [path_or_paths] if isinstance(path_or_paths, (str, Path)) else list(path_or_paths)
    if not items:
        raise ValueError("no FPM images given")
    if len(items) == 1 and Path(items[0]).is_file() and _is_hdf5(items[0]):
        if setup is not None:
            raise ValueError(f"{items[0]} is an HDF5 dataset: it carries its setup (give no setup, "
                             f"or give image files with a setup)")
        return _read_hdf5(Path(items[0]))
    files = expand_inputs([str(i) for i in items], what="FPM image", suffixes=IMAGE_SUFFIXES)
    seen = {}
    for given, f in files:
        if _is_hdf5(f):
            raise ValueError(f"{given} is an HDF5 dataset: give it alone, or image files")
        if f in seen:
            raise ValueError(f"{given} is given twice: each image once")
        seen[f] = given
    if setup is None:
        setup = _find_setup(items)
        if setup is None:
            raise ValueError(f"no setup for the {len(files)} image file(s): give setup= (a Setup or "
                             f"a TOML/JSON setup file), or put {SETUP_NAMES[0]} in the folder of "
                             f"the images")
    if isinstance(setup, Setup):
        s, order, where = setup, "row-major", "the setup given"
    elif isinstance(setup, (str, Path)):
        (s, order), where = _read_setup_file(setup), str(setup)
    else:
        raise TypeError(f"setup must be a diffimaging.fpm.Setup or a setup file, got "
                        f"{type(setup).__name__}")
    images = _read_images([f for _, f in files])
    J = images.shape[0]
    if J != s.n_leds:
        src = items[0] if len(items) == 1 else f"{len(files)} files"
        raise ValueError(f"{src} holds {J} images but the LED grid of {where} is {s.rows} x "
                         f"{s.cols} = {s.n_leds} LEDs: one image per LED")
    led = _file_order(order, s.rows, s.cols)
    out = np.empty_like(images)
    out[led] = images
    return Dataset(out, s)


def _file_order(order, rows, cols) -> np.ndarray:
    """The row-major LED index of each image file k."""
    k = np.arange(rows * cols)
    if order == "row-major":
        return k
    if order == "column-major":
        return (k % rows) * cols + k // rows
    r, c = k // cols, k % cols
    return r * cols + np.where(r % 2 == 1, cols - 1 - c, c)


def _find_setup(items):
    if len(items) != 1 or not Path(items[0]).is_dir():
        return None
    found = [Path(items[0]) / n for n in SETUP_NAMES if (Path(items[0]) / n).is_file()]
    if len(found) > 1:
        raise ValueError(f"{items[0]} holds both {SETUP_NAMES[0]} and {SETUP_NAMES[1]}: remove one "
                         f"or name the setup file")
    return found[0] if found else None


def _read_images(files):
    """(J, ny, nx) float64 from image files (each an image or a series of them)."""
    stack, shape = [], None
    for f in files:
        a = read_hologram(f)
        frames = a if a.ndim == 3 else a[None]
        for i, fr in enumerate(frames):
            name = f if len(frames) == 1 else f"{f} (page {i})"
            if shape is None:
                shape, first = fr.shape, name
            elif fr.shape != shape:
                raise ValueError(f"FPM images must share one size: {first} is {shape[0]}x{shape[1]} "
                                 f"pixels, {name} is {fr.shape[0]}x{fr.shape[1]}")
            stack.append(np.asarray(fr, dtype=np.float64))
    return np.stack(stack)


def _scalar(f, key, p):
    """A number stored as a dataset (0-d, (1,), (1, 1)) or a root attribute; None if absent."""
    import h5py

    if key in f:
        d = f[key]
        if not isinstance(d, h5py.Dataset):
            raise ValueError(f"{p}: {key!r} must be a dataset holding one number, got a group")
        v = d[()]
    elif key in f.attrs:
        v = _decode(f.attrs[key])
    else:
        return None
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{p}: {key!r} must be one number, got {v!r}") from None
    if a.size != 1 or not np.isfinite(a).all():
        raise ValueError(f"{p}: {key!r} must be one finite number, got shape {a.shape}"
                         + ("" if a.size != 1 else f" value {a.reshape(-1)[0]!r}"))
    return float(a.reshape(-1)[0])


def _read_hdf5(p: Path) -> Dataset:
    import h5py

    f = _files.open_hdf5(p)
    with f:
        d = f.get("ptychogram")
        if not isinstance(d, h5py.Dataset):
            raise ValueError(f"{p}: not an FPM dataset: no dataset 'ptychogram' (it holds "
                             f"{sorted(f.keys())}); the PtyLab FPM layout holds ptychogram (J, Ny, "
                             f"Nx), encoder (J, 2), wavelength, dxd, zled, magnification and NA")
        if d.ndim != 3 or d.dtype.kind not in "uif":
            raise ValueError(f"{p}: 'ptychogram' must be a stack (J, Ny, Nx) of real images, got "
                             f"shape {d.shape} of type {d.dtype}")
        try:
            images = np.asarray(d[()])
        except OSError as exc:
            raise ValueError(f"{p} is truncated or corrupt: 'ptychogram' cannot be decoded "
                             f"({exc})") from exc
        if images.dtype.kind != "f":
            images = images.astype(np.float64)
        orientation = _scalar(f, "orientation", p)
        if orientation not in (None, 0.0):
            raise ValueError(f"{p}: 'orientation' = {orientation:g} (a flip or transpose of the "
                             f"images) is not supported: flip the images and set it to 0")
        setup_json = _decode(f.attrs.get("setup")) if "setup" in f.attrs else None
        g = f.get("truth")
        truth = _read_truth(g) if isinstance(g, h5py.Group) else None
        if setup_json is not None:
            try:
                sd = json.loads(setup_json)
            except (TypeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{p}: attribute 'setup' is not valid JSON ({exc})") from None
            s = _make_setup(sd, f"{p}: attribute 'setup'")
            if images.shape[0] != s.n_leds:
                raise ValueError(f"{p}: 'ptychogram' holds {images.shape[0]} images but the "
                                 f"attribute 'setup' has {s.rows} x {s.cols} = {s.n_leds} LEDs")
            return Dataset(images, s, truth)
        values = {}
        for key, (field, what) in _PTYLAB_SCALARS.items():
            v = _scalar(f, key, p)
            if v is None:
                raise ValueError(f"{p}: missing {key!r} ({what}): the PtyLab FPM layout needs "
                                 f"{', '.join(_PTYLAB_SCALARS)} as datasets or attributes, in "
                                 f"metres")
            values[field] = v
        up = _scalar(f, "upsampling", p)
        e = f.get("encoder")
        if not isinstance(e, h5py.Dataset):
            raise ValueError(f"{p}: missing 'encoder' (the (J, 2) LED positions (y, x) in metres)")
        enc = np.asarray(e[()], dtype=np.float64)
    J = images.shape[0]
    if enc.ndim == 2 and enc.shape == (2, J) and J != 2:
        enc = enc.T
    if enc.shape != (J, 2):
        raise ValueError(f"{p}: 'encoder' must hold one (y, x) LED position per image, (J, 2) = "
                         f"({J}, 2), got shape {enc.shape}")
    if not np.all(np.isfinite(enc)):
        raise ValueError(f"{p}: 'encoder' holds non-finite positions")
    if np.abs(enc).max() > 1.0:
        raise ValueError(f"{p}: 'encoder' positions up to {np.abs(enc).max():g} m are implausible "
                         f"for an LED array: they are in metres (e.g. 4e-3 for 4 mm)")
    _check_lengths({"wavelength": values["wavelength"], "pixel_size": values["pixel_size"],
                    "height": values["height"]}, str(p))
    grid = fit_led_grid(enc, str(p))
    if abs(grid["rotation"]) > math.pi / 8:
        raise ValueError(f"{p}: the LED grid fitted to 'encoder' is rotated by "
                         f"{math.degrees(grid['rotation']):.3g} deg; the model accepts at most "
                         f"22.5 deg (the rotation is taken modulo 90 deg)")
    sd = dict(rows=grid["rows"], cols=grid["cols"], pitch=grid["pitch"], offset=grid["offset"],
              rotation=grid["rotation"], **values)
    if up is not None:
        if not float(up).is_integer():
            raise ValueError(f"{p}: 'upsampling' must be a whole number, got {up!r}")
        sd["upsampling"] = int(up)
    s = _make_setup(sd, str(p))
    out = np.empty_like(images)
    out[grid["index"]] = images
    return Dataset(out, s, truth)


def _write_h5(path, build, overwrite, title):
    """Write an HDF5 file atomically: ``build(f)`` fills it, then the version,
    the time and the title are stamped."""
    import h5py

    p = Path(path)
    with atomic_path(p, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            build(f)
            f.attrs["title"] = title
            f.attrs["diffimaging_version"] = _version()
            f.attrs["created"] = _now()
    return p


def _number(f, name, value, units, long_name):
    d = f.create_dataset(name, data=value)
    if units is not None:
        d.attrs["units"] = units
    d.attrs["long_name"] = long_name
    return d


def write_dataset(path, dataset: Dataset, *, overwrite=True) -> Path:
    """Write an FPM dataset to one HDF5 file, atomically, in the PtyLab FPM
    layout (``ptychogram``, ``encoder`` = the setup's LED (y, x) positions in
    row-major order, ``wavelength``, ``dxd``, ``zled``, ``magnification``,
    ``NA``) plus the package's attributes (``setup`` as JSON, ``upsampling``)
    and the ``/truth`` group of simulated data (module notes).
    :func:`read_dataset` reads the setup back exactly; PtyLab reads the file as
    it is.  ``overwrite=False`` refuses (``FileExistsError``) to replace a
    file.  Returns the path."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a diffimaging.fpm.Dataset, got {type(dataset).__name__}")
    s = dataset.setup
    images = _host(dataset.images)
    J, ny, nx = images.shape

    def build(f):
        d = f.create_dataset("ptychogram", data=images, chunks=(1, ny, nx), compression="gzip",
                             compression_opts=4)
        d.attrs["long_name"] = "camera image of each LED, LED j = r * cols + c (row-major)"
        d.attrs["units"] = "1"
        e = f.create_dataset("encoder", data=s.led_positions()[:, :2])
        e.attrs["units"] = "m"
        e.attrs["long_name"] = "LED position (y, x) relative to the optical axis"
        _number(f, "wavelength", s.wavelength, "m", "vacuum wavelength")
        _number(f, "dxd", s.pixel_size, "m", "camera pixel pitch on the sensor")
        _number(f, "zled", s.height, "m", "LED-array-to-sample distance")
        _number(f, "magnification", s.magnification, "1", "sample-to-camera magnification")
        _number(f, "NA", s.na, "1", "numerical aperture of the objective")
        f.attrs["setup"] = json.dumps(s.to_dict())
        f.attrs["upsampling"] = int(s.upsampling)
        if dataset.truth:
            _write_truth(f.create_group("truth"), dataset.truth)

    return _write_h5(path, build, overwrite, "diffimaging FPM dataset (PtyLab FPM layout)")


def _write_truth(g, truth):
    """Arrays as datasets (a complex array as ``<key>_real``/``<key>_imag``), a
    Setup as JSON, anything else as a JSON attribute."""
    g.attrs["long_name"] = "the truth of a simulated dataset (for scoring only)"
    for key, value in truth.items():
        if isinstance(value, Setup):
            g.attrs[key] = json.dumps({_SETUP_MARK: value.to_dict()})
            continue
        a = _host(value) if hasattr(value, "shape") else None
        if a is not None and a.ndim >= 1 and a.dtype.kind in "buifc":
            if a.dtype.kind == "c":
                g.create_dataset(f"{key}_real", data=a.real)
                g.create_dataset(f"{key}_imag", data=a.imag)
            else:
                g.create_dataset(key, data=a)
        else:
            g.attrs[key] = json.dumps(value, default=_json_value)


def _read_truth(g):
    truth = {}
    for key in g:
        if key.endswith("_imag") and f"{key[:-5]}_real" in g:
            continue
        if key.endswith("_real") and f"{key[:-5]}_imag" in g:
            re, im = np.asarray(g[key][()]), np.asarray(g[f"{key[:-5]}_imag"][()])
            cdt = np.complex64 if re.dtype == np.float32 else np.complex128
            truth[key[:-5]] = (re + 1j * im).astype(cdt)
        else:
            truth[key] = np.asarray(g[key][()])
    for key, value in g.attrs.items():
        if key == "long_name":
            continue
        v = json.loads(_decode(value))
        if isinstance(v, dict) and set(v) == {_SETUP_MARK}:
            v = Setup.from_dict(v[_SETUP_MARK], f"truth {key!r}")
        truth[key] = v
    return truth


def _json_value(obj):
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Setup):
        return obj.to_dict()
    return str(obj)


_SKIP = object()


def _jsonable(obj):
    """``obj`` as plain JSON values, or ``_SKIP`` when it is not JSON-able
    (numpy values become lists and numbers; a dict drops what is not)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item() if obj.dtype.kind in "biuf" else _SKIP
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.dtype.kind in "biuf" else _SKIP
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            jv = _jsonable(v)
            if isinstance(k, str) and jv is not _SKIP:
                out[k] = jv
        return out
    if isinstance(obj, (list, tuple)):
        out = [_jsonable(v) for v in obj]
        return _SKIP if any(v is _SKIP for v in out) else out
    if hasattr(obj, "__array__") and hasattr(obj, "shape"):
        try:
            return _jsonable(_host(obj))
        except (TypeError, ValueError):
            return _SKIP
    return _SKIP


# ----------------------------------------------------------------------------- reconstructions

def _scale(f, name, values, units, long_name):
    d = f.create_dataset(name, data=values)
    if units is not None:
        d.attrs["units"] = units
    d.attrs["long_name"] = long_name
    d.make_scale(name)
    return d


def _names(f, name, values, long_name):
    import h5py

    d = f.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())
    d.attrs["long_name"] = long_name
    d.make_scale(name)
    return d


def _attach(d, *scales):
    for axis, s in enumerate(scales):
        if s is not None:
            d.dims[axis].attach_scale(s)
            d.dims[axis].label = s.name.lstrip("/")


def write_reconstruction(path, rec: Reconstruction, *, overwrite=True) -> Path:
    """Write an FPM reconstruction to one self-describing HDF5 file (layout in
    the module notes), atomically: the object as amplitude and phase on y, x
    scales in metres and exactly as real and imaginary parts, the pupil, the
    Zernike coefficients, brightness, noise and weights, the learned LED
    geometry next to the nominal one, the loss trace, the settings, setup and
    history (JSON), the version and the units.  :func:`read_reconstruction`
    reads it back.  Returns the path."""
    if not isinstance(rec, Reconstruction):
        raise TypeError(f"rec must be a diffimaging.fpm.Reconstruction, got {type(rec).__name__}")
    s = rec.setup
    if not isinstance(s, Setup):
        raise TypeError(f"rec.setup must be a diffimaging.fpm.Setup, got {type(s).__name__}")
    obj = _host(rec.object)
    pupil = _host(rec.pupil)
    if obj.ndim != 2:
        raise ValueError(f"rec.object must be a 2-D complex array (NY, NX), got shape {obj.shape}")
    if pupil.ndim != 2:
        raise ValueError(f"rec.pupil must be a 2-D complex array (ny, nx), got shape {pupil.shape}")
    J = s.n_leds
    per_led = {}
    for name in ("brightness", "noise"):
        a = np.asarray(_host(getattr(rec, name)), dtype=np.float64).reshape(-1)
        if a.shape != (J,):
            raise ValueError(f"rec.{name} must hold one value per LED ({J}), got shape {a.shape}")
        per_led[name] = a
    per_led["weights"] = 1.0 / per_led["noise"]
    geo = rec.geometry or {}
    missing = [k for k in ("offset", "rotation", "height", "pitch") if k not in geo]
    if missing:
        raise ValueError(f"rec.geometry lacks {', '.join(missing)} (the learned offset, rotation, "
                         f"height and pitch)")
    learned = {"offset": np.asarray(_host(geo["offset"]), dtype=np.float64).reshape(-1),
               "rotation": float(_host(geo["rotation"])), "height": float(_host(geo["height"])),
               "pitch": float(_host(geo["pitch"]))}
    lsetup = rec.learned_setup()
    history = dict(rec.history or {})
    loss = history.pop("loss", None)
    extras = _jsonable(history)
    settings = json.dumps(rec.settings or {}, default=_json_value)
    real = np.float32 if obj.dtype in (np.complex64, np.float32) else np.float64
    NY, NX = obj.shape
    ny, nx = pupil.shape
    dxo = s.object_pixel_size

    def build(f):
        y = _scale(f, "y", np.arange(NY) * dxo, "m",
                   "position of the object pixel row (pixel i at i * object_pixel_size)")
        x = _scale(f, "x", np.arange(NX) * dxo, "m",
                   "position of the object pixel column (pixel j at j * object_pixel_size)")
        for name, values, units, long_name in (
                ("amplitude", np.abs(obj), "1", "amplitude |o| of the object's complex transmission"),
                ("phase", np.angle(obj), "rad", "phase arg(o) of the object's complex transmission"),
                ("object_real", obj.real, "1", "real part of the object"),
                ("object_imag", obj.imag, "1", "imaginary part of the object")):
            d = f.create_dataset(name, data=np.asarray(values).astype(real, copy=False),
                                 compression="gzip", compression_opts=4)
            d.attrs["units"] = units
            d.attrs["long_name"] = long_name
            _attach(d, y, x)
        fy = _scale(f, "fy", np.fft.fftfreq(ny, s.low_pixel_size), "1/m",
                    "pupil frequency along y (FFT order)")
        fx = _scale(f, "fx", np.fft.fftfreq(nx, s.low_pixel_size), "1/m",
                    "pupil frequency along x (FFT order)")
        for name, values in (("pupil_real", pupil.real), ("pupil_imag", pupil.imag)):
            d = f.create_dataset(name, data=values)
            d.attrs["long_name"] = f"{name.split('_')[1]} part of the coherent pupil (FFT order)"
            d.attrs["units"] = "1"
            _attach(d, fy, fx)
        z = f.create_dataset("zernike", data=np.asarray(_host(rec.zernike), dtype=np.float64))
        z.attrs["units"] = "rad"
        z.attrs["long_name"] = "Zernike coefficients of the pupil phase (Noll indices in 'noll')"
        noll = np.asarray(list(rec.noll), dtype=np.int64)
        z.attrs["noll"] = noll
        if noll.shape == z.shape:
            _attach(z, _scale(f, "noll", noll, None, "Noll index of each Zernike coefficient"))
        led = _scale(f, "led", np.arange(J, dtype=np.int64), None,
                     "LED index j = r * cols + c (row-major)")
        axis = _names(f, "axis", ["y", "x"], "component: y (rows) then x (columns)")
        axis3 = _names(f, "axis3", ["y", "x", "z"], "component of a position: y, x, z")
        for name, long_name in (("brightness", "learned LED brightness (photons per unit |field|^2)"),
                                ("noise", "learned per-image noise scale (median 1)"),
                                ("weights", "weight of each image in the fidelity, 1 / noise")):
            d = f.create_dataset(name, data=per_led[name])
            d.attrs["units"] = "1"
            d.attrs["long_name"] = long_name
            _attach(d, led)
        for name, values, units, sc, long_name in (
                ("led_positions", lsetup.led_positions(), "m", axis3, "learned LED position"),
                ("nominal_led_positions", s.led_positions(), "m", axis3, "nominal LED position"),
                ("wavevectors", lsetup.wavevectors(), "1/m", axis,
                 "learned illumination frequency (ky, kx)"),
                ("nominal_wavevectors", s.wavevectors(), "1/m", axis,
                 "nominal illumination frequency (ky, kx)")):
            d = f.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            d.attrs["units"] = units
            d.attrs["long_name"] = long_name
            _attach(d, led, sc)
        if loss is not None:
            lv = np.asarray(_host(np.asarray(loss)), dtype=np.float64).reshape(-1)
            it = _scale(f, "iteration", np.arange(lv.size, dtype=np.int64), None, "solver iteration")
            d = f.create_dataset("loss", data=lv)
            d.attrs["long_name"] = "the solver's loss at each iteration"
            _attach(d, it)
        a = f.attrs
        for prefix, g in (("", learned), ("nominal_", s.geometry())):
            a[f"{prefix}offset"] = np.asarray(g["offset"], dtype=np.float64)
            a[f"{prefix}offset_units"] = "m"
            a[f"{prefix}rotation"] = float(g["rotation"])
            a[f"{prefix}rotation_units"] = "rad"
            a[f"{prefix}height"] = float(g["height"])
            a[f"{prefix}height_units"] = "m"
            a[f"{prefix}pitch"] = float(g["pitch"])
            a[f"{prefix}pitch_units"] = "m"
        a["background"] = float(_host(rec.background))
        a["object_pixel_size"] = float(dxo)
        a["object_pixel_size_units"] = "m"
        a["wavelength"] = float(s.wavelength)
        a["wavelength_units"] = "m"
        a["setup"] = json.dumps(s.to_dict())
        a["settings"] = settings
        a["history"] = json.dumps(extras if extras is not _SKIP else {})

    return _write_h5(path, build, overwrite, "diffimaging Fourier ptychographic reconstruction")


def read_reconstruction(path) -> Reconstruction:
    """Read a file written by :func:`write_reconstruction`: a
    :class:`~diffimaging.fpm.Reconstruction` (the object and pupil exactly; the
    history holds the loss trace and the JSON-able entries that were written)."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"reconstruction file not found: {p}")
    f = _files.open_hdf5(p)
    with f:
        need = ("object_real", "object_imag", "pupil_real", "pupil_imag", "zernike", "brightness",
                "noise")
        missing = [k for k in need if not isinstance(f.get(k), h5py.Dataset)]
        if missing or "setup" not in f.attrs:
            what = missing + ([] if "setup" in f.attrs else ["attribute setup"])
            raise ValueError(f"{p}: not an FPM reconstruction: no {', '.join(what)}")
        try:
            ds = {k: np.asarray(f[k][()]) for k in need}
            loss = np.asarray(f["loss"][()], dtype=np.float64) if "loss" in f else None
        except OSError as exc:
            raise ValueError(f"{p} is truncated or corrupt ({exc})") from exc
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        noll = [int(n) for n in np.asarray(f["zernike"].attrs.get("noll", [])).reshape(-1)]
    try:
        setup = _make_setup(json.loads(attrs["setup"]), f"{p}: attribute 'setup'")
        settings = json.loads(attrs.get("settings", "{}"))
        history = json.loads(attrs.get("history", "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: an attribute is not valid JSON ({exc})") from None
    try:
        geometry = {"offset": np.asarray(attrs["offset"], dtype=np.float64).reshape(2),
                    "rotation": float(attrs["rotation"]), "height": float(attrs["height"]),
                    "pitch": float(attrs["pitch"])}
    except KeyError as exc:
        raise ValueError(f"{p}: missing the learned-geometry attribute {exc}") from None

    def cplx(re, im):
        cdt = np.complex64 if re.dtype == np.float32 else np.complex128
        return (re + 1j * im).astype(cdt)

    if loss is not None:
        history = {"loss": loss.tolist(), **history}
    return Reconstruction(object=cplx(ds["object_real"], ds["object_imag"]),
                          pupil=cplx(ds["pupil_real"], ds["pupil_imag"]),
                          zernike=ds["zernike"].astype(np.float64), noll=noll, setup=setup,
                          geometry=geometry, brightness=ds["brightness"].astype(np.float64),
                          background=float(attrs.get("background", 0.0)),
                          noise=ds["noise"].astype(np.float64), history=history,
                          settings=settings)


def write_images(prefix, rec: Reconstruction, *, formats=("tif", "png"), overwrite=True):
    """Write the object's amplitude and phase as images, atomically:
    ``<prefix>_amplitude.tif``, ``<prefix>_phase.tif`` (float32, phase in
    radians, the object pixel size in the TIFF resolution tags and the image
    description) and 8-bit PNG previews (see
    :func:`diffimaging.lensless.io.write_field_images`).  Returns the paths."""
    from ..lensless.io import write_field_images

    if not isinstance(rec, Reconstruction):
        raise TypeError(f"rec must be a diffimaging.fpm.Reconstruction, got {type(rec).__name__}")
    return write_field_images(prefix, rec.object, rec.setup.object_pixel_size, formats=formats,
                              overwrite=overwrite)
