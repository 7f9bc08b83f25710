"""Thread count of the CPU kernels and of scipy.fft.

The default is the machine's core count (or ``DIFFIMAGING_NUM_THREADS``).
``set_num_threads`` changes the process default; ``num_threads(n)`` is a
context manager that changes it for the current thread/context only
(contextvars), so concurrent callers do not interfere.
"""
from __future__ import annotations

import contextlib
import contextvars
import os

__all__ = ["get_num_threads", "set_num_threads", "num_threads"]


def _env_default() -> int:
    env = os.environ.get("DIFFIMAGING_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"DIFFIMAGING_NUM_THREADS must be a positive integer, got {env!r}")
        if n < 1:
            raise ValueError(f"DIFFIMAGING_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    return os.cpu_count() or 1


_default = [_env_default()]
_override: contextvars.ContextVar[int | None] = contextvars.ContextVar("diffimaging_threads", default=None)


def _check(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    return n


def get_num_threads() -> int:
    """Threads used by the CPU kernels and scipy.fft in this context."""
    o = _override.get()
    return _default[0] if o is None else o


def set_num_threads(n: int) -> None:
    """Set the process-wide default number of CPU threads."""
    _default[0] = _check(n)


@contextlib.contextmanager
def num_threads(n: int):
    """Context manager: use ``n`` CPU threads inside the block (this context only)."""
    token = _override.set(_check(n))
    try:
        yield
    finally:
        _override.reset(token)
