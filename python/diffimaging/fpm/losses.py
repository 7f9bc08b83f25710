"""Per-image fidelities of Fourier ptychography with learned frame weights.

Each fidelity compares the predicted intensities mu_j = a_j |psi_j|^2 + b
(J, ny, nx) with the measured images I_j (photons) pixel by pixel and weighs
image j by w_j (the frame weights of the heteroscedastic likelihood, see
:func:`dispersion`):

- ``"amplitude"``: sum_j w_j sum (sqrt(mu) - sqrt(I))^2 — the L2 fidelity on
  amplitudes, robust to model error and the usual choice for FPM; under
  Poisson noise its per-pixel expectation is about 1/4.
- ``"poisson"``: sum_j w_j sum 2 (mu - I - I log(mu / I)) — the Poisson
  deviance (the negative log-likelihood up to a constant); per-pixel
  expectation about 1.
- ``"huber"``: sum_j w_j sum 2 delta^2 huber((sqrt(mu) - sqrt(I)) / delta),
  the amplitude residual in units of delta = 1 sqrt-photon (two standard
  deviations of the Poisson amplitude), quadratic inside and linear outside:
  robust to outliers such as hot pixels.

Every function works on arrays of any array-API library; ``mask`` (ny, nx)
selects the pixels compared (the field of view inside a padded prediction).
"""
from __future__ import annotations

from .. import _backend as B
from .._backend import validate as V

__all__ = ["FIDELITIES", "per_image", "gradient", "expected", "dispersion"]

#: the fidelities :func:`per_image` knows
FIDELITIES = ("amplitude", "poisson", "huber")
_EPS = 1e-6
_DELTA = 1.0


def check(name) -> str:
    return V.choice("loss", name, FIDELITIES)


def _terms(xp, mu, y, name, want_grad):
    """Per-pixel values and d/dmu."""
    mu = xp.clip(mu, _EPS, None) if hasattr(xp, "clip") else xp.maximum(mu, _EPS)
    if name == "poisson":
        yy = xp.clip(y, 0.0, None)
        ylog = xp.where(yy > 0, yy * xp.log(xp.where(yy > 0, yy, 1.0) / mu), 0.0)
        v = 2.0 * (mu - yy) + 2.0 * ylog
        g = 2.0 * (1.0 - yy / mu) if want_grad else None
        return v, g
    sm = xp.sqrt(mu)
    r = sm - xp.sqrt(xp.clip(y, 0.0, None))
    if name == "amplitude":
        v = r * r
        g = r / sm if want_grad else None
        return v, g
    a = xp.abs(r)
    inside = a <= _DELTA
    v = xp.where(inside, r * r, 2.0 * _DELTA * a - _DELTA * _DELTA)
    g = (xp.where(inside, r, _DELTA * xp.sign(r)) / sm) if want_grad else None
    return v, g


def per_image(mu, y, name, mask=None):
    """(J,) the fidelity of every image (unweighted), float64."""
    xp = B.namespace(mu)
    v, _ = _terms(xp, mu, y, name, False)
    if mask is not None:
        v = v * mask
    return xp.astype(xp.sum(xp.sum(v, axis=-1), axis=-1), xp.float64)


def gradient(mu, y, name, weights, mask=None):
    """``(per-image values (J,), d(sum_j w_j L_j)/d mu)``."""
    xp = B.namespace(mu)
    v, g = _terms(xp, mu, y, name, True)
    if mask is not None:
        v = v * mask
        g = g * mask
    w = xp.reshape(xp.astype(weights, mu.dtype), (-1, 1, 1))
    return xp.astype(xp.sum(xp.sum(v, axis=-1), axis=-1), xp.float64), g * w


def expected(name) -> float:
    """The per-pixel expectation of the fidelity under Poisson noise at a correct
    model (counts of tens of photons or more): 1/4 for the amplitude fidelities,
    1 for the Poisson deviance."""
    return 1.0 if check(name) == "poisson" else 0.25


def dispersion(values, wavevectors, neighbours=8):
    """The per-image noise scales phi_j of the heteroscedastic likelihood.

    Image j's misfit ``values_j`` is compared with the median misfit of its
    ``neighbours`` nearest LEDs in illumination frequency (images under
    similar illumination have similar photon counts and similar model error):
    ``phi_j = max(1, values_j / median_neighbours)``.  A frame whose misfit
    stands out from its neighbours' (stray light, a moved sample, hot pixels)
    gets phi_j > 1 and the weight 1 / phi_j; no frame is trusted more than its
    neighbours.  Returns (J,) float64."""
    import numpy as np

    v = np.asarray(B.to_host_float64(values, "values"), dtype=np.float64)
    k = np.asarray(wavevectors, dtype=np.float64)
    J = v.shape[0]
    n = int(min(max(1, neighbours), J - 1)) if J > 1 else 0
    if n == 0:
        return np.ones(J)
    d = np.hypot(k[:, None, 0] - k[None, :, 0], k[:, None, 1] - k[None, :, 1])
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, :n]
    ref = np.median(v[near], axis=1)
    ref = np.where(ref > 0, ref, np.max(v) if np.max(v) > 0 else 1.0)
    return np.maximum(v / ref, 1.0)
