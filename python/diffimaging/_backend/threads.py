"""Thread count of the CPU kernels and of scipy.fft.

The default is the machine's core count (or ``DIFFIMAGING_NUM_THREADS``).
``set_num_threads`` changes the process default; ``num_threads(n)`` is a
context manager that changes it for the current thread/context only
(contextvars), so concurrent callers do not interfere.

Counts above ``MAX_THREADS`` (1024) are rejected: a count is a request for
work chunks, which the kernels run on at most the machine's core count of
threads, so a larger one only costs memory.  Counts above the core count are
accepted (oversubscription, e.g. to test chunked reductions on a small machine).
"""
from __future__ import annotations

import contextlib
import contextvars
import os

from .validate import integer

__all__ = ["get_num_threads", "set_num_threads", "num_threads", "MAX_THREADS"]

#: Largest accepted thread count.
MAX_THREADS = 1024


def _check_count(n: int, what: str, shown) -> int:
    if n < 1:
        raise ValueError(f"{what} must be a positive integer, got {shown!r}")
    if n > MAX_THREADS:
        raise ValueError(f"{what} must be at most {MAX_THREADS} (this machine has "
                         f"{os.cpu_count() or 1} cores), got {shown!r}")
    return n


def _env_default() -> int:
    env = os.environ.get("DIFFIMAGING_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"DIFFIMAGING_NUM_THREADS must be a positive integer, got {env!r}")
        return _check_count(n, "DIFFIMAGING_NUM_THREADS", env)
    return min(os.cpu_count() or 1, MAX_THREADS)


_default = [_env_default()]
_override: contextvars.ContextVar[int | None] = contextvars.ContextVar("diffimaging_threads", default=None)


def _check(n) -> int:
    # any integer-like (np.int64(2), a 0-d integer array); ValueError is the documented error
    return _check_count(integer(n, "number of threads", minimum=1, type_error=ValueError),
                        "number of threads", n)


def get_num_threads() -> int:
    """Threads used by the CPU kernels and scipy.fft in this context."""
    o = _override.get()
    return _default[0] if o is None else o


def set_num_threads(n: int) -> None:
    """Set the process-wide default number of CPU threads (1 to ``MAX_THREADS``)."""
    _default[0] = _check(n)


@contextlib.contextmanager
def num_threads(n: int):
    """Context manager: use ``n`` CPU threads (1 to ``MAX_THREADS``) inside the block (this context only)."""
    token = _override.set(_check(n))
    try:
        yield
    finally:
        _override.reset(token)
