"""The pieces every command of the ``diffimaging`` command line shares.

- argument types refused by argparse itself (exit 2, one line): :func:`number`,
  :data:`length`; the ``--overwrite`` flag (:func:`add_overwrite`);
- provenance-checked outputs and the run's manifest, written last
  (:class:`Outputs`, :func:`file_manifest`);
- inputs: a checked file (:func:`input_file`), files, folders and glob patterns
  sorted naturally (:func:`expand_inputs`);
- messages: result lines on stdout (:func:`say`), progress bars only on a
  terminal (:func:`progress_wanted`); figures saved atomically (:func:`savefig`).

The exit-code contract itself is in :mod:`diffimaging.cli`.
"""
from __future__ import annotations

import argparse
import glob
import math
import re
import sys
from pathlib import Path

from .files import atomic_path, read_manifest, write_manifest

__all__ = ["number", "length", "add_overwrite", "Outputs", "file_manifest", "input_file",
           "IMAGE_SUFFIXES", "natural_key", "expand_inputs", "progress_wanted", "say", "savefig",
           "EXITS"]

#: the exit codes in one line, the epilog of every command
EXITS = ("exit codes: 0 success, 2 user error (one line on stderr), 130 interrupted, 1 internal "
         "error (-v for the traceback); see 'diffimaging --help'")

#: image files a folder argument contributes
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif")


# -- argument types: refused by argparse itself (exit 2, one line) ------------------

def number(kind, *, low=None, low_open=False, high=None, high_open=False, unit=""):
    """An argparse type: a finite ``kind`` (int or float) in the given bounds (argparse
    prefixes its messages with the option's name)."""
    noun = "an integer" if kind is int else "a number"
    unit = f" ({unit})" if unit else ""

    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun}{unit}, got {text!r}") from None
        bad = not math.isfinite(v)
        bad |= low is not None and (v <= low if low_open else v < low)
        bad |= high is not None and (v >= high if high_open else v > high)
        if bad:
            bounds = [f"{'>' if low_open else '>='} {low:g}"] if low is not None else []
            bounds += [f"{'<' if high_open else '<='} {high:g}"] if high is not None else []
            raise argparse.ArgumentTypeError(f"must be {'a finite number' if kind is float else noun} "
                                             f"{' and '.join(bounds)}{unit}, got {text!r}")
        return v
    return parse


length = number(float, low=0, low_open=True, unit="metres")


def add_overwrite(p):
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs even when the manifest does not record them as "
                        "outputs of the same input(s) (default: refuse)")


# -- outputs: provenance checks up front, manifest last -----------------------------

class Outputs:
    """The outputs of one run and its manifest.

    :meth:`claim` every output before the work starts (refuses, ``FileExistsError``,
    to replace a file that the manifest in charge does not record as an output of
    the same inputs, unless ``overwrite``), :meth:`done` each once written, and
    :meth:`finish` last: it writes the manifest, which also keeps the entries of
    earlier runs' outputs still present and unchanged in the folder."""

    def __init__(self, manifest, command, settings, *, overwrite=False):
        self.manifest = Path(manifest)
        self.root = self.manifest.parent.resolve()
        self.command, self.settings, self.overwrite = command, settings, overwrite
        self.claimed, self.written, self.inputs = {}, [], []
        self.earlier, self.earlier_runs, self.sizes = {}, [], {}
        if self.manifest.exists():
            try:
                doc = read_manifest(self.manifest)
            except ValueError as exc:
                if not overwrite:
                    raise ValueError(f"{exc}: remove it, choose another output or pass --overwrite") \
                        from None
            else:
                sizes = {e["path"]: e["bytes"] for e in doc["files"]}
                meta = doc.get("meta") or {}
                runs, outputs = meta.get("runs"), meta.get("outputs")
                if isinstance(runs, list) and isinstance(outputs, dict):
                    self.earlier_runs = runs
                    self.earlier = {k: v for k, v in outputs.items()
                                    if k in sizes and isinstance(v, dict) and "inputs" in v}
                self.sizes = sizes

    def _rel(self, path):
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def check(self, path, inputs):
        """Refuse (``FileExistsError``) to replace ``path`` unless it is absent or
        recorded as an output of ``inputs`` (or ``overwrite``)."""
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
        if self.overwrite or not path.exists():
            return
        rec = self.earlier.get(self._rel(path))
        if rec is None:
            raise FileExistsError(f"{path} exists and {self.manifest} does not record it as an output "
                                  f"(a file of another origin, or of an interrupted run): pass --overwrite "
                                  f"to replace it, or choose another output")
        if sorted(rec["inputs"]) != sorted(inputs):
            was = ", ".join(rec["inputs"]) or "a demo run"
            now = ", ".join(inputs) or "a demo run"
            raise FileExistsError(f"{path} holds the output of {was}; refusing to replace it with the "
                                  f"output of {now}: pass --overwrite, or choose another output")

    def claim(self, path, inputs, frame=None):
        """Reserve ``path`` for the output of ``inputs`` (absolute paths; ``frame``
        of a series): refuses a second claim in the run and what :meth:`check` refuses."""
        rel = self._rel(path)
        if rel in self.claimed and self.claimed[rel]["inputs"] != list(inputs):
            raise FileExistsError(f"{path} would be written twice in this run, from "
                                  f"{', '.join(self.claimed[rel]['inputs'])} and from {', '.join(inputs)}: "
                                  f"rename one input or run them separately with different outputs")
        self.check(path, inputs)
        self.claimed[rel] = {"inputs": list(inputs), "frame": frame}
        self.inputs.extend(i for i in inputs if i not in self.inputs)

    def done(self, path):
        self.written.append(Path(path))

    def finish(self):
        """Write the manifest (last): this run's outputs, and the earlier outputs still
        present with their recorded size."""
        runs, outputs, files = [], {}, []
        remap = {}
        for rel, rec in self.earlier.items():
            f = Path(rel) if Path(rel).is_absolute() else self.root / rel
            if rel in self.claimed or not f.is_file() or f.stat().st_size != self.sizes[rel]:
                continue
            old = rec.get("run")
            if isinstance(old, int) and 0 <= old < len(self.earlier_runs):
                if old not in remap:
                    remap[old] = len(runs)
                    runs.append(self.earlier_runs[old])
                rec = dict(rec, run=remap[old])
            outputs[rel] = rec
            files.append(f)
        this = len(runs)
        runs.append({"command": self.command, "inputs": self.inputs, "settings": self.settings})
        for f in self.written:
            rel = self._rel(f)
            outputs[rel] = dict(self.claimed.get(rel, {"inputs": [], "frame": None}), run=this)
            files.append(f)
        write_manifest(self.manifest, files, command=self.command, inputs=self.inputs,
                              settings=self.settings, outputs=outputs, runs=runs)
        return self.manifest


def file_manifest(path):
    """The manifest of a single-file output: ``<file>.manifest.json``."""
    p = Path(path)
    return p.with_name(p.name + ".manifest.json")


def input_file(path, what):
    """The absolute path of an input file, checked up front."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    if not p.is_file():
        raise IsADirectoryError(f"{what} is not a file: {p}")
    return str(p.resolve())


# -- inputs ---------------------------------------------------------------------------

def natural_key(path):
    """Sort key: digit runs compare as numbers (frame2 before frame10)."""
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", str(path))]


def expand_inputs(items, what="hologram file", suffixes=IMAGE_SUFFIXES):
    """The input files named by the arguments: a file, a folder (its files whose
    suffix is in ``suffixes``, by default image files) or a glob pattern (quoted,
    expanded here), each folder or pattern sorted naturally; ``what`` names a
    file in the errors.  Returns [(as given, absolute path)]."""
    out = []
    for given in items:
        p = Path(given)
        if p.is_dir():
            found = sorted((q for q in p.iterdir() if q.is_file() and q.suffix.lower() in suffixes),
                           key=natural_key)
            if not found:
                raise FileNotFoundError(f"the folder {given} holds no {what}s "
                                        f"({', '.join(suffixes)})")
        elif not p.exists() and any(c in given for c in "*?["):
            found = sorted((Path(g) for g in glob.glob(given) if Path(g).is_file()), key=natural_key)
            if not found:
                raise FileNotFoundError(f"no file matches the pattern {given!r}")
        else:
            out.append((given, input_file(given, what)))
            continue
        out += [(str(q), str(q.resolve())) for q in found]
    return out


# -- messages and figures -------------------------------------------------------------

def progress_wanted(args):
    """True when progress bars are wanted: stderr is a terminal and not -q."""
    return bool(sys.stderr.isatty()) and not getattr(args, "quiet", 0)


def say(args, text):
    """A result line on stdout (not with -q)."""
    if not getattr(args, "quiet", 0):
        print(text)


def savefig(fig, path):
    """Save and close a figure atomically (PNG)."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
    finally:
        plt.close(fig)
    return Path(path).name
