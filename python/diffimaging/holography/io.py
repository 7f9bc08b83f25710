"""Files: holograms in (TIFF, PNG, JPEG, ...), volumes to HDF5, particle and vector
tables to CSV, particles, tracks and PIV grids to VTK (ParaView).

Files the users' own tools open
-------------------------------
* Volumes (:func:`write_volume`, :func:`open_volume`) are self-describing HDF5: the
  ``z``, ``y``, ``x`` coordinates in metres are datasets attached to the volume as
  dimension scales (xarray with the h5netcdf engine, Panoply and HDFView show a
  labelled array), with units, what the values are, the optics (vacuum
  wavelength, medium index, pixel size), the plane spacing and learned depth
  offset, the package version and the settings used.
* Tables (:func:`write_particles_csv`, :func:`write_vectors_csv`) are CSV with a
  commented header (``# key: <JSON value>``: what the table is, each column's
  meaning, optics, ``dt``, version, date); columns ``x_m, y_m, z_m`` in metres and
  velocities with their unit in the name (``u_m_per_s`` or ``u_m_per_frame``).
  :func:`read_table` reads them back; ``pandas.read_csv(path, comment="#")`` too.
* VTK through kept libraries: points (particles, tracks) through meshio (legacy
  binary ``.vtk``, or ``.vtu``), a PIV grid as ImageData (``.vti``, pyevtk) or
  as a hexahedral grid (``.vtk``/``.vtu``), so that ParaView's Gradient filter
  computes the vorticity.

Data safety
-----------
* Every writer is atomic (:mod:`diffimaging._backend.files`): the file is written
  under a temporary name ``.<name>.<random>.part`` in the target folder, synced
  and renamed over the final name.  An exception, ``KeyboardInterrupt`` or a full
  disk leaves the final name as it was (absent, or the previous complete file)
  and removes the temporary file.  A process killed outright (``SIGKILL``, or
  ``SIGTERM`` with Python's default disposition) cannot clean up: the final name
  is still never a partial file, but a ``*.part`` file may be left in the folder.
* :func:`write_volume` builds the HDF5 file in memory and writes its bytes with
  Python's file API, so a full disk or a file-size limit is a clean ``OSError``
  (``ENOSPC``/``EFBIG``) naming the file, instead of a crash inside HDF5 (writing
  HDF5 straight to a file that hits the limit segfaults in h5py).  The cost is a
  buffer the size of the compressed file.  The file carries a completeness marker
  written last, which :func:`read_volume` checks.
* :func:`open_volume` streams a volume too large to hold in memory, a batch of
  planes at a time, into the temporary file (memory: one batch).  HDF5 then
  writes to the disk directly, so it first checks that the free space and the
  process's file-size limit hold the uncompressed volume and raises ``OSError``
  (``ENOSPC``/``EFBIG``) naming the file if not; the marker is written only when
  every plane has been.
* Readers name the file in every error: missing (``FileNotFoundError``),
  unreadable (``PermissionError``, passed through), empty, truncated, a folder, not
  an image or not a volume, a non-numeric dataset (``ValueError``).
* :func:`read_hologram` checks the image size declared in the file's header
  against limits (pixels and bytes) *before* decoding anything, so a small
  compressed file declaring a huge image (a decompression bomb) is refused
  cheaply, and refuses NaN/Inf pixels with their count and first position.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import logging
import operator
import os
import re
import threading
import warnings
from pathlib import Path

import numpy as np

from .._backend import validate as V
from .._backend import files as _files
from .._backend.files import atomic_path

__all__ = ["read_hologram", "write_volume", "open_volume", "VolumeWriter", "read_volume",
           "write_projections", "read_projections", "is_projections", "PROJECTIONS", "write_particles_csv",
           "write_vectors_csv", "read_table", "write_vtk_points", "write_particles_vtk",
           "write_tracks_vtk", "write_piv_vtk", "check_optics", "check_finite",
           "DEFAULT_MAX_IMAGE_PIXELS", "DEFAULT_MAX_IMAGE_BYTES"]

#: default limit on the pixels one :func:`read_hologram` call decodes (frames x ny x nx,
#: colour samples not counted): 2**28 = 268 M, e.g. one 16384² image or 16 frames of
#: 4096²; override with ``max_pixels=`` or the environment variable
#: ``DIFFIMAGING_MAX_IMAGE_PIXELS`` (an integer, or ``none``)
DEFAULT_MAX_IMAGE_PIXELS = 2 ** 28
#: default limit on the memory one :func:`read_hologram` call needs: the decoded
#: samples plus the float64 result, 4 GiB; override with ``max_bytes=`` or
#: ``DIFFIMAGING_MAX_IMAGE_BYTES``
DEFAULT_MAX_IMAGE_BYTES = 4 * 2 ** 30

_TIFF_SUFFIXES = (".tif", ".tiff")
# attributes write_volume stores last: a file that has them was written to the end
_COMPLETE_ATTR = "diffimaging_complete"
_SHAPE_ATTR = "diffimaging_shape"
_WRITE_BLOCK = 16 * 2 ** 20     # bytes per write call: an interrupt lands between blocks


def check_optics(wavelength, pixel_size, z=None, n_medium=None):
    """Clear errors for values that are not in metres (the most common slip:
    a pixel size of 2 meaning 2 um, a wavelength of 532 meaning 532 nm), and for a
    medium index ``n_medium`` (when given) outside 1.0 to 3."""
    for name, v, lo, hi, hint in (("wavelength", wavelength, 1e-8, 2e-5, "532e-9 for 532 nm"),
                                  ("pixel_size", pixel_size, 1e-8, 1e-3, "2e-6 for 2 um")):
        vals = np.atleast_1d(np.asarray(v, dtype=np.float64))
        if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
            raise ValueError(f"{name} must be positive and finite, in metres (e.g. {hint}); got {v!r}")
        if np.any(vals > hi):
            raise ValueError(f"{name} = {v!r} m is implausibly large: lengths are in metres, did you "
                             f"give micrometres or nanometres? (e.g. {hint})")
        if np.any(vals < lo):
            raise ValueError(f"{name} = {v!r} m is implausibly small: lengths are in metres "
                             f"(e.g. {hint})")
    if z is not None:
        zz = np.atleast_1d(np.asarray(z, dtype=np.float64))
        if not np.all(np.isfinite(zz)):
            raise ValueError("z must be finite, in metres")
        if np.any(np.abs(zz) > 10.0):
            raise ValueError(f"depths up to {np.abs(zz).max():g} m are implausible for holography: z is "
                             f"in metres (e.g. 1e-3 for 1 mm)")
    if n_medium is not None:
        _n_medium(n_medium)


def check_finite(a, name="hologram"):
    """Raise ``ValueError`` if the image or series ``a`` (any array library) holds NaN
    or ±Inf, with their count and the position of the first one: (row, col) for
    an image, (frame, row, col) for a series.  Integer arrays pass at no cost.
    Returns ``a``."""
    return V.check_finite(a, name, ("row", "col"), what="pixel",
                          hint="; mask or replace them (e.g. with the median of their "
                               "neighbours) before processing")


# ----------------------------------------------------------------------------- readers

def _probe(p: Path, what: str) -> None:
    """The checks every reader does first: present, a file, readable, not empty.
    ``PermissionError`` passes through (it names the file)."""
    if not p.exists():
        raise FileNotFoundError(f"{what} file not found: {p}")
    if p.is_dir():
        raise ValueError(f"{p} is a folder, not a {what} file")
    with open(p, "rb") as fh:
        if not fh.read(1):
            raise ValueError(f"{p} is empty (0 bytes), not a {what} file: was its writing "
                             f"interrupted?")


def _limit(value, name, env, default):
    if isinstance(value, str) and value == "default":
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        if text.lower() in ("none", "off", "unlimited"):
            return None
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n <= 0:
            raise ValueError(f"environment variable {env}={text!r} must be a positive integer "
                             f"(or 'none' for no limit)")
        return n
    if value is None:
        return None
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive integer or None (no limit), got {value!r}") from None
    if n <= 0:
        raise ValueError(f"{name} must be a positive integer or None (no limit), got {value!r}")
    return n


def _check_size(p, n_frames, ny, nx, samples, itemsize, max_pixels, max_bytes):
    """Refuse, before decoding, an image whose declared size exceeds the limits."""
    pixels = n_frames * ny * nx
    nbytes = pixels * samples * itemsize + pixels * 8      # decoded samples + float64 result
    what = f"{n_frames} x {ny} x {nx}" if n_frames > 1 else f"{ny} x {nx}"
    if max_pixels is not None and pixels > max_pixels:
        raise ValueError(f"{p} declares {what} = {pixels:,} pixels, more than the limit of "
                         f"{max_pixels:,} (a guard against decompression bombs); if the file is "
                         f"genuine, pass max_pixels=<larger> (or None) to read_hologram, select one "
                         f"frame with frame=, or set DIFFIMAGING_MAX_IMAGE_PIXELS")
    if max_bytes is not None and nbytes > max_bytes:
        raise ValueError(f"{p} declares {what} pixels needing {nbytes / 2 ** 30:.2f} GiB to decode "
                         f"and convert to float64, more than the limit of {max_bytes / 2 ** 30:.2f} "
                         f"GiB; if the file is genuine, pass max_bytes=<larger> (or None) to "
                         f"read_hologram, select one frame with frame=, or set "
                         f"DIFFIMAGING_MAX_IMAGE_BYTES")


def _frame_index(p, frame, n_frames):
    i = operator.index(frame)
    if n_frames == 1:
        raise ValueError(f"{p}: frame={frame} given but the file holds a single image")
    if not -n_frames <= i < n_frames:
        raise ValueError(f"{p}: frame={frame} is out of range: the file holds {n_frames} frames")
    return i % n_frames


class _TiffErrors(logging.Handler):
    """Collects the errors tifffile *logs* (it logs a broken page chain or a failed
    reshape of a truncated file, and goes on with what it could read)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.messages = []

    def emit(self, record):
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tiff_errors_raise(p):
    log = logging.getLogger("tifffile")
    h = _TiffErrors()
    log.addHandler(h)
    try:
        yield
    finally:
        log.removeHandler(h)
    if h.messages:
        raise ValueError(f"{p} is a truncated or corrupt TIFF file ({h.messages[0][:200]})")


def _read_tiff(p, frame, max_pixels, max_bytes):
    """Decode a TIFF's first series (or one frame of it).  Returns (data, has_samples,
    photometric, colormap), colour samples (if any) on the last axis of data."""
    import tifffile

    with _tiff_errors_raise(p), tifffile.TiffFile(p) as tf:
        if not tf.series:
            raise ValueError(f"{p}: the TIFF file holds no image")
        s = tf.series[0]
        page = s.keyframe
        photometric, colormap = int(page.photometric), page.colormap
        planar_separate = int(page.planarconfig) == 2                    # PLANARCONFIG.SEPARATE
        if s.dtype is None or s.dtype.kind not in "uif":
            raise ValueError(f"{p}: unsupported pixel type {s.dtype} (need integer or float pixels)")
        # colour samples (axis 'S') are not frames; any other axis but Y and X is one
        sizes = dict(zip(s.axes, s.shape))
        keep = [a for a in s.axes if a in "YXS" or sizes[a] > 1]
        frame_axes = [a for a in keep if a not in "YXS"]
        if len(frame_axes) > 1 or "Y" not in sizes or "X" not in sizes:
            raise ValueError(f"{p}: a hologram file holds one image or one series of frames; this "
                             f"TIFF holds axes {s.axes} of shape {tuple(s.shape)}")
        n_frames = sizes[frame_axes[0]] if frame_axes else 1
        ny, nx, samples = sizes["Y"], sizes["X"], sizes.get("S", 1)
        itemsize = s.dtype.itemsize
        if frame is not None:
            i = _frame_index(p, frame, n_frames)
        if frame is not None and len(s.pages) == n_frames:   # a page per frame: decode that page
            _check_size(p, 1, ny, nx, samples, itemsize, max_pixels, max_bytes)
            keep = [a for a in keep if a in "YXS"]
            data = tf.asarray(key=i, series=0)
        else:
            _check_size(p, n_frames, ny, nx, samples, itemsize, max_pixels, max_bytes)
            data = s.asarray()
    data = data.reshape([sizes[a] for a in keep])
    if frame is not None and frame_axes and frame_axes[0] in keep:
        data = np.take(data, i, axis=keep.index(frame_axes[0]))
        keep.remove(frame_axes[0])
    if "S" in keep:
        data = np.moveaxis(data, keep.index("S"), -1)
        if planar_separate and photometric == 2 and samples in (3, 4):   # PHOTOMETRIC.RGB
            warnings.warn(f"{p} holds one RGB image stored as {samples} separate colour planes; "
                          f"they are averaged into one grey hologram. If the planes are {samples} "
                          f"frames (tifffile.imwrite stores an ({samples}, ny, nx) array as RGB "
                          f"unless photometric='minisblack' is given), re-save them with "
                          f"photometric='minisblack'", stacklevel=4)
    return data, "S" in keep, photometric, colormap


def _tiff_to_grey(p, data, has_samples, photometric, colormap):
    from tifffile import PHOTOMETRIC

    if photometric == PHOTOMETRIC.PALETTE and colormap is not None and not has_samples:
        data = np.asarray(colormap, dtype=np.float64)[:, data.astype(np.intp)].mean(axis=0)
        return data
    if not has_samples:
        return data
    if photometric == PHOTOMETRIC.RGB and data.shape[-1] >= 3:
        return data[..., :3].mean(axis=-1)                     # RGB or RGBA: mean of R, G, B
    if photometric in (PHOTOMETRIC.MINISBLACK, PHOTOMETRIC.MINISWHITE):
        return data[..., 0]                                    # grey + extra samples (alpha)
    raise ValueError(f"{p}: unsupported TIFF colour space (photometric "
                     f"{PHOTOMETRIC(photometric).name}); save the hologram as grey or RGB")


_PIL_LOCK = threading.Lock()


def _pillow_open(p, max_pixels):
    """``PIL.Image.open`` whose size limit is ours: Pillow's own
    decompression-bomb check becomes our ``ValueError``, or is lifted (for this
    call) when the caller raised our limit above it."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # our check follows
            return Image.open(p)
    except Image.DecompressionBombError as exc:
        pil_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        if max_pixels is not None and max_pixels <= pil_limit:
            m = re.search(r"\((\d+) pixels\)", str(exc))
            declared = f"{int(m.group(1)):,} pixels" if m else "more pixels"
            raise ValueError(f"{p} declares {declared}, more than the limit of {max_pixels:,} "
                             f"(a guard against decompression bombs); if the file is genuine, pass "
                             f"max_pixels=<larger> (or None) to read_hologram or set "
                             f"DIFFIMAGING_MAX_IMAGE_PIXELS") from None
    with _PIL_LOCK:                      # the caller asked for more than Pillow allows
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(p)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _pillow_grey(im):
    """One decoded Pillow frame as a grey array (colour: mean of R, G, B)."""
    mode = im.mode
    if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        im, mode = im.convert("RGB"), "RGB"
    elif mode == "1":
        im, mode = im.convert("L"), "L"
    a = np.asarray(im)
    if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
        return a[..., :3].mean(axis=-1)
    if mode in ("LA", "La"):
        return a[..., 0]
    return a


def _read_pillow(p, frame, max_pixels, max_bytes):
    im = _pillow_open(p, max_pixels)
    with im:
        nx, ny = im.size
        n_frames = int(getattr(im, "n_frames", 1))
        samples = len(im.getbands())
        itemsize = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2}.get(im.mode, 1)
        if frame is None:
            _check_size(p, n_frames, ny, nx, samples, itemsize, max_pixels, max_bytes)
            indices = range(n_frames)
        else:
            _check_size(p, 1, ny, nx, samples, itemsize, max_pixels, max_bytes)
            indices = [_frame_index(p, frame, n_frames)]
        out = []
        for i in indices:
            im.seek(i)
            out.append(_pillow_grey(im))
    return out[0] if frame is not None or n_frames == 1 else np.stack(out)


def read_hologram(path, *, frame=None, max_pixels="default", max_bytes="default",
                  allow_nonfinite=False):
    """Read a hologram (2-D) or a frame series (3-D).

    TIFF files are read with tifffile (one image, or a series of pages); other
    formats (PNG, JPEG, BMP, GIF...) with Pillow.  Colour images (RGB/RGBA, TIFF
    samples contiguous (ny, nx, 3) or planar (3, ny, nx), palette images) become
    the mean of their R, G and B channels; colour samples are never taken for
    frames.

    Parameters
    ----------
    frame : int, optional
        Read only this frame of a series (negative counts from the end); only that
        frame is decoded.
    max_pixels, max_bytes : int or None, optional
        Limits checked from the file's header before anything is decoded: the
        pixels to decode (frames x ny x nx; default :data:`DEFAULT_MAX_IMAGE_PIXELS`
        = 2**28, or the environment variable ``DIFFIMAGING_MAX_IMAGE_PIXELS``) and
        the memory needed (decoded samples plus the float64 result, in bytes;
        default :data:`DEFAULT_MAX_IMAGE_BYTES` = 4 GiB, or
        ``DIFFIMAGING_MAX_IMAGE_BYTES``).  ``None`` removes a limit.
    allow_nonfinite : bool
        Float images with NaN or ±Inf pixels are refused (``ValueError`` with their
        count and first position) unless this is True.

    Returns a float64 array (ny, nx) or (n_frames, ny, nx).  Every error names the
    file: ``FileNotFoundError`` (missing), ``PermissionError`` (unreadable),
    ``ValueError`` (a folder, empty, truncated or not an image, unsupported pixels,
    too large, non-finite pixels).
    """
    p = Path(path)
    max_pixels = _limit(max_pixels, "max_pixels", "DIFFIMAGING_MAX_IMAGE_PIXELS",
                        DEFAULT_MAX_IMAGE_PIXELS)
    max_bytes = _limit(max_bytes, "max_bytes", "DIFFIMAGING_MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES)
    if frame is not None:
        try:
            operator.index(frame)
        except TypeError:
            raise TypeError(f"frame must be an integer, got {frame!r}") from None
    _probe(p, "hologram")
    try:
        if p.suffix.lower() in _TIFF_SUFFIXES:
            data, has_samples, photometric, colormap = _read_tiff(p, frame, max_pixels, max_bytes)
            data = _tiff_to_grey(p, data, has_samples, photometric, colormap)
        else:
            data = _read_pillow(p, frame, max_pixels, max_bytes)
    except (PermissionError, MemoryError):
        raise
    except Exception as exc:        # the decoders' own errors: truncated data, unknown format...
        if isinstance(exc, ValueError) and str(p) in str(exc):
            raise                   # ours, naming the file already
        raise ValueError(f"cannot read {p} as an image ({type(exc).__name__}: {exc})") from exc
    data = np.asarray(data)
    if data.dtype.kind not in "uif" or data.dtype == bool:
        raise ValueError(f"{p}: unsupported pixel type {data.dtype}")
    if data.ndim not in (2, 3) or min(data.shape[-2:]) < 8:
        raise ValueError(f"{p}: a hologram must be a 2-D image (or a 3-D frame series) of at least "
                         f"8x8 pixels, got shape {data.shape}")
    if not allow_nonfinite:
        check_finite(data, f"{p}")
    return data.astype(np.float64, copy=False)


def read_volume(path):
    """Read a volume written by :func:`write_volume`: returns ``(volume, z, attrs)``.

    ``volume`` is the (nz, ny, nx) array as stored, ``z`` the depths in metres
    (float64, length nz), ``attrs`` a dict of the file's attributes (see
    :func:`write_volume`; ``settings`` decoded from JSON to a dict).  Files of
    diffimaging before 0.2 stored the learned depth offset as ``dz_m``: it is
    returned as ``z_offset_m``.  Of the known
    attributes, ``"wavelength_m"`` (float) and ``"pixel_size_m"`` (float64 array
    ``(dy, dx)``) are present only when the file records them, validated: a file
    without a pixel size (one written by another program) has no ``"pixel_size_m"``
    key, so ``attrs.get("pixel_size_m") is None`` tells the caller to ask for it; a
    recorded value that is not a positive finite length (NaN, text) is dropped the
    same way, with a ``UserWarning`` naming the file and the attribute.

    Completeness: :func:`write_volume` stores a marker and the volume's shape last;
    a file whose marker disagrees with its datasets is refused (``ValueError``:
    incomplete).  A file without the marker (written by an earlier diffimaging
    or by another program) is read if its datasets are consistent and decode in full,
    with a ``UserWarning`` that its completeness cannot be verified.

    Errors name the file: ``FileNotFoundError``, ``PermissionError``, and
    ``ValueError`` for a folder, an empty, truncated or non-HDF5 file, a missing or
    non-numeric dataset or inconsistent shapes.
    """
    import h5py

    p = Path(path)
    _probe(p, "volume")
    f = _files.open_hdf5(p)
    with f:
        try:
            datasets = {}
            for key in ("volume", "z"):
                d = f.get(key)
                if not isinstance(d, h5py.Dataset):
                    raise ValueError(f"{p}: not a diffimaging volume: no dataset {key!r} (the file holds "
                                     f"{sorted(f.keys())})")
                if d.dtype.kind not in ("uifc" if key == "volume" else "uif"):
                    raise ValueError(f"{p}: dataset {key!r} is not numeric (type {d.dtype})")
                datasets[key] = d
            dv, dz = datasets["volume"], datasets["z"]
            if dv.ndim != 3:
                raise ValueError(f"{p}: dataset 'volume' must be 3-D (nz, ny, nx), got shape {dv.shape}")
            if 0 in dv.shape:
                raise ValueError(f"{p}: dataset 'volume' is empty (shape {dv.shape})")
            if dz.ndim > 1:
                raise ValueError(f"{p}: dataset 'z' must be 1-D (one depth per plane), got shape "
                                 f"{dz.shape}")
            if dz.size != dv.shape[0]:
                raise ValueError(f"{p}: dataset 'z' holds {dz.size} depths for {dv.shape[0]} planes")
            attrs = dict(f.attrs)
            marker = attrs.pop(_COMPLETE_ATTR, None)
            shape = attrs.pop(_SHAPE_ATTR, None)
            if marker is None:
                warnings.warn(f"{p} has no completeness marker (written by another program or an older "
                              f"diffimaging): its completeness cannot be verified; re-create it if its "
                              f"writing may have been interrupted", UserWarning, stacklevel=2)
            elif not bool(marker) or shape is None or tuple(np.asarray(shape).tolist()) != dv.shape:
                raise ValueError(f"{p} is incomplete: its datasets ({dv.shape}) do not match what the "
                                 f"writer recorded ({None if shape is None else tuple(shape)})")
            try:
                volume, z = dv[()], dz[()]
            except OSError as exc:
                raise ValueError(f"{p} is truncated or corrupt: its data cannot be decoded ({exc})") from exc
        except (RuntimeError, KeyError, OSError) as exc:
            # HDF5's own errors for damaged metadata (attribute or object headers)
            raise ValueError(f"{p} is corrupt: its structure cannot be decoded ({exc})") from exc
    if "dz_m" in attrs and "z_offset_m" not in attrs:
        attrs["z_offset_m"] = attrs.pop("dz_m")           # the name before 0.2
    _known_attrs(p, attrs)
    return volume, np.asarray(z, dtype=np.float64).reshape(-1), attrs


def _known_attrs(p, attrs):
    """Validate (in place) the optical attributes a volume file may carry."""
    for key, size in (("wavelength_m", 1), ("pixel_size_m", 2)):
        if key not in attrs:
            continue
        raw = attrs[key]
        try:
            v = np.asarray(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            v = np.array([np.nan])
        if v.size not in (1, size) or not np.all(np.isfinite(v)) or np.any(v <= 0):
            # an unusable value is as good as none: dropped, so that the caller asks
            # for it (the CLI's --pixel-size / --wavelength) instead of failing
            warnings.warn(f"{p}: attribute {key!r} = {raw!r} is not a positive length in metres; "
                          f"ignored (give the value explicitly)", UserWarning, stacklevel=3)
            del attrs[key]
            continue
        attrs[key] = float(v[0]) if size == 1 else np.broadcast_to(v, (2,)).copy()
    if "n_medium" in attrs:
        try:
            attrs["n_medium"] = _n_medium(attrs["n_medium"])
        except ValueError:
            warnings.warn(f"{p}: attribute 'n_medium' = {attrs['n_medium']!r} is not a refractive "
                          f"index from 1 to 3; ignored (give the value explicitly)", UserWarning,
                          stacklevel=3)
            del attrs["n_medium"]
    settings = attrs.get("settings")
    if isinstance(settings, (str, bytes)):
        import json

        with contextlib.suppress(ValueError):
            attrs["settings"] = json.loads(settings)


# ----------------------------------------------------------------------------- writers

@contextlib.contextmanager
def _writing_path(path, overwrite):
    """``atomic_path`` whose ``OSError`` names the final file (a write error from the
    temporary file names no file, or the temporary one)."""
    p = Path(path)
    try:
        with atomic_path(p, overwrite=overwrite) as tmp:
            yield tmp
    except OSError as exc:
        if exc.errno is None or (exc.filename is not None and str(p) in str(exc.filename)):
            raise
        raise type(exc)(exc.errno, f"{exc.strerror or exc} (writing {p.name})", str(p)) from exc


@contextlib.contextmanager
def _writing(path, mode, overwrite, **kwargs):
    """An atomically written file object (see :func:`_writing_path`); ``mode`` "w" or "wb"."""
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with _writing_path(path, overwrite) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def _n_medium(value):
    """The refractive index of the medium as a float, validated (1 <= n <= 3)."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        n = np.nan
    if isinstance(value, bool) or not np.isfinite(n) or not 1.0 <= n <= 3.0:
        raise ValueError(f"n_medium (the refractive index of the medium around the particles) must "
                         f"be a finite number from 1.0 to 3 (1.0 for air, 1.33 for water), got "
                         f"{value!r}")
    return n


def _version():
    from .. import __version__

    return __version__


def _now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def _json_value(obj):
    """``json.dumps`` default: numpy values and arrays, paths."""
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _json(value, name):
    import json

    try:
        return json.dumps(value, default=_json_value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must hold numbers, strings, lists and dicts (JSON), got "
                        f"{value!r} ({exc})") from None


# -- volumes --------------------------------------------------------------------------

#: what the values of a volume are, by the ``method`` attribute of its file
_VOLUME_VALUES = {
    "backprop": "back-propagated intensity |U|^2, normalised to the reference (illumination) "
                "intensity",
    "dh": "∂H scattering amplitude |o| of the object (0 where there is none)",
}
# attributes the header writer sets: not accepted as extra attributes
_HEADER_ATTRS = frozenset({"title", "axes", "wavelength_m", "n_medium", "pixel_size_m",
                           "plane_spacing_m", "z_offset_m", "dz_m", "crop_offset_px",
                           "diffimaging_version", "created", "settings", _COMPLETE_ATTR, _SHAPE_ATTR})


def _volume_header_args(who, zz, wavelength, pixel_size, n_medium, z_offset, crop_offset_px,
                        description, settings, attrs, stacklevel):
    """Checks common to :func:`write_volume` and :func:`open_volume`; returns the
    keyword arguments of :func:`_write_header`."""
    check_optics(wavelength, pixel_size, zz)
    if "dz" in attrs:          # the keyword's name before 0.2: it held the learned offset
        warnings.warn(f"{who}(dz=...) is deprecated: it is the offset of the depths learned by the "
                      f"reconstruction, now z_offset=...", DeprecationWarning, stacklevel=stacklevel)
        if z_offset is not None:
            raise ValueError(f"{who}: give z_offset only (dz is its deprecated name)")
        z_offset = attrs.pop("dz")
    reserved = _HEADER_ATTRS & set(attrs)
    if reserved:
        raise ValueError(f"attribute names {sorted(reserved)} are reserved by {who} (set by its "
                         f"own keywords)")
    z_offset = 0.0 if z_offset is None else float(z_offset)
    if not np.isfinite(z_offset):
        raise ValueError(f"z_offset must be a finite distance in metres, got {z_offset!r}")
    if crop_offset_px is not None:
        try:
            oy, ox = crop_offset_px
        except (TypeError, ValueError):
            raise ValueError(f"crop_offset_px must be (row, column) pixels, got "
                             f"{crop_offset_px!r}") from None
        crop_offset_px = (V.integer(oy, "crop_offset_px[0]", minimum=0),
                          V.integer(ox, "crop_offset_px[1]", minimum=0))
    if description is None:
        method = attrs.get("method")
        method = method.decode() if isinstance(method, bytes) else method
        description = _VOLUME_VALUES.get(method, "reconstructed volume")
    elif not isinstance(description, str):
        raise TypeError(f"description must be a string, got {description!r}")
    return dict(zz=zz, wavelength=float(wavelength), pixel_size=pixel_size,
                n_medium=_n_medium(n_medium), z_offset=z_offset, crop_offset_px=crop_offset_px,
                description=description,
                settings=None if settings is None else _json(settings, "settings"), attrs=attrs)


def _scale(f, name, values, long_name):
    """A coordinate dataset in metres made a dimension scale."""
    c = f.create_dataset(name, data=np.asarray(values, dtype=np.float64))
    c.attrs["units"] = "m"
    c.attrs["long_name"] = long_name
    c.make_scale(name)
    return c


def _depth_scale(f, zz):
    return _scale(f, "z", zz, "distance from the sensor (positive downstream)")


def _sensor_scales(f, shape, pixel_size, crop_offset_px):
    """The y and x scales of an (ny, nx) image cut from the sensor at ``crop_offset_px``."""
    (ny, nx), (dy, dx) = shape, pixel_size
    oy, ox = crop_offset_px if crop_offset_px is not None else (0, 0)
    return [_scale(f, "y", (oy + np.arange(ny)) * dy,
                   "row position on the sensor (pixel i at i dy of the uncropped sensor)"),
            _scale(f, "x", (ox + np.arange(nx)) * dx,
                   "column position on the sensor (pixel j at j dx of the uncropped sensor)")]


def _write_header(f, d, *, zz, wavelength, pixel_size, n_medium, z_offset, crop_offset_px,
                  description, settings, attrs):
    """The coordinates and attributes of a volume file (all but the marker), for the
    (nz, ny, nx) dataset ``d`` of its values: one writer for both volume writers."""
    dy, dx = np.broadcast_to(np.asarray(pixel_size, dtype=np.float64), (2,))
    coords = [_depth_scale(f, zz)] + _sensor_scales(f, d.shape[1:], (dy, dx), crop_offset_px)
    for axis, c in enumerate(coords):
        d.dims[axis].attach_scale(c)
        d.dims[axis].label = c.name.lstrip("/")
    d.attrs["long_name"] = description
    d.attrs["units"] = "1"
    _write_attrs(f, title="diffimaging reconstructed volume", axes="z, y, x", zz=zz,
                 wavelength=wavelength, pixel_size=(dy, dx), n_medium=n_medium, z_offset=z_offset,
                 crop_offset_px=crop_offset_px, settings=settings, attrs=attrs)


def _write_attrs(f, *, title, axes, zz, wavelength, pixel_size, n_medium, z_offset, crop_offset_px,
                 settings, attrs):
    """The file attributes of a volume or projections file: optics, plane spacing, the
    offsets, version, time, settings and the caller's extra attributes."""
    dy, dx = np.broadcast_to(np.asarray(pixel_size, dtype=np.float64), (2,))
    a = f.attrs
    a["title"] = title
    a["axes"] = axes
    a["wavelength_m"] = wavelength
    a["n_medium"] = n_medium
    a["pixel_size_m"] = np.array([dy, dx])
    step = np.diff(zz)
    if zz.size > 1 and step[0] != 0 and np.allclose(step, step[0], rtol=1e-6, atol=0):
        a["plane_spacing_m"] = float(step[0])
    a["z_offset_m"] = z_offset
    if crop_offset_px is not None:
        a["crop_offset_px"] = np.asarray(crop_offset_px, dtype=np.int64)
    a["diffimaging_version"] = _version()
    a["created"] = _now()
    if settings is not None:
        a["settings"] = settings
    for k, val in attrs.items():
        a[k] = val


def _hdf5_image(v, header):
    """The bytes of the HDF5 file, built in memory (see the module notes)."""
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        d = f.create_dataset("volume", data=v, compression="gzip", compression_opts=4)
        _write_header(f, d, **header)
        f.attrs[_SHAPE_ATTR] = np.asarray(v.shape, dtype=np.int64)
        f.attrs[_COMPLETE_ATTR] = True              # last: the file was built to the end
    return buf


def write_volume(path, volume, *, z, wavelength, pixel_size, n_medium=1.0, z_offset=None,
                 crop_offset_px=None, description=None, settings=None, overwrite=True, **attrs):
    """Write a volume (nz, ny, nx) to HDF5, atomically, as a self-describing file.

    Layout (it opens as a labelled array in xarray:
    ``xr.open_dataset(path, engine="h5netcdf", phony_dims="access")``)::

        /volume   (nz, ny, nx), gzip; attrs long_name (what the values are), units "1";
                  its dimensions carry the scales z, y, x
        /z        (nz,) depths, metres from the sensor; dimension scale, units "m"
        /y, /x    (ny,), (nx,) pixel positions in metres in sensor coordinates (crop
                  offset added); dimension scales, units "m"
        attributes of the file: title, axes "z, y, x", wavelength_m (vacuum),
                  n_medium, pixel_size_m (dy, dx), plane_spacing_m (when the planes
                  are equally spaced), z_offset_m, crop_offset_px (when given),
                  diffimaging_version, created (UTC, ISO 8601), settings (JSON, when
                  given), the extra ``attrs``, and a completeness marker written last.

    Parameters
    ----------
    z : depths of the planes in metres (one per plane)
    wavelength : vacuum wavelength in metres; pixel_size : float or (dy, dx) metres
    n_medium : refractive index of the medium (1.0 to 3), default 1.0
    z_offset : offset in metres learned by the reconstruction and included in ``z``
        (stored as ``z_offset_m``; default 0).  ``dz=`` is its deprecated name.
    crop_offset_px : (row, column) of the volume's first pixel on the uncropped
        sensor, or None (0, 0); the ``y``/``x`` coordinates include it.
    description : what the values are (``long_name`` of ``/volume``); by default
        from ``method`` ("backprop": the normalised back-propagated intensity;
        "dh": the ∂H scattering amplitude |o|).
    settings : dict of the settings used (stored as a JSON string), or None.

    The file is built in memory and written under a temporary name, then renamed:
    ``path`` is either left as it was or holds the whole new file.  A full disk
    raises ``OSError`` (``ENOSPC``/``EFBIG``) naming ``path``.  ``overwrite=False``
    refuses (``FileExistsError``) to replace an existing file.
    """
    v = np.asarray(volume)
    zz = np.asarray(z, dtype=np.float64).reshape(-1)
    header = _volume_header_args("write_volume", zz, wavelength, pixel_size, n_medium, z_offset,
                                 crop_offset_px, description, settings, dict(attrs), stacklevel=3)
    if v.ndim != 3 or v.shape[0] != zz.size:
        raise ValueError(f"volume must be (nz, ny, nx) with nz = len(z) = {zz.size}, got {v.shape}")
    if v.dtype.kind not in "uifc":
        raise TypeError(f"volume must be a numeric array, got dtype {v.dtype}")
    buf = _hdf5_image(v, header)
    image = buf.getbuffer()
    try:
        with _writing(path, "wb", overwrite) as fh:
            for i in range(0, len(image), _WRITE_BLOCK):
                fh.write(image[i:i + _WRITE_BLOCK])
    finally:
        image.release()


#: the maps of a projections file: min/max over depth of the back-propagated intensity
#: and the depths (metres) where they occur
PROJECTIONS = ("min", "argmin_z", "max", "argmax_z")

_PROJECTION_VALUES = {
    "min": ("minimum over depth of the back-propagated intensity |u|^2 (hologram normalised "
            "to mean 1)", "1"),
    "max": ("maximum over depth of the back-propagated intensity |u|^2 (hologram normalised "
            "to mean 1)", "1"),
    "argmin_z": ("depth where the minimum occurs (distance from the sensor)", "m"),
    "argmax_z": ("depth where the maximum occurs (distance from the sensor)", "m"),
}


def write_projections(path, projections, *, z, wavelength, pixel_size, n_medium=1.0,
                      crop_offset_px=None, settings=None, overwrite=True, **attrs):
    """Write the depth projections of a back-propagated stack (the dict of
    :func:`backpropagate(..., output="projections")`) to HDF5, atomically, as a
    self-describing file: a streamed back-propagation's whole result in 4 maps.

    Layout (``xr.open_dataset(path, engine="h5netcdf", phony_dims="access")`` gives
    four (y, x) variables with coordinates)::

        /min, /max            (ny, nx) float32, units "1", long_name
        /argmin_z, /argmax_z  (ny, nx) float32 depths in metres, units "m"
        /y, /x                pixel positions in metres on the uncropped sensor
                              (dimension scales); /z the depths searched, metres
        attributes: as :func:`write_volume` (wavelength_m, n_medium, pixel_size_m,
                    crop_offset_px, diffimaging_version, created, settings, ...) with
                    method "backprop", polarity "dark", output "projections".

    Parameters as :func:`write_volume`; ``projections`` must hold the four
    :data:`PROJECTIONS` maps of one (ny, nx) shape.  ``overwrite=False`` refuses
    (``FileExistsError``) to replace an existing file.
    """
    import h5py

    if not isinstance(projections, dict) or not all(k in projections for k in PROJECTIONS):
        raise ValueError(f"projections must be a dict with the maps {PROJECTIONS} (from "
                         f"backpropagate(..., output='projections'))")
    maps = {k: np.asarray(projections[k], dtype=np.float32) for k in PROJECTIONS}
    shapes = {m.shape for m in maps.values()}
    if len(shapes) != 1 or maps["min"].ndim != 2:
        raise ValueError(f"the projections {PROJECTIONS} must be (ny, nx) maps of one shape, got "
                         f"{sorted(shapes)}")
    zz = np.asarray(z, dtype=np.float64).reshape(-1)
    header = _volume_header_args("write_projections", zz, wavelength, pixel_size, n_medium, None,
                                 crop_offset_px, "projections", settings,
                                 dict(method="backprop", polarity="dark", output="projections",
                                      **attrs), stacklevel=3)
    import io

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for key in PROJECTIONS:
            d = f.create_dataset(key, data=maps[key], compression="gzip", compression_opts=4)
            d.attrs["long_name"], d.attrs["units"] = _PROJECTION_VALUES[key]
        z_c = _depth_scale(f, zz)
        z_c.attrs["long_name"] = "depths searched (distance from the sensor)"
        dy, dx = np.broadcast_to(np.asarray(header["pixel_size"], dtype=np.float64), (2,))
        for axis, c in enumerate(_sensor_scales(f, maps["min"].shape, (dy, dx),
                                                header["crop_offset_px"])):
            for key in PROJECTIONS:
                f[key].dims[axis].attach_scale(c)
                f[key].dims[axis].label = c.name.lstrip("/")
        header.pop("description")
        _write_attrs(f, title="diffimaging depth projections", axes="y, x", **header)
        f.attrs[_COMPLETE_ATTR] = True
    image = buf.getbuffer()
    try:
        with _writing(path, "wb", overwrite) as fh:
            for i in range(0, len(image), _WRITE_BLOCK):
                fh.write(image[i:i + _WRITE_BLOCK])
    finally:
        image.release()


def is_projections(path) -> bool:
    """Whether ``path`` is an HDF5 file of depth projections (the datasets
    :data:`PROJECTIONS` and no ``volume``); False for other or unreadable files."""
    import h5py

    try:
        with h5py.File(Path(path), "r") as f:
            return "volume" not in f and all(k in f for k in PROJECTIONS)
    except OSError:
        return False


def read_projections(path):
    """Read a projections file written by :func:`write_projections` (or ``holo
    reconstruct --save projections``): returns (dict of the four (ny, nx) maps as
    float64, z (nz,) metres, attributes dict).  ``ValueError`` when the file is not a
    projections file, or its maps are not of one (ny, nx) shape or not finite."""
    import h5py

    p = Path(path)
    if not is_projections(p):
        raise ValueError(f"{p}: not a projections file (it needs the datasets {PROJECTIONS} and "
                         f"no 'volume'); read a volume with read_volume")
    with h5py.File(p, "r") as f:
        maps = {k: np.asarray(f[k][()], dtype=np.float64) for k in PROJECTIONS}
        z = np.asarray(f["z"][()], dtype=np.float64).reshape(-1) if "z" in f else None
        attrs = dict(f.attrs)
    shapes = {m.shape for m in maps.values()}
    if len(shapes) != 1 or maps["min"].ndim != 2:
        raise ValueError(f"{p}: the projections {PROJECTIONS} must be (ny, nx) maps of one shape, "
                         f"got {sorted(shapes)}")
    for k in PROJECTIONS:
        V.check_finite(maps[k], f"{p.name}: the map {k!r}", ("y", "x"), hint=V.CORRUPT_VOLUME)
    return maps, z, attrs


def _check_room(path, nbytes):
    """``OSError`` naming ``path`` unless its folder's free space and the process's
    file-size limit hold ``nbytes`` (plus HDF5's overhead)."""
    import shutil

    need = int(nbytes * 1.02) + (1 << 20)
    free = shutil.disk_usage(Path(path).parent).free
    if free < need:
        raise OSError(errno.ENOSPC, f"not enough free disk space to write {Path(path).name}: "
                      f"{need / 2**20:.0f} MiB needed, {free / 2**20:.0f} MiB free; free disk space "
                      f"or write to another folder", str(path))
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return
    if limit != resource.RLIM_INFINITY and limit < need:
        raise OSError(errno.EFBIG, f"{Path(path).name} would need {need / 2**20:.0f} MiB, over this "
                      f"process's file-size limit of {limit / 2**20:.0f} MiB (ulimit -f)", str(path))


class VolumeWriter:
    """A volume being written by :func:`open_volume`: fill it with :meth:`write`."""

    def __init__(self, dataset, shape):
        self._d = dataset
        self.shape = shape
        self._done = np.zeros(shape[0], dtype=bool)

    def write(self, start, planes):
        """Store ``planes`` (k, ny, nx) as planes ``start`` to ``start + k - 1``."""
        start = operator.index(start)
        a = np.asarray(planes)
        if a.ndim == 2:
            a = a[None]
        k = a.shape[0]
        if a.ndim != 3 or a.shape[1:] != tuple(self.shape[1:]):
            raise ValueError(f"planes must be (k, {self.shape[1]}, {self.shape[2]}), got {a.shape}")
        if not 0 <= start <= self.shape[0] - k:
            raise ValueError(f"planes {start} to {start + k - 1} are outside the volume's "
                             f"{self.shape[0]} planes")
        self._d[start:start + k] = a
        self._done[start:start + k] = True

    @property
    def missing(self):
        """Indices of the planes not written yet."""
        return np.flatnonzero(~self._done)


@contextlib.contextmanager
def open_volume(path, shape, *, z, wavelength, pixel_size, dtype=np.float32, n_medium=1.0,
                z_offset=None, crop_offset_px=None, description=None, settings=None,
                overwrite=True, **attrs):
    """Write a volume plane batch by plane batch, atomically: the same file as
    :func:`write_volume` (same layout, same keywords) without holding the volume in
    memory.

    Yields a :class:`VolumeWriter`; call ``writer.write(start, planes)`` until every
    plane of ``shape`` (nz, ny, nx) is written.  On leaving the block the
    completeness marker is written and the file renamed to ``path``; an exception,
    an interrupt or a plane left unwritten (``ValueError``) leaves ``path`` as it was.
    The free space and the file-size limit are checked first (``OSError`` naming
    ``path``), since HDF5 writes the temporary file directly.

    Example
    -------
    >>> with open_volume("v.h5", (nz, ny, nx), z=z, wavelength=532e-9, pixel_size=2e-6) as w:
    ...     for s in range(0, nz, 16):
    ...         w.write(s, backpropagate(h, z[s:s + 16], output="intensity", ...))
    """
    import h5py

    shape = tuple(operator.index(n) for n in shape)
    zz = np.asarray(z, dtype=np.float64).reshape(-1)
    header = _volume_header_args("open_volume", zz, wavelength, pixel_size, n_medium, z_offset,
                                 crop_offset_px, description, settings, dict(attrs), stacklevel=5)
    if len(shape) != 3 or min(shape) < 1 or shape[0] != zz.size:
        raise ValueError(f"shape must be (nz, ny, nx) with nz = len(z) = {zz.size}, got {shape}")
    dtype = np.dtype(dtype)
    if dtype.kind not in "uifc":
        raise TypeError(f"dtype must be numeric, got {dtype}")
    p = Path(path)
    _check_room(p, int(np.prod(shape)) * dtype.itemsize)
    with atomic_path(p, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            d = f.create_dataset("volume", shape=shape, dtype=dtype, chunks=(1,) + shape[1:],
                                 compression="gzip", compression_opts=4)
            _write_header(f, d, **header)
            w = VolumeWriter(d, shape)
            yield w
            if w.missing.size:
                raise ValueError(f"{p}: planes {w.missing[:10].tolist()} of {shape[0]} were not "
                                 f"written; the file was not created")
            f.attrs[_SHAPE_ATTR] = np.asarray(shape, dtype=np.int64)
            f.attrs[_COMPLETE_ATTR] = True              # last: every plane is in


# -- tables (CSV) ---------------------------------------------------------------------

# columns holding integers (ids, counts, flags); every other column is float64
_INT_COLUMNS = frozenset({"particle_id", "track_id", "frame", "outlier", "size_voxels"})
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POSITION_NOTE = "position in metres, sensor coordinates (pixel (i, j) at (i dy, j dx) of the " \
                 "uncropped sensor; z: distance from the sensor)"


def _positions(value, name):
    """(N, 3) float64 positions (y, x, z) in metres from an (N, 3) array or one (3,) position."""
    pos = np.asarray(value, dtype=np.float64)
    if pos.size == 0:
        return pos.reshape(0, 3)
    if pos.ndim == 1 and pos.size == 3:
        pos = pos[None]
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"{name} must be an (N, 3) array of (y, x, z) positions in metres, got "
                         f"shape {pos.shape}")
    return pos


def _per_row(value, n, name, dtype=np.float64):
    """A column of ``n`` values (a scalar is repeated), as ``dtype``."""
    a = np.asarray(value)
    if dtype is np.int64 and a.dtype.kind not in "iub":
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name} must hold integers, got {value!r}")
    a = np.asarray(a, dtype=dtype)
    if a.ndim == 0:
        return np.full(n, a, dtype=dtype)
    a = a.reshape(-1)
    if a.size != n:
        raise ValueError(f"{name} must hold one value per row ({n}), got {a.size}")
    return a


def _velocity_names(dt):
    """(u, v, w) column names and the unit, from the frame interval (None: per frame)."""
    unit = "m_per_frame" if dt is None else "m_per_s"
    return tuple(f"{c}_{unit}" for c in "uvw"), unit


def _optics_meta(wavelength, pixel_size, n_medium, dt, meta):
    """The header items of a table: optics (when given), dt, the caller's ``meta``."""
    out = {}
    if wavelength is not None or pixel_size is not None:
        check_optics(532e-9 if wavelength is None else wavelength,
                     2e-6 if pixel_size is None else pixel_size)
    if wavelength is not None:
        out["wavelength_m"] = float(wavelength)
    if n_medium is not None:
        out["n_medium"] = _n_medium(n_medium)
    if pixel_size is not None:
        out["pixel_size_m"] = [float(x) for x in np.broadcast_to(np.asarray(pixel_size, float), (2,))]
    if dt is not None:
        out["dt_s"] = V.positive_scalar(dt, "dt (the time between frames)", "s")
    for k, v in (meta or {}).items():
        if not isinstance(k, str) or not _KEY.fullmatch(k):
            raise ValueError(f"meta keys must be names (letters, digits, _), got {k!r}")
        out[k] = v
    return out


def _write_table(path, columns, notes, description, meta, overwrite):
    """A CSV table with a commented header: ``# key: <JSON value>`` lines (the
    description, the columns' meaning, ``meta``, the version and the date), then
    the column names and the rows.  Integer columns are written as integers, the
    others with ``repr`` (exact round trip)."""
    header = {"description": description, "columns": notes, **meta,
              "diffimaging_version": _version(), "created": _now()}
    lines = [f"# {k}: {_json(v, f'meta[{k!r}]')}" for k, v in header.items()]
    keys = list(columns)
    n = len(columns[keys[0]])
    text = [[str(int(x)) for x in columns[k]] if k in _INT_COLUMNS
            else [repr(float(x)) for x in columns[k]] for k in keys]
    with _writing(path, "w", overwrite, newline="") as f:
        f.write("".join(line + "\r\n" for line in lines))     # the csv module's line ends
        w = csv.writer(f)
        w.writerow(keys)
        for i in range(n):
            w.writerow([column[i] for column in text])


def _particle_columns(particles, ids, frame):
    """The columns (y, x, z order of the positions kept apart) of a particle table:
    ``(positions (N, 3), {name: column})`` with ``particle_id``, ``frame`` (when
    given), and ``peak``, ``size_voxels``, ``diameter_m`` when ``particles`` holds them."""
    table = hasattr(particles, "positions")     # a Particles table; else an (N, 3) array
    pos = _positions(particles.positions if table else particles, "particles")
    n = len(pos)
    cols = {"particle_id": np.arange(n, dtype=np.int64) if ids is None
            else _per_row(ids, n, "ids", np.int64)}
    if frame is not None:
        cols["frame"] = _per_row(frame, n, "frame", np.int64)
    extra = {}
    for name, key in (("peak", "peak"), ("size_voxels", "size"), ("diameter_m", "diameters")):
        v = getattr(particles, key, None) if table else None
        if v is None:
            continue
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if v.size == n and not (n and np.all(np.isnan(v))):
            extra[name] = v.astype(np.int64) if name in _INT_COLUMNS else v
    return pos, cols, extra


_PARTICLE_NOTES = {"particle_id": "index of the particle in this table",
                   "frame": "frame index",
                   "x_m": _POSITION_NOTE, "y_m": _POSITION_NOTE, "z_m": _POSITION_NOTE,
                   "peak": "signal at the peak, in units of the noise level sigma",
                   "size_voxels": "voxels above half the peak",
                   "diameter_m": "diameter in metres"}


def write_particles_csv(path, particles, *, ids=None, frame=None, wavelength=None, pixel_size=None,
                        n_medium=None, meta=None, description="particles found in a reconstructed "
                        "volume", overwrite=True):
    """Write a particle table as CSV with a commented header, atomically.

    ``particles``: a particle table (``positions`` (N, 3) = (y, x, z) metres, and
    optionally ``peak``, ``size``, ``diameters``) or an (N, 3) array of positions.
    Columns: ``particle_id`` (``ids``, default 0..N-1), ``frame`` (when given: one
    index, or one per particle), ``x_m, y_m, z_m`` (metres, sensor coordinates),
    then ``peak``, ``size_voxels``, ``diameter_m`` where the table holds them.

    The header lines start with ``#`` (``pandas.read_csv(path, comment="#")`` and
    ``numpy.loadtxt`` skip them) and read
    ``# key: <JSON value>``: ``description``, ``columns`` (the meaning and unit of
    each), the optics when given (``wavelength_m`` vacuum, ``pixel_size_m``,
    ``n_medium``), the items of ``meta`` (a dict), ``diffimaging_version`` and
    ``created`` (UTC).  :func:`read_table` reads it back.  ``overwrite=False``
    refuses (``FileExistsError``) to replace a file.
    """
    pos, cols, extra = _particle_columns(particles, ids, frame)
    cols.update(x_m=pos[:, 1], y_m=pos[:, 0], z_m=pos[:, 2], **extra)
    _write_table(path, cols, {k: _PARTICLE_NOTES[k] for k in cols}, description,
                 _optics_meta(wavelength, pixel_size, n_medium, None, meta), overwrite)


def write_vectors_csv(path, positions, vectors, names=None, vnames=None, *, dt=None, outlier=None,
                      peak_ratio=None, particle_id=None, track_id=None, frame=None, wavelength=None,
                      pixel_size=None, n_medium=None, meta=None, description="velocity vectors",
                      overwrite=True):
    """Write vectors at positions as CSV with a commented header, atomically.

    ``positions`` (N, 3) = (y, x, z) metres and ``vectors`` (N, 3) = (vy, vx, vz),
    as returned by ``PIVResult.vectors(z, pixel_size, dt)`` or held by ``Links``.
    ``dt`` (seconds between the frames) states their unit: None (default) for
    metres per frame (columns ``u_m_per_frame, v_m_per_frame, w_m_per_frame``), a
    number for metres per second (``u_m_per_s``...) with ``dt_s`` in the header;
    the values are written as given (``PIVResult.vectors`` divides by ``dt``).

    Columns: ``particle_id``, ``track_id``, ``frame`` (each when given: one per
    row, or one value for all), ``x_m, y_m, z_m`` (metres, sensor coordinates),
    ``u, v, w`` (along x, y, z), ``outlier`` (1 where the vector was flagged, e.g.
    ``PIVResult.outlier``) and ``peak_ratio`` (correlation peak / second peak) when
    given.  The header is that of :func:`write_particles_csv`.

    ``names`` / ``vnames`` (legacy): three labels for the columns of
    ``positions`` / ``vectors`` in their own order, instead of the defaults.
    """
    p, v = _positions(positions, "positions"), _positions(vectors, "vectors")
    n = len(p)
    if len(v) != n:
        raise ValueError(f"positions ({n}) and vectors ({len(v)}) must have one row each per vector")
    (un, vn, wn), unit = _velocity_names(dt)
    cols, notes = {}, {}
    for key, value, note in (("particle_id", particle_id, "particle index"),
                             ("track_id", track_id, "track index"), ("frame", frame, "frame index")):
        if value is not None:
            cols[key], notes[key] = _per_row(value, n, key, np.int64), note
    for labels, a, order, default in ((names, p, (1, 0, 2), ("x_m", "y_m", "z_m")),
                                      (vnames, v, (1, 0, 2), (un, vn, wn))):
        if labels is None:
            labels, a = default, a[:, order]
        elif len(labels) != 3 or not all(isinstance(s, str) for s in labels):
            raise ValueError(f"names and vnames must be three column labels, got {labels!r}")
        cols.update(zip(labels, a.T))
    rate = "metres per frame" if dt is None else "metres per second"
    notes.update({k: _POSITION_NOTE for k in ("x_m", "y_m", "z_m")})
    notes.update({un: f"velocity along x, {rate}", vn: f"velocity along y, {rate}",
                  wn: f"velocity along z, {rate}"})
    if outlier is not None:
        cols["outlier"] = _per_row(np.asarray(outlier).astype(bool), n, "outlier", np.int64)
        notes["outlier"] = "1 where the vector was flagged as an outlier (and replaced), else 0"
    if peak_ratio is not None:
        cols["peak_ratio"] = _per_row(peak_ratio, n, "peak_ratio")
        notes["peak_ratio"] = "correlation peak / second peak (quality)"
    _write_table(path, cols, {k: notes.get(k, "") for k in cols}, description,
                 _optics_meta(wavelength, pixel_size, n_medium, dt, meta), overwrite)


def read_table(path):
    """Read a table written by :func:`write_particles_csv` or :func:`write_vectors_csv`
    (or any CSV with a header row): returns ``(columns, meta)``.

    ``columns`` maps each column name to a 1-d array (int64 for ids, frames, flags
    and sizes; float64 otherwise; rows in file order); ``meta`` maps each
    ``# key: value`` header line to its value (JSON decoded; other comment lines
    are skipped).  Errors name the file and the line: ``FileNotFoundError``,
    ``ValueError`` (no header row, a row of the wrong length, a value that is not a
    number).
    """
    import json

    p = Path(path)
    _probe(p, "table")
    meta, rows, head = {}, [], None
    with open(p, newline="", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith("#"):
                key, sep, value = line[1:].strip().partition(":")
                if sep and _KEY.fullmatch(key.strip()):
                    try:
                        meta[key.strip()] = json.loads(value)
                    except ValueError:
                        meta[key.strip()] = value.strip()
                continue
            if not line.strip():
                continue
            cells = next(csv.reader([line]))
            if head is None:
                head = [c.strip() for c in cells]
                continue
            if len(cells) != len(head):
                raise ValueError(f"{p}, line {lineno}: {len(cells)} values for {len(head)} columns")
            rows.append((lineno, cells))
    if head is None:
        raise ValueError(f"{p} holds no column names (header row): not a table")
    columns = {}
    for i, name in enumerate(head):
        conv, dtype = (int, np.int64) if name in _INT_COLUMNS else (float, np.float64)
        try:
            columns[name] = np.array([conv(c[i]) for _, c in rows], dtype=dtype)
        except ValueError:
            bad = next(ln for ln, c in rows if not _parses(conv, c[i]))
            raise ValueError(f"{p}, line {bad}: column {name!r} holds a value that is not "
                             f"{'an integer' if conv is int else 'a number'}") from None
    return columns, meta


def _parses(conv, text):
    try:
        conv(text)
    except ValueError:
        return False
    return True


# -- VTK (ParaView) -------------------------------------------------------------------

def _library_write(tmp, write):
    """``write()`` (a library writing the file ``tmp``), with an errno on a failed
    write: numpy's ``tofile`` (used by meshio) reports a short write (a full disk, a
    file-size limit) as an ``OSError`` without one, which one more byte written to
    ``tmp`` supplies (``ENOSPC``/``EFBIG``)."""
    try:
        write()
    except OSError as exc:
        if exc.errno is not None:
            raise
        try:
            with open(tmp, "ab", buffering=0) as fh:
                fh.write(b"\0")
        except OSError as probe:
            raise OSError(probe.errno, f"{probe.strerror} ({exc})") from exc
        raise OSError(errno.EIO, f"write failed ({exc})") from exc


def _write_mesh(path, points_yxz, cells, point_data, overwrite):
    """Points (y, x, z metres, written x, y, z) with cells and point arrays, through
    meshio: VTK XML unstructured grid for a ``.vtu`` name, legacy binary VTK (4.2,
    read by every ParaView and VTK) otherwise; atomically."""
    import meshio

    xyz = np.ascontiguousarray(np.asarray(points_yxz, dtype=np.float64).reshape(-1, 3)[:, [1, 0, 2]])
    mesh = meshio.Mesh(xyz, cells, point_data=point_data)
    with _writing_path(path, overwrite) as tmp:
        if Path(path).suffix.lower() == ".vtu":
            _library_write(tmp, lambda: meshio.vtu.write(str(tmp), mesh))
        else:
            _library_write(tmp, lambda: meshio.vtk.write(str(tmp), mesh, fmt_version="4.2",
                                                         binary=True))


def _vertices(n):
    return [("vertex", np.arange(n, dtype=np.int64)[:, None])]


def _xyz(vectors, n, name):
    """(n, 3) vectors (vy, vx, vz) as (vx, vy, vz) for VTK."""
    v = _positions(vectors, name)
    if len(v) != n:
        raise ValueError(f"{name} must hold one vector per point ({n}), got {len(v)}")
    return np.ascontiguousarray(v[:, [1, 0, 2]])


def write_vtk_points(path, positions, vectors=None, scalars=None, *, ids=None, point_data=None,
                     overwrite=True):
    """Write points as VTK for ParaView, atomically (through meshio: a ``.vtu`` name
    gives VTK XML, any other legacy binary VTK).

    ``positions`` (N, 3) = (y, x, z) metres, written (x, y, z) with a vertex cell
    each.  Point arrays: ``id`` (``ids``, default 0..N-1), ``velocity`` (``vectors``
    (N, 3) = (vy, vx, vz), written (vx, vy, vz)), ``value`` (``scalars`` (N,)), and
    the (N,) arrays of ``point_data`` (name -> values).
    """
    pos = _positions(positions, "positions")
    n = len(pos)
    data = {"id": np.arange(n, dtype=np.int64) if ids is None else _per_row(ids, n, "ids", np.int64)}
    if vectors is not None:
        data["velocity"] = _xyz(vectors, n, "vectors")
    if scalars is not None:
        data["value"] = _per_row(scalars, n, "scalars")
    for name, values in (point_data or {}).items():
        a = np.asarray(values)
        data[str(name)] = _per_row(values, n, f"point_data[{name!r}]",
                                   np.int64 if a.dtype.kind in "iub" else np.float64)
    _write_mesh(path, pos, _vertices(n), data, overwrite)


def write_particles_vtk(path, particles, *, ids=None, frame=None, overwrite=True):
    """Write a particle table as VTK points (see :func:`write_vtk_points`), atomically,
    with the point arrays of :func:`write_particles_csv`'s columns: ``particle_id``,
    ``frame`` (when given), ``peak``, ``size_voxels``, ``diameter_m`` (when held)."""
    pos, cols, extra = _particle_columns(particles, ids, frame)
    _write_mesh(path, pos, _vertices(len(pos)), {**cols, **extra}, overwrite)


def write_tracks_vtk(path, positions, track_id, frame, *, vectors=None, dt=None, overwrite=True):
    """Write particle tracks as VTK, atomically: each position (N, 3) = (y, x, z)
    metres a point (vertex cell) with arrays ``track_id``, ``frame`` and, when
    ``vectors`` (N, 3) = (vy, vx, vz) are given, ``velocity_m_per_frame`` (``dt``
    None) or ``velocity_m_per_s``; the points of each track are joined in frame
    order by line cells, so that ParaView draws the trajectories.  A ``.vtu`` name
    gives VTK XML, any other legacy binary VTK (through meshio)."""
    pos = _positions(positions, "positions")
    n = len(pos)
    tid, fr = _per_row(track_id, n, "track_id", np.int64), _per_row(frame, n, "frame", np.int64)
    order = np.lexsort((fr, tid))
    same = tid[order][1:] == tid[order][:-1]
    if np.any(same & (fr[order][1:] == fr[order][:-1])):
        raise ValueError("a track holds two positions in one frame (track_id, frame pairs must "
                         "be unique)")
    segments = np.column_stack([order[:-1][same], order[1:][same]]).astype(np.int64)
    data = {"track_id": tid, "frame": fr}
    if vectors is not None:
        data[f"velocity_{_velocity_names(dt)[1]}"] = _xyz(vectors, n, "vectors")
    cells = _vertices(n) + ([("line", segments)] if len(segments) else [])
    _write_mesh(path, pos, cells, data, overwrite)


# VTK's corner order of a line, quad and hexahedron on a grid (offsets along its axes)
_CELL_CORNERS = {1: ("line", [(0,), (1,)]),
                 2: ("quad", [(0, 0), (1, 0), (1, 1), (0, 1)]),
                 3: ("hexahedron", [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0),
                                    (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)])}


def _grid_cells(shape):
    """The cells of a grid of points ``shape`` = (nx, ny, nz), point (i, j, k) being
    point i + nx (j + ny k): hexahedra, or quads / lines along its non-flat axes."""
    index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape[::-1]).T
    axes = [a for a in range(3) if shape[a] > 1]
    if not axes:
        return _vertices(1)
    kind, corners = _CELL_CORNERS[len(axes)]
    nodes = []
    for corner in corners:
        sl = [slice(0, 1)] * 3
        for a, o in zip(axes, corner):
            sl[a] = slice(o, shape[a] - 1 + o)
        nodes.append(index[tuple(sl)].ravel(order="F"))
    return [(kind, np.stack(nodes, axis=1))]


def write_piv_vtk(path, piv, *, z, pixel_size, dt=None, offset=(0.0, 0.0), overwrite=True):
    """Write a PIV result as a VTK grid for ParaView, atomically, so that its
    filters (Gradient with vorticity, stream tracers, contours) work on it.

    ``piv``: a ``PIVResult`` (window centres on a regular grid); ``z`` the depths of
    its volumes' planes (metres, equally spaced), ``pixel_size`` float or (dy, dx)
    metres; ``dt`` seconds between the volumes (None: per frame).  Point arrays:
    ``velocity_m_per_s`` (or ``velocity_m_per_frame``) (vx, vy, vz),
    ``outlier`` (int8, 1 where flagged) and ``peak_ratio``.  ``offset``: (y, x) metres
    of the volume's pixel (0, 0) on the sensor (a crop), added to the positions.

    The format follows the name: ``.vti`` is VTK ImageData (origin and spacing in
    metres; written with pyevtk); ``.vtk`` (legacy binary) or ``.vtu`` (XML) an
    unstructured grid of the same points joined by hexahedra (quads for one plane
    of windows; through meshio).
    """
    pos, vel = piv.vectors(z, pixel_size, 1.0 if dt is None else dt)
    oy, ox = (float(v) for v in np.broadcast_to(np.asarray(offset, dtype=np.float64), (2,)))
    pos = pos + np.array([oy, ox, 0.0])
    shape = tuple(int(s) for s in np.shape(piv.centers)[:3])             # (nwz, nwy, nwx)

    def grid(a):
        """(M,) values of the (nwz, nwy, nwx) windows as an (nx, ny, nz) array."""
        return np.asarray(a).reshape(shape).transpose(2, 1, 0)

    name = f"velocity_{_velocity_names(dt)[1]}"
    outlier = grid(np.asarray(piv.outlier).astype(np.int8))
    peak = grid(np.asarray(piv.peak_ratio, dtype=np.float64))
    if Path(path).suffix.lower() != ".vti":
        order = [grid(pos[:, k]).ravel(order="F") for k in range(3)]     # (y, x, z)
        _write_mesh(path, np.column_stack(order), _grid_cells(shape[::-1]),
                    {name: np.column_stack([grid(vel[:, k]).ravel(order="F") for k in (1, 0, 2)]),
                     "outlier": outlier.ravel(order="F"), "peak_ratio": peak.ravel(order="F")},
                    overwrite)
        return
    from pyevtk.hl import imageToVTK

    from .analysis.piv import plane_spacing

    xyz = [grid(pos[:, k]) for k in (1, 0, 2)]
    origin = tuple(float(a[0, 0, 0]) for a in xyz)
    dy, dx = V.pixel_size(pixel_size)
    dz = plane_spacing(z, np.size(z))[1]
    spacing = []
    for axis, (a, step) in enumerate(zip(xyz, (dx, dy, dz or 1.0))):
        first = [0, 0, 0]
        first[axis] = 1
        spacing.append(float(a[tuple(first)] - a[0, 0, 0]) if a.shape[axis] > 1 else step)
    point_data = {name: tuple(np.ascontiguousarray(grid(vel[:, k])) for k in (1, 0, 2)),
                  "outlier": np.ascontiguousarray(outlier), "peak_ratio": np.ascontiguousarray(peak)}
    with _writing_path(path, overwrite) as tmp:
        try:        # pyevtk adds ".vti" to the name it is given
            _library_write(f"{tmp}.vti", lambda: imageToVTK(str(tmp), origin=origin,
                                                            spacing=tuple(spacing),
                                                            pointData=point_data))
            os.replace(f"{tmp}.vti", tmp)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(f"{tmp}.vti")
