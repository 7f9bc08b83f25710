"""Differentiable forward models y = f(x, theta): parameters, stages and models.

A :class:`Model` chains :class:`Stage` objects in the order light meets them.
Every stage has an explicit VJP, so ``diffimaging.vjp(model, x)`` returns the
cotangent of the object *and* of every system parameter without any tracing::

    model = Model(AbsorptionPhase(),
                  Propagate(Param(3e-3, bounds=(1e-3, 5e-3)), wavelength=532e-9, pixel_size=2e-6),
                  Intensity())
    y = model(x)                                   # forward
    y, pullback = vjp(model, x)
    gx, gparams = pullback(g)                      # gparams["propagate.z"], ...

Parameters given as plain values are fixed (known); :class:`Param` objects are
learnable unless ``fixed=True``.  Units are SI (metres, radians).
"""
from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from typing import Callable

import numpy as np

from . import _backend as B
from ._backend import validate as V
from ._backend.autodiff import vjp as _vjp
from .ops.binning import bin as _bin
from .ops.propagate import propagate as _propagate
from .ops.shift import intensity as _intensity
from .ops.shift import shift as _shift

__all__ = [
    "Param", "Model", "Stage", "Propagate", "Shift", "Bin", "Intensity", "Pupil", "Gain",
    "Quantize", "Saturate", "Complex", "AmplitudePhase", "AbsorptionPhase", "Custom",
    "zernike_noll",
]


# --------------------------------------------------------------------------- Param

class Param:
    """A real system parameter (scalar or array): a distance, a shift per capture,
    Zernike coefficients, a gain...

    Parameters
    ----------
    value : float or array
        Initial value, in the unit of the quantity (SI: metres, radians, pixels for shifts).
    bounds : (lo, hi), optional
        The physical range Omega_theta, enforced by projection (clipping) in the solvers.
        Either end may be None.
    fixed : bool
        A fixed parameter is part of the model but never optimised.
    scale : float, optional
        Typical size of a meaningful change of this parameter, used by the solvers
        to scale its steps (so that metres and radians need no hand-tuned step
        sizes).  Default: the bounds' width if both are given, else |value|, else 1.
    """

    def __init__(self, value, *, bounds=None, fixed=False, scale=None):
        if isinstance(value, Param):
            raise TypeError("value must be a number or an array, not a Param")
        if isinstance(value, bool) or isinstance(value, complex):
            raise TypeError(f"a Param must be real, got {value!r}")
        if isinstance(value, (list, tuple)):
            value = np.asarray(value, dtype=np.float64)
        self.value = value
        if bounds is not None:
            if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
                raise ValueError(f"bounds must be a (lo, hi) pair, got {bounds!r}")
            lo, hi = bounds
            if lo is not None and hi is not None and not float(lo) <= float(hi):
                raise ValueError(f"bounds must have lo <= hi, got {bounds!r}")
            bounds = (None if lo is None else float(lo), None if hi is None else float(hi))
        self.bounds = bounds
        self.fixed = bool(fixed)
        if scale is not None and (not np.isfinite(scale) or scale <= 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        self._scale = scale

    @property
    def scale(self) -> float:
        if self._scale is not None:
            return float(self._scale)
        if self.bounds is not None and None not in self.bounds and self.bounds[1] > self.bounds[0]:
            return self.bounds[1] - self.bounds[0]
        v = np.abs(B.to_host_float64(self.value, "value"))
        m = float(np.max(v)) if v.size else 0.0
        return m if m > 0 else 1.0

    def project(self, v):
        """Clip ``v`` (an array of any library, or a float) to the bounds."""
        if self.bounds is None:
            return v
        lo, hi = self.bounds
        if isinstance(v, numbers.Real):
            if lo is not None:
                v = max(v, lo)
            if hi is not None:
                v = min(v, hi)
            return v
        xp = B.namespace(v)
        return xp.clip(v, lo, hi)

    def __repr__(self):
        extra = f", bounds={self.bounds}" if self.bounds else ""
        extra += ", fixed=True" if self.fixed else ""
        return f"Param({self.value!r}{extra})"


def _as_param(v) -> Param:
    return v if isinstance(v, Param) else Param(v, fixed=True)


# --------------------------------------------------------------------------- Stage

class Stage(ABC):
    """Base class of a differentiable stage.

    Subclasses declare their parameters with ``self._declare(name, value)`` and
    implement ``forward(x, p) -> (y, residuals)`` and
    ``backward(residuals, g) -> (gx, {name: cotangent})``, where ``p`` maps the
    stage's parameter names to their current values (arrays of the data's
    library or Python floats).
    """

    def __init__(self, name: str | None = None):
        self.name = name or type(self).__name__.lower()
        self.params: dict[str, Param] = {}

    def _declare(self, name, value):
        if value is None:
            return
        self.params[name] = _as_param(value)

    @abstractmethod
    def forward(self, x, p):
        """(y, residuals) for input x and parameter values p."""

    @abstractmethod
    def backward(self, res, g):
        """(cotangent of x, {parameter name: cotangent}) for the output cotangent g."""

    def __call__(self, x, **values):
        p = {k: values.get(k, prm.value) for k, prm in self.params.items()}
        return self.forward(x, p)[0]

    def __repr__(self):
        ps = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({ps})"


def _value_in(p, key, like):
    """Parameter value as an array of ``like``'s library (or a Python float)."""
    v = p[key]
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    xp = B.namespace(like)
    try:
        B.namespace(v, like)
        return v
    except TypeError:
        host = B.to_host_float64(v, key)
        return xp.asarray(host, device=B.device_of(like))


def _reduce_like(ct, value):
    """Cotangent ``ct`` (array) returned in the form of the parameter value."""
    if isinstance(value, numbers.Real):
        return float(ct) if not hasattr(ct, "shape") or tuple(ct.shape) == () else ct
    return ct


# --------------------------------------------------------------------------- optics

class Propagate(Stage):
    """Free-space propagation by ``z`` metres (see :func:`diffimaging.propagate`).

    ``z`` is a float, a :class:`Param`, or an array of K distances.  With K
    distances, ``mode="stack"`` makes K planes of one input, ``mode="batch"``
    propagates input k by z[k] (K captures with their own distances, e.g. after a
    per-capture :class:`Shift`); ``"auto"`` (default) uses "batch" when the
    input's leading axis has length K, else "stack".

    ``carrier`` defaults to False here: forward models of intensity data never
    see the plane-wave phase, and the carrier-free z-gradient keeps full
    single-precision accuracy (CONVENTIONS.md).
    """

    def __init__(self, z, wavelength, pixel_size, method="asm", pad=True, carrier=False,
                 band_limit=True, mode="auto", name=None):
        super().__init__(name)
        self._declare("z", z)
        if mode not in ("auto", "stack", "batch"):
            raise ValueError(f"mode must be 'auto', 'stack' or 'batch', got {mode!r}")
        self.mode = mode
        self.static = dict(wavelength=wavelength, pixel_size=pixel_size, method=method, pad=pad,
                           carrier=carrier, band_limit=band_limit)

    def _batched(self, x, z):
        if isinstance(z, float) or getattr(z, "ndim", 0) == 0:
            return False
        k = int(z.shape[0])
        if self.mode == "stack":
            return False
        if self.mode == "batch":
            if x.ndim < 3 or int(x.shape[0]) != k:
                raise ValueError(f"mode='batch' needs an input with a leading axis of {k} "
                                 f"(one per distance), got shape {tuple(x.shape)}")
            return True
        return x.ndim >= 3 and int(x.shape[0]) == k and k > 1

    def forward(self, x, p):
        z = _value_in(p, "z", x)
        if not self._batched(x, z):
            y, pb = _vjp(_propagate, x, z, **self.static)
            return y, ("one", pb, z)
        xp = B.namespace(x)
        outs, pbs = [], []
        for k in range(int(z.shape[0])):
            y, pb = _vjp(_propagate, x[k, ...], z[k], **self.static)
            outs.append(y)
            pbs.append(pb)
        return xp.stack(outs, axis=0), ("batch", pbs, z)

    def backward(self, res, g):
        kind, pb, z = res
        if kind == "one":
            gx, gz = pb(g)
            return gx, {"z": _reduce_like(gz, z)}
        xp = B.namespace(g)
        gxs, gzs = zip(*[pbk(g[k, ...]) for k, pbk in enumerate(pb)])
        return xp.stack(list(gxs), axis=0), {"z": xp.stack(list(gzs), axis=0)}


class Shift(Stage):
    """Periodic sub-pixel translation by ``shift`` = (sy, sx) pixels, or (K, 2)
    for K captures (see :func:`diffimaging.shift`)."""

    def __init__(self, shift, name=None):
        super().__init__(name)
        self._declare("shift", shift)

    def forward(self, x, p):
        s = p["shift"]
        s = s if isinstance(s, (tuple, list)) else _value_in(p, "shift", x)
        y, pb = _vjp(_shift, x, s)
        return y, pb

    def backward(self, pb, g):
        gx, gs = pb(g)
        return gx, {"shift": gs}


class Bin(Stage):
    """Sensor pixel binning by an integer ``factor`` (exact area integration),
    with an optional sub-pixel sensor ``shift`` (sy, sx) or (K, 2) in input
    pixels (see :func:`diffimaging.bin`)."""

    def __init__(self, factor, shift=None, reduce="sum", name=None):
        super().__init__(name)
        self.factor, self.reduce = factor, reduce
        self._declare("shift", shift)

    def forward(self, x, p):
        if "shift" in p:
            s = p["shift"]
            s = s if isinstance(s, (tuple, list)) else _value_in(p, "shift", x)
            y, pb = _vjp(_bin, x, s, factor=self.factor, reduce=self.reduce)
        else:
            y, pb = _vjp(_bin, x, factor=self.factor, reduce=self.reduce)
        return y, pb

    def backward(self, pb, g):
        cts = pb(g)
        return cts[0], ({"shift": cts[1]} if len(cts) > 1 else {})


class Intensity(Stage):
    """|u|^2 (a sensor measures intensity)."""

    def forward(self, x, p):
        return _vjp(_intensity, x)

    def backward(self, pb, g):
        return pb(g)[0], {}


# ------------------------------------------------------------------- Zernike / pupil

def _noll_to_nm(j: int) -> tuple[int, int]:
    """Noll index j >= 1 -> (n, m) with the sign of m giving cos (m > 0) / sin (m < 0)."""
    if j < 1:
        raise ValueError(f"Noll indices start at 1, got {j}")
    n = 0
    while (n + 1) * (n + 2) // 2 < j:
        n += 1
    k = j - n * (n + 1) // 2 - 1           # 0 .. n within the radial order
    ms = sorted({abs(m) for m in range(-n, n + 1, 2)})
    # Noll order within n: |m| ascending, each non-zero |m| taking two consecutive j
    seq = []
    for am in ms:
        seq += [am] if am == 0 else [am, am]
    am = seq[k]
    if am == 0:
        return n, 0
    # even j -> cosine (m > 0), odd j -> sine (m < 0)
    return n, am if j % 2 == 0 else -am


def zernike_noll(j: int, rho, theta, xp=None):
    """Zernike polynomial Z_j (Noll index, Noll normalisation: unit RMS over the
    unit disk) at polar coordinates (rho, theta); zero outside rho <= 1."""
    xp = np if xp is None else xp
    n, m = _noll_to_nm(int(j))
    am = abs(m)
    R = xp.zeros_like(rho)
    for s in range((n - am) // 2 + 1):
        c = (-1) ** s * math.factorial(n - s) / (
            math.factorial(s) * math.factorial((n + am) // 2 - s) * math.factorial((n - am) // 2 - s))
        R = R + c * rho ** (n - 2 * s)
    if m == 0:
        Z = math.sqrt(n + 1) * R
    elif m > 0:
        Z = math.sqrt(2 * (n + 1)) * R * xp.cos(am * theta)
    else:
        Z = math.sqrt(2 * (n + 1)) * R * xp.sin(am * theta)
    return xp.where(rho <= 1.0, Z, 0.0)


class Pupil(Stage):
    """Coherent imaging through a circular pupil of numerical aperture ``na`` with
    a phase aberration sum_j c_j Z_j (Noll-indexed Zernike polynomials, c in
    radians, indices ``noll`` = 1, 2, ... by default for as many coefficients as
    given), applied as a filter in the (unshifted) Fourier plane of the field's
    grid: y = IFFT(P * FFT(x)), P = circ(|f| <= na / wavelength) exp(i phi).

    ``zernike`` (the coefficients) is a differentiable parameter.
    """

    def __init__(self, na, wavelength, pixel_size, zernike=None, noll=None, name=None):
        super().__init__(name)
        if not na > 0:
            raise ValueError(f"na must be positive, got {na!r}")
        self.na, self.wavelength = float(na), float(wavelength)
        self.pixel_size = V.pixel_size(pixel_size)
        if zernike is not None:
            nz = int(np.size(B.to_host_float64(zernike.value if isinstance(zernike, Param) else zernike,
                                               "zernike")))
            self.noll = list(range(1, nz + 1)) if noll is None else [int(j) for j in noll]
            if len(self.noll) != nz:
                raise ValueError(f"noll has {len(self.noll)} indices for {nz} coefficients")
        else:
            self.noll = []
        self._declare("zernike", zernike)
        self._cache = {}

    def _basis(self, xp, shape, device):
        key = (id(xp), tuple(shape), str(device))
        if key not in self._cache:
            ny, nx = shape
            fy = np.fft.fftfreq(ny, self.pixel_size[0])[:, None]
            fx = np.fft.fftfreq(nx, self.pixel_size[1])[None, :]
            fc = self.na / self.wavelength
            rho = np.sqrt(fy ** 2 + fx ** 2) / fc
            theta = np.arctan2(fy, fx)
            mask = (rho <= 1.0).astype(np.float64)
            Z = np.stack([zernike_noll(j, rho, theta) for j in self.noll]) if self.noll \
                else np.zeros((0, ny, nx))
            self._cache = {key: (xp.asarray(mask, device=device), xp.asarray(Z, device=device))}
        return self._cache[key]

    def _pupil(self, x, p):
        xp = B.namespace(x)
        mask, Z = self._basis(xp, tuple(x.shape[-2:]), B.device_of(x))
        cdt = B.complex_dtype_for(xp, x.dtype)
        if self.noll:
            c = xp.asarray(_value_in(p, "zernike", x), dtype=xp.float64)
            phi = xp.sum(xp.reshape(c, (-1, 1, 1)) * Z, axis=0)
            P = xp.astype(mask * xp.cos(phi), cdt) + xp.astype(mask * xp.sin(phi), cdt) * 1j
        else:
            P = xp.astype(mask, cdt)
        return P, Z, cdt

    def forward(self, x, p):
        xp = B.namespace(x)
        P, Z, cdt = self._pupil(x, p)
        X = xp.fft.fftn(xp.astype(x, cdt), axes=(-2, -1))
        y = xp.fft.ifftn(X * P, axes=(-2, -1))
        return y, (X, P, Z, x, p)

    def backward(self, res, g):
        X, P, Z, x, p = res
        xp = B.namespace(g)
        G = xp.fft.fftn(g, axes=(-2, -1))
        gx = xp.fft.ifftn(G * xp.conj(P), axes=(-2, -1))
        if not B.is_complex(xp, x.dtype):
            gx = xp.real(gx)
        out = {}
        if self.noll:
            n = float(x.shape[-1] * x.shape[-2])
            # d y / d c_j = IFFT(i Z_j P X); Parseval: Re sum conj(G) i Z_j P X / N
            t = xp.real(xp.conj(G) * P * X * 1j)
            t = xp.sum(xp.reshape(t, (-1,) + tuple(t.shape[-2:])), axis=0) if t.ndim > 2 else t
            out["zernike"] = xp.sum(xp.sum(xp.astype(t, xp.float64)[None, ...] * Z, axis=-1),
                                    axis=-1) / n
            v = p["zernike"]
            if hasattr(v, "shape"):
                out["zernike"] = xp.reshape(out["zernike"], tuple(v.shape))
        return gx, out


# ------------------------------------------------------------------------- sensor

class Gain(Stage):
    """y = gain * x + offset (detector gain and offset; either may be a Param, a
    scalar or an array broadcasting against x, e.g. one gain per capture (K,1,1))."""

    def __init__(self, gain=1.0, offset=0.0, name=None):
        super().__init__(name)
        self._declare("gain", gain)
        self._declare("offset", offset)

    def forward(self, x, p):
        a = _value_in(p, "gain", x)
        b = _value_in(p, "offset", x)
        return x * a + b, (x, a, b)

    def backward(self, res, g):
        x, a, b = res
        xp = B.namespace(g)
        from ._backend.util import sum_to_shape

        ga = xp.real(xp.conj(g) * x) if B.is_complex(xp, g.dtype) else g * x
        gb = xp.real(g) if B.is_complex(xp, g.dtype) else g
        out = {}
        out["gain"] = float(xp.sum(ga)) if isinstance(a, float) else sum_to_shape(xp, ga, tuple(a.shape))
        out["offset"] = float(xp.sum(gb)) if isinstance(b, float) else sum_to_shape(xp, gb, tuple(b.shape))
        return g * a, out


class Quantize(Stage):
    """Quantisation to ``bits`` bits over [0, full_scale] (values clipped), with a
    straight-through gradient (the VJP passes the cotangent unchanged)."""

    def __init__(self, bits, full_scale=1.0, name=None):
        super().__init__(name)
        if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 1 <= bits <= 32:
            raise ValueError(f"bits must be an integer in 1..32, got {bits!r}")
        if not full_scale > 0:
            raise ValueError(f"full_scale must be positive, got {full_scale!r}")
        self.bits, self.full_scale = int(bits), float(full_scale)

    def forward(self, x, p):
        xp = B.namespace(x)
        levels = 2 ** self.bits - 1
        q = xp.round(xp.clip(x / self.full_scale, 0.0, 1.0) * levels) / levels * self.full_scale
        return xp.astype(q, x.dtype), None

    def backward(self, res, g):
        return g, {}


class Saturate(Stage):
    """y = min(x, level): sensor saturation.  The gradient is zero where the
    pixel saturated; ``level`` may be a learnable Param (its cotangent is the sum
    of the cotangent over saturated pixels)."""

    def __init__(self, level, name=None):
        super().__init__(name)
        self._declare("level", level)

    def forward(self, x, p):
        xp = B.namespace(x)
        lv = _value_in(p, "level", x)
        sat = x >= lv
        return xp.where(sat, xp.astype(xp.asarray(lv, device=B.device_of(x)), x.dtype), x), (sat, lv)

    def backward(self, res, g):
        sat, lv = res
        xp = B.namespace(g)
        zero = xp.zeros_like(g)
        gl = xp.where(sat, g, zero)
        return xp.where(sat, zero, g), {"level": float(xp.sum(gl)) if isinstance(lv, float)
                                       else xp.sum(gl)}


# ---------------------------------------------------------------- object models

class Complex(Stage):
    """The object is the complex transmittance itself (identity stage)."""

    def forward(self, x, p):
        return x, None

    def backward(self, res, g):
        return g, {}


def _split_pair(stage, x, names):
    """The two real maps of an object given as (2, ..., ny, nx)."""
    if x.ndim < 3 or int(x.shape[0]) != 2:
        raise ValueError(f"{type(stage).__name__} expects a real array of shape (2, ..., ny, nx) "
                         f"({names}), got shape {tuple(x.shape)}")
    return x[0, ...], x[1, ...]


class AmplitudePhase(Stage):
    """x = (amplitude, phase) stacked on a leading axis of 2 (real) ->
    amplitude * exp(i phase) (phase in radians)."""

    def forward(self, x, p):
        xp = B.namespace(x)
        a, ph = _split_pair(self, x, "amplitude, phase")
        cdt = B.complex_dtype_for(xp, x.dtype)
        e = xp.astype(xp.cos(ph), cdt) + xp.astype(xp.sin(ph), cdt) * 1j
        return xp.astype(a, cdt) * e, (a, e)

    def backward(self, res, g):
        a, e = res
        xp = B.namespace(g)
        ga = xp.real(xp.conj(g) * e)
        gph = xp.real(xp.conj(g) * e * 1j) * a
        return xp.stack([ga, gph], axis=0), {}


class AbsorptionPhase(Stage):
    """x = (absorption a, phase phi) stacked on a leading axis of 2 (real) ->
    exp(-a + i phi): a = 0 is transparent, a > 0 absorbs."""

    def forward(self, x, p):
        xp = B.namespace(x)
        a, ph = _split_pair(self, x, "absorption, phase")
        cdt = B.complex_dtype_for(xp, x.dtype)
        amp = xp.exp(-a)
        u = xp.astype(amp * xp.cos(ph), cdt) + xp.astype(amp * xp.sin(ph), cdt) * 1j
        return u, u

    def backward(self, u, g):
        xp = B.namespace(g)
        t = xp.conj(g) * u
        return xp.stack([-xp.real(t), xp.real(t * 1j)], axis=0), {}


class Custom(Stage):
    """A user's stage: ``forward(x, **params) -> y`` and
    ``vjp(x, y, g, **params) -> gx`` or ``(gx, {param: cotangent})``.

    Example
    -------
    >>> square = Custom(lambda x: x * x, lambda x, y, g: 2 * g * x)
    """

    def __init__(self, forward: Callable, vjp: Callable, params: dict | None = None, name=None):
        super().__init__(name or "custom")
        if not callable(forward) or not callable(vjp):
            raise TypeError("Custom(forward, vjp) needs two callables")
        self._f, self._vjp = forward, vjp
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


# --------------------------------------------------------------------------- Model

class Model:
    """A forward model: stages in the order light meets them.

    ``model(x)`` runs it with the parameters' current values;
    ``model(x, params={"propagate.z": 2e-3})`` overrides some;
    ``model.params`` maps dotted names ("stage.param") to the :class:`Param`
    objects; ``diffimaging.vjp(model, x)`` returns ``(y, pullback)`` with
    ``pullback(g) -> (gx, {name: cotangent})`` for every parameter, fixed or not.
    Stage names are made unique (a second Propagate becomes "propagate_1").
    """

    def __init__(self, *stages: Stage):
        if not stages:
            raise ValueError("Model needs at least one stage")
        seen: dict[str, int] = {}
        for s in stages:
            if not isinstance(s, Stage):
                raise TypeError(f"Model stages must be Stage objects, got {type(s).__name__}")
            base = s.name
            if base in seen:
                seen[base] += 1
                s.name = f"{base}_{seen[base]}"
            else:
                seen[base] = 0
        self.stages = list(stages)

    @property
    def params(self) -> dict[str, Param]:
        return {f"{s.name}.{k}": prm for s in self.stages for k, prm in s.params.items()}

    def _values(self, overrides):
        overrides = dict(overrides or {})
        names = self.params
        unknown = set(overrides) - set(names)
        if unknown:
            raise KeyError(f"unknown parameter(s) {sorted(unknown)}; this model has {sorted(names)}")
        return [{k: overrides.get(f"{s.name}.{k}", prm.value) for k, prm in s.params.items()}
                for s in self.stages]

    def forward(self, x, params=None):
        tape = []
        for s, p in zip(self.stages, self._values(params)):
            x, res = s.forward(x, p)
            tape.append(res)
        return x, tape

    def __call__(self, x, params=None):
        return self.forward(x, params)[0]

    def _pullback(self, tape, g):
        grads = {}
        for s, res in zip(reversed(self.stages), reversed(tape)):
            g, gp = s.backward(res, g)
            for k, v in gp.items():
                grads[f"{s.name}.{k}"] = v
        return g, grads

    def __diffimaging_vjp__(self, x, params=None):
        y, tape = self.forward(x, params)
        return y, lambda g: self._pullback(tape, g)

    def __repr__(self):
        return "Model(\n  " + ",\n  ".join(repr(s) for s in self.stages) + "\n)"
