"""The ``diffimaging`` command line: each imaging system adds its commands.

``diffimaging demo`` runs the holographic particle-imaging demonstration,
``diffimaging demo lensless`` the lensless one, ``diffimaging demo fpm`` the
Fourier-ptychography one; ``diffimaging holo ...``, ``diffimaging piv ...``,
``diffimaging ptv ...``, ``diffimaging lensless ...`` and ``diffimaging fpm ...``
work on recordings (see ``diffimaging <command> --help``; lengths in metres);
``diffimaging verify OUT`` checks that a run's outputs are complete and unchanged
(its manifest).  ``python -m diffimaging`` is the same command.

Messages: results go to stdout (one line per output); warnings, and with ``-v``
progress details (``-vv`` debug), go to stderr through :mod:`logging` (logger
``diffimaging``), formatted ``diffimaging: warning: ...``; ``-q`` keeps errors
only.  Progress bars are drawn only when stderr is a terminal.

Exit codes (the contract, also printed by ``diffimaging --help``):

- 0: success; every output and the run's manifest were written.
- 2: a user error — a bad argument or value, an unreadable, missing or
  malformed input, an output that would replace another input's output, a
  permission or disk-full error, memory exhaustion: one line
  ``diffimaging: error: ...`` on stderr, no traceback.
- 130: interrupted (Ctrl-C or SIGTERM): one line on stderr; the file being
  written is removed, outputs completed before are kept, no manifest is written.
- 1: an internal error (a bug): one line naming the exception; ``-v`` prints
  the traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import signal
import sys
import threading
import traceback

from . import __version__
from .holography import cli as holography_cli
from .lensless import cli as lensless_cli
from .fpm import cli as fpm_cli

__all__ = ["build_parser", "main", "EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK = 0
#: an internal error (a bug): rerun with -v for the traceback
EXIT_INTERNAL = 1
#: a user error: bad argument, bad input file, refused overwrite, no space, no memory
EXIT_USAGE = 2
#: interrupted by Ctrl-C (SIGINT) or SIGTERM
EXIT_INTERRUPTED = 130

EPILOG = """\
exit codes:
  0    success: all outputs and the manifest (written last) are complete
  2    user error (bad argument or value, missing/unreadable/malformed input,
       refused overwrite, permission denied, disk full, out of memory):
       one line "diffimaging: error: ..." on stderr
  130  interrupted (Ctrl-C or SIGTERM): the file being written is removed,
       earlier outputs are kept, no manifest is written
  1    internal error (a bug): one line naming the exception; rerun with -v
       for the traceback
outputs: every file is written to a temporary name and renamed when complete;
  a run writes a manifest last (sizes and SHA-256 of every output, inputs and
  settings): <folder>/manifest.json for folder outputs, <file>.manifest.json
  for single-file outputs"""

#: errors a user can act on (exit 2); OSError covers missing files, permissions,
#: a full disk (ENOSPC, EFBIG, EDQUOT) and unreadable files
_USER_ERRORS = (ValueError, TypeError, OSError)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM, so that the
    run unwinds like a Ctrl-C: ``finally`` blocks run and the atomic writers
    remove their temporary files."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are the contract's single line (exit 2),
    and whose every (sub)command accepts ``-v``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                          help="log progress details; on an internal error print the traceback "
                               "(-vv: debug logging; default: warnings and results only)")
        self.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS,
                          help="errors only: no results on stdout, no warnings (default: off)")

    def error(self, message):
        self.exit(EXIT_USAGE, f"diffimaging: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="diffimaging",
                description="Differentiable imaging: holographic particle imaging,\n"
                            "pixel-super-resolution lensless imaging and Fourier ptychographic\n"
                            "microscopy (lengths in metres; 'diffimaging demo lensless' and\n"
                            "'diffimaging demo fpm': their demonstrations)",
                epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"diffimaging {__version__}",
                   help="print the version and exit")
    p.set_defaults(verbose=0, quiet=0)
    sub = p.add_subparsers(dest="command", required=True)
    holography_cli.add_commands(sub)
    lensless_cli.add_commands(sub)
    fpm_cli.add_commands(sub)
    v = sub.add_parser("verify", help="check that a run's outputs are complete and unchanged",
                       description="Check every file a run's manifest lists: present, same size, "
                                   "same SHA-256.  Exit 0 if all are, 2 otherwise (one line per "
                                   "problem on stdout).")
    v.add_argument("manifest", help="a manifest (manifest.json, <file>.manifest.json) or the output "
                                    "folder that holds manifest.json")
    v.add_argument("--no-checksum", action="store_true",
                   help="compare sizes only (fast; misses same-size changes; default: sizes and "
                        "SHA-256)")
    v.set_defaults(func=cmd_verify)
    return p


def cmd_verify(args) -> int:
    from pathlib import Path

    from ._backend.files import read_manifest, verify_manifest

    path = Path(args.manifest)
    if path.is_dir():
        if not (path / "manifest.json").is_file():
            raise FileNotFoundError(f"no manifest.json in {path}: the run did not finish (a run "
                                    f"writes its manifest last), or give the manifest file")
        path = path / "manifest.json"
    n = len(read_manifest(path)["files"])
    problems = verify_manifest(path, checksum=not args.no_checksum)
    for line in problems:
        print(line)
    if problems:
        raise ValueError(f"{len(problems)} of the {n} files listed in {path} are missing or changed")
    print(f"{path}: all {n} files present and unchanged")
    return EXIT_OK


def _describe(exc: BaseException) -> str:
    """The one-line message of a user error."""
    if isinstance(exc, MemoryError):
        detail = str(exc) or "an allocation failed"
        return (f"out of memory ({detail}): use a smaller input, fewer planes or a smaller --chunk, "
                f"or a machine with more memory")
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        name = exc.filename
        if exc.errno in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)):
            where = f" writing {name}" if name else ""
            return f"{what}{where}: free disk space or write to another folder with -o"
        if name is not None and exc.strerror:
            return f"{what}: {name}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())   # one line


@contextlib.contextmanager
def _sigterm_raises():
    """While active (main thread only), SIGTERM raises :class:`Terminated`; a second
    SIGTERM during the clean-up is ignored so that the clean-up completes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # a handler installed outside Python reads as None: restore the default then
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


class _Formatter(logging.Formatter):
    """``diffimaging: warning: message`` (the level in lower case, as in the
    error lines)."""

    def format(self, record):
        return f"diffimaging: {record.levelname.lower()}: {record.getMessage()}"


@contextlib.contextmanager
def _logging(verbose, quiet):
    """While active, the ``diffimaging`` logger writes to the current stderr:
    warnings by default, INFO with -v, DEBUG with -vv, errors only with -q.
    Restored afterwards (``main`` may run many times in one process).  The
    library's ``warnings.warn`` keep Python's own handling."""
    level = (logging.ERROR if quiet else logging.DEBUG if verbose > 1 else
             logging.INFO if verbose else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    lg = logging.getLogger("diffimaging")
    saved = lg.level, lg.propagate
    lg.addHandler(handler)
    lg.setLevel(level)
    lg.propagate = False
    try:
        yield
    finally:
        lg.removeHandler(handler)
        lg.setLevel(saved[0])
        lg.propagate = saved[1]


def _aliases(argv):
    """``diffimaging [options] demo lensless ...`` is ``diffimaging lensless demo ...``,
    ``diffimaging [options] demo fpm ...`` is ``diffimaging fpm demo ...``."""
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), len(argv))
    if argv[i:i + 1] == ["demo"] and argv[i + 1:i + 2] in (["lensless"], ["fpm"]):
        return argv[:i] + [argv[i + 1], "demo"] + argv[i + 2:]
    return argv


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return the
    exit code (see the module docstring).  Argument errors exit through
    ``SystemExit(2)`` from the parser, ``--help`` and ``--version`` through
    ``SystemExit(0)``."""
    args = build_parser().parse_args(_aliases(sys.argv[1:] if argv is None else list(argv)))
    verbose = int(args.verbose)
    try:
        with _sigterm_raises(), _logging(verbose, int(args.quiet)):
            return int(args.func(args))
    except KeyboardInterrupt as exc:
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
        print(f"diffimaging: {what}: the file being written was removed; outputs completed before "
              f"are kept, no manifest was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (*_USER_ERRORS, MemoryError) as exc:
        if verbose:
            traceback.print_exc()
        print(f"diffimaging: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        hint = "please report it" if verbose else "rerun with -v for the traceback; please report it"
        print(f"diffimaging: internal error: {type(exc).__name__}: {_describe(exc)} ({hint})",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
