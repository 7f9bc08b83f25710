"""Uncertainty-aware Fourier ptychography: the object recovered together with
the pupil aberrations, the LED-array geometry, the LED brightnesses and the
per-image noise levels.

The problem (the forward model is :func:`diffimaging.fpm.model`'s fused
stages, :class:`~diffimaging.fpm.SpectralIllumination` and
:class:`~diffimaging.fpm.SpectralPupil`, with their explicit VJPs)::

    o*, theta*, a*, phi* = argmin  sum_j (1 / phi_j) L(a_j |psi_j(o, theta)|^2 + b, I_j)
                                  + (n / 2) sum_j log phi_j

with theta = (array offset, rotation, height; Zernike coefficients), a_j the
LED brightnesses, phi_j >= 1 the per-image noise scales (the frames' weights
are 1 / phi_j) and L one of :mod:`~diffimaging.fpm.losses`' fidelities.  The
schedule (:func:`reconstruct`):

1. *Calibration* (when the geometry is learned and ``calibrate`` is not
   False): the array's offset and rotation fitted to the illumination
   frequencies measured in the bright-field images' spectra
   (:func:`calibrate_geometry`), kept only if a short trial fit confirms it —
   the global stage for a large misalignment.
2. *Bright-field start*: the up-sampled amplitude of the most on-axis image.
3. *Sequential warm-up by NA order*: the first iterations fit the LEDs in
   order of illumination NA (bright field first, the outer dark-field rings
   joining one after another).
4. *Joint iterations*, block-sequential over batches of LEDs in NA order:
   the object takes a preconditioned step per batch (the Gauss-Newton
   diagonal of the fidelity in the object's spectrum, the weighted count of
   shifted pupils covering each frequency, regularised like rPIE), and so
   does the sample's transmission beyond the grid (the unscattered light);
   theta takes one Adam step per pass in physical units with a geometric
   decay; the brightnesses and the noise scales take their closed-form
   updates.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from .. import _backend as B
from .._backend import fft as F
from .._backend import validate as V
from .._backend import cuda_fpm as KF
from .._backend.capabilities import route
from .._backend.cuda import via_cupy
from .._backend.namespace import is_array, to_numpy
from . import losses as FL
from .data import Dataset, Reconstruction, Setup
from .imaging import LED_SIZE, Imaging

log = logging.getLogger(__name__)

__all__ = ["reconstruct", "LEARN", "DEFAULT_LEARN", "initial_object", "calibrate_geometry",
           "coverage", "disc_centre"]

#: what :func:`reconstruct` can learn
LEARN = ("pupil", "leds", "pitch", "led_size", "brightness", "noise")
#: what it learns by default
DEFAULT_LEARN = ("pupil", "leds", "brightness", "noise")
#: Zernike terms not learned: piston (a global phase) and the tilts (an exact
#: trade with a translation of the object)
_UNIDENTIFIABLE = (1, 2, 3)
#: the object step's regularisation: a fraction of the batch's largest coverage
#: (a rPIE-like denominator; 0.02 diverged on the standard case, 0.1 and 0.3 did not)
_EPS = 0.3


class _Adam:
    """Adam on a dict of host float64 arrays with per-key learning rates."""

    def __init__(self, lr: dict, b1=0.9, b2=0.999, eps=1e-12):
        self.lr, self.b1, self.b2, self.eps = dict(lr), b1, b2, eps
        self.m, self.v, self.t = {}, {}, {}

    def step(self, key, value, grad, factor=1.0):
        g = np.asarray(grad, dtype=np.float64)
        if key not in self.m:
            self.m[key], self.v[key], self.t[key] = np.zeros_like(g), np.zeros_like(g), 0
        self.t[key] += 1
        t = self.t[key]
        self.m[key] = self.b1 * self.m[key] + (1 - self.b1) * g
        self.v[key] = self.b2 * self.v[key] + (1 - self.b2) * g * g
        mh = self.m[key] / (1 - self.b1 ** t)
        vh = self.v[key] / (1 - self.b2 ** t)
        return np.asarray(value, dtype=np.float64) - factor * self.lr[key] * mh / (
            np.sqrt(vh) + self.eps)


def _host(a) -> np.ndarray:
    return np.asarray(B.to_host_float64(a, "array") if not np.iscomplexobj(a) else a)


def initial_object(images, setup: Setup, pad: int, *, index=None):
    """The bright-field start: sqrt of the most on-axis image (``index``, default
    the LED of smallest nominal illumination NA) over its mean, edge-padded by
    ``pad`` camera pixels, up-sampled (linear) to the object grid; phase 0.
    Returns ``(o0 complex128 (NY, NX), index, a0)`` with a0 the image's mean."""
    from scipy import ndimage

    ims = np.asarray(images, dtype=np.float64)
    if index is None:
        index = int(np.argmin(np.hypot(*setup.wavevectors().T)))
    img = np.clip(ims[index], 0.0, None)
    a0 = float(np.mean(img))
    if not a0 > 0:
        raise ValueError(f"image {index} (the most on-axis LED's) is dark: mean {a0!r}; the "
                         f"bright-field start needs a bright-field image")
    amp = np.sqrt(img / a0)
    amp = np.pad(amp, pad, mode="reflect") if pad else amp
    u = setup.upsampling
    big = ndimage.zoom(amp, u, order=1, mode="nearest", grid_mode=True)
    return big.astype(np.complex128), index, a0


def coverage(k, setup: Setup, shape, weights, xp=np, device=None, dtype=None):
    """D(f) (NY, NX), FFT order: ``sum_j weights_j |circ(f - k_j)|^2`` on the
    object grid's frequencies — how strongly the data constrain each frequency
    of the object (the Gauss-Newton diagonal of the fidelity, up to a factor)."""
    NY, NX = shape
    p = setup.object_pixel_size
    fy = F.fftfreq(NY, p)
    fx = F.fftfreq(NX, p)
    fc2 = setup.cutoff ** 2
    k = np.asarray(k, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    D = np.zeros((NY, NX))
    r = setup.cutoff
    for j in np.flatnonzero(w > 0):
        ky, kx = k[j]
        # only the rows/cols the disc touches (the disc wraps around the periodic grid)
        dy = (fy - ky + 0.5 / p) % (1.0 / p) - 0.5 / p
        dx = (fx - kx + 0.5 / p) % (1.0 / p) - 0.5 / p
        rows = np.flatnonzero(np.abs(dy) <= r)
        cols = np.flatnonzero(np.abs(dx) <= r)
        inside = dy[rows, None] ** 2 + dx[None, cols] ** 2 <= fc2
        D[np.ix_(rows, cols)] += w[j] * inside
    return xp.asarray(D if dtype is None else D.astype(dtype), device=device)


def _bf_fraction(k, setup: Setup) -> np.ndarray:
    return np.hypot(*np.asarray(k).T) / setup.cutoff


def _spectrum_score(logF, fy, fx, k, r):
    """Mean log spectrum inside the two discs of radius r centred at +-k minus
    its mean on the rings just outside them (width 2 spectral pixels)."""
    d1 = np.hypot(fy - k[0], fx - k[1])
    d2 = np.hypot(fy + k[0], fx + k[1])
    d = np.minimum(d1, d2)
    inside = d <= r - 0.5
    ring = (d > r + 0.5) & (d <= r + 2.5)
    if not inside.any() or not ring.any():
        return -np.inf
    return float(logF[inside].mean() - logF[ring].mean())


def disc_centre(image, setup: Setup, k0, *, search=6.0):
    """The illumination frequency (ky, kx) [1/m] of a bright-field image from its
    spectrum.

    In a bright-field image the unscattered light interferes with the
    scattered light: the image's spectrum is bright inside two discs of the
    pupil's radius centred at +k and -k and dark outside them (Eckert,
    Phillips & Waller 2018).  The discs are located by maximising the contrast
    of the log spectrum between their inside and a ring just outside, on a
    grid of half a spectral pixel within ``search`` pixels of ``k0`` and then
    of a tenth of a pixel.  Accuracy: a few tenths of a spectral pixel."""
    img = np.asarray(image, dtype=np.float64)
    ny, nx = img.shape
    p = setup.low_pixel_size
    Fs = np.abs(np.fft.fft2(img - img.mean()))
    logF = np.log(Fs + 1e-6 * Fs.max())
    iy = np.fft.fftfreq(ny) * ny
    ix = np.fft.fftfreq(nx) * nx
    fy, fx = iy[:, None] * np.ones((1, nx)), ix[None, :] * np.ones((ny, 1))
    keep = np.hypot(fy, fx) > 1.5                       # the autocorrelation's peak
    logF = np.where(keep, logF, np.nan)
    logF = np.where(np.isnan(logF), np.nanmedian(logF), logF)
    step = np.array([1.0 / (ny * p), 1.0 / (nx * p)])   # spectral pixel [1/m]
    r = setup.cutoff / step                             # pupil radius [px] (per axis)
    r = float(np.mean(r))
    c0 = np.asarray(k0, dtype=np.float64) / step
    best = (-np.inf, c0)
    for span, h in ((search, 0.5), (0.6, 0.1)):
        centre = best[1]
        g = np.arange(-span, span + 1e-9, h)
        for dy in g:
            for dx in g:
                c = centre + (dy, dx)
                sc = _spectrum_score(logF, fy, fx, c, r)
                if sc > best[0]:
                    best = (sc, c)
    return best[1] * step, best[0]


def calibrate_geometry(images, setup: Setup, *, search=6.0, min_contrast=0.3):
    """A global estimate of the LED array's offset, rotation and height from the
    bright-field images alone — the coarse stage for a large misalignment.

    1. The bright-field LEDs are found from the images: their means (the
       unscattered light) exceed the dark-field ones by orders of magnitude;
       a two-class threshold (Otsu) of the log means splits them.
    2. Each bright-field LED's frequency is measured from its image's spectrum
       (:func:`disc_centre`), searching ``search`` spectral pixels around the
       nominal one.
    3. The array's offset and rotation are fitted to the measured
       frequencies by robust least squares (scipy.optimize.least_squares,
       soft-L1), the pitch and the height kept (within the bright field a
       height error of a few per cent moves the frequencies by less than the
       measurement's accuracy; the joint stage learns it).

    Returns a dict: ``offset`` (2,), ``rotation``, ``height``, ``measured``
    (the bright-field LED indices and their frequencies), ``residual_px``
    (RMS misfit in spectral pixels) and ``brightfield`` (J,) bool.  With fewer
    than 4 usable bright-field LEDs the nominal geometry is returned
    (``used`` False).
    """
    from scipy.optimize import least_squares
    from skimage.filters import threshold_otsu

    from .geometry import wavevectors

    ims = np.asarray(images, dtype=np.float64)
    J, ny, nx = ims.shape
    means = np.maximum(ims.mean(axis=(1, 2)), 1e-12)
    lm = np.log(means)
    bf = lm > float(threshold_otsu(lm)) if np.ptp(lm) > 0 else np.ones(J, dtype=bool)
    k_nom = setup.wavevectors()
    idx, meas, score = [], [], []
    for j in np.flatnonzero(bf):
        k, sc = disc_centre(ims[j], setup, k_nom[j], search=search)
        if np.isfinite(sc) and sc >= min_contrast:
            idx.append(j)
            meas.append(k)
            score.append(sc)
    out = dict(offset=np.asarray(setup.offset, dtype=np.float64), rotation=setup.rotation,
               height=setup.height, brightfield=bf, measured=dict(index=idx,
                                                                   k=np.asarray(meas).tolist()),
               used=False, residual_px=float("nan"))
    if len(idx) < 4:
        return out
    meas = np.asarray(meas)
    step = 1.0 / (np.array([ny, nx]) * setup.low_pixel_size)

    def resid(v):
        k = wavevectors(setup.rows, setup.cols, setup.pitch, offset=(v[0], v[1]), rotation=v[2],
                        height=setup.height, wavelength=setup.wavelength)[idx]
        return ((k - meas) / step).ravel()

    # the height is kept: it scales the frequencies, and within the bright field
    # (|k| < na / wavelength) a height error of a few per cent moves them by less
    # than the fit's accuracy (measured: 2-4 mm off on the standard case)
    v0 = np.array([setup.offset[0], setup.offset[1], setup.rotation])
    sol = least_squares(resid, v0, loss="soft_l1", f_scale=0.5,
                        x_scale=np.array([setup.pitch / 10, setup.pitch / 10, 1e-2]),
                        bounds=([v0[0] - 2 * setup.pitch, v0[1] - 2 * setup.pitch, -math.pi / 8],
                                [v0[0] + 2 * setup.pitch, v0[1] + 2 * setup.pitch, math.pi / 8]))
    r = resid(sol.x).reshape(-1, 2)
    out.update(offset=sol.x[:2].copy(), rotation=float(sol.x[2]), height=setup.height,
               used=True, residual_px=float(np.sqrt(np.mean(np.sum(r ** 2, axis=1)))))
    return out


def _check_dataset(dataset):
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a diffimaging.fpm.Dataset (images and their Setup), "
                        f"got {type(dataset).__name__}; pass reconstruct(images, setup), build one with "
                        f"fpm.Dataset(images, setup) or read one with fpm.read_dataset")
    ims = np.asarray(B.to_host_float64(dataset.images, "images"), dtype=np.float64)
    V.check_finite(ims, "images")
    if float(np.max(ims)) <= 0:
        raise ValueError("images are all zero or negative: nothing to reconstruct")
    return ims


_TRIAL_PASSES = 6
_TRIAL_BATCHES = 3


class _State:
    """The variables of one reconstruction: object, geometry, Zernike, brightness, noise."""

    def __init__(self, o, geo, zern, a, phi, centre, c):
        self.o, self.geo, self.zern, self.a, self.phi = o, geo, zern, a, phi
        #: the sample's transmission beyond the object grid (Imaging's background)
        self.c = complex(c)
        self.centre = centre
        self.last_loss = float("nan")
        self.vals = np.zeros(a.shape[0])


class _Context:
    """The fixed parts of a reconstruction (data, model stages, batches) and its passes."""

    def __init__(self, ims, setup, *, pad, M, loss, background, cdt, rdt, batch,
                 brightness_range=1.3, led_size=LED_SIZE, xp=np, device=None):
        self.ims, self.setup, self.pad, self.M, self.loss = ims, setup, pad, M, loss
        #: the array library and device of the object, the fields and the data (numpy,
        #: or CuPy on the GPU); the small variables (geometry, brightness, noise) stay
        #: on the host
        self.xp, self.device = xp, device
        self.xcdt, self.xrdt = getattr(xp, np.dtype(cdt).name), getattr(xp, np.dtype(rdt).name)
        #: the fidelity step by the CUDA kernel (CuPy with the CUDA module)
        self.fused_fidelity = route("fpm_fidelity", xp) == "cuda"
        self.brightness_range = float(brightness_range)
        self.background, self.cdt, self.rdt = background, cdt, rdt
        J, ny, nx = ims.shape
        self.J, self.ny, self.nx = J, ny, nx
        u = setup.upsampling
        self.n_low = (ny + 2 * pad, nx + 2 * pad)
        self.NY, self.NX = self.n_low[0] * u, self.n_low[1] * u
        self.img = Imaging(setup, (self.NY, self.NX), margin=pad * u, zernike=M,
                           led_size=led_size)
        mask = np.zeros(self.n_low, dtype=rdt)
        mask[pad:pad + ny, pad:pad + nx] = 1.0
        Y = np.zeros((J,) + self.n_low, dtype=rdt)
        Y[:, pad:pad + ny, pad:pad + nx] = ims
        self.mask, self.Y = self.dev(mask), self.dev(Y)
        self.n_pix = ny * nx
        self.zmask = np.array([j not in _UNIDENTIFIABLE for j in range(1, M + 1)],
                              dtype=np.float64)
        self.kappa = 8.0 if loss == "poisson" else 2.0
        self.scale_D = (self.n_low[0] * self.n_low[1]) / float(self.NY * self.NX)
        rho = _bf_fraction(setup.wavevectors(), setup)
        nb = max(1, math.ceil(J / batch))
        order = np.argsort(rho, kind="stable")
        self.batches = [order[i * J // nb:(i + 1) * J // nb] for i in range(nb)]

    def dev(self, a):
        """A host array on the reconstruction's library and device."""
        return a if self.xp is np else self.xp.asarray(a, device=self.device)

    def idx(self, b):
        """LED indices ``b`` (host ints) for indexing the device arrays."""
        return b if self.xp is np else self.xp.asarray(b, device=self.device)

    def start(self, geo) -> _State:
        """The bright-field start under the geometry ``geo``."""
        start = self.setup.with_geometry(**{k: geo[k] for k in ("offset", "rotation", "height",
                                                                  "pitch")})
        o, centre, a0 = initial_object(self.ims, start, self.pad)
        o = o.astype(self.cdt)
        return _State(self.dev(o),
                      {k: (np.array(v, dtype=np.float64) if k == "offset" else float(v))
                       for k, v in geo.items()},
                      np.zeros(self.M), np.full(self.J, a0), np.ones(self.J), centre, np.mean(o))

    def passes(self, st: _State, n, *, learn, batches=None, warmup=0, history=None, bar=None,
               callback=None, t_start=None, record=True):
        """``n`` passes over the LEDs of ``batches`` (default all), updating ``st``."""
        setup, img, xp = self.setup, self.img, self.xp
        rdt, cdt, loss, M = self.rdt, self.cdt, self.loss, self.M
        batches = self.batches if batches is None else batches
        nb = len(batches)
        learn_geo = "leds" in learn or "pitch" in learn
        adam = _Adam(dict(offset=0.005 * setup.pitch, rotation=1e-3, height=0.002 * setup.height,
                          pitch=0.002 * setup.pitch, zernike=0.05, led_size=2e-5))
        t_theta = max(1, warmup // 2)
        t_noise = max(warmup, int(0.3 * n))
        t_start = time.perf_counter() if t_start is None else t_start
        geo = st.geo
        for t in range(n):
            stage = "warm-up" if t < warmup else "joint"
            used = batches[:max(1, math.ceil(nb * (t + 1) / warmup))] if t < warmup else batches
            active = np.zeros(self.J, dtype=bool)
            for b in used:
                active[b] = True
            w = 1.0 / st.phi
            k_all = img.wavevectors(geo)
            theta_on = t >= t_theta
            img.geometry_gradient = learn_geo and theta_on
            img.led_size_gradient = "led_size" in learn and theta_on
            img.zernike_gradient = "pupil" in learn and M > 3 and theta_on
            g_z = np.zeros(M)
            g_l = dict(offset=np.zeros(2), rotation=0.0, height=0.0, pitch=0.0, led_size=0.0)
            for b in used:
                cw = self.kappa * w[b] * st.a[b] * self.scale_D
                Db = coverage(k_all[b], setup, (self.NY, self.NX), cw)
                Dinv_h = (1.0 / (Db + _EPS * float(np.max(Db)))).astype(rdt)
                Dinv = self.dev(Dinv_h)
                psi, res = img.forward(st.o, geo, st.zern, b, background=st.c)
                bright = "brightness" in learn and t >= 1
                # |psi|^2 (before the object's step): for the array-API fidelity and the
                # brightness update (the CUDA fidelity kernel forms its own)
                I2 = (xp.astype(xp.real(psi) ** 2 + xp.imag(psi) ** 2, self.xrdt)
                      if bright or not self.fused_fidelity else None)
                Yb = self.Y[self.idx(b)]
                if self.fused_fidelity:
                    vals, gpsi = KF.fidelity(psi, Yb, self.mask, st.a[b], w[b], self.background,
                                             loss)
                    st.vals[b] = vals
                else:
                    ab = self.dev(st.a[b].reshape(-1, 1, 1).astype(rdt))
                    mu = ab * I2 + rdt(self.background)
                    vals, gmu = FL.gradient(mu, Yb, loss, self.dev(w[b]), self.mask)
                    st.vals[b] = B.to_host_float64(vals, "vals")
                    gpsi = (2.0 * ab * gmu) * psi
                go, gp_l, gz = img.backward(res, gpsi)
                st.o = xp.astype(st.o - F.ifftn(F.fftn(go) * Dinv), self.xcdt)
                # the background beyond the grid: the object's step at zero frequency
                # (a uniform change of both is one change of the unscattered light,
                # hence half a step each)
                st.c = st.c - 0.5 * gp_l["background"] * float(Dinv_h[0, 0]) / (self.NY * self.NX)
                if theta_on:
                    g_z += gz
                    for key in g_l:
                        g_l[key] = g_l[key] + np.asarray(gp_l.get(key, 0.0), dtype=np.float64)
                # brightness: the closed-form optimum of the fidelity's own metric for
                # the current fields (Poisson: sum(I - b) / sum |psi|^2; amplitudes:
                # the least-squares scale of |psi| to sqrt(I - b)) — an estimate in
                # another metric than the object's would drift with it at the few
                # photons of the outer dark-field frames
                if bright:
                    sig = xp.clip(Yb - self.background, 0.0, None) * self.mask
                    I2m = xp.astype(I2, xp.float64) * self.mask
                    den = np.maximum(B.to_host_float64(xp.sum(I2m, axis=(1, 2)), "den"), 1e-30)
                    if loss == "poisson":
                        ab_new = B.to_host_float64(xp.sum(sig, axis=(1, 2)), "sig") / den
                    else:
                        ab_new = (B.to_host_float64(xp.sum(xp.sqrt(I2m * sig), axis=(1, 2)),
                                                    "amp") / den) ** 2
                    # within the prior range around the median brightness: a frame
                    # dimmed by the pupil's edge must be explained by the geometry, not
                    # by its LED
                    ref = float(np.median(st.a))
                    st.a[b] = np.clip(ab_new, ref / self.brightness_range,
                                      ref * self.brightness_range)
            # theta: one Adam step per pass, with a geometric decay
            if theta_on:
                factor = 0.01 ** ((t - t_theta) / max(1, n - t_theta))
                if "pupil" in learn and M > 3:
                    st.zern = adam.step("zernike", st.zern, g_z * self.zmask, factor) * self.zmask
                if "leds" in learn:
                    geo["offset"] = np.clip(adam.step("offset", geo["offset"], g_l["offset"],
                                                      factor),
                                            np.asarray(setup.offset) - 2 * setup.pitch,
                                            np.asarray(setup.offset) + 2 * setup.pitch)
                    geo["rotation"] = float(np.clip(adam.step("rotation", geo["rotation"],
                                                              g_l["rotation"], factor),
                                                    -math.pi / 8, math.pi / 8))
                    geo["height"] = float(np.clip(adam.step("height", geo["height"],
                                                            g_l["height"], factor),
                                                  0.5 * setup.height, 1.5 * setup.height))
                if "led_size" in learn:
                    geo["led_size"] = float(np.clip(adam.step("led_size", geo["led_size"],
                                                              g_l["led_size"], factor), 0.0, 2e-3))
                if "pitch" in learn:
                    geo["pitch"] = float(np.clip(adam.step("pitch", geo["pitch"], g_l["pitch"],
                                                           factor),
                                                 0.9 * setup.pitch, 1.1 * setup.pitch))
            if "noise" in learn and t >= t_noise:
                st.phi = FL.dispersion(st.vals, k_all)
            st.last_loss = float(np.sum(st.vals[active])) / (self.n_pix * int(np.sum(active)))
            if not math.isfinite(st.last_loss):
                raise FloatingPointError(f"the reconstruction diverged at pass {t} (loss "
                                         f"{st.last_loss}); try dtype='complex128' or check "
                                         f"the images and the setup")
            if history is not None and record:
                history["loss"].append(st.last_loss)
                history["stage"].append(stage)
                history["time"].append(time.perf_counter() - t_start)
            if bar is not None:
                bar.update(1)
            if callback is not None and callback(t, dict(
                    object=st.o, zernike=st.zern.copy(), geometry=dict(geo),
                    brightness=st.a.copy(), noise=st.phi.copy(), loss=st.last_loss)):
                break
        return st


def reconstruct(dataset, setup: Setup | None = None, *, learn=DEFAULT_LEARN, loss="amplitude",
                iterations=250, pad=8, calibrate="auto", zernike=9, background=0.0, warmup=None, batch=25,
                brightness_range=1.3, led_size=LED_SIZE, dtype="complex64", progress=False,
                callback=None) -> Reconstruction:
    """The complex object and the uncertain system recovered together.

    Parameters
    ----------
    dataset : Dataset, or the images (J, ny, nx)
        Images in photons (or any linear unit) with their nominal Setup, or the
        images alone with the Setup as ``setup``.  CuPy images keep the work on the GPU;
        a torch CUDA tensor is viewed as a CuPy array (DLPack, zero-copy) and
        runs there too (the result is on the host either way).
    setup : Setup, optional
        The nominal setup when ``dataset`` is an image stack (not with a Dataset).
    learn : subset of ("pupil", "leds", "pitch", "led_size", "brightness", "noise")
        What is learned with the object: the pupil's Zernike coefficients
        (Noll 4 and up: piston and tilts are not identifiable), the array's
        offset / rotation / height, its pitch (off by default), the LEDs'
        emitter size (the bright-field edge's width; off by default), the LED
        brightnesses, the per-image noise scales.  () recovers the object
        with everything at its nominal value.
    loss : "amplitude", "poisson" or "huber"
        The fidelity (:mod:`diffimaging.fpm.losses`); "poisson" for photon
        counts at low light.
    iterations : int
        Passes over all LEDs (each one forward and one VJP of the full model).
    pad : int
        Camera pixels of object beyond the field of view on each side (the
        light from outside the field that reaches its edges); the returned
        object is the field of view.
    calibrate : "auto", True or False
        The coarse geometry search first (:func:`calibrate_geometry`); "auto":
        when "leds" is learned.
    zernike : int
        Zernike modes of the pupil (Noll 1..zernike).
    background : float
        Known offset b of the images (photons), e.g. the camera's dark level.
    warmup : int, optional
        Iterations of the NA-ordered warm-up (default iterations // 8, at most 40).
    batch : int
        LEDs per object update (the passes are block-sequential, in NA order).
    brightness_range : float
        The LED brightnesses stay within [1 / r, r] times their median (the
        prior: LEDs of one array differ by tens of per cent; without it a
        frame dimmed by the pupil's edge is explained by its LED instead of
        the geometry).
    led_size : float [m]
        The LEDs' emitter size (the width of the bright-field edge,
        :class:`~diffimaging.fpm.imaging.Imaging`).
    dtype : "complex64" or "complex128"
        Precision of the object and fields.
    progress : bool
        A tqdm progress bar.
    callback : callable(iteration, state) -> bool, optional
        Called after every iteration with a dict (``object``, ``zernike``,
        ``geometry``, ``brightness``, ``noise``, ``loss``); True stops.

    Returns
    -------
    Reconstruction

    Example
    -------
    >>> data = fpm.simulate()
    >>> rec = fpm.reconstruct(data)
    >>> rec.geometry["rotation"], rec.zernike
    """
    t_start = time.perf_counter()
    if isinstance(dataset, Dataset):
        if setup is not None:
            raise TypeError("setup is given twice: the Dataset holds its Setup; pass "
                            "reconstruct(dataset) or reconstruct(images, setup)")
    elif setup is not None:
        dataset = Dataset(images=dataset, setup=setup)
    ims = _check_dataset(dataset)
    setup = dataset.setup
    learn = V.names(learn, "learn", LEARN)
    loss = FL.check(loss)
    iterations = V.integer(iterations, "iterations", minimum=1)
    pad = V.integer(pad, "pad", minimum=0)
    M = V.integer(zernike, "zernike", minimum=1, maximum=36)
    background = float(background)
    brightness_range = V.positive_scalar(brightness_range, "brightness_range",
                                         unit="(a factor >= 1)")
    if brightness_range < 1:
        raise ValueError(f"brightness_range must be a factor >= 1 (1.3: within +-30 % of the "
                         f"median), got {brightness_range!r}")
    if calibrate not in ("auto", True, False):
        raise ValueError(f"calibrate must be 'auto', True or False, got {calibrate!r}")
    if dtype not in ("complex64", "complex128"):
        raise ValueError(f"dtype must be 'complex64' or 'complex128', got {dtype!r}")
    cdt = np.complex64 if dtype == "complex64" else np.complex128
    rdt = np.float32 if dtype == "complex64" else np.float64
    J, ny, nx = ims.shape
    u = setup.upsampling
    nw = min(40, iterations // 8) if warmup is None else V.integer(warmup, "warmup", minimum=0)
    history = {"loss": [], "stage": [], "time": []}

    xp, device = np, None
    if is_array(dataset.images):
        lib = B.namespace(dataset.images)
        if B.is_cupy_namespace(lib):      # the GPU: object, fields and data on the device
            xp, device = lib, B.device_of(dataset.images)
    ctx = _Context(ims, setup, pad=pad, M=M, loss=loss, background=background, cdt=cdt,
                   rdt=rdt, batch=batch, brightness_range=brightness_range, led_size=led_size,
                   xp=xp, device=device)

    # 1. coarse calibration, kept only when a short fit confirms it
    geo = setup.geometry()
    geo["offset"] = np.asarray(geo["offset"], dtype=np.float64)
    geo["led_size"] = float(led_size)
    do_cal = "leds" in learn and (calibrate is True or calibrate == "auto")
    if do_cal:
        cal = calibrate_geometry(ims, setup)
        rec = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in cal.items()}
        if cal["used"]:
            trial = {}
            for name, g in (("nominal", geo), ("calibrated", dict(
                    geo, offset=cal["offset"], rotation=cal["rotation"], height=cal["height"]))):
                st = ctx.start(g)
                ctx.passes(st, _TRIAL_PASSES, learn=(), batches=ctx.batches[:_TRIAL_BATCHES],
                           record=False)
                trial[name] = st.last_loss
            rec["trial_loss"] = trial
            rec["accepted"] = trial["calibrated"] < trial["nominal"]
            if rec["accepted"]:
                geo = dict(geo, offset=cal["offset"], rotation=cal["rotation"],
                           height=cal["height"])
        history["calibration"] = rec
        log.info("fpm calibration: %s (offset %s m, rotation %.4g rad, height %.6g m, misfit "
                 "%.2f px)", "accepted" if rec.get("accepted") else "rejected", cal["offset"],
                 cal["rotation"], cal["height"], cal["residual_px"])

    # 2. bright-field start, 3. warm-up by NA order, 4. joint passes
    st = ctx.start(geo)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=iterations, desc="fpm reconstruct")
    ctx.passes(st, iterations, learn=learn, warmup=nw, history=history, bar=bar,
               callback=callback, t_start=t_start)
    if bar is not None:
        bar.close()
    o, geo, zern, a, phi = st.o, st.geo, st.zern, st.a, st.phi
    Y, mask, n_pix = ctx.Y, ctx.mask, ctx.n_pix
    centre = st.centre
    psi, _ = ctx.img.forward(o, geo, zern, background=st.c)
    I2 = xp.real(psi) ** 2 + xp.imag(psi) ** 2
    mu = ctx.dev(a.reshape(-1, 1, 1)) * I2 + background
    vals = B.to_host_float64(FL.per_image(mu, Y, loss, mask), "vals")
    history["final_loss"] = float(np.sum(vals)) / (n_pix * J)
    history["final_per_image"] = (vals / n_pix).tolist()
    fov = np.asarray(to_numpy(o[pad * u:pad * u + ny * u, pad * u:pad * u + nx * u]),
                     dtype=np.complex128)
    s = np.sum(fov)
    rot = np.conj(s) / abs(s) if abs(s) > 0 else 1.0
    fov = fov * rot
    # the sample's transmission beyond the reconstructed grid (same global phase)
    history["background_transmission"] = [float(np.real(st.c * rot)), float(np.imag(st.c * rot))]
    P, _ = ctx.img.pupil.pupil(dict(zernike=zern), np.zeros(1, np.complex128), (ny, nx))
    history["seconds"] = time.perf_counter() - t_start
    settings = dict(learn=list(learn), loss=loss, iterations=iterations, pad=pad,
                    calibrate=calibrate, zernike=M, background=background, warmup=nw,
                    batch=batch, brightness_range=brightness_range, led_size=led_size,
                    dtype=dtype, start_index=centre)
    return Reconstruction(object=fov, pupil=np.asarray(P), zernike=zern.copy(),
                          noll=list(range(1, M + 1)), setup=setup,
                          geometry=dict(offset=np.asarray(geo["offset"], dtype=np.float64),
                                        rotation=float(geo["rotation"]),
                                        height=float(geo["height"]), pitch=float(geo["pitch"]),
                                        led_size=float(geo["led_size"])),
                          brightness=a.copy(), background=background, noise=phi.copy(),
                          history=history, settings=settings)


# torch CUDA tensors run on the CUDA path as CuPy views; the result is on the host
reconstruct = via_cupy(reconstruct, convert_output=lambda out, conv: out)
