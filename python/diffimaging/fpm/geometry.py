"""LED-array geometry of Fourier ptychography: LED positions and the
illumination wave vectors they give, with the explicit VJP of the wave vectors
with respect to the geometry.

A planar array of ``rows`` x ``cols`` LEDs at pitch ``pitch`` [m] lies a height
``height`` [m] above the sample.  LED j = r * cols + c (row-major) has the
nominal position, centred on the optical axis,

    u_j = (c - (cols - 1) / 2) * pitch          (x)
    v_j = (r - (rows - 1) / 2) * pitch          (y)

and the array is rotated by ``rotation`` a [rad] about the optical axis and
moved by ``offset`` = (dy, dx) [m]:

    x_j = cos(a) u_j - sin(a) v_j + dx,   y_j = sin(a) u_j + cos(a) v_j + dy,   z_j = h.

Its light reaches the sample as a plane wave whose transverse spatial
frequencies [1/m] are the direction cosines of the LED over the wavelength,

    (ky_j, kx_j) = (y_j, x_j) / (R_j * wavelength),   R_j = sqrt(x_j^2 + y_j^2 + h^2).

The wave travels *from* the LED, so its phase on the sample is
exp(-2 pi i (ky_j y + kx_j x)), and the object's spectrum O is seen shifted:
the field leaving the sample has the spectrum O(f + k_j).

Following CONVENTIONS.md, positions are ``(y, x, z)`` and wave vectors and
offsets ``(y, x)`` pairs.  Every function works on arrays of the library of
its array arguments (numpy by default) in float64.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _backend as B
from .._backend import validate as V

__all__ = ["nominal_grid", "led_positions", "wavevectors", "wavevectors_vjp", "check_array_shape"]


def check_array_shape(rows, cols) -> tuple[int, int]:
    """``(rows, cols)`` of an LED array as positive Python ints (errors name them)."""
    return (V.integer(rows, "rows", minimum=1, hint="(LED rows)"),
            V.integer(cols, "cols", minimum=1, hint="(LED columns)"))


def nominal_grid(rows, cols, *, xp=np, device=None):
    """(v, u): the nominal LED positions in units of the pitch, centred on the
    array's centre, each of shape (rows * cols,), LED j = r * cols + c.

    Example
    -------
    >>> v, u = nominal_grid(3, 3)      # v = [-1, -1, -1, 0, 0, 0, 1, 1, 1]
    """
    rows, cols = check_array_shape(rows, cols)
    r = xp.arange(rows, dtype=xp.float64, device=device) - (rows - 1) / 2.0
    c = xp.arange(cols, dtype=xp.float64, device=device) - (cols - 1) / 2.0
    v = xp.reshape(xp.broadcast_to(r[:, None], (rows, cols)), (-1,))
    u = xp.reshape(xp.broadcast_to(c[None, :], (rows, cols)), (-1,))
    return v, u


def _scalar(value, name, xp, device, positive=False):
    """A scalar geometry value as a float or a 0-d float64 array of ``xp``
    (errors name it; ``positive``: a float must be > 0)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if positive:
            return V.positive_scalar(value, name)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return float(value)
    if not hasattr(value, "shape"):
        raise TypeError(f"{name} must be a real number or a 0-d array, got {value!r}")
    shape = tuple(value.shape)
    if shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {shape}")
    return xp.asarray(value, dtype=xp.float64, device=device)


def _offset(value, xp, device):
    """``offset`` as a (2,) float64 array of ``xp`` (a ValueError naming it otherwise)."""
    if isinstance(value, (tuple, list)):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"offset must be a (dy, dx) pair of numbers in metres, got "
                            f"{value!r}") from None
    if not hasattr(value, "shape"):
        raise TypeError(f"offset must be a (dy, dx) pair in metres, got {value!r}")
    shape = tuple(value.shape)
    if shape != (2,):
        raise ValueError(f"offset must be a (dy, dx) pair in metres, got shape {shape}")
    return xp.asarray(value, dtype=xp.float64, device=device)


def _trig(a, xp):
    if isinstance(a, float):
        return math.cos(a), math.sin(a)
    return xp.cos(a), xp.sin(a)


def led_positions(rows, cols, pitch, *, offset=(0.0, 0.0), rotation=0.0, height, xp=np,
                  device=None):
    """Positions (J, 3) = (y, x, z) [m] of the J = rows * cols LEDs (row-major).

    Parameters
    ----------
    rows, cols : int
        LEDs along y and along x.
    pitch : float [m]
        Spacing of neighbouring LEDs.
    offset : (dy, dx) [m]
        Position of the array's centre relative to the optical axis.
    rotation : float [rad]
        Rotation of the array about the optical axis (counter-clockwise from x to y).
    height : float [m]
        Distance from the sample plane up to the array.

    Example
    -------
    >>> pos = led_positions(15, 15, 4e-3, height=80e-3)      # (225, 3)
    """
    v, u = nominal_grid(rows, cols, xp=xp, device=device)
    p = _scalar(pitch, "pitch", xp, device, positive=True)
    a = _scalar(rotation, "rotation", xp, device)
    h = _scalar(height, "height", xp, device, positive=True)
    off = _offset(offset, xp, device)
    ca, sa = _trig(a, xp)
    x = (ca * u - sa * v) * p + off[1]
    y = (sa * u + ca * v) * p + off[0]
    z = xp.zeros_like(x) + h
    return xp.stack([y, x, z], axis=-1)


def wavevectors(rows, cols, pitch, *, offset=(0.0, 0.0), rotation=0.0, height, wavelength,
                xp=np, device=None):
    """Illumination spatial frequencies (J, 2) = (ky, kx) [1/m] of the LEDs.

    (ky_j, kx_j) = (y_j, x_j) / (R_j wavelength) with the positions of
    :func:`led_positions` and R_j the LED's distance from the origin of the
    sample plane.  ``wavelength`` in metres; the other arguments as for
    :func:`led_positions`.

    Example
    -------
    >>> k = wavevectors(3, 3, 4e-3, height=80e-3, wavelength=520e-9)
    >>> k[4]                                   # the centre LED: on axis
    array([0., 0.])
    """
    lam = V.wavelength(wavelength)
    pos = led_positions(rows, cols, pitch, offset=offset, rotation=rotation, height=height,
                        xp=xp, device=device)
    y, x, z = pos[:, 0], pos[:, 1], pos[:, 2]
    R = xp.sqrt(x * x + y * y + z * z)
    return xp.stack([y / (R * lam), x / (R * lam)], axis=-1)


def wavevectors_vjp(gk, rows, cols, pitch, *, offset=(0.0, 0.0), rotation=0.0, height,
                    wavelength, xp=None):
    """The VJP of :func:`wavevectors`: the cotangent ``gk`` (J, 2) of (ky, kx)
    [units of the loss times m] pulled back to the geometry.

    Returns
    -------
    dict
        ``{"offset": (2,) (d/d dy, d/d dx), "rotation": scalar, "height": scalar,
        "pitch": scalar}``: derivatives of the loss per metre (per radian for the
        rotation), as 0-d / 1-d float64 arrays of ``gk``'s library.

    Example
    -------
    >>> g = wavevectors_vjp(np.ones((9, 2)), 3, 3, 4e-3, height=80e-3, wavelength=520e-9)
    >>> sorted(g)
    ['height', 'offset', 'pitch', 'rotation']
    """
    xp = B.namespace(gk) if xp is None else xp
    device = B.device_of(gk)
    lam = V.wavelength(wavelength)
    v, u = nominal_grid(rows, cols, xp=xp, device=device)
    p = _scalar(pitch, "pitch", xp, device, positive=True)
    a = _scalar(rotation, "rotation", xp, device)
    h = _scalar(height, "height", xp, device, positive=True)
    off = _offset(offset, xp, device)
    ca, sa = _trig(a, xp)
    xr = (ca * u - sa * v) * p          # rotated, scaled nominal positions (before the offset)
    yr = (sa * u + ca * v) * p
    x, y = xr + off[1], yr + off[0]
    R2 = x * x + y * y + h * h
    R3l = R2 * xp.sqrt(R2) * lam
    gky, gkx = gk[:, 0], gk[:, 1]
    # d kx/d x = (R^2 - x^2) / (R^3 lam), d kx/d y = -x y / (R^3 lam), d kx/d h = -x h / (R^3 lam)
    gx = (gkx * (R2 - x * x) - gky * x * y) / R3l
    gy = (gky * (R2 - y * y) - gkx * x * y) / R3l
    gh = -(gkx * x + gky * y) * h / R3l
    return {
        "offset": xp.stack([xp.sum(gy), xp.sum(gx)]),
        # d x/d a = -(y - dy), d y/d a = x - dx
        "rotation": xp.sum(gy * xr - gx * yr),
        "height": xp.sum(gh),
        # the positions before the offset scale with the pitch
        "pitch": xp.sum(gx * xr + gy * yr) / p,
    }
