"""Simulated pixel-super-resolution lensless captures with known truth.

The generator of issue 11: a thin sample (the "camera" image as amplitude and
the "moon" image as phase, or a procedural bar target) in a window of
``n_window`` high-resolution pixels of pitch ``hr_pixel_size``, surrounded by
``pad`` pixels of clear glass, lit by a plane wave of ``wavelength``; K captures
by a sensor of pitch ``factor * hr_pixel_size`` with 100 % fill (box) pixels,
each at its own height z_k and lateral position s_k, with Poisson noise.

Not an inverse crime: the light is propagated on a grid ``oversample`` times
finer than the reconstruction's (default 2: the sample is drawn at twice the
resolution the reconstruction has, so it has detail beyond the reconstruction's
band, and the sensor integrates the fine intensity), with the band-limited
angular spectrum on a twice zero-padded grid; the truth field is the fine
transmission averaged over each high-resolution pixel.

Geometry (metres, see :mod:`~diffimaging.lensless.captures`): the nominal
positions put capture k at sub-pixel step (a, b) / factor of the sensor pitch
(a, b = 0 .. factor - 1, cycling over the factor x factor grid) plus a random
whole-pixel offset in [-2, 2] pixels; the nominal heights are ``K`` values
evenly spread over ``z_range``, interleaved among the sub-pixel steps so that
every step is seen from heights spread over the whole range.  The true geometry is the
nominal one plus Gaussian errors (``shift_error``, ``z_error`` standard
deviations) and a common height error ``z_offset``.
"""
from __future__ import annotations

import math

import numpy as np

from .._backend import validate as V
from .captures import Captures
from .model import Heights, SensorGrid

__all__ = ["simulate", "sample", "bar_target", "bar_half_pitches", "nominal_geometry", "OBJECTS"]

#: the samples :func:`simulate` draws
OBJECTS = ("camera", "bars")
_BAR_TRANSMISSION = 0.0   # the bars are opaque (chrome on glass); the background is clear
_MARGIN = 8               # high-resolution pixels between the window's edge and the bars
_GAP = 4                  # high-resolution pixels between two bar groups


def _coverage(n, start, width, period, count):
    """Fraction of each of ``n`` unit pixels covered by ``count`` stripes of
    ``width`` starting at ``start`` every ``period`` (exact areas)."""
    i = np.arange(n, dtype=np.float64)
    c = np.zeros(n)
    for b in range(count):
        a = start + b * period
        c += np.clip(np.minimum(i + 1, a + width) - np.maximum(i, a), 0.0, None)
    return c


def bar_half_pitches(factor) -> list[float]:
    """Half-pitches of the bar target's groups [high-resolution pixels]: from two
    sensor pixels (2 ``factor``) down to 4 in whole pixels, then 3.5 to 2 in half
    pixels and 1.75 to 1 in quarter pixels (at factor 2: gains 0.5, 0.57, 0.67,
    0.8, 1.0, 1.14, 1.33, 1.6, 2.0).  The first bar of a group starts on a pixel
    edge.  Half-pitches in half pixels keep the full contrast of the bars when
    the target is averaged over the high-resolution pixels; the quarter-pixel
    groups (1.75, 1.25) keep a Michelson contrast of 0.5 in the averaged truth
    (bar_contrasts), above the 0.2 that resolution_gain asks for, and fill the
    steps between gains 1, 1.33 and 2 where super-resolution is decided."""
    f = V.factor(factor)
    coarse = [float(h) for h in range(2 * f, 4, -1)]
    fine = [h for h in (4.0, 3.5, 3.0, 2.5, 2.0, 1.75, 1.5, 1.25, 1.0) if h <= 2 * f]
    return coarse + fine


def bar_target(n_window, factor, oversample=1):
    """A procedural resolution target: groups of three bars whose half-pitch
    runs from two sensor pixels down to one high-resolution pixel
    (:func:`bar_half_pitches`), each group drawn twice (bars along y,
    "vertical", and along x, "horizontal").

    Parameters
    ----------
    n_window : int
        Window side in high-resolution pixels.
    factor : int
        High-resolution pixels per sensor pixel.
    oversample : int
        Pixels per high-resolution pixel of the returned image.

    Returns
    -------
    t : (n_window * oversample,) * 2 complex128
        Amplitude transmission: 1 between the bars, 0 on them (opaque bars, as
        chrome on glass; exact areas).
    targets : list of dict
        One per group: ``gain`` (sensor pitch / half-pitch), ``half_pitch`` (in
        high-resolution pixels), ``orientation`` ("vertical" or "horizontal"),
        ``box`` (y0, x0, y1, x1) in high-resolution pixels of the window, and
        ``bars`` (the three bar centres along the profile axis, same pixels).
    """
    n = V.integer(n_window, "n_window", minimum=8, type_error=ValueError)
    f = V.factor(factor)
    os_ = V.integer(oversample, "oversample", minimum=1, type_error=ValueError)
    fine = np.zeros((n * os_, n * os_))
    targets = []
    y, x, row_h = _MARGIN, _MARGIN, 0
    for h in bar_half_pitches(f):
        w = int(math.ceil(5 * h))               # three bars and two gaps [hr px]
        L = max(w, 12)                          # bar length
        for orient in ("vertical", "horizontal"):
            bw, bh = (w, L) if orient == "vertical" else (L, w)
            if x + bw > n - _MARGIN:
                y, x, row_h = y + row_h + _GAP, _MARGIN, 0
            if y + bh > n - _MARGIN:
                raise ValueError(f"a {n}-pixel window is too small for the bar target at "
                                 f"factor {factor}; use n_window >= {64 * f}")
            off = 0.0                           # the first bar starts on a pixel edge
            prof = _coverage(w * os_, off * os_, h * os_, 2 * h * os_, 3)
            patch = np.broadcast_to(prof[None, :], (L * os_, w * os_)) if orient == "vertical" \
                else np.broadcast_to(prof[:, None], (w * os_, L * os_))
            fine[y * os_:(y + bh) * os_, x * os_:(x + bw) * os_] = patch
            centres = [off + h / 2 + 2 * h * b for b in range(3)]
            origin = x if orient == "vertical" else y
            targets.append(dict(gain=f / h, half_pitch=float(h), orientation=orient,
                                box=(y, x, y + bh, x + bw),
                                bars=[origin + c for c in centres]))
            x += bw + _GAP
            row_h = max(row_h, bh)
    t = 1.0 - (1.0 - _BAR_TRANSMISSION) * fine
    return t.astype(np.complex128), targets


def sample(obj, n_window, factor, oversample=1):
    """The sample's transmission on the window at ``oversample`` pixels per
    high-resolution pixel: ``(t, targets)`` (``targets`` None except for "bars").

    "camera": amplitude 0.5 + 0.5 * camera, phase (pi / 2) * moon (scikit-image's
    bundled images, scaled to [0, 1] and resized with anti-aliasing).
    """
    V.choice("obj", obj, OBJECTS)
    if obj == "bars":
        return bar_target(n_window, factor, oversample)
    from skimage import data
    from skimage.transform import resize

    m = int(n_window) * int(oversample)
    cam = resize(data.camera().astype(np.float64) / 255.0, (m, m), anti_aliasing=True)
    moon = resize(data.moon().astype(np.float64) / 255.0, (m, m), anti_aliasing=True)
    return (0.5 + 0.5 * cam) * np.exp(1j * (np.pi / 2) * moon), None


def nominal_geometry(K, factor, pixel_size, z_range, rng):
    """Nominal sensor positions (K, 2) [m] and heights (K,) [m] of the
    generator (see the module's notes)."""
    f = V.factor(factor)
    k = np.arange(K)
    sub = np.stack([(k // f) % f, k % f], axis=1) / f          # sub-pixel step, pixels
    whole = rng.integers(-2, 3, size=(K, 2))
    whole[0] = 0                                               # capture 0 at the origin
    shifts = (sub + whole) * pixel_size
    levels = np.linspace(z_range[0], z_range[1], K)
    # the sub-pixel pattern repeats every C = f^2 captures: the heights are cut into C
    # blocks of R = ceil(K / C) and step c takes, at its r-th repeat, height r of block
    # (c + r) mod C, so every step is seen from heights spread over the whole range and
    # successive captures hop between blocks
    C = f * f
    R = -(-K // C)
    c, r = k % C, k // C
    key = ((c + r) % C) * R + r
    return shifts, levels[np.argsort(np.argsort(key))]


def simulate(*, factor=2, K=None, obj="camera", n_window=256, pad=64, wavelength=532e-9,
             hr_pixel_size=0.8e-6, z_range=(350e-6, 500e-6), shift_error=0.8e-6, z_error=25e-6,
             z_offset=0.0, photons=1e4, modulo=False, seed=0, oversample=2, n_medium=1.0,
             dtype=np.float32) -> Captures:
    """Simulate K pixel-super-resolution lensless captures (see the module's notes).

    Parameters
    ----------
    factor : int
        Super-resolution factor u (sensor pitch = u * ``hr_pixel_size``).
    K : int, optional
        Number of captures (default 16 at u = 2, else 2 u^2).
    obj : "camera" or "bars"
        The sample (see :func:`sample`, :func:`bar_target`).
    n_window : int
        Window side in high-resolution pixels (a multiple of ``factor``).
    pad : int
        Clear-glass border around the window, high-resolution pixels.
    wavelength : float [m]
        Vacuum wavelength.
    hr_pixel_size : float [m]
        High-resolution pitch.
    z_range : (lo, hi) [m]
        Range of the nominal heights.
    shift_error, z_error : float [m]
        Standard deviations of the true positions (per axis) and heights about
        the nominal ones.
    z_offset : float [m]
        Common error of all heights.
    photons : float or None
        Mean photons per sensor pixel of clear sample (Poisson noise); None:
        noise-free.
    modulo : bool
        Nominal positions known only modulo one sensor pixel (the whole-pixel
        offsets are lost: only the sub-pixel steps are given).
    seed : int
        Seed of every random draw.
    oversample : int
        Simulation pixels per high-resolution pixel (see the module's notes).
    n_medium : float
        Refractive index between sample and sensor.
    dtype : numpy float dtype of the images (float32 default).

    Returns
    -------
    Captures with ``truth`` = {"shifts", "z", "field" (the window's transmission
    at the high-resolution pitch), "targets" (bar groups, for "bars"),
    "photons", "pad"}.

    Example
    -------
    >>> caps = simulate(factor=2, photons=1e4, seed=1)
    >>> caps.images.shape
    (16, 128, 128)
    """
    f = V.factor(factor)
    K = (16 if f == 2 else 2 * f * f) if K is None else V.integer(K, "K", minimum=1,
                                                                  type_error=ValueError)
    n = V.integer(n_window, "n_window", minimum=8, type_error=ValueError)
    if n % f:
        raise ValueError(f"n_window = {n} must be a multiple of factor = {f} (whole sensor pixels)")
    pad = V.integer(pad, "pad", minimum=0, type_error=ValueError)
    os_ = V.integer(oversample, "oversample", minimum=1, type_error=ValueError)
    lam = V.wavelength(wavelength)
    p = V.positive_scalar(hr_pixel_size, "hr_pixel_size", typical=(1e-9, 1e-2))
    P = f * p
    lo, hi = (float(v) for v in z_range)
    if not 0 < lo <= hi:
        raise ValueError(f"z_range must be (lo, hi) metres with 0 < lo <= hi, got {z_range!r}")
    for name, v in (("shift_error", shift_error), ("z_error", z_error)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a standard deviation >= 0 in metres, got {v!r}")
    if photons is not None and not (math.isfinite(photons) and photons > 0):
        raise ValueError(f"photons must be a positive mean count per pixel (or None: no noise), "
                         f"got {photons!r}")
    rng = np.random.default_rng(seed)
    nominal_s, nominal_z = nominal_geometry(K, f, P, (lo, hi), rng)
    true_s = nominal_s + rng.normal(0.0, shift_error, size=(K, 2)) if shift_error else nominal_s.copy()
    true_z = nominal_z + (rng.normal(0.0, z_error, size=K) if z_error else 0.0) + float(z_offset)
    if np.any(true_z <= 0):
        raise ValueError("the height errors put a capture behind the sample; reduce z_error or "
                         "z_offset")
    reach = float(np.max(np.abs(true_s))) / p
    if reach > pad - f:
        raise ValueError(f"pad = {pad} high-resolution pixels cannot hold sensor shifts of "
                         f"{reach:.1f} pixels; give pad >= {int(math.ceil(reach)) + f}")

    t_win, targets = sample(obj, n, f, os_)
    N = (n + 2 * pad) * os_
    t = np.ones((N, N), dtype=np.complex128)
    t[pad * os_:(pad + n) * os_, pad * os_:(pad + n) * os_] = t_win
    u = Heights(true_z, lam, p / os_, n_medium)(t)
    sensor = SensorGrid(f * os_, true_s, p / os_, (n // f, n // f), origin=pad * os_)
    clean = sensor(np.abs(u) ** 2)
    if photons is not None:
        images = rng.poisson(clean * photons) / float(photons)
    else:
        images = clean
    truth_field = t_win.reshape(n, os_, n, os_).mean(axis=(1, 3))
    given = np.mod(nominal_s, P) if modulo else nominal_s
    truth = dict(shifts=true_s, z=true_z, field=truth_field, photons=photons, pad=pad,
                 nominal_shifts=nominal_s, obj=obj, seed=seed, oversample=os_)
    if targets is not None:
        truth["targets"] = targets
    return Captures(np.asarray(images, dtype=dtype), given, nominal_z, wavelength=lam,
                    pixel_size=P, factor=f, n_medium=n_medium, truth=truth)
