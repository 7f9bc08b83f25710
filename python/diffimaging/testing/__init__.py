"""Test helpers for operators and models, public so that every new stage or
operator (the project's or a user's) gets the same checks.

- :func:`dottest`: the adjoint dot test |<A u, v> - <u, A^H v>| <= tol ||A u|| ||v||;
- :func:`check_vjp`: a VJP from :func:`diffimaging.vjp` against central finite
  differences, for array arguments and real parameters;
- :func:`available_backends` / :func:`backend`: the array libraries importable
  here and small helpers to move test data to and from them;
  :mod:`diffimaging.testing.fixtures` wraps them as pytest fixtures.
"""
from __future__ import annotations

from .backends import Backend, available_backends, backend
from .checks import check_vjp, dottest

__all__ = ["dottest", "check_vjp", "available_backends", "backend", "Backend"]
