"""The forward model of pixel-super-resolution lensless imaging.

A sample of complex transmission t (high-resolution pitch p = P / factor, P the
sensor pitch) is lit by a plane wave; capture k records, at distance z_k, the
intensity binned by the sensor pixels, the sensor grid displaced by s_k::

    I_k = B(s_k) | 1 + A(z_k) (t - 1) |^2          (then, optionally, g_k I_k + b_k)

- ``A(z)`` is the band-limited angular-spectrum propagator without the carrier
  (CONVENTIONS.md), in the medium (wavelength lambda / n_medium), on a grid
  zero-padded to twice its size: the sample is the window that the sensor sees,
  surrounded by ``pad`` high-resolution pixels of free field, and outside that
  grid it is clear glass (t = 1).  Propagating the *scattered* field t - 1 and
  adding the unit illumination makes that background exact (no edge of the grid
  diffracts).
- ``B(s)`` is exact area integration over the sensor pixels (mean over each
  pixel), the grid moved by s = (sy, sx) metres (the convention of
  :mod:`diffimaging.lensless.captures`), computed by :func:`diffimaging.bin`
  with the shift converted to high-resolution pixels.

The stages are ordinary :class:`~diffimaging.model.Stage` objects with explicit
VJPs: :class:`Heights` (t -> the K propagated fields, one batched propagation:
one forward FFT and K inverse FFTs), :class:`~diffimaging.model.Intensity` and
:class:`SensorGrid` (one batched binning of the K intensities); :func:`model`
chains them into a :class:`~diffimaging.model.Model` whose parameters are
``"heights.z"`` (K,), ``"heights.offset"`` (a common height offset),
``"sensor.shift"`` (K, 2) and optionally ``"gain.gain"`` / ``"gain.offset"``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from .._backend import validate as V
from .._backend.autodiff import vjp as _vjp
from ..model import Gain, Intensity, Model, Param, Stage
from ..model.stage import param_value
from ..ops.binning import bin as _bin
from ..ops.propagate import propagate as _propagate

__all__ = ["Heights", "SensorGrid", "model", "field_shape", "default_pad", "check_learn", "LEARNABLE"]

#: names of the geometry groups that :func:`model` (and ``reconstruct``) can learn
LEARNABLE = ("shift", "z", "offset", "gain")


class Heights(Stage):
    """t (..., N, N) -> the K fields ``1 + A(z_k + offset)(t - 1)``, stacked on a
    new leading axis (K, ..., N, N).

    Parameters
    ----------
    z : (K,) array or Param [m]
        Sample-to-sensor distances.
    wavelength : float [m]
        Vacuum wavelength.
    pixel_size : float [m]
        Pitch of the field.
    n_medium : float
        Refractive index between sample and sensor.
    offset : float or Param [m]
        A distance added to every z_k (learned alone, it is the "common offset"
        of all heights; 0 and fixed by default).
    band_limit : bool
        Band-limited angular spectrum (default).
    """

    def __init__(self, z, wavelength, pixel_size, n_medium=1.0, offset=0.0, band_limit=True,
                 name=None):
        super().__init__(name or "heights")
        self._declare("z", z)
        self._declare("offset", offset)
        zs = self.param_shape("z")
        if len(zs) != 1 or zs[0] < 1:
            raise ValueError(f"z must be a 1-d array of K >= 1 distances in metres, got shape {zs}")
        if self.param_shape("offset") != ():
            raise ValueError(f"offset must be one distance in metres, got shape "
                             f"{self.param_shape('offset')}")
        self.wavelength = V.wavelength(wavelength)
        self.n_medium = V.n_medium(n_medium)
        self.pixel_size = V.positive_scalar(pixel_size, "pixel_size", typical=(1e-9, 1e-2))
        self.band_limit = bool(band_limit)

    def _z(self, p, like):
        z = param_value(p, "z", like)
        off = param_value(p, "offset", like)
        return z + off

    def forward(self, x, p):
        xp = B.namespace(x)
        o = x - 1.0
        y, pb = _vjp(_propagate, o, self._z(p, x), wavelength=self.wavelength / self.n_medium,
                     pixel_size=self.pixel_size, pad=True, band_limit=self.band_limit,
                     carrier=False)
        return y + 1.0, (pb, p["z"], p["offset"], xp)

    def backward(self, res, g):
        pb, z, off, xp = res
        gx, gz = pb(g)
        gz = xp.asarray(gz, dtype=xp.float64) if B.dtype_kind(xp, gz.dtype) != "f8" else gz
        goff = xp.sum(gz)
        return gx, {"z": gz, "offset": float(goff) if isinstance(off, float) else goff}

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        return (self.param_shape("z")[0],) + ishape


class SensorGrid(Stage):
    """Sensor pixels of K captures: the high-resolution intensities (K, N, N)
    integrated over the (ny, nx) sensor pixels of pitch ``factor`` * p, the grid
    of capture k displaced by ``shift[k]`` = (sy, sx) metres from the window.

    The window (the region a sensor at zero shift sees) starts ``origin``
    high-resolution pixels from the field grid's corner (the padding).  Pixel
    values are means over the pixel area (a clear sample gives 1).

    Parameters
    ----------
    factor : int
        High-resolution pixels per sensor pixel along each axis.
    shift : (K, 2) array or Param [m]
        Sensor grid positions (sy, sx).
    pixel_size : float [m]
        High-resolution pitch p.
    sensor_shape : (ny, nx)
        Sensor pixels of one capture.
    origin : int
        High-resolution pixels between the field grid's corner and the window.
    """

    linear = True

    def __init__(self, factor, shift, pixel_size, sensor_shape, origin=0, name=None):
        super().__init__(name or "sensor")
        self.factor = V.factor(factor)
        self.pixel_size = V.positive_scalar(pixel_size, "pixel_size", typical=(1e-9, 1e-2))
        ny, nx = (V.integer(n, "sensor_shape", minimum=1, type_error=ValueError)
                  for n in sensor_shape)
        self.sensor_shape = (ny, nx)
        self.origin = V.integer(origin, "origin", minimum=0, type_error=ValueError)
        self._declare("shift", shift)
        ss = self.param_shape("shift")
        if len(ss) != 2 or ss[1] != 2:
            raise ValueError(f"shift must be (K, 2) sensor positions (sy, sx) in metres, got "
                             f"shape {ss}")
        # sensor pixel i is binning-output pixel i + first, whose grid is offset by
        # (origin - factor * first) + s / p high-resolution pixels
        self.first = self.origin // self.factor
        self.rest = float(self.origin - self.factor * self.first)

    def _hr_shift(self, p, x):
        s = param_value(p, "shift", x)
        return s * (1.0 / self.pixel_size) + self.rest

    def forward(self, x, p):
        xp = B.namespace(x)
        f0, (ny, nx) = self.first, self.sensor_shape
        self._check_fits(tuple(x.shape))
        y, pb = _vjp(_bin, x, self._hr_shift(p, x), factor=self.factor, reduce="mean")
        full = tuple(y.shape)
        return y[..., f0:f0 + ny, f0:f0 + nx], (pb, full, xp, p["shift"])

    def backward(self, res, g):
        pb, full, xp, s = res
        f0, (ny, nx) = self.first, self.sensor_shape
        gfull = xp.zeros(full, dtype=g.dtype, device=B.device_of(g))
        gfull[..., f0:f0 + ny, f0:f0 + nx] = g
        gx, gs = pb(gfull)
        return gx, {"shift": gs * (1.0 / self.pixel_size)}

    def _check_fits(self, ishape):
        f, (ny, nx) = self.factor, self.sensor_shape
        my, mx = ishape[-2] // f, ishape[-1] // f
        if self.first + ny > my or self.first + nx > mx:
            raise ValueError(f"SensorGrid {self.name!r}: {ny}x{nx} sensor pixels of {f} "
                             f"high-resolution pixels starting {self.origin} pixels in do not fit "
                             f"in a field of shape {ishape[-2:]}")

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        self._check_fits(ishape)
        batch = self._shift_batch(ishape)
        return batch + self.sensor_shape

    def ishape(self, oshape) -> tuple:
        """The field grid of :func:`field_shape`: the window and ``origin`` pixels
        on every side (what :meth:`H` maps sensor images back to)."""
        oshape = self._image_shape(oshape)
        return oshape[:-2] + tuple(n * self.factor + 2 * self.origin for n in self.sensor_shape)


def field_shape(sensor_shape, factor, pad) -> tuple[int, int]:
    """(NY, NX) high-resolution pixels of the field grid: the window the sensor
    sees (``sensor_shape`` * ``factor``) and ``pad`` pixels on every side."""
    f = V.factor(factor)
    pad = V.integer(pad, "pad", minimum=0, type_error=ValueError)
    return tuple(int(n) * f + 2 * pad for n in sensor_shape)


def _as_param(value, learn, bounds, scale):
    return Param(value, bounds=bounds, fixed=not learn, scale=scale)


def model(sensor_shape, shifts, z, *, wavelength, pixel_size, factor, n_medium=1.0, pad=None,
          learn=("shift", "z"), z_bounds=None, shift_bounds=None, gain=False,
          band_limit=True) -> Model:
    """The lensless forward model of K captures as a :class:`~diffimaging.Model`.

    ``model(t)`` maps a complex transmission ``t`` of shape :func:`field_shape`
    (``(ny * factor + 2 pad, nx * factor + 2 pad)``, pitch ``pixel_size / factor``)
    to the K predicted captures (K, ny, nx) (unit where the sample is clear).

    Parameters
    ----------
    sensor_shape : (ny, nx)
        Sensor pixels of one capture.
    shifts : (K, 2) [m]
        Sensor grid positions (sy, sx) (initial values of ``"sensor.shift"``).
    z : (K,) [m]
        Sample-to-sensor distances (initial values of ``"heights.z"``).
    wavelength : float [m]
        Vacuum wavelength.
    pixel_size : float [m]
        Sensor pitch P.
    factor : int
        Super-resolution factor (high-resolution pitch P / factor).
    n_medium : float
        Refractive index between sample and sensor.
    pad : int, optional
        High-resolution pixels around the window (default: ``2 * factor`` sensor
        pixels plus the largest |shift|, at least 64; see :func:`default_pad`).
    learn : subset of ("shift", "z", "offset", "gain")
        The learnable groups: per-capture shifts ``"sensor.shift"``, per-capture
        heights ``"heights.z"``, one common height offset ``"heights.offset"``,
        per-capture gains and offsets ``"gain.gain"`` / ``"gain.offset"`` (K, 1, 1).
    z_bounds, shift_bounds : (lo, hi) [m], optional
        Bounds of every z_k and of every shift component.  Defaults: z within
        [0.5 min z, 1.5 max z] and shifts within the padding.
    gain : bool
        Include the per-capture gain and offset stage (implied by learning "gain").
    band_limit : bool
        Band-limited angular spectrum.

    Returns
    -------
    Model with the stages "heights", "intensity", "sensor" (and "gain").

    Example
    -------
    >>> m = model((64, 64), shifts, z, wavelength=532e-9, pixel_size=1.6e-6, factor=2, pad=64)
    >>> pred = m(np.ones(field_shape((64, 64), 2, 64), complex))     # (K, 64, 64)
    """
    learn = check_learn(learn)
    f = V.factor(factor)
    P = V.positive_scalar(pixel_size, "pixel_size", typical=(1e-9, 1e-2))
    p = P / f
    shifts = np.asarray(B.to_host_float64(shifts, "shifts"), dtype=np.float64)
    z = np.asarray(B.to_host_float64(z, "z"), dtype=np.float64)
    if z.ndim == 0:
        z = z.reshape(1)
    K = z.shape[0]
    if z.ndim != 1:
        raise ValueError(f"z must be (K,) distances in metres, got shape {z.shape}")
    if shifts.shape != (K, 2):
        raise ValueError(f"shifts must be (K, 2) = ({K}, 2), one (sy, sx) pair in metres per "
                         f"capture (K from z), got shape {shifts.shape}")
    smax = float(np.max(np.abs(shifts))) if shifts.size else 0.0
    if pad is None:
        pad = default_pad(shifts, f, P)
    pad = V.integer(pad, "pad", minimum=0, type_error=ValueError)
    if shift_bounds is None:
        reach = (pad - 1) * p
        if smax >= reach:
            raise ValueError(f"pad = {pad} high-resolution pixels ({pad * p * 1e6:.3g} um) is too "
                             f"small for sensor shifts up to {smax * 1e6:.3g} um; give a larger pad")
        shift_bounds = (-reach, reach)
    if z_bounds is None:
        z_bounds = (0.5 * float(np.min(z)), 1.5 * float(np.max(z)))
    if not z_bounds[0] > 0:
        raise ValueError(f"z_bounds must lie above 0 m, got {z_bounds!r}")
    zspan = float(z_bounds[1] - z_bounds[0])
    # scales: a meaningful change of a height is ~1 um, of a shift ~ a tenth of a pixel
    z_p = _as_param(z, "z" in learn, z_bounds, max(zspan, 1e-9) / 100)
    off_p = Param(0.0, bounds=(-zspan / 2, zspan / 2), fixed="offset" not in learn,
                  scale=max(zspan, 1e-9) / 100)
    s_p = _as_param(shifts, "shift" in learn, shift_bounds, P / 10)
    stages = [Heights(z_p, wavelength, p, n_medium, offset=off_p, band_limit=band_limit),
              Intensity(),
              SensorGrid(f, s_p, p, tuple(int(n) for n in sensor_shape), origin=pad)]
    if gain or "gain" in learn:
        lg = "gain" in learn
        stages.append(Gain(Param(np.ones((K, 1, 1)), bounds=(0.0, None), fixed=not lg, scale=0.1),
                           Param(np.zeros((K, 1, 1)), fixed=not lg, scale=0.1)))
    return Model(*stages, name="lensless")


def default_pad(shifts, factor, pixel_size) -> int:
    """The default padding in high-resolution pixels: the largest |shift| plus
    two sensor pixels, rounded up to a whole sensor pixel, and at least 64
    (room for the light that the window's edge scatters towards the sensor)."""
    f = V.factor(factor)
    smax = float(np.max(np.abs(np.asarray(shifts, dtype=np.float64)))) if np.size(shifts) else 0.0
    sensor_px = math.ceil(smax / pixel_size) + 2
    return max(64, sensor_px * f)


def check_learn(learn) -> tuple:
    """``learn`` as a tuple of names from :data:`LEARNABLE` (a clear error otherwise)."""
    return V.names(learn, "learn", LEARNABLE, hint="(learn=() keeps the nominal geometry)")
