"""Hologram time series at scale: every frame to particles, consecutive frames to
velocities, on one machine or a Dask cluster, resumable.

:func:`process_series` makes the series the unit of work.  Per frame (a task):
read, divide by the series' background, reconstruct (∂H with the distance offset
calibrated once for the series, or back-propagation), find the particles, write
``frames/frame_NNNNN.h5`` atomically (a temporary file renamed into place).  Per
pair of consecutive frames (a task): link the particles (PTV), write
``pairs/pair_NNNNN.h5``.  Then the whole series' tables (``particles.csv``,
``vectors.csv``, with frame ids), a figure (``series.png``) and the manifest
(``manifest.json``: every output with its size and SHA-256, the settings, the
background and the calibration).

The run's state is ``series.json`` in the output folder, rewritten atomically after
every finished task: a frame is done when its file exists and its SHA-256 is the one
recorded.  A run with ``resume=True`` (the default) skips those, so a crash, a killed
worker or an interrupted run loses no frame and duplicates none; a second run of a
finished series does no work.  A failed task is retried (``retries``), then reported
by name with its error, and the series goes on.

Dask is optional (``pip install ".[dask]"``): with ``client`` (a
``dask.distributed.Client``) the tasks run on its cluster; with ``workers=N`` on a
``LocalCluster`` of N single-threaded worker processes, each running the kernels
with ``cores / N`` threads (no oversubscription); with neither (or without Dask)
sequentially in this process, with the same outputs.  On a machine with CuPy and
``settings["device"] = "gpu"`` the frames are reconstructed on the GPU, one worker
per GPU (``dask_cuda.LocalCUDACluster`` where dask-cuda is installed).
"""
from __future__ import annotations

import dataclasses
import glob
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from .._backend import files as _files

log = logging.getLogger(__name__)

__all__ = ["SeriesSettings", "SeriesResult", "process_series", "process_frame",
           "process_pair", "series_frames"]

_STATE = "series.json"
_STATE_FORMAT = "diffimaging-series"
_STATE_VERSION = 1


@dataclasses.dataclass
class SeriesSettings:
    """What to do with every frame of a series (metres and seconds throughout).

    wavelength, pixel_size : the optics [m] (pixel_size: one value or (dy, dx)).
    z : the nominal depths of the reconstruction's planes [m] (a sequence).
    method : "dh" (∂H, the default) or "backprop" (back-propagation projections).
    iterations, sparsity : of ∂H.
    n_medium : refractive index between the particles and the sensor.
    background : "median" (per-pixel median of up to ``background_frames`` frames
        of the series, computed once), "lowpass" (each frame's own smooth estimate),
        "none", or a 2-D array (a background frame).
    background_frames : frames (evenly spaced over the series) in the median.
    calibrate : the frame (index in the series) on which ∂H learns the distance
        offset, or the path of a calibration recording (its first frame); the offset
        is then fixed for the whole series.  None: the nominal z.
    dz_range : (lo, hi) search range of that offset [m] (None: ∂H's default).
    keep : "particles" (only particle tables: a campaign of thousands of 1024^2
        frames fits on disk), "projections" (also the min/max depth projections) or
        "volume" (also the reconstructed volume, float32).
    dt : the time between frames [s] (velocities in m/s).
    max_distance : PTV link radius [m] laterally (None: 10 pixels);
        ``max_axial_distance`` axially (None: 5 x max_distance).
    piv_window : 3-D PIV window (z, y, x) voxels between the volumes of consecutive
        frames, when they are kept (``keep="volume"``); the pairs then hold PIV
        vectors beside the PTV links.
    threads : kernel threads per task (None: the cores over the workers).
    device : "auto" (the default: the GPU when CuPy sees one and the CUDA module is
        built, else the CPU), "cpu" or "gpu" (CuPy; one worker per GPU).
    """

    wavelength: float
    pixel_size: object
    z: object
    method: str = "dh"
    iterations: int = 100
    sparsity: float = 0.01
    n_medium: float = 1.0
    background: object = "median"
    background_frames: int = 50
    calibrate: object = 0
    dz_range: object = None
    keep: str = "particles"
    dt: float = 1.0
    max_distance: float | None = None
    max_axial_distance: float | None = None
    piv_window: tuple = (8, 16, 16)
    threads: int | None = None
    device: str = "auto"

    def __post_init__(self):
        from .io import check_optics

        self.z = np.asarray(self.z, dtype=np.float64).reshape(-1)
        check_optics(self.wavelength, self.pixel_size, self.z)
        ps = np.broadcast_to(np.asarray(self.pixel_size, dtype=np.float64), (2,))
        self.pixel_size = (float(ps[0]), float(ps[1]))
        if self.method not in ("dh", "backprop"):
            raise ValueError(f"method must be 'dh' or 'backprop', got {self.method!r}")
        if self.keep not in ("particles", "projections", "volume"):
            raise ValueError(f"keep must be 'particles', 'projections' or 'volume', got "
                             f"{self.keep!r}")
        if self.keep == "projections" and self.method != "backprop":
            raise ValueError("keep='projections' needs method='backprop' (∂H solves for the "
                             "volume: keep='volume')")
        if self.keep == "volume" and self.method != "dh":
            raise ValueError("keep='volume' needs method='dh' (back-propagation keeps its "
                             "min/max projections: keep='projections')")
        if self.device not in ("auto", "cpu", "gpu"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'gpu', got {self.device!r}")
        if self.device == "auto":
            self.device = "gpu" if _gpu_usable() else "cpu"
        if isinstance(self.background, str):
            if self.background not in ("median", "lowpass", "none"):
                raise ValueError(f"background must be 'median', 'lowpass', 'none' or a 2-D "
                                 f"array, got {self.background!r}")
        else:
            b = np.asarray(self.background, dtype=np.float64)
            if b.ndim != 2 or not np.all(np.isfinite(b)) or not np.all(b > 0):
                raise ValueError("a background array must be one 2-D frame of positive, finite "
                                 "values")
            self.background = b
        c = self.calibrate
        if isinstance(c, os.PathLike):
            self.calibrate = c = str(c)
        if not (c is None or isinstance(c, str)
                or (isinstance(c, (int, np.integer)) and not isinstance(c, bool))):
            raise ValueError(f"calibrate must be a frame index, the path of a calibration "
                             f"recording or None, got {c!r}")
        for name in ("iterations", "background_frames"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not (math.isfinite(float(self.dt)) and float(self.dt) > 0):
            raise ValueError(f"dt must be the time between frames in seconds (> 0), got "
                             f"{self.dt!r}")
        w = tuple(int(v) for v in np.atleast_1d(self.piv_window))
        if len(w) != 3 or min(w) < 2:
            raise ValueError(f"piv_window must be 3 window sizes (z, y, x) of at least 2 voxels, "
                             f"got {self.piv_window!r}")
        self.piv_window = w
        dy = self.pixel_size[0]
        if self.max_distance is None:
            self.max_distance = 10.0 * dy
        if self.max_axial_distance is None:
            self.max_axial_distance = 5.0 * float(self.max_distance)

    @classmethod
    def from_any(cls, settings) -> "SeriesSettings":
        """A SeriesSettings from itself or a dict of its fields."""
        if isinstance(settings, cls):
            return settings
        if not isinstance(settings, dict):
            raise TypeError(f"settings must be a SeriesSettings or a dict of its fields, got "
                            f"{type(settings).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown series settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**settings)

    def record(self) -> dict:
        """The settings as JSON values (the background array by its shape only)."""
        d = dataclasses.asdict(self)
        d["z"] = [float(v) for v in self.z]
        if not isinstance(self.background, str):
            d["background"] = f"array {tuple(self.background.shape)}"
        d.pop("threads")        # how, not what: a resumed run may use other workers
        return json.loads(json.dumps(d, default=_files.json_default))


def _gpu_usable() -> bool:
    """A GPU that CuPy sees, and the CUDA module built."""
    from .._backend import kernels as K

    try:
        import cupy

        return bool(cupy.cuda.is_available()) and K.have_cuda_module()
    except Exception:
        return False


@dataclasses.dataclass
class SeriesResult:
    """What :func:`process_series` did: ``frames`` done (of ``total``), ``failed``
    {frame name: error}, ``skipped`` (verified outputs of an earlier run), the
    distance offset ``dz`` [m] of the series, the output files and the time."""

    out: Path
    total: int
    frames: int
    pairs: int
    skipped: int
    failed: dict
    dz: float
    particles: Path | None
    vectors: Path | None
    manifest: Path
    seconds: float
    processed: int = 0

    @property
    def frames_per_second(self) -> float:
        """Frames processed by this run per second of wall time (skipped ones not counted)."""
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


# ------------------------------------------------------------------ frames

def series_frames(frames) -> list[tuple[str, int | None]]:
    """The frames of a series as (path, frame within the file or None): ``frames`` is a
    glob pattern, a folder (its images), or a sequence of paths; a multi-page TIFF
    contributes one entry per page.  Sorted naturally (frame_2 before frame_10)."""
    from .._backend.cli import IMAGE_SUFFIXES, natural_key

    if isinstance(frames, (str, os.PathLike)):
        p = Path(frames)
        if p.is_dir():
            paths = [q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES]
        elif any(c in str(frames) for c in "*?["):
            paths = [Path(q) for q in glob.glob(str(frames))]
        else:
            paths = [p]
        paths = sorted(paths, key=natural_key)
    else:
        paths = [Path(q) for q in frames]
    if not paths:
        raise FileNotFoundError(f"no frames found for {frames!r}")
    out = []
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"frame file {p} does not exist")
        n = _pages(p)
        out.extend([(str(p), None)] if n == 1 else [(str(p), i) for i in range(n)])
    return out


def _pages(p: Path) -> int:
    if p.suffix.lower() not in (".tif", ".tiff"):
        return 1
    try:
        import tifffile

        with tifffile.TiffFile(p) as t:
            s = t.series[0]
            return int(np.prod(s.shape[:-2])) if len(s.shape) > 2 and s.shape[-1] not in (3, 4) \
                else 1
    except Exception:           # unreadable: the frame's task reports it
        return 1


def _name(frame) -> str:
    path, i = frame
    return Path(path).name + ("" if i is None else f"[{i}]")


def _read(frame):
    from .io import read_hologram

    path, i = frame
    h = read_hologram(path, frame=i)
    if h.ndim != 2:
        raise ValueError(f"{_name(frame)}: expected one 2-D frame, got shape {h.shape}")
    return h


def _threads(n):
    if n:
        from .._backend.threads import set_num_threads

        set_num_threads(int(n))


def process_frame(frame, index, settings, background, dz, out):
    """One frame of the series: read, background, reconstruct, particles, and
    ``out/frames/frame_NNNNN.h5`` written atomically.  Returns its record
    (index, file, particles, seconds, sha256).  Run by :func:`process_series` as a
    task; idempotent (a rerun writes the same file)."""
    import h5py

    from . import find_particles, preprocess, reconstruct, backpropagate

    t0 = time.perf_counter()
    s = SeriesSettings.from_any(settings)
    _threads(s.threads)
    raw = _read(frame)
    if isinstance(background, np.ndarray):
        if background.shape != raw.shape:
            raise ValueError(f"{_name(frame)}: frame of shape {raw.shape}, the series' "
                             f"background is {background.shape}")
        h, info = preprocess(raw, background=background)
    else:
        h, info = preprocess(raw, method=background)
    h = h.astype(np.float32)
    xp_h = h
    if s.device == "gpu":
        import cupy

        xp_h = cupy.asarray(h)
    z = s.z + dz
    proj = vol = None
    if s.method == "backprop":
        proj = backpropagate(xp_h, z, wavelength=s.wavelength, pixel_size=s.pixel_size,
                             output="projections", n_medium=s.n_medium)
        found = find_particles(proj, pixel_size=s.pixel_size, polarity="dark",
                               wavelength=s.wavelength, n_medium=s.n_medium)
    else:
        rec = reconstruct(xp_h, z, wavelength=s.wavelength, pixel_size=s.pixel_size,
                          iterations=s.iterations, sparsity=s.sparsity, learn_z=False,
                          n_medium=s.n_medium)
        vol = rec.volume
        found = find_particles(rec, wavelength=s.wavelength, n_medium=s.n_medium)
    off = np.array([info["offset"][0] * s.pixel_size[0], info["offset"][1] * s.pixel_size[1], 0.0])
    pos = found.positions + off
    target = Path(out) / "frames" / f"frame_{index:05d}.h5"
    with _files.atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            f["positions"] = pos
            f["positions"].attrs["columns"] = "y_m,x_m,z_m"
            f["peak"] = found.peak
            f["size"] = found.size
            f.attrs["source"] = _name(frame)
            f.attrs["index"] = index
            f.attrs["dz_m"] = float(dz)
            f.attrs["crop_offset_px"] = np.asarray(info["offset"])
            if s.keep == "volume" and vol is not None:
                from .._backend.namespace import to_numpy

                f.create_dataset("volume", data=np.asarray(to_numpy(vol), dtype=np.float32),
                                 compression="gzip", compression_opts=1)
                f["z_m"] = z
            if s.keep == "projections" and proj is not None:
                from .._backend.namespace import to_numpy

                for key, v in proj.items():
                    f[f"projections/{key}"] = np.asarray(to_numpy(v), dtype=np.float32)
                f["z_m"] = z
    return dict(index=int(index), file=str(target.relative_to(out)), particles=int(len(pos)),
                seconds=time.perf_counter() - t0, sha256=_files.sha256(target))


def _positions(path):
    with _files.open_hdf5(path) as f:
        return np.asarray(f["positions"], dtype=np.float64).reshape(-1, 3)


def _volume(path):
    """(volume, z, crop offset in pixels) of a frame file, or None without a volume."""
    with _files.open_hdf5(path) as f:
        if "volume" not in f:
            return None
        return (np.asarray(f["volume"], dtype=np.float32), np.asarray(f["z_m"]),
                np.asarray(f.attrs.get("crop_offset_px", (0, 0)), dtype=np.float64))


def process_pair(index, file_a, file_b, settings, out):
    """PTV between frames ``index`` and ``index + 1`` (their particle files), and 3-D
    PIV between their volumes when they are kept: ``out/pairs/pair_NNNNN.h5`` with
    the links' midpoints, displacements [m] and velocities [m/s] (and ``piv/``:
    window centres [m], velocities [m/s], outlier flags), written atomically.
    Returns its record."""
    import h5py

    from . import link, piv, predictor_from_links

    t0 = time.perf_counter()
    s = SeriesSettings.from_any(settings)
    a, b = _positions(Path(out) / file_a), _positions(Path(out) / file_b)
    if len(a) and len(b):
        kw = dict(max_axial_distance=s.max_axial_distance)
        links = link(a, b, s.max_distance, **kw)
        if len(links.pairs) >= 4:
            links = link(a, b, s.max_distance, predictor=predictor_from_links(links), **kw)
        mid, disp, pairs = links.positions, links.displacement, links.pairs
    else:
        mid = disp = np.zeros((0, 3))
        pairs = np.zeros((0, 2), dtype=np.int64)
    vectors = None
    if s.keep == "volume":
        va, vb = _volume(Path(out) / file_a), _volume(Path(out) / file_b)
        if va is not None and vb is not None and va[0].shape == vb[0].shape:
            res = piv(va[0], vb[0], window=s.piv_window, passes=2)
            ppos, pvel = res.vectors(va[1], s.pixel_size, s.dt)
            ppos = ppos + np.array([va[2][0] * s.pixel_size[0], va[2][1] * s.pixel_size[1], 0.0])
            vectors = (ppos, pvel, np.asarray(res.outlier).reshape(-1))
    target = Path(out) / "pairs" / f"pair_{index:05d}.h5"
    with _files.atomic_path(target) as tmp:
        with h5py.File(tmp, "w") as f:
            if vectors is not None:
                f["piv/positions"], f["piv/velocity"], f["piv/outlier"] = vectors
            f["positions"] = np.asarray(mid, dtype=np.float64).reshape(-1, 3)
            f["displacement"] = np.asarray(disp, dtype=np.float64).reshape(-1, 3)
            f["velocity"] = np.asarray(disp, dtype=np.float64).reshape(-1, 3) / float(s.dt)
            f["pairs"] = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
            f.attrs["frames"] = np.array([index, index + 1])
            f.attrs["dt_s"] = float(s.dt)
    return dict(index=int(index), file=str(target.relative_to(out)), links=int(len(mid)),
                seconds=time.perf_counter() - t0, sha256=_files.sha256(target))


# ------------------------------------------------------------------ executors

class _Sequential:
    """The tasks in this process, one after the other (no Dask)."""

    name = "sequential"

    def map(self, fn, items, retries):
        for key, args in items:
            err = None
            for _ in range(retries + 1):
                try:
                    yield key, fn(*args), None
                    break
                except Exception as exc:     # reported by name; the series goes on
                    err = exc
            else:
                yield key, None, err

    def close(self):
        pass


class _Dask:
    """The tasks on a dask.distributed cluster (results as they complete)."""

    def __init__(self, client, own_cluster=None):
        self.client, self.own = client, own_cluster
        self.name = f"dask ({len(client.scheduler_info().get('workers', {}))} workers)"

    def map(self, fn, items, retries):
        from distributed import as_completed

        futs = {}
        for key, args in items:
            f = self.client.submit(fn, *args, retries=retries, pure=False,
                                   key=f"{fn.__name__}-{key}-{os.urandom(4).hex()}")
            futs[f] = key
        for f in as_completed(list(futs)):
            key = futs[f]
            try:
                yield key, f.result(), None
            except Exception as exc:
                yield key, None, exc
            finally:
                f.release()

    def close(self):
        if self.own is not None:
            self.client.close()
            self.own.close()


def _executor(client, workers, device):
    if client is not None:
        return _Dask(client)
    if not workers:
        return _Sequential()
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        log.warning("Dask (distributed) is not installed: the series runs sequentially "
                    "(pip install \".[dask]\" for workers)")
        return _Sequential()
    if device == "gpu":
        try:
            from dask_cuda import LocalCUDACluster

            cluster = LocalCUDACluster(threads_per_worker=1)
            return _Dask(Client(cluster), cluster)
        except ImportError:
            log.info("dask-cuda is not installed: one worker for the GPU")
            workers = 1
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return _Dask(Client(cluster), cluster)


# ------------------------------------------------------------------ state

def _load_state(path: Path, record: dict, frames, resume: bool) -> dict:
    names = [_name(f) for f in frames]
    fresh = {"format": _STATE_FORMAT, "version": _STATE_VERSION, "settings": record,
             "frames": names, "done": {}, "pairs": {}, "failed": {}, "background": None,
             "dz": None}
    if not path.exists() or not resume:
        return fresh
    try:
        st = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("%s is unreadable (%s): starting the series afresh", path, exc)
        return fresh
    if st.get("format") != _STATE_FORMAT:
        raise ValueError(f"{path} is not a series state file; use another output folder")
    if st.get("settings") != record:
        raise ValueError(f"{path.parent} holds a series run with other settings; use another "
                         f"output folder or resume=False (which redoes every frame)")
    if st.get("frames") != names:
        raise ValueError(f"{path.parent} holds a series run of other frames ({len(st.get('frames', []))} "
                         f"recorded, {len(names)} given); use another output folder")
    st["failed"] = {}
    return st


def _save_state(path: Path, st: dict) -> None:
    with _files.atomic_open(path, "w") as fh:
        json.dump(st, fh, indent=1, default=_files.json_default)


def _verified(out: Path, rec) -> bool:
    """A recorded output that is still there, unchanged."""
    if not rec:
        return False
    p = out / rec["file"]
    try:
        return p.is_file() and _files.sha256(p) == rec["sha256"]
    except OSError:
        return False


def _clean_temporaries(out: Path) -> None:
    """Remove the temporaries a killed task left (never the finished files)."""
    for sub in ("frames", "pairs"):
        for t in (out / sub).glob(f".*{_files.TEMP_SUFFIX}"):
            try:
                t.unlink()
            except OSError:
                pass


# ------------------------------------------------------------------ the series

def _median_background(ex, frames, s, out, st):
    """The per-pixel median of up to ``background_frames`` evenly spaced frames, read
    by the tasks; computed once (``background.npy``, recorded in the state)."""
    p = out / "background.npy"
    rec = st.get("background")
    if rec and _verified(out, rec):
        return np.load(p)
    n = len(frames)
    take = np.unique(np.linspace(0, n - 1, min(n, s.background_frames)).round().astype(int))
    got = {}
    for key, h, err in ex.map(_read, [(int(i), (frames[int(i)],)) for i in take], retries=1):
        if err is None:
            got[key] = h
        else:
            log.warning("background: frame %s unreadable (%s), left out", _name(frames[key]), err)
    if len(got) < 3:
        raise ValueError(f"background='median' needs at least 3 readable frames, got {len(got)}")
    shapes = {g.shape for g in got.values()}
    if len(shapes) != 1:
        raise ValueError(f"background='median' needs frames of one size, got {sorted(shapes)}")
    bg = np.median(np.stack([got[k] for k in sorted(got)]), axis=0)
    bg = np.maximum(bg, 1e-6 * max(float(np.max(bg)), 1e-30))
    with _files.atomic_path(p) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, bg)
    st["background"] = dict(file="background.npy", sha256=_files.sha256(p), frames=len(got))
    return bg


def _calibrate(frames, s, background, out, st):
    """The distance offset of the series, learned by ∂H on frame ``s.calibrate`` (once)."""
    if st.get("dz") is not None:
        return float(st["dz"]["value"])
    if s.method != "dh" or s.calibrate is None:
        st["dz"] = dict(value=0.0, frame=None, how="nominal z")
        return 0.0
    from . import preprocess, reconstruct

    if isinstance(s.calibrate, str):
        if not Path(s.calibrate).is_file():
            raise FileNotFoundError(f"calibration recording {s.calibrate} does not exist")
        source = (s.calibrate, 0 if _pages(Path(s.calibrate)) > 1 else None)
    else:
        k = int(s.calibrate)
        if not -len(frames) <= k < len(frames):
            raise ValueError(f"calibrate={k} is not a frame of the series ({len(frames)} frames)")
        source = frames[k]
    raw = _read(source)
    if isinstance(background, np.ndarray):
        h, _ = preprocess(raw, background=background)
    else:
        h, _ = preprocess(raw, method=background)
    kw = {} if s.dz_range is None else {"dz_range": tuple(s.dz_range)}
    h = h.astype(np.float32)
    if s.device == "gpu":
        import cupy

        h = cupy.asarray(h)
    rec = reconstruct(h, s.z, wavelength=s.wavelength,
                      pixel_size=s.pixel_size, iterations=s.iterations, sparsity=s.sparsity,
                      learn_z=True, n_medium=s.n_medium, **kw)
    st["dz"] = dict(value=float(rec.dz), frame=_name(source), how="∂H on one frame")
    log.info("series calibration: dz = %+.2f um on %s", rec.dz * 1e6, _name(source))
    return float(rec.dz)


def process_series(frames, settings, *, out, client=None, workers=None, resume=True, retries=2,
                   progress=True, figure=True) -> SeriesResult:
    """Process a hologram series frame by frame, then consecutive pairs (see the module
    docstring for what is written where).

    Parameters
    ----------
    frames : glob pattern, folder, or sequence of image paths (multi-page TIFFs give one
        frame per page), in time order.
    settings : SeriesSettings or a dict of its fields (wavelength, pixel_size, z, ...).
    out : output folder (created).
    client : a ``dask.distributed.Client`` to run the tasks on its cluster.
    workers : without a client, the number of worker processes of a Dask
        ``LocalCluster`` (None or 0: sequential in this process).
    resume : skip the frames and pairs whose outputs an earlier run of the same
        settings and frames finished (verified by SHA-256).
    retries : tries after a failure before a frame is reported as failed.
    progress : a tqdm bar (frames done / failed / rate).
    figure : write ``series.png`` (needs matplotlib).

    Returns a :class:`SeriesResult`.

    Example
    -------
    >>> r = process_series("run1/*.tif", dict(wavelength=532e-9, pixel_size=3.45e-6,
    ...                    z=np.linspace(5e-3, 30e-3, 64), dt=1 / 200), out="run1_out",
    ...                    workers=2)
    >>> r.frames, r.failed, r.frames_per_second
    """
    t0 = time.perf_counter()
    s = SeriesSettings.from_any(settings)
    fr = series_frames(frames)
    out = Path(out)
    for sub in ("", "frames", "pairs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _clean_temporaries(out)
    state_path = out / _STATE
    st = _load_state(state_path, s.record(), fr, resume)
    ex = _executor(client, workers, s.device)
    if s.threads is None and isinstance(ex, _Dask) and ex.own is not None:
        # our LocalCluster: this machine's cores shared by its workers (a given client's
        # workers keep their own thread settings)
        nw = max(1, len(ex.client.scheduler_info().get("workers", {})))
        s = dataclasses.replace(s, threads=max(1, (os.cpu_count() or 1) // nw))
    try:
        if isinstance(s.background, str) and s.background == "median":
            background = _median_background(ex, fr, s, out, st)
        else:
            background = s.background
        dz = _calibrate(fr, s, background, out, st)
        _save_state(state_path, st)
        todo = [i for i in range(len(fr)) if not _verified(out, st["done"].get(str(i)))]
        skipped = len(fr) - len(todo)
        for i in todo:
            st["done"].pop(str(i), None)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(fr), initial=skipped, desc="frames", unit="frame")
        processed = 0
        t_run = time.perf_counter()
        sd = dataclasses.asdict(s)
        bg_arg = background
        if isinstance(ex, _Dask) and isinstance(background, np.ndarray) and todo:
            # sent to every worker once, not with every task
            bg_arg = ex.client.scatter(background, broadcast=True)
        items = [(i, (fr[i], i, sd, bg_arg, dz, str(out))) for i in todo]
        for i, rec, err in ex.map(process_frame, items, retries):
            if err is None:
                st["done"][str(i)] = rec
                processed += 1
            else:
                st["failed"][_name(fr[i])] = f"{type(err).__name__}: {err}"
                log.error("frame %s failed: %s: %s", _name(fr[i]), type(err).__name__, err)
            _save_state(state_path, st)
            if bar is not None:
                bar.update(1)
                rate = processed / max(time.perf_counter() - t_run, 1e-9)
                bar.set_postfix(done=len(st["done"]), failed=len(st["failed"]),
                                rate=f"{rate:.2f}/s")
        if bar is not None:
            bar.close()
        # pairs of consecutive frames, both done
        pairs = [i for i in range(len(fr) - 1)
                 if str(i) in st["done"] and str(i + 1) in st["done"]
                 and not _verified(out, st["pairs"].get(str(i)))]
        items = [(i, (i, st["done"][str(i)]["file"], st["done"][str(i + 1)]["file"], sd,
                      str(out))) for i in pairs]
        for i, rec, err in ex.map(process_pair, items, retries):
            if err is None:
                st["pairs"][str(i)] = rec
            else:
                st["failed"][f"pair {i}-{i + 1}"] = f"{type(err).__name__}: {err}"
            _save_state(state_path, st)
    finally:
        ex.close()
    _clean_temporaries(out)
    particles, vectors = _tables(out, st, s)
    files = [out / r["file"] for r in st["done"].values()] + \
            [out / r["file"] for r in st["pairs"].values()] + [particles, vectors]
    if st.get("background"):
        files.append(out / st["background"]["file"])
    if (out / "piv.csv").is_file():
        files.append(out / "piv.csv")
    if figure:
        fig = _figure(out, st, fr)
        if fig is not None:
            files.append(fig)
    manifest = _files.write_manifest(out / "manifest.json", files, command="holo series",
                                     settings=s.record(), frames=len(fr),
                                     failed=st["failed"], dz=st["dz"],
                                     background=st.get("background"))
    _save_state(state_path, st)
    return SeriesResult(out=out, total=len(fr), frames=len(st["done"]), pairs=len(st["pairs"]),
                        skipped=skipped, failed=dict(st["failed"]), dz=dz, particles=particles,
                        vectors=vectors, manifest=manifest, seconds=time.perf_counter() - t0,
                        processed=processed)


def _tables(out, st, s):
    """The whole series' particles, PTV vectors (and PIV vectors, when the pairs hold
    them) as the package's CSV tables (:func:`~diffimaging.holography.write_particles_csv`,
    :func:`~diffimaging.holography.write_vectors_csv`), with frame ids."""
    from types import SimpleNamespace

    from .io import write_particles_csv, write_vectors_csv

    optics = dict(wavelength=s.wavelength, pixel_size=s.pixel_size, n_medium=s.n_medium)
    pos, peak, ids, frame = [], [], [], []
    for i in sorted(int(k) for k in st["done"]):
        with _files.open_hdf5(out / st["done"][str(i)]["file"]) as f:
            p = np.asarray(f["positions"]).reshape(-1, 3)
            pos.append(p)
            peak.append(np.asarray(f["peak"], dtype=np.float64).reshape(-1))
        ids.append(np.arange(len(p)))
        frame.append(np.full(len(p), i))
    cat = (lambda parts, shape: np.concatenate(parts) if parts else np.zeros(shape))
    particles = out / "particles.csv"
    write_particles_csv(particles, SimpleNamespace(positions=cat(pos, (0, 3)), peak=cat(peak, 0)),
                        ids=cat(ids, 0).astype(np.int64), frame=cat(frame, 0).astype(np.int64),
                        description="holo series: the particles of every frame (particle_id: "
                                    "the row in its frame's file)", **optics)
    kinds = {"ptv": ([], [], [], []), "piv": ([], [], [], [])}
    for i in sorted(int(k) for k in st["pairs"]):
        with _files.open_hdf5(out / st["pairs"][str(i)]["file"]) as f:
            groups = [("ptv", f, None)] + ([("piv", f["piv"], "outlier")] if "piv" in f else [])
            for kind, g, flag in groups:
                m, v, fr_, bad = kinds[kind]
                m.append(np.asarray(g["positions"]).reshape(-1, 3))
                v.append(np.asarray(g["velocity"]).reshape(-1, 3))
                fr_.append(np.full(len(m[-1]), i))
                bad.append(np.asarray(g[flag]).reshape(-1) if flag else np.zeros(len(m[-1])))
    m, v, fr_, _ = kinds["ptv"]
    vectors = out / "vectors.csv"
    write_vectors_csv(vectors, cat(m, (0, 3)), cat(v, (0, 3)), dt=s.dt,
                      frame=cat(fr_, 0).astype(np.int64),
                      description="holo series: PTV links from frame to frame + 1 (midpoints, "
                                  "velocities)", **optics)
    m, v, fr_, bad = kinds["piv"]
    if m:
        write_vectors_csv(out / "piv.csv", cat(m, (0, 3)), cat(v, (0, 3)), dt=s.dt,
                          frame=cat(fr_, 0).astype(np.int64), outlier=cat(bad, 0),
                          description="holo series: 3-D PIV from frame to frame + 1 (window "
                                      "centres; outliers replaced by their neighbours' median)",
                          **optics)
    return particles, vectors


def _figure(out, st, fr):
    """series.png: particles per frame, mean speed per pair, failed frames."""
    try:
        from .._backend.files import figure, save_png
    except ImportError:     # pragma: no cover
        return None
    try:
        fig = figure(figsize=(8, 5))
    except ImportError:
        log.info("matplotlib is not installed: no series figure")
        return None
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    idx = sorted(int(k) for k in st["done"])
    ax1.plot(idx, [st["done"][str(i)]["particles"] for i in idx], ".-", lw=0.8)
    failed = [i for i, f in enumerate(fr) if _name(f) in st["failed"]]
    for i in failed:
        ax1.axvline(i, color="r", lw=0.8, alpha=0.6)
    ax1.set_ylabel("particles")
    ax1.set_title(f"{len(idx)} of {len(fr)} frames" + (f", {len(failed)} failed (red)"
                                                       if failed else ""))
    speeds = []
    pidx = sorted(int(k) for k in st["pairs"])
    for i in pidx:
        with _files.open_hdf5(out / st["pairs"][str(i)]["file"]) as f:
            v = np.asarray(f["velocity"]).reshape(-1, 3)
        speeds.append(float(np.mean(np.linalg.norm(v, axis=1))) if len(v) else np.nan)
    ax2.plot(pidx, speeds, ".-", lw=0.8)
    ax2.set_ylabel("mean speed (m/s)")
    ax2.set_xlabel("frame")
    path = out / "series.png"
    save_png(fig, path)
    return path
