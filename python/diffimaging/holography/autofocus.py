"""Autofocus of in-line holograms: the recording distance of one particle or of a
planar sample, with a noise-based uncertainty.

The hologram's deviation from the unit reference wave is back-propagated with the
carrier-free propagator (CONVENTIONS.md) as in :func:`backpropagate`; a focus
criterion, a scalar function of the back-propagated field, is optimised over the
depth in two stages (a global coarse scan, then Brent's method), and the optimum's
standard deviation follows from the hologram's noise by first-order error
propagation.  See :func:`autofocus`.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.optimize import minimize_scalar

from .._backend import fft as F
from .._backend import validate as V
from .._backend.autodiff import vjp
from ..ops.propagate import band_limit_mask, padded_shape, propagate
from .io import check_finite, check_optics

__all__ = ["autofocus", "focus_curve", "FocusResult", "estimate_noise"]

_CRITERIA = ("axial", "quadrature", "min_intensity", "variance", "tamura", "gradient")
#: criterion of ``criterion="auto"`` for a whole hologram (see :func:`autofocus`)
_AUTO = "quadrature"
_SIN_MAX = 0.6           # largest sine of the scattering angle (in the medium) a particle's focus uses
_BOOT = 32               # noise draws of the "axial" bootstrap
_SYSTEMATIC = 0.5        # "axial": systematic standard deviation, in depths of field lambda_m / s^2
_MEAN_RANGE = (0.5, 2.0)  # a background-divided hologram's mean lies in this range
_SMOOTH_SIGMA = 1.0      # pixels: Gaussian smoothing of the intensity for "min_intensity"
_SEARCH_RADIUS = 2.0     # pixels: where "min_intensity" looks for the dark centre around `position`
_XATOL = 5e-9            # metres: Brent's tolerance on z
_DZ_GRAD = 1e-6          # metres: central difference of dJ/dh in z (for z_std)
_DZ_CURV = 4e-6          # metres: largest spacing of the 5-point parabola giving J'' (for z_std)


@dataclass
class FocusResult:
    """Result of :func:`autofocus`.

    z : estimated distance from the sensor, metres
    z_std : its standard deviation from the hologram's noise, metres (statistical
        only: the criterion's systematic bias, documented in :func:`autofocus`, is
        not included)
    criterion : the criterion used (``"auto"`` resolved)
    curve_z : (coarse,) depths of the coarse stage, metres
    curve : (coarse,) the objective minimised at ``curve_z`` (lower is better; see
        :func:`autofocus` for each criterion's sign convention)
    refined : True when the 1-D refinement converged to a minimum strictly inside
        the bracket of the best coarse sample's neighbours (or, failing that, of
        the next ones); False with ``refine=False``, or when the optimum sits on the
        edge of ``z_range`` (then ``z_std`` is the coarse step / sqrt(12))
    position : (y, x) metres, or None for the whole hologram
    noise : the hologram noise standard deviation used for ``z_std`` (units of the
        unit-mean hologram)
    window : (y0, x0, ny, nx) the pixels of the hologram used
    """

    z: float
    z_std: float
    criterion: str
    curve_z: np.ndarray
    curve: np.ndarray
    refined: bool
    position: tuple | None
    noise: float = float("nan")
    window: tuple = field(default=(0, 0, 0, 0))


def estimate_noise(hologram) -> float:
    """Standard deviation of white noise in an image (Immerkaer 1996, with a robust
    scale): the image is filtered with the 3 x 3 mask ``[1 -2 1] x [1 -2 1]`` (a
    second difference along y times one along x; it removes planes and quadrics
    and passes white noise with gain 6), and sigma = median(|filtered|) /
    (0.6745 x 6).  The mask's response rises as (2 pi f)^4 from zero frequency, so
    fringes leak in only where their period approaches a few pixels along both axes;
    the median ignores localised leaks.  What still leaks makes the estimate (and
    so ``z_std``) conservative."""
    h = np.asarray(hologram, dtype=np.float64)
    if h.ndim != 2 or min(h.shape) < 3:
        raise ValueError(f"hologram must be a 2-D image of at least 3 x 3 pixels to estimate its "
                         f"noise, got shape {h.shape}")
    dyy = h[:-2, :] - 2.0 * h[1:-1, :] + h[2:, :]
    f = dyy[:, :-2] - 2.0 * dyy[:, 1:-1] + dyy[:, 2:]
    return float(np.median(np.abs(f)) / (0.6744897501960817 * 6.0))


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------

def _check_hologram(hologram):
    h = hologram
    if not isinstance(h, np.ndarray):
        h = np.asarray(h)
    if h.dtype.kind not in "fiu" or h.dtype == bool:
        raise TypeError(f"hologram must be a real image (float or integer), got dtype {h.dtype}")
    if h.ndim != 2:
        raise ValueError(f"hologram must be a single (ny, nx) image, got shape {h.shape}")
    if min(h.shape) < 8:
        raise ValueError(f"hologram must be at least 8 x 8 pixels, got shape {h.shape}")
    h = check_finite(h.astype(np.float64))
    mean = float(np.mean(h))
    if not _MEAN_RANGE[0] <= mean <= _MEAN_RANGE[1]:
        raise ValueError(f"hologram has mean {mean:.6g}: autofocus needs a hologram divided by its "
                         f"background (unit mean), not raw camera counts; divide it by a background "
                         f"frame or use preprocess(hologram) first")
    return h


def _check_z_range(z_range):
    try:
        zr = np.asarray(z_range, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"z_range must be a pair (z_min, z_max) of distances in metres, got "
                         f"{z_range!r}") from None
    if zr.size != 2 or not np.all(np.isfinite(zr)):
        raise ValueError(f"z_range must be a pair (z_min, z_max) of finite distances in metres, got "
                         f"{z_range!r}")
    if not zr[0] > 0:
        raise ValueError(f"z_range must hold positive distances from the sensor (metres), got "
                         f"{z_range!r}")
    if not zr[1] > zr[0]:
        raise ValueError(f"z_range must be increasing (z_min < z_max, metres), got {z_range!r}")
    if zr[1] > 1.0:
        raise ValueError(f"z_range up to {zr[1]:g} m is implausible for in-line holography: z_range "
                         f"is in metres (e.g. (1e-3, 5e-3) for 1-5 mm)")
    return float(zr[0]), float(zr[1])


def _pair(value, name):
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a (y, x) pair in metres, got {value!r}")
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a number or a (y, x) pair in metres, got {value!r}")
    return float(arr[0]), float(arr[1])


def _sin_max(wavelength, dy, dx):
    """Largest sine of the scattering angle used: the sensor's Nyquist angle
    lambda_m / (2 d), capped at _SIN_MAX (microscope pixels sample far beyond it)."""
    return min(_SIN_MAX, wavelength / (2 * max(dy, dx)))


def _window_box(shape, dy, dx, position, window, z_max, wavelength):
    """(y0, x0, wy, wx) in pixels, and the position in window pixels (or None);
    ``wavelength`` in the medium."""
    ny, nx = shape
    if window is None:
        if position is None:
            wy, wx = ny, nx
        else:
            # the particle's diffraction cone out to the angle used (the fringe period
            # lambda z / r reaches 2 pixels at sin = lambda / (2 d), or _SIN_MAX)
            t = math.tan(math.asin(_sin_max(wavelength, dy, dx)))
            wy = min(ny, 2 * int(math.ceil(z_max * t / dy)))
            wx = min(nx, 2 * int(math.ceil(z_max * t / dx)))
    else:
        wmy, wmx = _pair(window, "window")
        if not (wmy > 0 and wmx > 0):
            raise ValueError(f"window must be positive (metres), got {window!r}")
        wy, wx = int(round(wmy / dy)), int(round(wmx / dx))
        if wy > ny or wx > nx:
            raise ValueError(f"window {window!r} m = ({wy}, {wx}) pixels is bigger than the image "
                             f"({ny}, {nx}) pixels = ({ny * dy:.4g}, {nx * dx:.4g}) m (window is in "
                             f"metres, not pixels)")
        if wy < 16 or wx < 16:
            raise ValueError(f"window {window!r} m = ({wy}, {wx}) pixels is too small: at least 16 "
                             f"pixels per side are needed to hold a particle's fringes (window is in "
                             f"metres)")
    if position is None:
        y0, x0 = (ny - wy) // 2, (nx - wx) // 2
        return (y0, x0, wy, wx), None
    py, px = position[0] / dy, position[1] / dx
    if not (-0.5 <= py <= ny - 0.5 and -0.5 <= px <= nx - 0.5):
        raise ValueError(f"position {position!r} m (pixel {py:.4g}, {px:.4g}) lies outside the image of "
                         f"({ny}, {nx}) pixels = ({ny * dy:.4g}, {nx * dx:.4g}) m (position is (y, x) "
                         f"in metres, pixel (i, j) at (i dy, j dx))")
    # centred on the particle, shifted to stay inside the image
    y0 = min(max(int(round(py)) - wy // 2, 0), ny - wy)
    x0 = min(max(int(round(px)) - wx // 2, 0), nx - wx)
    return (y0, x0, wy, wx), (py - y0, px - x0)


# --------------------------------------------------------------------------
# the focus problem on one window
# --------------------------------------------------------------------------

def _grad_energy(w):
    """sum |w[i+1, j] - w[i, j]|^2 + |w[i, j+1] - w[i, j]|^2 (forward differences)."""
    dy = np.diff(w, axis=0)
    dx = np.diff(w, axis=1)
    return float(np.sum(dy.real ** 2 + dy.imag ** 2) + np.sum(dx.real ** 2 + dx.imag ** 2)) \
        if np.iscomplexobj(w) else float(np.sum(dy ** 2) + np.sum(dx ** 2))


def _grad_energy_grad(w):
    """Gradient of :func:`_grad_energy` (2 D^T D w; PyTorch convention for complex w)."""
    dy = np.diff(w, axis=0)
    dx = np.diff(w, axis=1)
    g = np.zeros_like(w)
    g[1:, :] += dy
    g[:-1, :] -= dy
    g[:, 1:] += dx
    g[:, :-1] -= dx
    return 2.0 * g


class _Focus:
    """Back-propagation of one hologram window and a focus objective of it (lower is
    better), its gradient with respect to the hologram, and its noise."""

    def __init__(self, hwin, center, criterion, polarity, wavelength, pixel_size):
        self.h = hwin
        self.sqrt_h = np.sqrt(np.clip(hwin, 0.0, None))
        # "min_intensity" back-propagates the contrast h - 1, the others the amplitude
        # deviation sqrt(h) - 1 (see autofocus)
        self.contrast = criterion == "min_intensity"
        s = hwin - 1.0 if self.contrast else self.sqrt_h - 1.0
        self.lam = wavelength
        self.dy, self.dx = pixel_size
        self.kw = dict(wavelength=wavelength, pixel_size=pixel_size, carrier=False, pad=False)
        self.crit = criterion
        self.sign = 1.0 if polarity == "dark" else -1.0
        wy, wx = hwin.shape
        self.wy, self.wx = wy, wx
        # the zero-padded grid that propagate(pad=True) would use, built here so that
        # the deviation can be low-passed on it once (see set_band)
        self.py, self.px = padded_shape((wy, wx))
        self.S = F.fftn(s, s=(self.py, self.px), xp=np)
        self.mask = None
        self.sp = None
        if center is None:
            my, mx = max(wy // 8, 4), max(wx // 8, 4)
            self.region = (slice(my, wy - my), slice(mx, wx - mx))
            self.search = np.zeros((wy, wx), dtype=bool)
            self.search[self.region] = True
        else:
            cy, cx = center
            hy, hx = max(wy // 4, 4), max(wx // 4, 4)
            iy, ix = int(round(cy)), int(round(cx))
            self.region = (slice(max(iy - hy, 0), min(iy + hy, wy)),
                           slice(max(ix - hx, 0), min(ix + hx, wx)))
            yy, xx = np.mgrid[0:wy, 0:wx]
            self.search = (yy - cy) ** 2 + (xx - cx) ** 2 <= _SEARCH_RADIUS ** 2
            if not self.search.any():
                self.search[min(max(iy, 0), wy - 1), min(max(ix, 0), wx - 1)] = True
        self.nfev = 0

    def set_band(self, z_top):
        """Low-pass the padded deviation to the band limit (Matsushima & Shimobaba
        2009) of the deepest plane ``z_top`` that will be evaluated.  The band limit
        of the transfer function shrinks as z grows; with the data already inside
        the narrowest band, every depth sees the same frequencies: the objective is
        smooth in z (no steps where a frequency leaves the band) and the noise power
        it sees does not depend on z (otherwise noise-sensitive criteria drift
        towards small z, where more noise passes)."""
        self.mask = band_limit_mask((self.py, self.px), z_top, wavelength=self.lam,
                                    pixel_size=(self.dy, self.dx), method="asm")
        self.sp = np.ascontiguousarray(F.ifftn(self.S * self.mask, xp=np).real)

    # -- fields
    def field(self, z):
        self.nfev += 1
        return 1.0 + propagate(self.sp, -float(z), **self.kw)[:self.wy, :self.wx]

    def fields(self, zs, chunk=8):
        for i in range(0, len(zs), chunk):
            zc = np.asarray(zs[i:i + chunk], dtype=np.float64)
            self.nfev += len(zc)
            for v in propagate(self.sp, -zc, **self.kw):
                yield 1.0 + v[:self.wy, :self.wx]

    # -- objective J(u) and dJ/du (PyTorch convention: dJ/dRe + i dJ/dIm)
    def objective(self, u, grad=False, spot=None):
        """J(u) (lower is better) and, with ``grad``, dJ/du; returns (J, spot[, g])."""
        sg = self.sign
        if self.crit == "min_intensity":
            inten = u.real ** 2 + u.imag ** 2
            sm = gaussian_filter(inten, _SMOOTH_SIGMA, mode="constant", truncate=3.0)
            if spot is None:
                vals = np.where(self.search, sg * sm, np.inf)
                spot = np.unravel_index(int(np.argmin(vals)), vals.shape)
            j = sg * sm[spot]
            if not grad:
                return j, spot
            delta = np.zeros(inten.shape)
            delta[spot] = 1.0
            w = gaussian_filter(delta, _SMOOTH_SIGMA, mode="constant", truncate=3.0)
            return j, spot, (2.0 * sg) * w * u
        ur = u[self.region]
        n = ur.size
        if self.crit == "quadrature":
            v = ur - 1.0
            num = float(np.sum(v.imag ** 2))
            den = float(np.sum(v.real ** 2)) + num
            j = sg * num / den
            if not grad:
                return j, None
            gr = (-2.0 * sg * num / den ** 2) * v + (2.0j * sg / den) * v.imag
        else:
            a = np.abs(ur)
            safe = np.maximum(a, 1e-12)
            if self.crit == "variance":
                mu = a.mean()
                sd = a.std()
                j = -sg * sd / mu
                if not grad:
                    return j, None
                ga = (-sg / n) * ((a - mu) / (sd * mu) - sd / mu ** 2)
                gr = ga * (ur / safe)
            else:  # "gradient": share of the gradient energy carried by the amplitude
                ea = _grad_energy(a)
                eu = _grad_energy(ur)
                j = -sg * ea / eu
                if not grad:
                    return j, None
                gr = (-sg / eu) * _grad_energy_grad(a) * (ur / safe) \
                    + (sg * ea / eu ** 2) * _grad_energy_grad(ur)
        g = np.zeros(u.shape, dtype=u.dtype)
        g[self.region] = gr
        return j, None, g

    def value(self, z, spot=None):
        return self.objective(self.field(z), spot=spot)[0]

    def data_gradient(self, z, spot):
        """dJ(z)/dh (an image of the window's shape) with the objective's spot fixed:
        the VJP of propagate (pad=False on the padded grid), then the adjoints of the
        low-pass (itself), of the zero-padding (a crop) and of sqrt."""
        out, pullback = vjp(propagate, self.sp, -float(z), **self.kw)
        self.nfev += 1
        _, _, gu = self.objective(1.0 + out[:self.wy, :self.wx], grad=True, spot=spot)
        g = np.zeros((self.py, self.px), dtype=out.dtype)
        g[:self.wy, :self.wx] = gu
        gsp = np.real(pullback(g)[0])
        gs = F.ifftn(F.fftn(gsp, xp=np) * self.mask, xp=np).real[:self.wy, :self.wx]
        if self.contrast:
            return gs
        # d sqrt(max(h, 0)) / dh = 1 / (2 sqrt(h)) where h > 0, else 0
        return np.divide(gs, 2.0 * self.sqrt_h, out=np.zeros_like(gs), where=self.sqrt_h > 0)


def _resolve_criterion(criterion):
    if not isinstance(criterion, str):
        raise ValueError(f"criterion must be one of 'auto', {', '.join(map(repr, _CRITERIA))}; "
                         f"got {criterion!r}")
    c = criterion.lower()
    if c == "auto":
        return c
    if c == "tamura":
        return "variance"
    if c not in _CRITERIA:
        raise ValueError(f"criterion must be one of 'auto', {', '.join(map(repr, _CRITERIA))}; "
                         f"got {criterion!r}")
    return c


def _resample(img, shape):
    """Band-limited resampling of an image to ``shape`` (smaller) by cropping its
    spectrum to the new grid's frequencies; keeps the mean."""
    ny, nx = img.shape
    my, mx = shape
    spec = F.fftn(img, xp=np)
    iy = np.fft.fftfreq(my, 1.0 / my).astype(int)
    ix = np.fft.fftfreq(mx, 1.0 / mx).astype(int)
    out = spec[np.ix_(iy % ny, ix % nx)]
    return np.ascontiguousarray(F.ifftn(out, xp=np).real) * (my * mx / (ny * nx))


def _setup(hologram, z_range, wavelength, pixel_size, position, window, criterion, polarity,
           z_max=None, n_medium=1.0):
    h = _check_hologram(hologram)
    zr = _check_z_range(z_range) if z_range is not None else None
    check_optics(wavelength, pixel_size, zr if zr is not None else z_max)
    dy, dx = V.pixel_size(pixel_size)
    lam = V.wavelength(wavelength) / V.n_medium(n_medium)
    if polarity not in ("dark", "bright"):
        raise ValueError(f"polarity must be 'dark' (opaque / absorbing particles) or 'bright', got "
                         f"{polarity!r}")
    pos = None if position is None else _pair(position, "position")
    crit = _resolve_criterion(criterion)
    if crit == "auto":
        crit = "axial" if pos is not None else _AUTO
    if crit == "axial" and pos is None:
        raise ValueError("criterion 'axial' needs the particle's position (y, x) in metres")
    zmax = zr[1] if zr is not None else z_max
    box, center = _window_box(h.shape, dy, dx, pos, window, zmax, lam)
    y0, x0, wy, wx = box
    hwin = h[y0:y0 + wy, x0:x0 + wx]
    if crit == "axial":
        return _Axial(hwin, center, lam, (dy, dx)), pos, box, zr
    # microscope pixels sample far finer than the angles used: resample the window to
    # the pixel lambda_m / (2 sin_max) (an exact low-pass, and 10-100x fewer pixels)
    target = lam / (2 * _sin_max(lam, dy, dx))
    if target > 1.5 * max(dy, dx):
        ry, rx = max(16, int(math.ceil(wy * dy / target))), max(16, int(math.ceil(wx * dx / target)))
        hwin = _resample(hwin, (ry, rx))
        if center is not None:
            center = (center[0] * ry / wy, center[1] * rx / wx)
        dy, dx = wy * dy / ry, wx * dx / rx
    prob = _Focus(hwin, center, crit, polarity, lam, (dy, dx))
    return prob, pos, box, zr


class _Axial:
    """The back-propagated field on the particle's axis, ``v(z) = 1 + P(-z) (h - 1)``
    at the particle's (sub-pixel) position, as a sum over the window's spatial
    frequencies up to ``sin_max / lambda_m`` (no inverse FFT: one dot product per
    depth)."""

    def __init__(self, hwin, center, lam, pixel_size):
        wy, wx = hwin.shape
        dy, dx = pixel_size
        self.lam, self.sin = lam, _sin_max(lam, dy, dx)
        self.h = hwin
        fy = np.fft.fftfreq(wy, dy)[:, None]
        fx = np.fft.fftfreq(wx, dx)[None, :]
        f2 = fy * fy + fx * fx
        band = f2 <= (self.sin / lam) ** 2
        spec = F.fftn(hwin - 1.0, xp=np)
        shift = np.exp(2j * np.pi * (fy * center[0] * dy + fx * center[1] * dx))
        self.sf = (spec * shift)[band] / (wy * wx)
        self.kz = 2 * np.pi * (np.sqrt(1.0 / lam ** 2 - f2[band]) - 1.0 / lam)
        self.npix = wy * wx
        self.crit = "axial"
        #: depth of field lambda_m / sin^2 and the axial period lambda_m / (1 - cos)
        self.dof = lam / self.sin ** 2
        self.period = lam / (1.0 - math.sqrt(1.0 - self.sin ** 2))

    def _sum(self, zs, coef, chunk=64):
        zs = np.asarray(zs, dtype=np.float64).reshape(-1)
        out = []
        for i in range(0, zs.size, chunk):
            out.append(np.exp(-1j * np.outer(zs[i:i + chunk], self.kz)) @ coef)
        return np.concatenate(out)

    def contrast(self, zs):
        """I(z) - 1 on the axis, I = |v|^2."""
        v = 1.0 + self._sum(zs, self.sf)
        return v.real ** 2 + v.imag ** 2 - 1.0

    def noisy_contrast(self, zs, sigma, draws, seed=0):
        """(zs, draws) contrasts under ``draws`` extra white-noise draws of standard
        deviation sigma (the parametric bootstrap of :func:`autofocus`)."""
        rng = np.random.default_rng(seed)
        nf = self.sf.size
        noise = (rng.standard_normal((nf, draws)) + 1j * rng.standard_normal((nf, draws)))             * (sigma / math.sqrt(2.0 * self.npix))
        v = 1.0 + self._sum(zs, self.sf)[:, None] + self._sum(zs, noise)
        return v.real ** 2 + v.imag ** 2 - 1.0

    @staticmethod
    def feature(zs, c, lens):
        """Depth of the feature on a sampled contrast curve: for a lens-like particle
        the first fall of c through 0 upstream of (beyond) its maximum, otherwise the
        minimum (parabola through its neighbours); None when there is none."""
        if lens:
            k = int(np.argmax(c))
            idx = np.nonzero((c[k:-1] > 0) & (c[k + 1:] <= 0))[0]
            if idx.size == 0:
                return None
            i = k + int(idx[0])
            return float(zs[i] + (zs[i + 1] - zs[i]) * c[i] / (c[i] - c[i + 1]))
        i = int(np.argmin(c))
        if i in (0, len(c) - 1):
            return None
        den = c[i - 1] - 2 * c[i] + c[i + 1]
        off = 0.5 * (c[i - 1] - c[i + 1]) / den if den > 0 else 0.0
        return float(zs[i] + off * (zs[1] - zs[0]))


def focus_curve(hologram, z, *, wavelength, pixel_size, position=None, window=None,
                criterion="auto", polarity="dark", n_medium=1.0):
    """The objective that :func:`autofocus` minimises (lower is better), at depths
    ``z`` (metres; a number or a 1-d array), with the same arguments (the default
    window is computed with z_max = max(z)).  The data are low-passed to the band
    limit of max(z), as in the coarse stage of :func:`autofocus`.  Returns a float64
    array of ``z``'s size."""
    zs = np.asarray(z, dtype=np.float64).reshape(-1)
    if zs.size == 0 or not np.all(np.isfinite(zs)) or np.any(zs <= 0):
        raise ValueError("z must be a non-empty array of positive, finite depths in metres")
    args = (hologram, None, wavelength, pixel_size, position, window)
    prob, _, _, _ = _setup(*args, criterion, polarity, z_max=float(zs.max()), n_medium=n_medium)
    if isinstance(prob, _Axial):
        c = prob.contrast(zs)
        if criterion != "auto" or _is_lens(c) or prob.sin >= _SIN_MAX:
            return c
        prob, _, _, _ = _setup(*args, "quadrature", polarity, z_max=float(zs.max()), n_medium=n_medium)
    prob.set_band(float(zs.max()))
    return np.array([prob.objective(u)[0] for u in prob.fields(zs)])


def _is_lens(c):
    """A particle that focuses light: its on-axis bright maximum exceeds its dark dip."""
    return bool(c.max() > 0 and c.max() > -c.min())


def autofocus(hologram, z_range, *, wavelength, pixel_size, position=None, window=None,
              criterion="auto", coarse=41, refine=True, polarity="dark", noise=None,
              n_medium=1.0) -> FocusResult:
    """Recording distance (metres from the sensor) of one particle, or of a whole
    hologram of a planar sample, with its noise-induced standard deviation.

    Model (CONVENTIONS.md, as :func:`backpropagate`): the deviation of the
    hologram ``h`` (background-divided, unit mean) from the infinite unit reference
    wave is back-propagated by ``-z`` with the carrier-free angular-spectrum
    propagator (zero-padded, band-limited) and the reference added back,
    ``u(z) = 1 + P(-z) s``, with ``s = sqrt(h) - 1`` (the amplitude deviation) or, for
    ``"min_intensity"``, ``s = h - 1`` (the contrast; see below).  Before
    propagation ``s`` is low-passed once to the band limit (Matsushima & Shimobaba
    2009) of the deepest plane of the stage: the limit shrinks as z grows, so every
    depth then sees the same frequencies and the same noise power (otherwise
    noise-sensitive criteria drift towards small z, where more noise passes) and
    the objective is smooth in z.

    Stages.  (1) *Coarse, global*: the objective is evaluated on ``coarse`` equally
    spaced depths spanning ``z_range`` (one inverse FFT per depth after one forward
    FFT per chunk of 8) and the best sample is kept.  Fringes make the criteria
    multimodal (side lobes, the twin image, neighbours' fringes; a local optimiser
    started at the edge of a 1-5 mm range stays there, see the tests); the coarse
    scan puts the refinement in the right basin.  The coarse step
    ``(z_max - z_min) / (coarse - 1)`` must be well below the half-width of the
    in-focus basin, about ``d^2 / lambda`` for a particle of diameter ``d``
    (190 um for 10 um at 532 nm; the default 41 samples over 1-5 mm give 100 um).
    (2) *Refine*: Brent's bounded method (``scipy.optimize.minimize_scalar(
    method="bounded")``) between the best sample's two neighbours, to 5 nm (about 25
    single-plane propagations); if it ends on an inner bracket end, once more
    between the next neighbours.  Brent rather than Newton on the analytic
    z-derivative: it needs no second derivative and cannot leave the bracket.

    Default (``criterion="auto"``).  With a ``position``: the "axial" scan runs
    first; a particle that focuses light (transparent spheres: polystyrene, silica;
    its on-axis bright maximum exceeds its dark dip) is placed by "axial"; a dark one
    by "axial" too where the pixels sample sin_max = 0.6 (microscopes), and by
    "quadrature" on coarser (lensless) sampling, where it was benchmarked on opaque
    disks.  Without a position (a planar sample): "quadrature".  On Lorenz-Mie
    holograms of microscope spheres (``benchmarks/bench_autofocus.py --mie``) the
    default is within max(1 um, 3 radius, 0.2 z) of the truth for 12 of 12 spheres
    (polystyrene, silica, absorbing; the previous default, "quadrature" on the whole
    image: see the benchmark's JSON).

    ``"axial"`` (particles only; ``n_medium`` matters: wavelength / n_medium)
        The back-propagated contrast on the particle's axis, ``I(z) = |1 + P(-z)(h - 1)|^2``
        at ``position`` (sub-pixel), from the window's spatial frequencies up to
        ``sin_max / lambda_m`` (sin_max = min(0.6, lambda_m / (2 d))), sampled every
        1/8 of the axial period ``lambda_m / (1 - cos)``, then on a fine grid of
        +-2 depths of field (``lambda_m / sin_max^2``).  A lens-like sphere makes a
        bright focus downstream of its centre and a shadow upstream; the depth is
        where ``I - 1`` falls through 0 going upstream from the maximum.  A dark
        particle: the minimum of ``I``.  ``curve`` holds ``I - 1`` (not an
        objective).  ``z_std``: a parametric bootstrap (32 draws of white noise of
        the estimated standard deviation added to the window's spectrum) combined
        with a systematic half depth of field (the feature's offset from the centre,
        measured up to ~1.5 um on the benchmark's spheres); the coverage
        ``|z - z_true| <= 3 z_std`` is reported by the benchmark.

    Criteria (each objective is minimised; ``curve`` holds it), as written for
    ``polarity="dark"`` (opaque or absorbing objects, the default).  ``"bright"``
    flips each sign, for weak phase objects: their amplitude contrast and the
    amplitude's share of the gradient energy are minimal in focus (Dubois et al.
    2006) and their deviation is in quadrature; the intensity criterion becomes the
    maximum.  Not benchmarked: for one 10 um disk of 0.3 rad at 2.5 mm (128^2,
    1 % noise) gradient was 6 um off, variance 9, quadrature 20, and the maximum
    intensity failed (a phase disk has no bright centre in focus).

    ``"quadrature"`` (the default, ``"auto"``)
        ``sum (Im v)^2 / sum |v|^2`` of the deviation ``v = u - 1`` over the
        evaluation region: the share of the back-propagated deviation's energy
        that is in quadrature with the reference.  In focus, an absorbing
        object's deviation is real (in phase with the reference, t - 1 < 0);
        defocus rotates it into quadrature (away from focus the share is ~1/2).
        It finds the depth where the particle's image is *most absorbing-like*.
        The ratio is insensitive to the energy that leaves the region with the
        defocus, the reason it beats the variance on truncated holograms.
    ``"min_intensity"`` (dark centre)
        The minimum, over the pixels within 2 pixels of ``position``, of
        ``|u|^2`` smoothed by a Gaussian of 1 pixel: the depth where the particle's
        centre is darkest.  It back-propagates the contrast ``h - 1``, which
        restores the full object contrast (an opaque disk is black in focus,
        on-axis intensity with a single dip); with the amplitude ``sqrt(h) - 1``
        the object appears at half contrast and its on-axis intensity oscillates
        near focus (Fresnel zones: zeros at a^2 / ((2m + 1) lambda) from focus),
        measured errors of +-50 um for 12 um particles.  For a whole hologram
        the search covers the evaluation region (the darkest spot of the sample).
    ``"variance"`` (alias ``"tamura"``)
        ``std(|u|) / mean(|u|)`` over the evaluation region, maximised.  The
        normalised variance (its square) and the Tamura coefficient (its square
        root) are monotonic functions of it: same optimum, same ``z_std``.  It
        finds the depth of greatest amplitude contrast (the minimum of the mean
        amplitude, Dubois 2006).
    ``"gradient"``
        ``sum |grad |u||^2 / sum |grad u|^2`` (forward differences) over the
        evaluation region, maximised: the share of the field's gradient energy
        carried by the amplitude (``|grad u|^2 = |grad |u||^2 + |u|^2 |grad phi|^2``;
        the complex field's own gradient energy is conserved by propagation and
        cannot focus): the depth of the sharpest amplitude edges and flattest phase.
    Evaluation region: the central half of the window around ``position`` (for a
    whole hologram, the window less a border of 1/8 of its size).

    All scalar criteria sit a few micrometres off the true centre: the twin image
    and, mostly, the sensor cutting the particle's diffraction cone bias them (a
    particle near an edge of the sensor focuses nearer the sensor; a centred one
    whose cone overfills the sensor, farther).  Measured with
    ``benchmarks/bench_autofocus.py`` (opaque disks of 8-12 um, lambda 532 nm, 2 um
    pixels, 1 % Gaussian noise, z_range 1-5 mm, coarse=41, default window; bias =
    mean of z - z_true, std = its standard deviation over the samples (mostly
    systematic: the bias depends on diameter and depth), |max| = largest error; um)::

        20 single particles at 1-5 mm,      256^2 hologram       128^2 hologram
        within 4 px of its centre          bias   std  |max|    bias   std  |max|
          quadrature (auto)                +0.61  0.53  1.37    +6.80  6.41  20.41
          min_intensity                    -2.41  1.00  5.40    -9.28  6.20  26.13
          variance / tamura                -1.04  0.53  2.84    +2.10  5.72  13.18
          gradient                         -0.11  0.54  1.05    +3.32  5.56  14.40
        median z_std                        0.22 - 0.26          0.41 - 0.45

        whole hologram: 10 planar samples   128^2 x 4 um         128^2 x 2 um
        of 8 particles at 1.5-4.5 mm,       (256^2 x 2 um        (the cones are
        40 um from the edges                 binned by 2)         cut by the edges)
          quadrature (auto)                -1.47  1.71  5.09    -4.77  8.06  26.51
          min_intensity                   -10.91  8.72 23.24   -11.59 12.34  33.45
          variance / tamura                -5.12  2.08  9.75   -10.69  9.29  34.69
          gradient                         -3.40  0.87  4.61   -11.94  8.77  34.03

    On 128^2 the errors grow with depth (quadrature: +1 um at 1-2 mm, +10 to
    +20 um at 4-5 mm).  The 10 um particle of the tests (2.5 mm, 128^2,
    noise-free): quadrature +0.91, min_intensity -5.83, variance -3.26, gradient
    -2.40 um.  Time per call (2 busy cores): 0.2-0.3 s on 128^2, 0.9-1.3 s on
    256^2, i.e. some 20-100 single-plane propagations of the window (the ratio is
    noisy under load).  Reproduce:
    ``PYTHONPATH=python python benchmarks/bench_autofocus.py`` (prints the tables,
    writes benchmarks/results/bench_autofocus.json).

    Uncertainty ``z_std`` (first-order error propagation, the delta method): at
    the optimum z* the objective's z-derivative vanishes, J'(z*) = 0; a
    perturbation ``dh`` of the hologram moves the optimum by ``dz = -dJ'/J''``, and
    for white noise of standard deviation sigma ``var(dJ') = sigma^2 ||dJ'/dh||^2``.
    ``dJ(z)/dh`` is exact (the VJP of :func:`propagate` with respect to the field,
    chained through the criterion, the low-pass, the zero-padding and ``sqrt``);
    ``dJ'/dh`` is its central difference at ``z* +- 1 um``, and ``J''`` the
    curvature of a parabola fitted to J at ``z* + {-2, ..., 2} x 4 um``.  So
    ``z_std = sigma ||dJ'/dh|| / J''``: proportional to the noise, smaller for a
    sharper focus.  sigma is ``noise`` (standard deviation of the unit-mean
    hologram) or, by default, :func:`estimate_noise` of the window.  Checked by
    Monte Carlo (30 noise draws; 10 um particle on 128^2 at 2.5 mm with 1 % noise
    and at 4.5 mm with 3 %; see the benchmark): the scatter of z agrees with
    ``z_std`` to within 5 % at 1 % noise (scatter / z_std = 0.98-1.04); at 3 %
    noise and 4.5 mm z_std is about 20 % low (1.17-1.23: the first-order expansion
    starts to fail).  ``z_std`` is statistical only: add the criterion's bias
    (above) for an error budget.  Without
    refinement, or with the optimum on an edge of ``z_range`` (warned), it is the
    coarse step / sqrt(12).

    Parameters
    ----------
    hologram : (ny, nx) real image, background-divided to unit mean (see
        :func:`preprocess`); converted to a float64 numpy array (the windows are small)
    z_range : (z_min, z_max), metres, 0 < z_min < z_max: where to look
    wavelength, pixel_size : metres (float, or (dy, dx) for the pixel size)
    position : (y, x) of the particle in **metres** (pixel (i, j) at (i dy, j dx)),
        or None for the whole hologram
    window : side of the square crop around ``position`` (a number) or (wy, wx), in
        **metres**; it must hold the particle's fringes.  Default: the particle's
        diffraction cone out to the angle used, a side of ``2 z_max tan(asin(s))``
        with ``s = min(0.6, lambda_m / (2 d))`` for pixels of ``d`` metres (the
        fringe period lambda_m z / r falls to 2 pixels at sin = lambda_m / (2 d);
        1.33 mm = 666 px at z_max = 5 mm, 532 nm, 2 um; 36 um at z_max = 30 um
        with microscope pixels), clipped to the image.  The window is shifted to stay inside the image.  With ``position=None`` the window
        (default: the whole image) is centred on the image.
    criterion : "auto" (see Default) | "axial" | "quadrature" | "min_intensity" |
        "variance" | "tamura" | "gradient"
    coarse : number of coarse depths (integer >= 3)
    refine : run stage 2
    polarity : "dark" (opaque / absorbing, the default) or "bright"
    noise : hologram noise standard deviation for ``z_std`` (default: estimated)
    n_medium : refractive index of the medium (1 <= n_medium <= 3; water 1.33): the
        propagation uses the wavelength in the medium, wavelength / n_medium

    The hologram must be background-divided: a mean outside [0.5, 2] (raw camera
    counts) is refused with a ValueError.  For the criteria other than "axial", a
    window sampled finer than lambda_m / (2 sin_max) (microscope pixels) is first
    resampled to that pixel by cropping its spectrum (exact low-pass; 10-100x fewer
    pixels), and the curvature span of ``z_std`` is a quarter of the depth of field
    (at most 4 um); a non-convex objective there gives a warning and ``z_std`` = the
    span, never inf.

    Returns
    -------
    FocusResult (z and z_std in metres)

    Example
    -------
    >>> r = autofocus(h, (1e-3, 5e-3), wavelength=532e-9, pixel_size=2e-6,
    ...               position=(128e-6, 128e-6))
    >>> r.z, r.z_std          # metres
    """
    if z_range is None:
        raise ValueError("z_range must be a pair (z_min, z_max) of distances in metres, got None")
    coarse = V.integer(coarse, "coarse", minimum=3, hint="(number of coarse depths)", type_error=ValueError)
    if noise is not None and (isinstance(noise, bool) or not isinstance(noise, numbers.Real)
                              or not math.isfinite(noise) or noise < 0):
        raise ValueError(f"noise must be a non-negative standard deviation (unit-mean hologram), got "
                         f"{noise!r}")
    args = (hologram, z_range, wavelength, pixel_size, position, window)
    prob, pos, box, (z0, z1) = _setup(*args, criterion, polarity, n_medium=n_medium)
    if isinstance(prob, _Axial):
        res = _axial_focus(prob, z0, z1, noise, pos, box, auto=criterion == "auto")
        if res is not None:
            return res
        prob, pos, box, _ = _setup(*args, "quadrature", polarity, n_medium=n_medium)
    zs = np.linspace(z0, z1, int(coarse))
    prob.set_band(z1)
    curve = np.array([prob.objective(u)[0] for u in prob.fields(zs)])
    if not np.all(np.isfinite(curve)):
        raise ValueError("the focus objective is not finite (is the hologram constant?)")
    k = int(np.argmin(curve))
    sigma = estimate_noise(prob.h) if noise is None else float(noise)
    quant = float((zs[1] - zs[0]) / math.sqrt(12.0))
    edge_msg = (f"the focus objective is best at the edge of z_range ({{:.6g}} m): the focus may "
                f"lie outside z_range={tuple(float(v) for v in (z0, z1))}")
    if not refine:
        if k in (0, len(zs) - 1):
            warnings.warn(edge_msg.format(zs[k]), UserWarning, stacklevel=2)
        return FocusResult(float(zs[k]), quant, prob.crit, zs, curve, False, pos, sigma, box)
    last = len(zs) - 1
    z, ok = float(zs[k]), False
    for reach in (1, 2):
        i0, i1 = max(k - reach, 0), min(k + reach, last)
        lo, hi = float(zs[i0]), float(zs[i1])
        prob.set_band(hi + 3 * _dz_curv(prob))
        res = minimize_scalar(prob.value, bounds=(lo, hi), method="bounded",
                              options=dict(xatol=_XATOL, maxiter=200))
        z = float(res.x)
        if float(res.fun) > prob.value(zs[k]):  # never worse than the best coarse sample
            z = float(zs[k])
        at_lo, at_hi = z - lo <= 10 * _XATOL, hi - z <= 10 * _XATOL
        if (at_lo and i0 == 0) or (at_hi and i1 == last):
            warnings.warn(edge_msg.format(z), UserWarning, stacklevel=2)
            return FocusResult(z, quant, prob.crit, zs, curve, False, pos, sigma, box)
        ok = bool(res.success) and not (at_lo or at_hi)
        if ok:
            break
    z_std = _z_std(prob, z, sigma) if ok else quant
    return FocusResult(z, z_std, prob.crit, zs, curve, ok, pos, sigma, box)


def _dz_curv(prob):
    """Spacing of the parabola giving J'' for z_std: a quarter of the depth of field
    lambda_m / sin^2 of the angles the window resolves, at most _DZ_CURV."""
    sin = _sin_max(prob.lam, prob.dy, prob.dx)
    return min(_DZ_CURV, 0.25 * prob.lam / sin ** 2)


def _axial_focus(ax: _Axial, z0, z1, noise, pos, box, auto):
    """The "axial" criterion (see :func:`autofocus`); None when ``auto`` and the
    particle is not lens-like (then the caller uses "quadrature")."""
    step = ax.period / 8.0
    zs = np.linspace(z0, z1, max(int(math.ceil((z1 - z0) / step)) + 1, 3))
    c = ax.contrast(zs)
    lens = _is_lens(c)
    if auto and not lens and ax.sin < _SIN_MAX:
        return None
    sigma = estimate_noise(ax.h) if noise is None else float(noise)
    z = _Axial.feature(zs, c, lens)
    quant = float((zs[1] - zs[0]) / math.sqrt(12.0))
    if z is None or z - z0 < zs[1] - zs[0] or z1 - z < zs[1] - zs[0]:
        zb = float(zs[np.argmax(c) if lens else np.argmin(c)]) if z is None else z
        what = ("fall of the intensity through the background upstream of its maximum" if lens
                else "intensity minimum")
        warnings.warn(f"the on-axis {what} is not inside z_range="
                      f"{(z0, z1)}: the focus may lie outside it; returning {zb:.6g} m with z_std the "
                      f"sampling step / sqrt(12)", UserWarning, stacklevel=3)
        return FocusResult(zb, quant, "axial", zs, c, False, pos, sigma, box)
    # refine on a fine local grid, then bootstrap the feature under extra noise draws
    zl = z + np.linspace(-2.0, 2.0, 161) * ax.dof
    zl = zl[(zl >= z0) & (zl <= z1)]
    cl = ax.contrast(zl)
    z = _Axial.feature(zl, cl, lens) if lens else _Axial.feature(zl, cl, False)
    z = float(zs[np.argmin(np.abs(zs - zl.mean()))]) if z is None else z
    cb = ax.noisy_contrast(zl, sigma, _BOOT)
    boot = np.array([_Axial.feature(zl, cb[:, b], lens) if lens or 0 < np.argmin(cb[:, b]) < len(zl) - 1
                     else None for b in range(_BOOT)], dtype=object)
    ok = np.array([b is not None for b in boot])
    if ok.sum() < _BOOT // 2:
        warnings.warn(f"z_std: the focus feature vanished in {int((~ok).sum())} of {_BOOT} noise draws "
                      f"(noise {sigma:.3g}): z_std is set to 2 depths of field ({2 * ax.dof:.3g} m)",
                      UserWarning, stacklevel=3)
        z_std = 2.0 * ax.dof
    else:
        spread = float(np.std(boot[ok].astype(np.float64)))
        z_std = math.hypot(spread, _SYSTEMATIC * ax.dof)
    return FocusResult(z, z_std, "axial", zs, c, True, pos, sigma, box)


def _z_std(prob: _Focus, z, sigma):
    """Delta-method standard deviation of the optimum (see :func:`autofocus`)."""
    _, spot = prob.objective(prob.field(z))
    dz = _dz_curv(prob)
    offs = dz * np.arange(-2, 3)
    vals = np.array([prob.value(z + o, spot=spot) for o in offs])
    curv = 2.0 * np.polyfit(offs / dz, vals, 2)[0] / dz ** 2
    if not curv > 0:
        warnings.warn(f"z_std: the focus objective is not convex over z = {z:.6g} +- {2 * dz:.3g} m "
                      f"(a flat or noisy criterion): z_std is set to that span, {2 * dz:.3g} m",
                      UserWarning, stacklevel=3)
        return 2.0 * dz
    gp = prob.data_gradient(z + _DZ_GRAD, spot)
    gm = prob.data_gradient(z - _DZ_GRAD, spot)
    dprime = math.sqrt(float(np.sum(((gp - gm) / (2 * _DZ_GRAD)) ** 2)))
    return float(sigma * dprime / curv)
