"""The classical baseline of Fourier ptychography: EPRY, alternating projections
with embedded pupil recovery (Ou, Zheng & Yang 2014), at the nominal geometry
and with no LED-position correction.

The model it inverts is the one of :func:`diffimaging.fpm.model` with three
simplifications that make it "classical":

- *integer spectral shifts*: LED j's illumination frequency k_j
  (:meth:`~diffimaging.fpm.Setup.wavevectors`, nominal geometry) is rounded to
  the nearest pixel of the object's spectral grid, m_j = round(k_j N p)
  (:func:`nominal_pixel_shifts`; frequency step 1 / (N p), N the object's
  size and p its pixel).  The rounding is itself a model error of up to half a
  spectral pixel per axis (a tilt error of up to 1 / (2 N p)), which the
  method cannot correct;
- *no brightness model*: all images share one global scale (the median over
  the bright-field LEDs of their mean intensity), a_j = 1 after it, and no
  background is subtracted;
- *no geometry model*: the LED array is taken as nominal.

Per LED j (order of increasing illumination NA, or row-major), with the object
spectrum O = FFT_N(o) (unnormalised FFT, FFT order), its (ny, nx) window
S_j(f) = O(f + m_j) and s = 1 / upsampling^2 (so that a clear sample under the
on-axis LED gives |psi| = 1, as in the forward model)::

    phi   = P S_j                                   camera-pupil-plane field
    psi   = s IFFT_n(phi)                           camera-plane field
    psi'  = sqrt(I_j) psi / |psi|                   amplitude replacement
    d     = FFT_n(psi' - psi) / s                   = FFT_n(psi') / s - phi
    S_j  <- S_j + alpha conj(P)   / max|P|^2   d    object-spectrum update
    P    <- (P + beta  conj(S_j) / M_j d) circ       pupil update (old S_j)

with M_j = max(max|S_j|^2, 1e-6 max|O|^2): EPRY's max of the shifted spectrum
read as the window's (normalising by the global max, the DC term's, leaves the
pupil nearly frozen), floored so that an almost empty window (a clear sample,
a far dark-field LED) cannot make the pupil explain an image on its own.

The spectrum stays in FFT order throughout (CONVENTIONS.md): the window of
LED j is gathered and scattered with precomputed flat modular indices
((fftfreq_n + m_j) mod N per axis), so a window that crosses the array's
edges, or the periodic grid's Nyquist frequency, wraps around exactly as in
the periodic forward model; no fftshift is done in the loop.
"""
from __future__ import annotations

import math
import numbers
import time
from dataclasses import replace

import numpy as np

from .. import _backend as B
from .._backend import fft as F
from .._backend import validate as V
from ..model import zernike_noll
from .data import Dataset, Reconstruction, Setup

__all__ = ["epry", "nominal_pixel_shifts"]

#: the floor of the pupil step's denominator max |S_j|^2, relative to max |O|^2
#: (an almost empty window -- a dark-field LED far out, or a clear sample -- would
#: otherwise make the pupil explain the image alone and blow up)
_FLOOR = 1e-6

#: the Noll indices of the Zernike fit of the recovered pupil
NOLL = list(range(1, 10))


def _shape2(object_shape, name="object_shape") -> tuple[int, int]:
    try:
        vals = tuple(object_shape)
    except TypeError:
        raise TypeError(f"{name} must be a (NY, NX) pair of ints, got {object_shape!r}") from None
    if len(vals) != 2:
        raise ValueError(f"{name} must be a (NY, NX) pair of ints, got {object_shape!r}")
    return tuple(V.integer(v, name, minimum=1) for v in vals)


def nominal_pixel_shifts(setup: Setup, object_shape) -> np.ndarray:
    """(J, 2) int64: the nominal illumination frequencies k_j = (ky, kx) of
    ``setup`` rounded to the object's spectral grid, ``round(k_j N p)`` per
    axis, with (NY, NX) = ``object_shape`` and p = ``setup.object_pixel_size``
    [m] (frequency step 1 / (N p) [1/m]).

    LED j's window of the object spectrum (FFT order) starts at these indices:
    the field it lights has the spectrum O(f + k_j).  The rounding error,
    ``k_j N p - shifts``, is at most 1/2 per axis; the classical method
    (:func:`epry`) takes it as zero.

    Example
    -------
    >>> s = Setup(3, 3, pitch=4e-3, height=80e-3, wavelength=520e-9, na=0.1,
    ...           pixel_size=6.5e-6, magnification=4)
    >>> nominal_pixel_shifts(s, (64, 64))[4]          # the centre LED
    array([0, 0])
    """
    if not isinstance(setup, Setup):
        raise TypeError(f"setup must be a diffimaging.fpm.Setup, got {type(setup).__name__}")
    NY, NX = _shape2(object_shape)
    p = setup.object_pixel_size
    k = np.asarray(setup.wavevectors(), dtype=np.float64)
    return np.rint(k * np.array([NY * p, NX * p])).astype(np.int64)


def _check_step(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real step size in (0, 2], got {value!r}")
    value = float(value)
    if not (0.0 < value <= 2.0):
        raise ValueError(f"{name} must be a step size in (0, 2] (1 is the full projection), "
                         f"got {value!r}")
    return value


def _int_freqs(n: int) -> np.ndarray:
    """The integer frequencies of an n-point FFT in FFT order (``fftfreq(n) * n``)."""
    return np.rint(np.fft.fftfreq(n) * n).astype(np.int64)


def _fit_zernike(P, mask, rho, theta, noll):
    """Least-squares Zernike coefficients [rad] of the phase of the pupil ``P``
    (FFT order) inside ``mask``, weighted by |P|.

    With scikit-image, the phase is unwrapped on the fftshifted (contiguous)
    disc by ``skimage.restoration.unwrap_phase`` and fitted directly.
    Without it, the wrapped phase *differences* of neighbouring pupil samples
    (``angle(P[i+1] conj(P[i]))``, exact while the phase changes by less than
    pi per spectral pixel) are fitted by the same differences of the basis
    (piston drops out), and the piston is then the phase of the weighted mean
    of P times the fitted conjugate phase."""
    Z = np.stack([zernike_noll(j, rho, theta) for j in noll])          # (M, ny, nx)
    w = np.abs(P) * mask
    if not np.any(w > 0):
        return np.zeros(len(noll))
    try:
        from skimage.restoration import unwrap_phase
    except ImportError:
        unwrap_phase = None
    if unwrap_phase is not None:
        sh = np.fft.fftshift
        wrapped = np.ma.masked_array(np.angle(sh(P)), mask=~sh(mask))
        phase = np.asarray(unwrap_phase(wrapped).filled(0.0))
        sel = sh(mask) & (sh(w) > 0)
        sw = np.sqrt(sh(w)[sel])
        A = np.stack([sh(z)[sel] for z in Z], axis=1) * sw[:, None]
        c, *_ = np.linalg.lstsq(A, phase[sel] * sw, rcond=None)
        if 1 in noll:                       # the unwrapping's 2 pi k offset
            c[noll.index(1)] = float(np.angle(np.exp(1j * c[noll.index(1)])))
        return c
    # fallback: neighbouring differences along both axes (np.roll: the FFT-order
    # neighbours of index n - 1 and 0 are frequencies -1 and 0, adjacent; the
    # pair across Nyquist is excluded by the mask unless the disc reaches it)
    rows, rhs, wts = [], [], []
    ny, nx = P.shape
    for axis, n in ((0, ny), (1, nx)):
        Pn = np.roll(P, -1, axis=axis)
        mn = np.roll(mask, -1, axis=axis)
        idx = np.arange(n)
        not_nyq = (idx != n // 2 - 1) if n % 2 == 0 else (idx != n // 2)
        not_nyq = not_nyq[:, None] if axis == 0 else not_nyq[None, :]
        ok = mask & mn & not_nyq
        d = np.angle(Pn * np.conj(P))[ok]
        dZ = (np.roll(Z, -1, axis=axis + 1) - Z)[:, ok]
        ww = np.sqrt(np.abs(P[ok]) * np.abs(Pn[ok]))
        rows.append(dZ.T)
        rhs.append(d)
        wts.append(ww)
    A = np.concatenate(rows)
    b = np.concatenate(rhs)
    sw = np.sqrt(np.concatenate(wts))
    c = np.zeros(len(noll))
    free = [i for i, j in enumerate(noll) if j != 1]
    if free and A.shape[0]:
        sol, *_ = np.linalg.lstsq(A[:, free] * sw[:, None], b * sw, rcond=None)
        c[free] = sol
    if 1 in noll:
        i1 = noll.index(1)
        rest = np.tensordot(c, Z, axes=1)
        c[i1] = float(np.angle(np.sum(w * P * np.exp(-1j * rest))))   # Z_1 = 1 on the disc
    return c


def epry(dataset: Dataset, *, iterations=30, alpha=1.0, beta=1.0, order="na", pupil_update=True,
         upsampling=None, progress=False, callback=None) -> Reconstruction:
    """EPRY: alternating-projection FPM recovery of the object and the pupil
    (Ou, Zheng & Yang 2014), the classical baseline of
    :func:`diffimaging.fpm.reconstruct` (module docstring: the update and its
    simplifications — integer spectral shifts, one global brightness, nominal
    geometry, no position correction).

    Parameters
    ----------
    dataset : Dataset
        Images (J, ny, nx) in any linear unit and the nominal Setup.
    iterations : int
        Sweeps over all LEDs (one sequential update per LED each).
    alpha, beta : float in (0, 2]
        Step sizes of the object-spectrum and of the pupil updates (1: the
        full projection, normalised by max |P|^2 and by max |S_j|^2).
    order : "na" or "index"
        LED order within a sweep: increasing illumination NA (bright field
        first; ties in row-major order) or row-major.
    pupil_update : bool
        Recover the pupil (EPRY); False keeps it the aberration-free circ
        (plain Fourier ptychography, Zheng et al. 2013).
    upsampling : int, optional
        Object pixels per camera pixel (default ``dataset.setup.upsampling``);
        the returned ``setup`` carries the value used.
    progress : bool
        A tqdm progress bar over the sweeps.
    callback : callable(iteration, state) -> bool, optional
        Called after every sweep with a dict (``object`` (its spectrum's IFFT),
        ``pupil``, ``loss``); True stops.

    Returns
    -------
    Reconstruction
        ``object`` (NY, NX) complex128, IFFT of the recovered spectrum;
        ``pupil`` (ny, nx) complex128 in FFT order, zero outside the circ
        |f| <= na / wavelength; ``zernike`` its phase's |P|-weighted
        least-squares fit in Noll 1..9 (``noll``; unwrapped with scikit-image
        when it is installed, otherwise by fitting the wrapped neighbour
        differences — see ``_fit_zernike``).  The pupil's piston and tilts
        (Noll 1-3), which intensity data cannot tell from the object's global
        phase and position, are moved into the object (a global phase and a
        sub-pixel shift) at the end, so ``zernike[:3]`` is ~0 and, with
        ``pupil_update=False``, the pupil is exactly the circ;
        ``geometry`` the nominal values; ``brightness`` the global image scale
        for every LED (the model ``a |psi|^2`` with these reproduces the
        images); ``background`` 0; ``noise`` ones; ``history`` with ``loss``
        (per sweep, the relative amplitude misfit
        ``sum_j ||sqrt(I_j) - |psi_j|||^2 / sum_j ||sqrt(I_j)||^2`` of the
        estimate at the sweep's end, images after the global scale), ``time``
        [s] and ``stage`` ("epry").

    Example
    -------
    >>> from diffimaging import fpm
    >>> rec = epry(fpm.simulate(), iterations=20)   # doctest: +SKIP
    >>> rec.object.shape, rec.zernike[3]            # doctest: +SKIP
    """
    t_start = time.perf_counter()
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a diffimaging.fpm.Dataset, got {type(dataset).__name__}")
    iterations = V.integer(iterations, "iterations", minimum=1)
    alpha = _check_step(alpha, "alpha")
    beta = _check_step(beta, "beta")
    if not isinstance(order, str) or order not in ("na", "index"):
        raise ValueError(f"order must be 'na' (increasing illumination NA) or 'index' "
                         f"(row-major), got {order!r}")
    if not isinstance(pupil_update, (bool, np.bool_)):
        raise TypeError(f"pupil_update must be a bool, got {pupil_update!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable(iteration, state) or None, got {callback!r}")
    setup = dataset.setup
    if upsampling is not None:
        setup = replace(setup, upsampling=V.integer(upsampling, "upsampling", minimum=1))
    u = setup.upsampling

    ims = np.asarray(B.to_host_float64(dataset.images, "images"), dtype=np.float64)
    if not np.all(np.isfinite(ims)):
        raise ValueError("images must be finite (found NaN or inf)")
    J, ny, nx = ims.shape
    NY, NX = ny * u, nx * u

    # one global scale: the median bright-field mean (a clear sample's on-axis image -> 1)
    bf = setup.brightfield()
    if not np.any(bf):
        raise ValueError("the setup has no bright-field LED (illumination NA below the "
                         "objective's): EPRY's global image scale and start need one")
    factor = float(np.median(ims[bf].mean(axis=(1, 2))))
    if not factor > 0:
        raise ValueError(f"the bright-field images are dark (median mean intensity {factor!r}): "
                         f"check the images and the setup")
    amp = np.sqrt(np.clip(ims / factor, 0.0, None))                   # (J, ny, nx)
    amp_norm = float(np.sum(amp * amp))

    # flat modular indices of each LED's spectral window (FFT order)
    shifts = nominal_pixel_shifts(setup, (NY, NX))
    iy = (_int_freqs(ny)[None, :] + shifts[:, 0:1]) % NY              # (J, ny)
    ix = (_int_freqs(nx)[None, :] + shifts[:, 1:2]) % NX              # (J, nx)
    flat = (iy[:, :, None] * NX + ix[:, None, :]).reshape(J, ny * nx)

    # pupil support on the camera grid (FFT order)
    fy = F.fftfreq(ny, setup.low_pixel_size)[:, None]
    fx = F.fftfreq(nx, setup.low_pixel_size)[None, :]
    fc = setup.cutoff
    mask = (fy * fy + fx * fx) <= fc * fc
    maskc = mask.astype(np.complex128).ravel()
    P = maskc.copy()                                                    # (ny nx,)

    # start: the most on-axis image's sqrt, Fourier zero-padded onto the object grid
    knorm = np.hypot(*setup.wavevectors().T)
    j0 = int(np.argmin(knorm))
    s = 1.0 / float(u * u)
    O = np.zeros(NY * NX, dtype=np.complex128)
    centre = ((_int_freqs(ny)[:, None] % NY) * NX + (_int_freqs(nx)[None, :] % NX)).ravel()
    O[centre] = F.fftn(amp[j0].astype(np.complex128)).ravel() / s

    seq = (np.argsort(knorm, kind="stable") if order == "na" else np.arange(J))
    history = {"loss": [], "time": [], "stage": []}

    def misfit():
        S = O[flat].reshape(J, ny, nx)
        psi = F.ifftn(S * P.reshape(ny, nx), overwrite=True) * s
        return float(np.sum((amp - np.abs(psi)) ** 2)) / amp_norm

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=iterations, desc="fpm epry")
    for it in range(iterations):
        Pmax2 = float(np.max(P.real ** 2 + P.imag ** 2))
        Omax2 = float(np.max(O.real ** 2 + O.imag ** 2))
        for j in seq:
            idx = flat[j]
            S = O[idx]
            phi = (P * S).reshape(ny, nx)
            psi = F.ifftn(phi, workers=1) * s
            a = np.abs(psi)
            dpsi = psi * (amp[j] / np.maximum(a, 1e-300) - 1.0)
            d = F.fftn(dpsi, overwrite=True, workers=1).ravel() * (1.0 / s)
            Snew = S + (alpha / Pmax2) * np.conj(P) * d
            O[idx] = Snew
            if pupil_update:
                Smax2 = max(float(np.max(S.real ** 2 + S.imag ** 2)), _FLOOR * Omax2)
                P = (P + (beta / Smax2) * np.conj(S) * d) * maskc
                Pmax2 = float(np.max(P.real ** 2 + P.imag ** 2))
            # the running max of |O|^2 (recomputed exactly at each sweep's start)
            Omax2 = max(Omax2, float(np.max(Snew.real ** 2 + Snew.imag ** 2)))
        loss = misfit()
        if not math.isfinite(loss):
            raise FloatingPointError(f"EPRY diverged at sweep {it} (misfit {loss}); try smaller "
                                     f"alpha / beta")
        history["loss"].append(loss)
        history["time"].append(time.perf_counter() - t_start)
        history["stage"].append("epry")
        if bar is not None:
            bar.update(1)
        if callback is not None and callback(it, dict(
                object=F.ifftn(O.reshape(NY, NX)), pupil=P.reshape(ny, nx).copy(), loss=loss)):
            break
    if bar is not None:
        bar.close()

    # gauge: the data do not see a pupil piston and tilt traded for a global
    # phase and a shift of the object, P(f) e^{-i(c + t(f))} with O(g) e^{i(c + t(g))}
    # (t linear; only a constant phase per LED is left over, which intensities do
    # not see).  The pupil's fitted Noll 1-3 are moved into the object (its global
    # phase and a sub-pixel Fourier shift on the periodic grid), so the returned
    # pupil has no piston or tilt and stays exactly the circ without pupil updates.
    rho = np.sqrt(fy * fy + fx * fx) / fc * np.ones((ny, nx))
    theta = np.arctan2(fy * np.ones((1, nx)), fx * np.ones((ny, 1)))
    pupil = P.reshape(ny, nx).copy()
    Ospec = O.reshape(NY, NX)
    zern = _fit_zernike(pupil, mask, rho, theta, NOLL)
    # Z1 = 1, Z2 = 2 fx / fc, Z3 = 2 fy / fc on the disc
    c1, c2, c3 = (float(zern[NOLL.index(j)]) for j in (1, 2, 3))
    if c1 or c2 or c3:
        pupil = pupil * np.exp(-1j * (c1 + 2.0 * (c2 * fx + c3 * fy) / fc))
        gy = F.fftfreq(NY, setup.object_pixel_size)[:, None]
        gx = F.fftfreq(NX, setup.object_pixel_size)[None, :]
        Ospec = Ospec * np.exp(1j * (c1 + 2.0 * (c2 * gx + c3 * gy) / fc))
        zern = _fit_zernike(pupil, mask, rho, theta, NOLL)
    obj = np.asarray(F.ifftn(Ospec), dtype=np.complex128)
    settings = dict(iterations=iterations, alpha=alpha, beta=beta, order=order,
                    pupil_update=bool(pupil_update), upsampling=u, progress=bool(progress),
                    method="epry", global_scale=factor, max_rounding_px=float(np.max(np.abs(
                        setup.wavevectors() * np.array([NY, NX]) * setup.object_pixel_size
                        - shifts))))
    geo = setup.geometry()
    geo["offset"] = np.asarray(geo["offset"], dtype=np.float64)
    return Reconstruction(object=obj, pupil=pupil, zernike=np.asarray(zern, dtype=np.float64),
                          noll=list(NOLL), setup=setup, geometry=geo,
                          brightness=np.full(J, factor), background=0.0, noise=np.ones(J),
                          history=history, settings=settings)
