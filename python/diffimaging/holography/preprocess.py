"""Preprocessing of real in-line holograms: background division, normalisation,
cropping to an FFT-friendly window."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .._backend import fft as F
from .io import check_finite

__all__ = ["estimate_background", "divide_background", "crop_fast", "preprocess",
           "background_contrast", "MEDIAN_MIN_FRAMES", "MEDIAN_MAX_CONTRAST"]

#: fewest frames for which a command-line run chooses a per-pixel median background by
#: default: a median removes a particle from the data unless it moves off each pixel
#: in more than half of the frames, i.e. by more than 2 diameters over the series;
#: with 10 frames that is a fifth of a diameter per frame (fewer frames: low-pass)
MEDIAN_MIN_FRAMES = 10
#: :func:`background_contrast` above which a median background holds the particles
#: themselves (measured on simulated series of 40 particles, 128^2: 0.999 static,
#: 0.88-0.99 at 0.3-1 px/frame over 4 frames, 0.58 at 1 px/frame over 12 frames,
#: 0.21-0.28 at 3-8 px/frame over 12 frames)
MEDIAN_MAX_CONTRAST = 0.5


def _as_real_image(h, name="hologram"):
    h = np.asarray(h)
    if h.dtype.kind not in "fiu" or h.dtype == bool:
        raise TypeError(f"{name} must be a real image (integer or float), got dtype {h.dtype}")
    if h.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (..., ny, nx), got shape {h.shape}")
    if 0 in h.shape[-2:]:
        raise ValueError(f"{name} is empty (shape {h.shape})")
    check_finite(h, name)
    return h.astype(np.float64 if h.dtype.kind in "iu" or h.dtype == np.float64 else np.float32)


def estimate_background(holograms, method="auto", sigma=None):
    """Background (illumination) estimate.

    ``method``: ``"median"`` — the per-pixel median of a frame series
    (``holograms`` of shape (n_frames, ny, nx), n_frames >= 3): particles move,
    the illumination does not; ``"lowpass"`` — a Gaussian low-pass of each frame
    with ``sigma`` pixels (default: 1/16 of the smaller image side), for a single
    frame; ``"auto"`` — median for 3 or more frames, else low-pass.
    """
    h = _as_real_image(holograms, "holograms")
    if method == "auto":
        method = "median" if h.ndim == 3 and h.shape[0] >= 3 else "lowpass"
    if method == "median":
        if h.ndim != 3 or h.shape[0] < 3:
            raise ValueError(f"method='median' needs a series of at least 3 frames (n, ny, nx), got "
                             f"shape {h.shape}")
        return np.median(h, axis=0).astype(h.dtype)
    if method == "lowpass":
        s = sigma if sigma is not None else max(min(h.shape[-2:]) / 16.0, 1.0)
        if not s > 0:
            raise ValueError(f"sigma must be positive (pixels), got {sigma!r}")
        sig = (0,) * (h.ndim - 2) + (s, s)
        return gaussian_filter(h, sigma=sig, mode="reflect")
    raise ValueError(f"method must be 'auto', 'median' or 'lowpass', got {method!r}")


def background_contrast(frames, background, sigma=None):
    """How much of the frames' fine structure a background holds, in [-1, 1].

    Each frame and the background are divided by their own Gaussian low-pass
    (``sigma`` pixels, default 1/16 of the smaller side: the illumination), and
    the correlation coefficient of the two contrasts (value - 1) is taken per
    frame; the median over the frames is returned.  About 0 for a smooth
    background or one of particles that moved on; near 1 when the background
    holds the same fringes as the frames: static or slow particles (which dividing
    by it removes from the data) or a fixed pattern such as dust on the sensor
    (which dividing by it rightly removes).  See :data:`MEDIAN_MAX_CONTRAST`.

    ``frames`` (n, ny, nx) or (ny, nx); ``background`` (ny, nx).
    """
    f = _as_real_image(frames, "frames")
    b = _as_real_image(background, "background")
    f = f.reshape((-1,) + f.shape[-2:])
    if b.shape != f.shape[1:]:
        raise ValueError(f"background of shape {b.shape} does not match the frames' {f.shape[1:]}")
    s = sigma if sigma is not None else max(min(b.shape) / 16.0, 1.0)

    def contrast(a):
        low = gaussian_filter(a.astype(np.float64), s, mode="reflect")
        c = a / np.where(low > 0, low, 1.0) - 1.0
        return c - c.mean()

    cb = contrast(b)
    nb = float(np.sqrt(np.sum(cb * cb)))
    if nb == 0.0:
        return 0.0
    r = []
    for frame in f:
        c = contrast(frame)
        nc = float(np.sqrt(np.sum(c * c)))
        r.append(float(np.sum(c * cb)) / (nb * nc) if nc > 0 else 0.0)
    return float(np.median(r))


def divide_background(hologram, background, floor=1e-6):
    """hologram / background (broadcast), then each frame normalised to unit mean.
    Background values below ``floor`` times its mean are clipped to avoid
    division by ~0 (dead pixels)."""
    h = _as_real_image(hologram)
    b = _as_real_image(background, "background")
    try:
        np.broadcast_shapes(h.shape, b.shape)
    except ValueError:
        raise ValueError(f"background of shape {b.shape} does not broadcast to the hologram's "
                         f"{h.shape}") from None
    bm = float(np.mean(b))
    if not bm > 0:
        raise ValueError("background must have a positive mean (is it an intensity image?)")
    out = h / np.maximum(b, floor * bm)
    m = out.mean(axis=(-2, -1), keepdims=True)
    return (out / np.where(m > 0, m, 1.0)).astype(h.dtype)


def crop_fast(image, multiple_of=1):
    """Centred crop to the largest sizes <= (ny, nx) whose FFTs are fast (products of
    small primes, ``scipy.fft.prev_fast_len``), optionally also multiples of
    ``multiple_of`` (e.g. a binning factor).  Returns (cropped, (y0, x0)): the
    offset of the crop in pixels, so positions map back by adding it."""
    a = np.asarray(image)
    if a.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions, got shape {a.shape}")
    size = []
    for n in a.shape[-2:]:
        m = F.prev_fast_len(int(n))
        while multiple_of > 1 and m % multiple_of:
            m = F.prev_fast_len(m - 1)
        size.append(m)
    y0, x0 = (a.shape[-2] - size[0]) // 2, (a.shape[-1] - size[1]) // 2
    return a[..., y0:y0 + size[0], x0:x0 + size[1]], (y0, x0)


def preprocess(hologram, background=None, *, method="auto", sigma=None, crop=True):
    """Default pipeline: background division (a given background frame; else by
    ``method``: "auto" the median of a frame series or a smooth low-pass estimate,
    see :func:`estimate_background`; "none" no division), normalisation to unit
    mean, and a centred crop to an FFT-friendly size.

    Returns (processed, info) with info = {"background": how, "offset": (y0, x0)}:
    ``offset`` is the crop's origin in pixels of the input, to add to positions
    found in the processed hologram (sensor coordinates).
    """
    h = _as_real_image(hologram)
    if background is not None:
        how = "given"
        b = background
    elif method == "none":
        how = "none"
        b = np.ones(h.shape[-2:], dtype=h.dtype)
    else:
        b = estimate_background(h, method=method, sigma=sigma)
        how = method if method != "auto" else ("median" if h.ndim == 3 and h.shape[0] >= 3 else "lowpass")
    out = divide_background(h, b)
    offset = (0, 0)
    if crop:
        out, offset = crop_fast(out)
    return out, {"background": how, "offset": offset}
