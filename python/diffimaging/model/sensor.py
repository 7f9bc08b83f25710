"""Sensor stages: binning, intensity, gain and offset, quantisation, saturation."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .._backend import validate as V
from .._backend.autodiff import vjp as _vjp
from .._backend.util import sum_to_shape
from ..ops.binning import bin as _bin
from ..ops.shift import intensity as _intensity
from .stage import Stage, param_value

__all__ = ["Bin", "Intensity", "Gain", "Quantize", "Saturate"]


class Bin(Stage):
    """Sensor pixel binning by an integer ``factor`` (exact area integration),
    with an optional sub-pixel sensor ``shift`` (sy, sx) or (K, 2) in input
    pixels (see :func:`diffimaging.bin`).  An input of (ny, nx) pixels gives
    (ny // factor, nx // factor) sensor pixels."""

    linear = True

    def __init__(self, factor, shift=None, reduce="sum", name=None):
        super().__init__(name)
        self.factor, self.reduce = factor, reduce
        self._declare("shift", shift)

    def forward(self, x, p):
        if "shift" in p:
            s = p["shift"]
            s = s if isinstance(s, (tuple, list)) else param_value(p, "shift", x)
            y, pb = _vjp(_bin, x, s, factor=self.factor, reduce=self.reduce)
        else:
            y, pb = _vjp(_bin, x, factor=self.factor, reduce=self.reduce)
        return y, pb

    def backward(self, pb, g):
        cts = pb(g)
        return cts[0], ({"shift": cts[1]} if len(cts) > 1 else {})

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        f = V.factor(self.factor)
        if ishape[-2] < f or ishape[-1] < f:
            raise ValueError(f"Bin stage {self.name!r}: an input of shape {ishape} is smaller than "
                             f"the binning factor {f}")
        batch = self._shift_batch(ishape) if "shift" in self.params else ishape[:-2]
        return batch + (ishape[-2] // f, ishape[-1] // f)

    def ishape(self, oshape) -> tuple:
        oshape = self._image_shape(oshape)
        f = V.factor(self.factor)
        return oshape[:-2] + (oshape[-2] * f, oshape[-1] * f)


class Intensity(Stage):
    """|u|^2 (a sensor measures intensity)."""

    def forward(self, x, p):
        return _vjp(_intensity, x)

    def backward(self, pb, g):
        return pb(g)[0], {}

    def oshape(self, ishape) -> tuple:
        return tuple(int(n) for n in ishape)


class Gain(Stage):
    """y = gain * x + offset (detector gain and offset; either may be a Param, a
    scalar or an array broadcasting against x, e.g. one gain per capture (K,1,1)).

    The stage is linear (it has an adjoint, ``.H``) when the offset is a fixed
    zero (the default); with any other offset it is affine.
    """

    def __init__(self, gain=1.0, offset=0.0, name=None):
        super().__init__(name)
        self._declare("gain", gain)
        self._declare("offset", offset)

    @property
    def linear(self) -> bool:
        off = self.params["offset"]
        return off.fixed and not np.any(B.to_host_float64(off.value, "offset"))

    def forward(self, x, p):
        xp = B.namespace(x)
        rdt = B.real_dtype_for(xp, x.dtype)
        # array parameters in the data's precision: a float64 gain must not upcast float32 data
        a, b = (v if isinstance(v, float) else xp.astype(v, rdt)
                for v in (param_value(p, "gain", x), param_value(p, "offset", x)))
        return x * a + b, (x, a, b)

    def backward(self, res, g):
        x, a, b = res
        xp = B.namespace(g)
        ga = xp.real(xp.conj(g) * x) if B.is_complex(xp, g.dtype) else g * x
        gb = xp.real(g) if B.is_complex(xp, g.dtype) else g
        out = {}
        out["gain"] = float(xp.sum(ga)) if isinstance(a, float) else sum_to_shape(xp, ga, tuple(a.shape))
        out["offset"] = float(xp.sum(gb)) if isinstance(b, float) else sum_to_shape(xp, gb, tuple(b.shape))
        # an x that broadcast against the gain (one image, K gains) gets the summed cotangent
        return sum_to_shape(xp, g * a, tuple(x.shape)), out

    def oshape(self, ishape) -> tuple:
        return self._broadcast(input=tuple(ishape), gain=self.param_shape("gain"),
                               offset=self.param_shape("offset"))


class Quantize(Stage):
    """Quantisation to ``bits`` bits over [0, full_scale] (values clipped), with a
    straight-through gradient (the VJP passes the cotangent unchanged)."""

    def __init__(self, bits, full_scale=1.0, name=None):
        super().__init__(name)
        bits = V.integer(bits, "bits", minimum=1, maximum=32, type_error=ValueError)
        if not full_scale > 0:
            raise ValueError(f"full_scale must be positive, got {full_scale!r}")
        self.bits, self.full_scale = bits, float(full_scale)

    def forward(self, x, p):
        xp = B.namespace(x)
        levels = 2 ** self.bits - 1
        q = xp.round(xp.clip(x / self.full_scale, 0.0, 1.0) * levels) / levels * self.full_scale
        return xp.astype(q, x.dtype), None

    def backward(self, res, g):
        return g, {}

    def oshape(self, ishape) -> tuple:
        return tuple(int(n) for n in ishape)


class Saturate(Stage):
    """y = min(x, level): sensor saturation.  The gradient is zero where the
    pixel saturated; ``level`` may be a learnable Param (its cotangent is the sum
    of the cotangent over saturated pixels)."""

    def __init__(self, level, name=None):
        super().__init__(name)
        self._declare("level", level)

    def forward(self, x, p):
        xp = B.namespace(x)
        lv = param_value(p, "level", x)
        sat = x >= lv
        return xp.where(sat, xp.astype(xp.asarray(lv, device=B.device_of(x)), x.dtype), x), (sat, lv)

    def backward(self, res, g):
        sat, lv = res
        xp = B.namespace(g)
        zero = xp.zeros_like(g)
        gl = xp.where(sat, g, zero)
        return xp.where(sat, zero, g), {"level": float(xp.sum(gl)) if isinstance(lv, float)
                                       else xp.sum(gl)}

    def oshape(self, ishape) -> tuple:
        return self._broadcast(input=tuple(ishape), level=self.param_shape("level"))
