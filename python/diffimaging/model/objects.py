"""Object models: how the unknown x becomes the complex transmittance."""
from __future__ import annotations

from .. import _backend as B
from .stage import Stage

__all__ = ["Complex", "AmplitudePhase", "AbsorptionPhase"]


class Complex(Stage):
    """The object is the complex transmittance itself (identity stage)."""

    linear = True

    def forward(self, x, p):
        return x, None

    def backward(self, res, g):
        return g, {}

    def oshape(self, ishape) -> tuple:
        return tuple(int(n) for n in ishape)


class _Pair(Stage):
    """An object given as two real maps stacked on a leading axis of 2."""

    _names = ""

    def _split(self, x):
        if x.ndim < 3 or int(x.shape[0]) != 2:
            raise ValueError(f"{type(self).__name__} expects a real array of shape (2, ..., ny, nx) "
                             f"({self._names}), got shape {tuple(x.shape)}")
        return x[0, ...], x[1, ...]

    def oshape(self, ishape) -> tuple:
        ishape = tuple(int(n) for n in ishape)
        if len(ishape) < 3 or ishape[0] != 2:
            raise ValueError(f"{type(self).__name__} stage {self.name!r} expects a real array of "
                             f"shape (2, ..., ny, nx) ({self._names}), got shape {ishape}")
        return ishape[1:]


class AmplitudePhase(_Pair):
    """x = (amplitude, phase) stacked on a leading axis of 2 (real) ->
    amplitude * exp(i phase) (phase in radians)."""

    _names = "amplitude, phase"

    def forward(self, x, p):
        xp = B.namespace(x)
        a, ph = self._split(x)
        cdt = B.complex_dtype_for(xp, x.dtype)
        e = xp.astype(xp.cos(ph), cdt) + xp.astype(xp.sin(ph), cdt) * 1j
        return xp.astype(a, cdt) * e, (a, e)

    def backward(self, res, g):
        a, e = res
        xp = B.namespace(g)
        ga = xp.real(xp.conj(g) * e)
        gph = xp.real(xp.conj(g) * e * 1j) * a
        return xp.stack([ga, gph], axis=0), {}


class AbsorptionPhase(_Pair):
    """x = (absorption a, phase phi) stacked on a leading axis of 2 (real) ->
    exp(-a + i phi): a = 0 is transparent, a > 0 absorbs (phi in radians)."""

    _names = "absorption, phase"

    def forward(self, x, p):
        xp = B.namespace(x)
        a, ph = self._split(x)
        cdt = B.complex_dtype_for(xp, x.dtype)
        amp = xp.exp(-a)
        u = xp.astype(amp * xp.cos(ph), cdt) + xp.astype(amp * xp.sin(ph), cdt) * 1j
        return u, u

    def backward(self, u, g):
        xp = B.namespace(g)
        t = xp.conj(g) * u
        return xp.stack([-xp.real(t), xp.real(t * 1j)], axis=0), {}
