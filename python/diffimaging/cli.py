"""The ``diffimaging`` command line: each imaging system adds its commands.

``diffimaging demo`` runs the holographic particle-imaging demonstration;
``diffimaging holo ...`` and ``diffimaging piv ...`` work on recordings (see
``diffimaging <command> --help``; lengths in metres).
"""
from __future__ import annotations

import argparse
import sys

from .holography import cli as holography_cli

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffimaging",
                                description="Differentiable imaging: holographic particle imaging "
                                            "(lengths in metres)")
    sub = p.add_subparsers(dest="command", required=True)
    holography_cli.add_commands(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"diffimaging: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
