"""Files: holograms in (TIFF, PNG, JPEG, ...), volumes to HDF5, particle and vector
tables to CSV, particles and vectors to VTK (ParaView).

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
from .._backend.files import atomic_open, atomic_path

__all__ = ["read_hologram", "write_volume", "open_volume", "VolumeWriter", "read_volume", "write_particles_csv",
           "write_vectors_csv", "write_vtk_points", "check_optics", "check_finite",
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


def check_optics(wavelength, pixel_size, z=None):
    """Clear errors for values that are not in metres (the most common slip:
    a pixel size of 2 meaning 2 um, a wavelength of 532 meaning 532 nm)."""
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
    (float64, length nz), ``attrs`` a dict of the file's attributes.  Of the known
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
    try:
        f = h5py.File(p, "r")
    except PermissionError:
        raise
    except OSError as exc:
        raise ValueError(f"cannot read {p} as HDF5: truncated, incomplete or not an HDF5 file "
                         f"({exc})") from exc
    with f:
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


# ----------------------------------------------------------------------------- writers

@contextlib.contextmanager
def _writing(path, mode, overwrite, **kwargs):
    """``atomic_open`` whose ``OSError`` names the final file (a write error from the
    temporary file names no file, or the temporary one)."""
    p = Path(path)
    try:
        with atomic_open(p, mode, overwrite=overwrite, **kwargs) as fh:
            yield fh
    except OSError as exc:
        if exc.errno is None or (exc.filename is not None and str(p) in str(exc.filename)):
            raise
        raise type(exc)(exc.errno, f"{exc.strerror or exc} (writing {p.name})", str(p)) from exc


def _write_header(f, zz, wavelength, pixel_size, dz, attrs):
    """The depths and the attributes of a volume file (all but the marker)."""
    f.create_dataset("z", data=zz)
    f.attrs["wavelength_m"] = float(wavelength)
    f.attrs["pixel_size_m"] = np.broadcast_to(np.asarray(pixel_size, dtype=np.float64), (2,))
    f.attrs["dz_m"] = float(dz)
    f.attrs["axes"] = "z, y, x"
    for k, val in attrs.items():
        f.attrs[k] = val


def _hdf5_image(v, zz, wavelength, pixel_size, dz, attrs):
    """The bytes of the HDF5 file, built in memory (see the module notes)."""
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("volume", data=v, compression="gzip", compression_opts=4)
        _write_header(f, zz, wavelength, pixel_size, dz, attrs)
        f.attrs[_SHAPE_ATTR] = np.asarray(v.shape, dtype=np.int64)
        f.attrs[_COMPLETE_ATTR] = True              # last: the file was built to the end
    return buf


def write_volume(path, volume, *, z, wavelength, pixel_size, dz=0.0, overwrite=True, **attrs):
    """Write a volume (nz, ny, nx) to HDF5, atomically.

    Datasets ``"volume"`` (gzip-compressed) and ``"z"`` (depths in metres);
    attributes ``wavelength_m``, ``pixel_size_m`` ``(dy, dx)``, ``dz_m`` (metres),
    ``axes``, any extra ``attrs``, and a completeness marker written last.  The
    file is built in memory and written under a temporary name, then renamed:
    ``path`` is either left as it was or holds the whole new file.  A full disk
    raises ``OSError`` (``ENOSPC``/``EFBIG``) naming ``path``.  ``overwrite=False``
    refuses (``FileExistsError``) to replace an existing file.
    """
    check_optics(wavelength, pixel_size, z)
    v = np.asarray(volume)
    zz = np.asarray(z, dtype=np.float64).reshape(-1)
    if v.ndim != 3 or v.shape[0] != zz.size:
        raise ValueError(f"volume must be (nz, ny, nx) with nz = len(z) = {zz.size}, got {v.shape}")
    if v.dtype.kind not in "uifc":
        raise TypeError(f"volume must be a numeric array, got dtype {v.dtype}")
    reserved = {_COMPLETE_ATTR, _SHAPE_ATTR} & set(attrs)
    if reserved:
        raise ValueError(f"attribute names {sorted(reserved)} are reserved by write_volume")
    buf = _hdf5_image(v, zz, wavelength, pixel_size, dz, attrs)
    image = buf.getbuffer()
    try:
        with _writing(path, "wb", overwrite) as fh:
            for i in range(0, len(image), _WRITE_BLOCK):
                fh.write(image[i:i + _WRITE_BLOCK])
    finally:
        image.release()


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
def open_volume(path, shape, *, z, wavelength, pixel_size, dtype=np.float32, dz=0.0,
                overwrite=True, **attrs):
    """Write a volume plane batch by plane batch, atomically: the same file as
    :func:`write_volume` without holding the volume in memory.

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

    check_optics(wavelength, pixel_size, z)
    shape = tuple(operator.index(n) for n in shape)
    zz = np.asarray(z, dtype=np.float64).reshape(-1)
    if len(shape) != 3 or min(shape) < 1 or shape[0] != zz.size:
        raise ValueError(f"shape must be (nz, ny, nx) with nz = len(z) = {zz.size}, got {shape}")
    dtype = np.dtype(dtype)
    if dtype.kind not in "uifc":
        raise TypeError(f"dtype must be numeric, got {dtype}")
    reserved = {_COMPLETE_ATTR, _SHAPE_ATTR} & set(attrs)
    if reserved:
        raise ValueError(f"attribute names {sorted(reserved)} are reserved by open_volume")
    p = Path(path)
    _check_room(p, int(np.prod(shape)) * dtype.itemsize)
    with atomic_path(p, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            d = f.create_dataset("volume", shape=shape, dtype=dtype, chunks=(1,) + shape[1:],
                                 compression="gzip", compression_opts=4)
            _write_header(f, zz, wavelength, pixel_size, dz, attrs)
            w = VolumeWriter(d, shape)
            yield w
            if w.missing.size:
                raise ValueError(f"{p}: planes {w.missing[:10].tolist()} of {shape[0]} were not "
                                 f"written; the file was not created")
            f.attrs[_SHAPE_ATTR] = np.asarray(shape, dtype=np.int64)
            f.attrs[_COMPLETE_ATTR] = True              # last: every plane is in


def write_particles_csv(path, particles, *, overwrite=True):
    """CSV with columns y_m, x_m, z_m (and peak, size or diameter_m when present),
    written atomically (``overwrite=False`` refuses to replace a file)."""
    table = hasattr(particles, "positions")     # a Particles table; else an (N, 3) array
    pos = np.asarray(particles.positions if table else particles, dtype=np.float64)
    if pos.size == 0:
        pos = pos.reshape(0, 3)                  # no particles: a header-only table
    elif pos.ndim == 1 and pos.size == 3:
        pos = pos[None]                          # one particle given as (y, x, z)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"particles must be a Particles table or an (N, 3) array of (y, x, z) "
                         f"positions in metres, got shape {pos.shape}")
    cols = {"y_m": pos[:, 0], "x_m": pos[:, 1], "z_m": pos[:, 2]}
    for name, key in (("peak", "peak"), ("size_voxels", "size"), ("diameter_m", "diameters")):
        v = getattr(particles, key, None) if table else None
        if v is None:
            continue
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if v.size == len(pos) and not np.all(np.isnan(v)):
            cols[name] = v
    _write_csv(path, cols, overwrite)


def write_vectors_csv(path, positions, vectors, names=("y_m", "x_m", "z_m"),
                      vnames=("vy", "vx", "vz"), *, overwrite=True):
    """CSV of vectors at positions (each (N, 3)), written atomically."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    cols = {n: p[:, i] for i, n in enumerate(names)}
    cols.update({n: v[:, i] for i, n in enumerate(vnames)})
    _write_csv(path, cols, overwrite)


def _write_csv(path, cols, overwrite):
    keys = list(cols)
    n = len(cols[keys[0]])
    with _writing(path, "w", overwrite, newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for i in range(n):
            w.writerow([repr(float(cols[k][i])) for k in keys])


def write_vtk_points(path, positions, vectors=None, scalars=None, *, overwrite=True):
    """Legacy ASCII VTK polydata of points (x, y, z order for ParaView), with an
    optional vector field ("velocity") and scalar field ("value"), written atomically."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    xyz = p[:, [1, 0, 2]]
    lines = ["# vtk DataFile Version 3.0", "diffimaging points", "ASCII", "DATASET POLYDATA",
             f"POINTS {len(p)} double"]
    lines += [f"{float(a)!r} {float(b)!r} {float(c)!r}" for a, b, c in xyz]
    lines += [f"VERTICES {len(p)} {2 * len(p)}"] + [f"1 {i}" for i in range(len(p))]
    if vectors is not None or scalars is not None:
        lines.append(f"POINT_DATA {len(p)}")
    if vectors is not None:
        v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)[:, [1, 0, 2]]
        lines += ["VECTORS velocity double"] + [f"{float(a)!r} {float(b)!r} {float(c)!r}" for a, b, c in v]
    if scalars is not None:
        s = np.asarray(scalars, dtype=np.float64).reshape(-1)
        lines += ["SCALARS value double 1", "LOOKUP_TABLE default"] + [repr(float(x)) for x in s]
    with _writing(path, "w", overwrite) as fh:
        fh.write("\n".join(lines) + "\n")
