"""The classical pipeline: interpolation super-resolution, then multi-height
phase retrieval, with the nominal geometry.

1. Each capture is interpolated (cubic splines) onto the high-resolution field
   grid at its nominal sensor position (:func:`upsample`): the captures are
   taken at different heights, so their intensities cannot be added; each one
   becomes a high-resolution intensity at its own height, and the K of them
   together sample the field more finely than one capture.
2. Multi-height Gerchberg-Saxton (:func:`gerchberg_saxton`): a field is carried
   from height to height (band-limited angular spectrum, carrier-free), its
   amplitude replaced by the measured one where the sensor saw it, and
   finally propagated back to the sample.

This is the baseline that :func:`~diffimaging.lensless.reconstruct` is compared
with: it knows no pixel integration (the interpolated images are blurred by
the pixels) and trusts the nominal geometry.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .. import _backend as B
from .._backend import validate as V
from ..ops.propagate import propagate
from ..optim.run import check_count
from .captures import Captures, Reconstruction
from .model import default_pad, field_shape

__all__ = ["classical", "upsample"]


def upsample(images, shifts, *, factor, pixel_size, pad, order=3):
    """Interpolate K captures onto the high-resolution field grid.

    Parameters
    ----------
    images : (K, ny, nx) array
        Sensor images.
    shifts : (K, 2) [m]
        Sensor grid positions (sy, sx) (see :mod:`~diffimaging.lensless.captures`).
    factor : int
        High-resolution pixels per sensor pixel.
    pixel_size : float [m]
        Sensor pitch.
    pad : int
        High-resolution pixels around the window (see :func:`field_shape`).
    order : int
        Spline order of :func:`scipy.ndimage.map_coordinates` (3: cubic).

    Returns
    -------
    (hr, seen) : float64 (K, NY, NX) intensities (each sensor pixel's value
    sits at its centre) and the boolean mask of the high-resolution pixels
    inside each capture's sensor area.
    """
    img = np.asarray(B.to_host_float64(images, "images"), dtype=np.float64)
    s = np.asarray(shifts, dtype=np.float64)
    f = V.factor(factor)
    K, ny, nx = img.shape
    NY, NX = field_shape((ny, nx), f, pad)
    p = float(pixel_size) / f
    out = np.empty((K, NY, NX))
    seen = np.empty((K, NY, NX), dtype=bool)
    cy0 = np.arange(NY, dtype=np.float64) + 0.5 - pad     # hr pixel centres, window coordinates
    cx0 = np.arange(NX, dtype=np.float64) + 0.5 - pad
    for k in range(K):
        uy = (cy0 - s[k, 0] / p) / f - 0.5               # in sensor pixel indices (centre i at i)
        ux = (cx0 - s[k, 1] / p) / f - 0.5
        gy, gx = np.meshgrid(uy, ux, indexing="ij")
        out[k] = ndimage.map_coordinates(img[k], [gy, gx], order=order, mode="nearest")
        seen[k] = ((gy >= -0.5) & (gy <= ny - 0.5))[:, :] & ((gx >= -0.5) & (gx <= nx - 0.5))
    return out, seen


def gerchberg_saxton(amplitudes, seen, z, *, wavelength, pixel_size, iterations=30, start=None):
    """Multi-height Gerchberg-Saxton phase retrieval.

    Parameters
    ----------
    amplitudes : (K, NY, NX) float
        Measured amplitudes (square roots of intensities) at the heights ``z``.
    seen : (K, NY, NX) bool
        Where each amplitude was measured (elsewhere the field is kept).
    z : (K,) [m]
        Sample-to-sensor distances.
    wavelength : float [m]
        Wavelength in the medium.
    pixel_size : float [m]
        Field pitch.
    iterations : int
        Passes through all heights (in order of increasing z, then back).
    start : (NY, NX) complex, optional
        Field at the sample (default: clear, 1).

    Returns
    -------
    (NY, NX) complex128: the transmission at the sample plane.
    """
    iterations = check_count(iterations, "iterations", minimum=1)
    z = np.asarray(z, dtype=np.float64)
    order = np.argsort(z)
    kw = dict(wavelength=wavelength, pixel_size=pixel_size, carrier=False)
    t = np.ones(amplitudes.shape[1:], complex) if start is None else np.asarray(start, complex)
    # the scattered field o = t - 1 is what propagates (the unit illumination is exact)
    o = t - 1.0
    zc = 0.0
    path = list(order) + list(order[::-1][1:-1]) if len(order) > 2 else list(order)
    for _ in range(iterations):
        for k in path:
            o = propagate(o, z[k] - zc, **kw)
            zc = z[k]
            u = 1.0 + o
            ph = u / np.maximum(np.abs(u), 1e-12)
            u = np.where(seen[k], amplitudes[k] * ph, u)
            o = u - 1.0
    o = propagate(o, -zc, **kw)
    return 1.0 + o


def classical(captures: Captures, *, iterations=30, pad=None, order=3) -> Reconstruction:
    """Interpolation super-resolution then multi-height Gerchberg-Saxton, with
    the nominal geometry (see the module's notes).

    Parameters
    ----------
    captures : Captures
    iterations : int
        Gerchberg-Saxton passes through all heights.
    pad : int, optional
        High-resolution pixels around the window (default as
        :func:`~diffimaging.lensless.reconstruct`).
    order : int
        Interpolation spline order (3: cubic).

    Returns
    -------
    Reconstruction whose ``field`` is the window (ny * factor, nx * factor),
    ``shifts`` and ``z`` the nominal ones.
    """
    if not isinstance(captures, Captures):
        raise TypeError(f"captures must be a Captures, got {type(captures).__name__}")
    f, P = captures.factor, captures.pixel_size
    pad = default_pad(captures.shifts, f, P) if pad is None else \
        V.integer(pad, "pad", minimum=0, type_error=ValueError)
    hr, seen = upsample(captures.images, captures.shifts, factor=f, pixel_size=P, pad=pad,
                        order=order)
    amp = np.sqrt(np.clip(hr, 0.0, None))
    lam = captures.wavelength / captures.n_medium
    t = gerchberg_saxton(amp, seen, captures.z, wavelength=lam, pixel_size=P / f,
                         iterations=iterations)
    ny, nx = captures.sensor_shape
    win = t[pad:pad + ny * f, pad:pad + nx * f]
    xp = B.namespace(captures.images)
    field = xp.asarray(win.astype(np.complex64 if captures.images.dtype == xp.float32
                                  else np.complex128))
    return Reconstruction(field=field, shifts=captures.shifts.copy(), z=captures.z.copy(),
                          nominal_shifts=captures.shifts.copy(), nominal_z=captures.z.copy(),
                          history={}, settings=dict(method="classical", iterations=iterations,
                                                    pad=pad, order=order))
