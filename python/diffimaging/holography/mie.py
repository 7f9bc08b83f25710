"""Lorenz–Mie scattering by homogeneous spheres, and in-line holograms of spheres
computed from the exact scattered field (realistic data for microscope holography).

Theory and notation: Bohren & Huffman, *Absorption and Scattering of Light by Small
Particles* (1983), chapter 4.  Time convention exp(-i omega t) (CONVENTIONS.md).  A
sphere of radius ``a`` and complex index ``n_particle`` sits in a medium of real index
``n_medium``; the relative index is ``m = n_particle / n_medium``, the size parameter
``x = k a`` with ``k = 2 pi n_medium / wavelength`` (``wavelength`` in vacuum).  An
absorbing particle has ``Im(n_particle) > 0``.

* :func:`mie_coefficients` — the scattering coefficients a_n, b_n (B&H 4.88), with
  the logarithmic derivative D_n(mx) by downward recurrence (B&H 4.89; stable for
  absorbing and large spheres) and psi_n, xi_n from ``scipy.special.spherical_jn``
  / ``spherical_yn``; n = 1 ... x + 4 x^(1/3) + 2 (Wiscombe 1980).
* :func:`mie_efficiencies` — Q_ext, Q_sca, Q_back (B&H 4.61, 4.62).
* :func:`mie_amplitudes` — the far-field amplitudes S1(theta), S2(theta) (B&H 4.74).
* :func:`mie_field` — the scattered electric field on a plane downstream of the
  sphere, from the vector spherical harmonics with spherical Hankel functions
  (B&H 4.45, 4.50), for x-polarised plane-wave illumination along +z.
* :func:`mie_hologram` — ``|E_inc + E_s|^2 / |E_inc|^2`` on a pixel grid, for one or
  several spheres (fields superposed: single scattering), optionally with a
  non-uniform illumination, noise and quantisation.

Geometry (sensor coordinates, CONVENTIONS.md): pixel (i, j) sits at (i dy, j dx); a
sphere at (y, x, z) has its centre z metres **upstream** of the recorded plane (the
sensor for lensless holography, the objective's focal plane in a microscope; then
``pixel_size`` is the sensor pixel divided by the magnification), z > radius.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.special import spherical_jn, spherical_yn

from .._backend import validate as V
from .io import check_optics

__all__ = ["mie_coefficients", "mie_efficiencies", "mie_amplitudes", "mie_field", "mie_hologram"]


def _n_terms(x):
    """Number of terms of the series (Wiscombe 1980): x + 4 x^(1/3) + 2."""
    return max(int(math.ceil(x + 4.0 * x ** (1.0 / 3.0) + 2.0)), 1)


def _size_and_index(x, m):
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not (math.isfinite(x) and x > 0):
        raise ValueError(f"x (size parameter 2 pi n_medium radius / wavelength) must be a positive, "
                         f"finite number, got {x!r}")
    if x > 1e4:
        raise ValueError(f"x (size parameter) = {x:g} is beyond this series' range (<= 1e4): is the "
                         f"radius in metres and the wavelength in metres?")
    if isinstance(m, bool) or not isinstance(m, numbers.Number):
        raise ValueError(f"m (relative refractive index n_particle / n_medium) must be a number, got {m!r}")
    m = complex(m)
    if not (math.isfinite(m.real) and math.isfinite(m.imag)) or m.real <= 0 or m.imag < 0:
        raise ValueError(f"m (relative refractive index) must have Re(m) > 0 and Im(m) >= 0 "
                         f"(absorption), got {m!r}")
    return float(x), m


def mie_coefficients(x, m, n_max=None):
    """Lorenz–Mie scattering coefficients of a homogeneous sphere.

    x : size parameter ``2 pi n_medium a / wavelength`` (dimensionless, > 0)
    m : relative refractive index ``n_particle / n_medium`` (complex; Im(m) >= 0 absorbs)
    n_max : number of terms (default ``ceil(x + 4 x^(1/3) + 2)``)

    Returns ``(a, b)``, two complex128 arrays of length ``n_max`` holding a_n, b_n for
    n = 1 ... n_max (B&H 4.88, written with D_n(mx) = psi_n'(mx) / psi_n(mx)):
    ``a_n = [(D_n/m + n/x) psi_n - psi_{n-1}] / [(D_n/m + n/x) xi_n - xi_{n-1}]`` and
    ``b_n`` with ``m D_n`` in place of ``D_n / m``; psi_n(x) = x j_n(x),
    xi_n(x) = x h_n^(1)(x).  D_n is computed by downward recurrence from
    n = max(n_max, |mx|) + 15, stable for any m (upward recurrence of D_n diverges for
    absorbing spheres).
    """
    x, m = _size_and_index(x, m)
    n_max = _n_terms(x) if n_max is None else V.integer(n_max, "n_max", minimum=1, type_error=ValueError)
    mx = m * x
    n_start = int(max(n_max, abs(mx))) + 15
    d = np.zeros(n_start + 1, dtype=np.complex128)
    for n in range(n_start, 0, -1):           # D_{n-1} = n/mx - 1 / (D_n + n/mx)
        d[n - 1] = n / mx - 1.0 / (d[n] + n / mx)
    n = np.arange(0, n_max + 1)
    psi = x * spherical_jn(n, x)
    xi = psi + 1j * x * spherical_yn(n, x)
    nn = n[1:]
    da = d[1:n_max + 1] / m + nn / x
    db = d[1:n_max + 1] * m + nn / x
    a = (da * psi[1:] - psi[:-1]) / (da * xi[1:] - xi[:-1])
    b = (db * psi[1:] - psi[:-1]) / (db * xi[1:] - xi[:-1])
    return a, b


def mie_efficiencies(x, m):
    """Extinction, scattering and backscattering efficiencies ``(Q_ext, Q_sca, Q_back)``
    of a sphere (cross-section / (pi a^2); B&H 4.61, 4.62 and p. 122):
    ``Q_ext = 2/x^2 sum (2n+1) Re(a_n + b_n)``, ``Q_sca = 2/x^2 sum (2n+1)(|a_n|^2 + |b_n|^2)``,
    ``Q_back = |sum (2n+1)(-1)^n (a_n - b_n)|^2 / x^2``.  Arguments as
    :func:`mie_coefficients`."""
    a, b = mie_coefficients(x, m)
    n = np.arange(1, a.size + 1)
    w = 2 * n + 1
    qext = 2.0 / x ** 2 * float(np.sum(w * (a + b).real))
    qsca = 2.0 / x ** 2 * float(np.sum(w * (np.abs(a) ** 2 + np.abs(b) ** 2)))
    qback = float(np.abs(np.sum(w * (-1.0) ** n * (a - b))) ** 2) / x ** 2
    return qext, qsca, qback


def _pi_tau(mu, n_max):
    """Angular functions pi_n(mu), tau_n(mu), n = 1 ... n_max (B&H 4.47), by upward
    recurrence (stable); yields (n, pi_n, tau_n)."""
    p_prev = np.zeros_like(mu)
    p = np.ones_like(mu)
    for n in range(1, n_max + 1):
        tau = n * mu * p - (n + 1) * p_prev
        yield n, p, tau
        p_prev, p = p, ((2 * n + 1) * mu * p - (n + 1) * p_prev) / n


def mie_amplitudes(x, m, theta):
    """Far-field scattering amplitudes ``(S1, S2)`` at scattering angles ``theta``
    (radians, any shape): ``S1 = sum (2n+1)/(n(n+1)) (a_n pi_n + b_n tau_n)``,
    ``S2 = sum (2n+1)/(n(n+1)) (a_n tau_n + b_n pi_n)`` (B&H 4.74), so that far from the
    sphere ``E_s,theta ~ exp(ikr)/(-ikr) cos(phi) S2`` and
    ``E_s,phi ~ -exp(ikr)/(-ikr) sin(phi) S1``.  Arguments x, m as
    :func:`mie_coefficients`.  Returns two complex128 arrays of ``theta``'s shape."""
    a, b = mie_coefficients(x, m)
    mu = np.cos(np.asarray(theta, dtype=np.float64))
    s1 = np.zeros(mu.shape, dtype=np.complex128)
    s2 = np.zeros(mu.shape, dtype=np.complex128)
    for n, p, t in _pi_tau(mu, a.size):
        f = (2 * n + 1) / (n * (n + 1))
        s1 += f * (a[n - 1] * p + b[n - 1] * t)
        s2 += f * (a[n - 1] * t + b[n - 1] * p)
    return s1, s2


def _sphere_args(radius, n_particle, n_medium, wavelength):
    a = V.positive_scalar(radius, "radius", typical=(1e-9, 1e-3))
    lam = V.wavelength(wavelength)
    nm = V.n_medium(n_medium)
    if isinstance(n_particle, bool) or not isinstance(n_particle, numbers.Number):
        raise ValueError(f"n_particle must be a (complex) refractive index, got {n_particle!r}")
    npart = complex(n_particle)
    if not (math.isfinite(npart.real) and math.isfinite(npart.imag)) or npart.real <= 0 or npart.imag < 0:
        raise ValueError(f"n_particle must have a positive real part and Im >= 0 (absorption), got "
                         f"{n_particle!r}")
    k = 2.0 * math.pi * nm / lam
    return a, npart / nm, k


def _scattered(X, Y, Z, a, m, k):
    """Scattered field (3, ...) in Cartesian components at points (X, Y, Z) relative
    to the sphere's centre (Z > a), for the incident field x^ exp(ikZ) (B&H 4.45, 4.50)."""
    an, bn = mie_coefficients(k * a, m)
    rp = np.hypot(X, Y)
    r = np.sqrt(rp * rp + Z * Z)
    mu, st = Z / r, rp / r
    safe = np.where(rp > 0, rp, 1.0)
    cp = np.where(rp > 0, X / safe, 1.0)
    sp = np.where(rp > 0, Y / safe, 0.0)
    rho = k * r
    e = np.exp(1j * rho)
    h_prev = -1j * e / rho                       # h_0^(1)
    h = -e * (rho + 1j) / rho ** 2               # h_1^(1)
    er = np.zeros(r.shape, dtype=np.complex128)
    et = np.zeros_like(er)
    ep = np.zeros_like(er)
    inv_rho = 1.0 / rho
    for n, p, t in _pi_tau(mu, an.size):
        en = 1j ** n * (2 * n + 1) / (n * (n + 1))
        ia, b = 1j * an[n - 1] * en, bn[n - 1] * en
        dxi = h_prev - n * h * inv_rho            # [rho h_n(rho)]' / rho
        er += ia * (n * (n + 1)) * p * h * inv_rho
        et += ia * t * dxi - b * p * h
        ep += -ia * p * dxi + b * t * h
        # h_{n+1} = (2n+1)/rho h_n - h_{n-1}: stable upward (h_n is dominated by y_n)
        h_prev, h = h, (2 * n + 1) * inv_rho * h - h_prev
    er *= st
    # (e_r, e_theta, e_phi) -> Cartesian, with the cos(phi), sin(phi) factors of M_o1n, N_e1n
    ex = cp * (cp * (st * er + mu * et)) - sp * (sp * ep)
    ey = sp * (cp * (st * er + mu * et)) + cp * (sp * ep)
    ez = cp * (mu * er - st * et)
    return np.stack([ex, ey, ez])


def _grid_and_spheres(shape, positions, pixel_size, radius, n_particle):
    try:
        ny, nx = (int(v) for v in shape)
        ok = ny >= 1 and nx >= 1 and tuple(shape) == (ny, nx)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"shape must be (ny, nx) positive integers (pixels), got {shape!r}")
    dy, dx = V.pixel_size(pixel_size)
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim == 1:
        pos = pos[None, :]
    if pos.ndim != 2 or pos.shape[1] != 3 or not np.all(np.isfinite(pos)):
        raise ValueError(f"position must be (y, x, z) in metres or an (N, 3) array of them, got shape "
                         f"{np.shape(positions)}")
    count = len(pos)
    radii = np.broadcast_to(np.asarray(radius, dtype=np.float64), (count,)) if np.ndim(radius) else \
        [radius] * count
    indices = list(np.broadcast_to(np.asarray(n_particle), (count,))) if np.ndim(n_particle) else \
        [n_particle] * count
    return (ny, nx), (dy, dx), pos, list(radii), [complex(v) for v in indices]


def mie_field(shape, position, *, radius, n_particle, wavelength, pixel_size, n_medium=1.0):
    """Scattered field of one or several spheres on the recorded plane, relative to the
    incident wave there: ``E_s / E_inc`` with ``E_inc = x^ exp(i k z)`` (x-polarised,
    unit amplitude, travelling along +z), as a complex128 array (3, ny, nx) of its
    (x, y, z) components.

    shape : (ny, nx) pixels
    position : (y, x, z) metres, or an (N, 3) array (fields superposed: single
        scattering); z is the distance of the sphere's centre upstream of the plane
        (z > radius)
    radius : metres (a number, or N numbers)
    n_particle : refractive index of the sphere (complex for absorption; N values allowed)
    wavelength : vacuum wavelength, metres; in the medium it is wavelength / n_medium
    pixel_size : metres (float or (dy, dx))
    n_medium : refractive index of the medium (1 <= n_medium <= 3; water 1.33)

    Cost: O(n_terms) vectorised passes over the grid per sphere (n_terms ~ k a + 4
    (k a)^(1/3) + 2): some 0.3 s for 512^2 and a 1 um polystyrene sphere in water.
    """
    check_optics(wavelength, pixel_size)
    (ny, nx), (dy, dx), pos, radii, indices = _grid_and_spheres(shape, position, pixel_size, radius,
                                                                  n_particle)
    out = np.zeros((3, ny, nx), dtype=np.complex128)
    yy = np.arange(ny, dtype=np.float64)[:, None] * dy
    xx = np.arange(nx, dtype=np.float64)[None, :] * dx
    for (y0, x0, z0), a_i, n_i in zip(pos, radii, indices):
        a, m, k = _sphere_args(a_i, n_i, n_medium, wavelength)
        if not z0 > a:
            raise ValueError(f"position z = {z0:g} m must exceed the radius {a:g} m: z is the distance "
                             f"of the sphere's centre upstream of the recorded plane")
        X = np.broadcast_to(xx - x0, (ny, nx))
        Y = np.broadcast_to(yy - y0, (ny, nx))
        out += _scattered(X, Y, np.full((ny, nx), z0), a, m, k) * np.exp(-1j * k * z0)
    return out


def mie_hologram(shape, position, *, radius, n_particle, wavelength, pixel_size, n_medium=1.0,
                 illumination=None, gaussian_noise=0.0, bits=None, seed=None):
    """In-line hologram of one or several spheres from the exact Lorenz–Mie field:
    ``|x^ + E_s / E_inc|^2`` (normalised: unit background), see :func:`mie_field`
    for the arguments and the geometry.

    illumination : None (uniform), or the background intensity (a positive number or
        an (ny, nx) map, e.g. a Gaussian beam with fixed-pattern structure) that
        multiplies the normalised hologram; then the result is no longer normalised
    gaussian_noise : additive Gaussian noise, standard deviation relative to the mean
        intensity (e.g. 0.01)
    bits : quantise to this many bits: returns integer **counts** (uint16 up to 16
        bits, else uint32) with the mean intensity at a quarter of the full scale
        (2^bits - 1), clipped at 0 and at the full scale, as a camera writes them;
        divide by the background (``preprocess``) before focusing
    seed : seed of the noise

    Returns a float64 (ny, nx) image (or integer counts with ``bits``).
    """
    es = mie_field(shape, position, radius=radius, n_particle=n_particle, wavelength=wavelength,
                   pixel_size=pixel_size, n_medium=n_medium)
    es[0] += 1.0
    holo = np.sum(es.real ** 2 + es.imag ** 2, axis=0)
    if illumination is not None:
        ill = np.asarray(illumination, dtype=np.float64)
        if ill.ndim not in (0, 2) or (ill.ndim == 2 and ill.shape != holo.shape) \
                or not np.all(np.isfinite(ill)) or np.any(ill <= 0):
            raise ValueError(f"illumination must be a positive number or a positive (ny, nx) = "
                             f"{holo.shape} map of the background intensity, got shape {ill.shape}")
        holo = holo * ill
    if isinstance(gaussian_noise, bool) or not isinstance(gaussian_noise, numbers.Real) \
            or not (math.isfinite(gaussian_noise) and gaussian_noise >= 0):
        raise ValueError(f"gaussian_noise must be a finite number >= 0 (relative to the mean "
                         f"intensity), got {gaussian_noise!r}")
    rng = np.random.default_rng(seed)
    if gaussian_noise:
        holo = holo + rng.normal(0.0, gaussian_noise * float(np.mean(holo)), holo.shape)
    if bits is not None:
        bits = V.integer(bits, "bits", minimum=1, maximum=32, type_error=ValueError)
        levels = 2 ** bits - 1
        scale = 0.25 * levels / float(np.mean(holo))
        holo = np.round(np.clip(holo * scale, 0, levels)).astype(np.uint16 if bits <= 16 else np.uint32)
    return holo
