"""Scores of an FPM reconstruction against a known truth (simulated data).

Intensity data leave three things of the object undetermined, and every
score here factors them out explicitly:

- a global complex scale (the brightness carries the photon scale, and the
  phase of the object is defined up to a constant): the amplitude is
  compared after a least-squares scale;
- a lateral translation, traded exactly with the pupil's tilt terms (Noll 2,
  3): the reconstruction is registered to the truth (sub-pixel phase
  correlation of the amplitudes) and a ``border`` of camera pixels is left out;
- frequencies outside the synthetic aperture: the truth is band-limited to
  the union of the true shifted pupils (:func:`bandlimit`).

The LED geometry is graded through the wave vectors (a lateral shift of the
whole array is nearly a phase ramp on the object, so offsets alone mislead):
:func:`wavevector_error` in spectral pixels of the object grid, 1 / (N p).
"""
from __future__ import annotations

import math

import numpy as np

from .data import Dataset, Reconstruction, Setup
from .reconstruct import coverage

__all__ = ["bandlimit", "register", "amplitude_psnr", "amplitude_ssim", "wavevector_error",
           "zernike_rms", "score"]


def bandlimit(obj, setup: Setup, weights=None):
    """``obj`` (NY, NX) with the frequencies outside the union of the shifted
    pupils of ``setup`` (its geometry: pass the true one) removed."""
    obj = np.asarray(obj, dtype=np.complex128)
    D = coverage(setup.wavevectors(), setup, obj.shape, np.ones(setup.n_leds)
                 if weights is None else weights)
    return np.fft.ifft2(np.fft.fft2(obj) * (D > 0))


def register(rec, ref, upsample=20):
    """``rec`` (complex, (NY, NX)) moved by the sub-pixel translation that best
    aligns its amplitude to ``ref``'s, and the shift (dy, dx) in pixels."""
    from scipy import ndimage
    from skimage.registration import phase_cross_correlation

    shift, _, _ = phase_cross_correlation(np.abs(ref), np.abs(rec), upsample_factor=upsample,
                                          normalization=None)
    moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(rec), shift))
    return moved, np.asarray(shift, dtype=np.float64)


def _crop(a, b):
    return a[b:a.shape[0] - b, b:a.shape[1] - b] if b else a


def _amplitudes(rec_obj, truth_obj, true_setup, border, upsampling):
    ref = bandlimit(truth_obj, true_setup)
    moved, shift = register(np.asarray(rec_obj, dtype=np.complex128), ref)
    b = int(border) * int(upsampling)
    r, t = _crop(np.abs(moved), b), _crop(np.abs(ref), b)
    s = float(np.sum(r * t) / max(np.sum(r * r), 1e-300))
    return s * r, t, shift


def amplitude_psnr(rec_obj, truth_obj, true_setup: Setup, *, border=2) -> float:
    """PSNR [dB] of the registered, scaled amplitude against the band-limited
    true amplitude (peak: the truth's maximum), ``border`` camera pixels left out."""
    r, t, _ = _amplitudes(rec_obj, truth_obj, true_setup, border, true_setup.upsampling)
    mse = float(np.mean((r - t) ** 2))
    return 10.0 * math.log10(float(np.max(t)) ** 2 / max(mse, 1e-300))


def amplitude_ssim(rec_obj, truth_obj, true_setup: Setup, *, border=2) -> float:
    """SSIM of the same amplitudes (scikit-image, data range of the truth)."""
    from skimage.metrics import structural_similarity

    r, t, _ = _amplitudes(rec_obj, truth_obj, true_setup, border, true_setup.upsampling)
    return float(structural_similarity(r, t, data_range=float(np.ptp(t))))


def wavevector_error(k, true_setup: Setup, object_shape) -> np.ndarray:
    """(J,) |k_j - k_j,true| in spectral pixels of the object grid (1 / (N p), per axis)."""
    kt = true_setup.wavevectors()
    p = true_setup.object_pixel_size
    step = np.array([1.0 / (object_shape[0] * p), 1.0 / (object_shape[1] * p)])
    return np.hypot(*((np.asarray(k) - kt) / step).T)


def zernike_rms(zernike, truth, noll_min=4) -> float:
    """RMS error [rad] of the identifiable Zernike terms (Noll >= ``noll_min``;
    piston and tilts are not determined by intensity data)."""
    z = np.asarray(zernike, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    n = max(len(z), len(t))
    z = np.pad(z, (0, n - len(z)))
    t = np.pad(t, (0, n - len(t)))
    sel = np.arange(1, n + 1) >= noll_min
    return float(np.sqrt(np.mean((z[sel] - t[sel]) ** 2)))


def score(rec: Reconstruction, dataset: Dataset, *, border=2) -> dict:
    """Every score of ``rec`` against ``dataset.truth``: ``psnr`` [dB], ``ssim``,
    ``k_max`` / ``k_rms`` [spectral px], ``rotation_error`` [deg],
    ``height_error`` [m], ``zernike_rms`` [rad], ``brightness_rms`` (relative,
    after the mean is divided out), and ``loss_ratio`` when the history has a
    ``final_loss`` and the truth allows the noise floor
    (:func:`noise_floor`)."""
    truth = dataset.truth
    if not truth:
        raise ValueError("dataset has no truth to score against (simulated data only)")
    ts: Setup = truth["setup"]
    obj = truth["object"]
    out = dict(psnr=amplitude_psnr(rec.object, obj, ts, border=border),
               ssim=amplitude_ssim(rec.object, obj, ts, border=border))
    kerr = wavevector_error(rec.wavevectors(), ts, np.shape(obj))
    out.update(k_max=float(np.max(kerr)), k_rms=float(np.sqrt(np.mean(kerr ** 2))),
               rotation_error=math.degrees(rec.geometry["rotation"] - ts.rotation),
               height_error=float(rec.geometry["height"] - ts.height),
               zernike_rms=zernike_rms(rec.zernike, truth["zernike"]))
    b = np.asarray(rec.brightness, dtype=np.float64)
    tb = np.asarray(truth["brightness"], dtype=np.float64)
    out["brightness_rms"] = float(np.sqrt(np.mean((b / b.mean() - tb / tb.mean()) ** 2)))
    return out
