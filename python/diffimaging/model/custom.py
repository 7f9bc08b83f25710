"""A user's stage from two callables."""
from __future__ import annotations

from typing import Callable

from .stage import Stage

__all__ = ["Custom"]


class Custom(Stage):
    """A user's stage: ``forward(x, **params) -> y`` and
    ``vjp(x, y, g, **params) -> gx`` or ``(gx, {param: cotangent})``.

    ``oshape``: optional callable giving the output shape for an input shape
    (default: the output has the input's shape).  ``linear=True`` declares the
    map linear in x (its adjoint ``.H`` is then the VJP in x).

    Example
    -------
    >>> square = Custom(lambda x: x * x, lambda x, y, g: 2 * g * x)
    """

    def __init__(self, forward: Callable, vjp: Callable, params: dict | None = None, name=None,
                 oshape: Callable | None = None, linear: bool = False):
        super().__init__(name or "custom")
        if not callable(forward) or not callable(vjp):
            raise TypeError("Custom(forward, vjp) needs two callables")
        if oshape is not None and not callable(oshape):
            raise TypeError(f"oshape must be a callable (input shape -> output shape), got "
                            f"{type(oshape).__name__}")
        self._f, self._vjp, self._oshape = forward, vjp, oshape
        self.linear = bool(linear)
        for k, v in (params or {}).items():
            self._declare(k, v)

    def forward(self, x, p):
        y = self._f(x, **p)
        return y, (x, y, p)

    def backward(self, res, g):
        x, y, p = res
        r = self._vjp(x, y, g, **p)
        if isinstance(r, tuple):
            gx, gp = r
            return gx, dict(gp)
        return r, {}

    def oshape(self, ishape) -> tuple:
        ishape = tuple(int(n) for n in ishape)
        return ishape if self._oshape is None else tuple(int(n) for n in self._oshape(ishape))
