"""The array libraries available for tests, with helpers to move data to them."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Backend", "available_backends", "backend"]

_KNOWN = ("numpy", "torch", "array_api_strict")


@dataclass(frozen=True)
class Backend:
    """An array library for tests: ``name``, its array-API namespace ``xp``,
    ``asarray(host)`` (a numpy array to this library, on its default device)
    and ``to_numpy(a)`` (back to a numpy array on the host)."""

    name: str
    xp: object

    def asarray(self, host):
        return self.xp.asarray(np.ascontiguousarray(host))

    def to_numpy(self, a) -> np.ndarray:
        if self.name == "torch":
            return a.detach().cpu().numpy()
        return np.asarray(a) if self.name == "numpy" else np.from_dlpack(a)


def _namespace(name: str):
    mod = importlib.import_module(name)
    if name == "array_api_strict":
        return mod
    import array_api_compat

    return array_api_compat.array_namespace(mod.zeros(1))


def available_backends() -> list[str]:
    """Names of the array libraries that import here, among numpy, torch and
    array_api_strict (numpy always comes first)."""
    out = []
    for name in _KNOWN:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        out.append(name)
    return out


def backend(name: str) -> Backend:
    """The :class:`Backend` for ``name`` (one of :func:`available_backends`);
    an ImportError when the library is not installed, a ValueError for an
    unknown name."""
    if name not in _KNOWN:
        raise ValueError(f"unknown backend {name!r}; known: {list(_KNOWN)}")
    return Backend(name, _namespace(name))
