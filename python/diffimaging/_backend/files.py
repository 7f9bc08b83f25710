"""Output files that are either complete or absent, and the manifest of a run.

Every writer in the package goes through :func:`atomic_path`: the data is written
to a temporary file in the target folder (same file system, so the final
``os.replace`` is atomic), flushed to disk with ``fsync``, renamed over the
final name, and the folder entry is synced.  If anything fails or the run is
interrupted (``KeyboardInterrupt``, ``SystemExit``) the temporary file is
removed and the final name keeps whatever it held before: a reader never sees a
half-written file under a final name.

A run that writes several files finishes by writing a *manifest*
(:func:`write_manifest`): a JSON file listing every output with its size in
bytes and its SHA-256, written last and atomically.  A reader or a resumed run
tells complete output from partial output with :func:`verify_manifest`.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_open", "fsync_dir", "sha256", "write_manifest",
           "read_manifest", "verify_manifest", "json_default", "MANIFEST_FORMAT", "TEMP_SUFFIX"]

#: the ``format`` field of a manifest written by :func:`write_manifest`
MANIFEST_FORMAT = "diffimaging-manifest"
#: temporary files are named ``.<final name>.<random>.part`` in the target folder
TEMP_SUFFIX = ".part"
_MANIFEST_VERSION = 1


def fsync_dir(folder) -> None:
    """Flush a folder's entries to disk (makes a rename durable; no-op where the
    platform cannot open folders, e.g. Windows)."""
    try:
        fd = os.open(os.fspath(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_target(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name")
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite it")
    if not path.parent.is_dir():
        if path.parent.exists():
            raise NotADirectoryError(f"cannot write {path}: {path.parent} is not a folder")
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")


@contextlib.contextmanager
def atomic_path(path, *, overwrite: bool = True):
    """Context manager giving a temporary path to write instead of ``path``.

    Write the whole file to the yielded path (any library that takes a file name:
    h5py, matplotlib, tifffile...).  On a normal exit the temporary file is
    synced and renamed to ``path``; on any exception or interrupt it is removed
    and ``path`` is left as it was.  ``overwrite=False`` refuses (``FileExistsError``)
    to replace an existing ``path``.

    Example::

        with atomic_path("out/volume.h5") as tmp:
            with h5py.File(tmp, "w") as f:
                f["volume"] = vol
    """
    final = Path(path)
    _check_target(final, overwrite)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written for {final} (temporary file {tmp} missing)")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if not overwrite and final.exists():
            raise FileExistsError(f"{final} appeared while it was being written; refusing to "
                                  f"overwrite it")
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path, mode: str = "w", *, overwrite: bool = True, **kwargs):
    """``open`` for writing, atomically (see :func:`atomic_path`).  ``mode`` is
    ``"w"`` (text; ``newline``/``encoding`` pass through, UTF-8 by default) or
    ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()


def open_hdf5(path):
    """``h5py.File(path, "r")``, a file that h5py cannot open (truncated, still
    being written, not HDF5) as a ValueError naming it; a PermissionError stays
    one."""
    import h5py

    try:
        return h5py.File(path, "r")
    except PermissionError:
        raise
    except OSError as exc:
        raise ValueError(f"cannot read {path} as HDF5: truncated, incomplete or not an HDF5 "
                         f"file ({exc})") from exc


def sha256(path, *, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(path, files, **meta) -> Path:
    """Write the manifest of a run, atomically, *after* all its outputs.

    Parameters
    ----------
    path : path of the manifest (JSON); the files are recorded relative to its folder.
    files : iterable of paths written by the run (each must exist).
    **meta : JSON-serialisable facts about the run (inputs, settings, versions).

    Returns the manifest path.  The manifest records, per file, its size in
    bytes and its SHA-256, so :func:`verify_manifest` can detect a truncated,
    missing or replaced output.
    """
    path = Path(path)
    root = path.parent.resolve()
    entries = []
    for f in files:
        f = Path(f)
        if not f.is_file():
            raise FileNotFoundError(f"manifest entry {f} does not exist (was it written?)")
        rp = f.resolve()
        try:
            rel = rp.relative_to(root).as_posix()
        except ValueError:
            rel = str(rp)
        entries.append({"path": rel, "bytes": rp.stat().st_size, "sha256": sha256(rp)})
    from .. import __version__

    doc = {"format": MANIFEST_FORMAT, "version": _MANIFEST_VERSION, "complete": True,
           "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "diffimaging": __version__, "files": entries, "meta": meta}
    text = json.dumps(doc, indent=1, sort_keys=False, default=json_default)
    with atomic_open(path, "w") as fh:
        fh.write(text + "\n")
    return path


def json_default(obj):
    """``json.dump``'s ``default``: numpy scalars and arrays, and paths, as JSON values."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"manifest metadata value {obj!r} ({type(obj).__name__}) is not JSON-serialisable")


def read_manifest(path) -> dict:
    """Read and check the structure of a manifest; ``ValueError`` names the file
    if it is not one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable manifest ({type(exc).__name__}: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a diffimaging manifest (no format={MANIFEST_FORMAT!r})")
    files = doc.get("files")
    if not isinstance(files, list) or not all(
            isinstance(e, dict) and {"path", "bytes", "sha256"} <= set(e) for e in files):
        raise ValueError(f"{path}: malformed 'files' list")
    return doc


def verify_manifest(path, *, checksum: bool = True) -> list[str]:
    """Check every file a manifest lists: present, same size and (unless
    ``checksum=False``) same SHA-256.  Returns the list of problems, one line
    each; an empty list means the run's output is complete and unchanged."""
    path = Path(path)
    doc = read_manifest(path)
    problems = []
    for e in doc["files"]:
        f = Path(e["path"])
        if not f.is_absolute():
            f = path.parent / f
        if not f.is_file():
            problems.append(f"{e['path']}: missing")
            continue
        size = f.stat().st_size
        if size != e["bytes"]:
            problems.append(f"{e['path']}: {size} bytes, the manifest says {e['bytes']}")
        elif checksum and sha256(f) != e["sha256"]:
            problems.append(f"{e['path']}: contents changed (SHA-256 differs)")
    return problems


def load_mapping(path, what: str, keys) -> dict:
    """The top-level table of a TOML or JSON file (a ``what`` file: "setup",
    "geometry"); every error names the file, and a table is required (``keys``
    listed in the message)."""
    import sys

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_bytes()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            try:
                import tomli as tomllib
            except ImportError:
                raise ImportError(f"reading {path} needs Python 3.11+ or the tomli package "
                                  f"(pip install tomli); or write the {what} as JSON") from None
        try:
            doc = tomllib.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path} is not valid TOML: {exc}") from None
    elif suffix == ".json":
        try:
            doc = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
    else:
        raise ValueError(f"{what} file {path} must be .toml or .json, got "
                         f"{suffix or 'no suffix'!r}")
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a {what} file holds a table of keys ({', '.join(keys)}), "
                         f"got a {type(doc).__name__}")
    return doc


def figure(**kwargs):
    """A matplotlib Figure on the Agg canvas (pyplot's state untouched)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'diffimaging[plot]' (or "
                          "pip install matplotlib)") from None
    return Figure(**kwargs)


def save_png(fig, path, dpi=100):
    """``fig`` written atomically as PNG to ``path`` (nothing when None); returns it."""
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    return fig


def complex_panels(arrays: dict, extents: dict, labels=("|o|", "arg o (rad)"), *,
                   width=3.3, interpolation=None, tick_size=None):
    """A Figure of complex 2-D arrays side by side: amplitude (top row, grey, one
    scale) and phase (bottom row, one scale over the 0.5-99.5 percentiles of all
    phases), ``arrays`` mapping a title to an array and ``extents`` the title to its
    imshow extent [x0, x1, y1, y0] in um; ``labels`` of the two colour bars."""
    import numpy as np

    n = len(arrays)
    fig = figure(figsize=(width * n + 0.9, 6.4), layout="constrained")
    amp_hi = max(float(np.percentile(np.abs(a), 99.5)) for a in arrays.values()) or 1.0
    phases = np.concatenate([np.angle(a).ravel() for a in arrays.values()])
    ph_lo, ph_hi = (float(v) for v in np.percentile(phases, [0.5, 99.5]))
    if ph_hi - ph_lo < 1e-6:
        ph_lo, ph_hi = ph_lo - 0.5, ph_hi + 0.5
    rows = ([], [])
    extra = {} if interpolation is None else {"interpolation": interpolation}
    for j, (title, a) in enumerate(arrays.items()):
        for row, (values, kw, what) in enumerate((
                (np.abs(a), dict(cmap="gray", vmin=0, vmax=amp_hi), "amplitude"),
                (np.angle(a), dict(cmap="viridis", vmin=ph_lo, vmax=ph_hi), "phase"))):
            ax = fig.add_subplot(2, n, row * n + j + 1)
            im = ax.imshow(values, extent=extents[title], **extra, **kw)
            ax.set_title(f"{title}: {what}", fontsize=9)
            ax.set_xlabel("x (um)", fontsize=8)
            if j == 0:
                ax.set_ylabel("y (um)", fontsize=8)
            if tick_size is not None:
                ax.tick_params(labelsize=tick_size)
            rows[row].append((ax, im))
    for row, label in zip(rows, labels):
        fig.colorbar(row[-1][1], ax=[ax for ax, _ in row], shrink=0.8, label=label)
    return fig
