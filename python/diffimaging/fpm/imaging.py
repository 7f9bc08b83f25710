"""FPM imaging of a field of view cut from an unbounded sample.

A camera sees a window of a sample that extends far beyond it.  A model on a
finite grid of (NY, NX) object pixels treats the grid's content as the whole
object; under a tilted LED whose frequency k is not on the grid's frequency
lattice, the grid's edge is a jump of the whole tilted field, and the jump of
its mean — the unscattered light, by far the strongest part — rings through
the pupil over the entire image (its spectrum, a Dirichlet kernel, leaks
into a pupil that the exact plane wave would miss by several spectral
pixels: fatal for dark-field images near the bright-field edge).

:class:`Imaging` removes that jump.  The object is written o = c + d with c
the sample's transmission beyond the grid (by default the grid's mean; a
reconstruction learns it as a variable of its own: the field of view of a
larger sample need not have the mean of what lies around it), and the
sample is modelled as c *everywhere*, with the fluctuation d on the grid:

- c e^{-2 pi i k.r} is an exact, unbounded plane wave: its spectrum is the
  single frequency -k, so it reaches the camera as
  ``c P(-k) e^{-2 pi i k.r}`` (P the continuous pupil, Zernike phase
  included) — no leakage;
- d goes through the fused stages (:class:`~diffimaging.fpm.SpectralIllumination`
  and :class:`~diffimaging.fpm.SpectralPupil`), tapered to zero over the
  outer half of ``margin`` pixels at the grid's edges
  (:func:`taper`) so that its truncation does not ring either.

Low-resolution field of LED j at camera pixel (i, l), position r = (i, l) *
pixel_size * upsampling::

    psi_j = s IFFT_n(P W(FFT_N(w d e_j))) + c P(-k_j) e_j(r)

with explicit VJPs for o (through d = o - mean(o) and c = mean(o)), the LED
geometry (through k_j, including the plane-wave term) and the Zernike
coefficients.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from .._backend.namespace import to_numpy
from ..model import zernike_noll
from .data import Setup
from .geometry import wavevectors_vjp
from .model import SpectralIllumination, SpectralPupil

__all__ = ["Imaging", "taper", "LED_SIZE"]

_TWO_PI = 2.0 * math.pi
#: the default emitter size of an LED [m] (a 0.2 mm die)
LED_SIZE = 0.2e-3


def taper(n, margin):
    """(n,) a window along one axis: 1 except in the outer half of the
    ``margin`` pixels at each end, where it falls to 0 as a raised cosine
    (reaching 0 half a pixel beyond the grid, so the periodic field meets no
    edge)."""
    w = np.ones(int(n))
    m = int(margin) // 2
    if m < 1:
        return w
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
    w[:m] = ramp
    w[int(n) - m:] = ramp[::-1]
    return w


class Imaging:
    """The J low-resolution fields of an object grid (NY, NX) embedded in a
    uniform, unbounded sample (see the module docstring).

    Parameters
    ----------
    setup : Setup
        Optics and LED grid (its geometry is only the default; the geometry
        and the Zernike coefficients are passed to :meth:`forward`).
    shape : (NY, NX)
        The object grid (multiples of ``setup.upsampling``).
    margin : int
        Object pixels at each edge over whose outer half the fluctuation is
        tapered to zero (0: no taper).
    zernike : int
        Number of Zernike terms (Noll 1..zernike).
    """

    def __init__(self, setup: Setup, shape, *, margin=0, zernike=9, led_size=LED_SIZE):
        self.setup = setup
        size = float(led_size)
        if not (math.isfinite(size) and size >= 0):
            raise ValueError(f"led_size must be a size in metres >= 0, got {led_size!r}")
        #: the LEDs' emitter size [m] (default of the geometry's "led_size")
        self.led_size = size
        self.led_size_gradient = False
        u = setup.upsampling
        self.shape = tuple(int(n) for n in shape)
        ph = setup.object_pixel_size
        self.leds = SpectralIllumination(setup.rows, setup.cols, setup.pitch, setup.height,
                                         wavelength=setup.wavelength, pixel_size=ph,
                                         upsampling=u, offset=setup.offset,
                                         rotation=setup.rotation)
        self.pupil = SpectralPupil(setup.na, setup.wavelength, ph, upsampling=u,
                                   zernike=np.zeros(int(zernike)))
        self.noll = list(self.pupil.noll)
        self.low = self.leds.low_shape(self.shape)
        if margin:
            self.leds.window = (taper(self.shape[0], margin), taper(self.shape[1], margin))
        self.geometry_gradient = True
        self.zernike_gradient = True

    # ------------------------------------------------------------------ pieces
    def _params(self, geo, zern):
        return (dict(offset=np.asarray(geo["offset"], dtype=np.float64),
                     rotation=float(geo["rotation"]), height=float(geo["height"]),
                     pitch=float(geo["pitch"])), dict(zernike=np.asarray(zern, dtype=np.float64)))

    def wavevectors(self, geo) -> np.ndarray:
        """(J, 2) the LEDs' frequencies for geometry ``geo``."""
        return np.asarray(self.leds.wavevectors(self._params(geo, np.zeros(len(self.noll)))[0]))

    def _edge(self, geo) -> float:
        """Width [1/m] of the bright-field edge: the LED's angular size over the wavelength."""
        size = float(geo.get("led_size", self.led_size))
        return max(size, 0.0) / (float(geo["height"]) * self.setup.wavelength)

    def _zernike_at(self, k, zern, edge=0.0):
        """(Z (M, J), phase (J,), transmission (J,)) of the pupil at the frequencies -k.

        The transmission of the unscattered light falls from 1 to 0 across the
        pupil's edge over the LED's angular size (``edge`` [1/m], a logistic
        step, 1/2 (1 - tanh((|k| - na / wavelength) / edge)); a sharp step for a
        point source), as the light of an extended LED crosses the edge
        progressively."""
        fc = self.setup.cutoff
        fy, fx = -k[:, 0], -k[:, 1]
        r = np.hypot(fy, fx)
        rho = r / fc
        theta = np.arctan2(fy, fx)
        Z = np.stack([zernike_noll(j, np.minimum(rho, 1.0), theta) for j in self.noll]) \
            if self.noll else np.zeros((0, k.shape[0]))
        phase = np.asarray(zern, dtype=np.float64) @ Z if self.noll else np.zeros(k.shape[0])
        if edge > 0:
            m = 0.5 * (1.0 - np.tanh((r - fc) / edge))
        else:
            m = (rho <= 1.0).astype(np.float64)
        return Z, phase, m

    def _plane(self, k, xp, cdt, device):
        """(J, ny, nx) e^{-2 pi i k.r} on the camera grid, phases in float64."""
        p = self.setup.low_pixel_size
        y = np.arange(self.low[0]) * p
        x = np.arange(self.low[1]) * p
        ey = np.exp(-1j * _TWO_PI * k[:, 0][:, None] * y[None, :])
        ex = np.exp(-1j * _TWO_PI * k[:, 1][:, None] * x[None, :])
        return xp.astype(xp.asarray(ey[:, :, None] * ex[:, None, :], device=device), cdt)

    # ----------------------------------------------------------------- forward
    def forward(self, o, geo, zern, subset=None, background=None):
        """``(psi (J', ny, nx), residuals)`` for the LEDs of ``subset`` (default all).

        ``background``: the transmission c of the sample beyond the grid (a
        complex scalar; the sample is ``w o + (1 - w) c`` with w the taper).
        None: the grid's mean.  With an explicit c, :meth:`backward` also
        returns its cotangent (key ``"background"`` of the geometry dict)."""
        xp = B.namespace(o)
        cdt = o.dtype
        device = B.device_of(o)
        p_l, p_p = self._params(geo, zern)
        explicit = background is not None
        c = xp.mean(o) if not explicit else complex(background)
        d = o - c
        self.leds.subset = subset
        try:
            S, r1 = self.leds.forward(d, p_l)
        finally:
            self.leds.subset = None
        psi, r2 = self.pupil.forward(S, p_p)
        k = self.wavevectors(geo)
        if subset is not None:
            k = k[np.asarray(subset)]
        edge = self._edge(geo)
        Z, phase, inside = self._zernike_at(k, p_p["zernike"], edge)
        Pk = inside * np.exp(1j * phase)     # inside: the edge's transmission
        E = self._plane(k, xp, cdt, device)
        A = xp.reshape(xp.astype(xp.asarray(Pk.astype(np.complex128), device=device), cdt),
                       (-1, 1, 1)) * E
        psi = psi + c * A
        return psi, (r1, r2, c, A, k, Z, inside, subset, p_l, tuple(o.shape), edge, geo,
                     explicit)

    def __call__(self, o, geo, zern, subset=None, background=None):
        return self.forward(o, geo, zern, subset, background)[0]

    # ---------------------------------------------------------------- backward
    def backward(self, res, g):
        """``(cotangent of o, geometry cotangents {offset, rotation, height, pitch},
        Zernike cotangent (M,))`` for the cotangent ``g`` of the fields (with an
        explicit background, the dict also holds its complex cotangent
        ``"background"``, the convention of CONVENTIONS.md: dL/dRe + i dL/dIm)."""
        r1, r2, c, A, k, Z, inside, subset, p_l, shape, edge, geo_in, explicit = res
        xp = B.namespace(g)
        self.leds.geometry_gradient = self.geometry_gradient
        self.pupil.zernike_gradient = self.zernike_gradient
        gS, gp = self.pupil.backward(r2, g)
        gd, gl = self.leds.backward(r1, gS)
        # the plane-wave term c A_j
        t = xp.sum(xp.sum(xp.conj(A) * g, axis=-1), axis=-1)          # (J',) <A_j, g_j>
        gc = xp.sum(t)
        geo_g = {key: np.asarray(B.to_host_float64(gl[key], key), dtype=np.float64)
                 for key in ("offset", "rotation", "height", "pitch")}
        if explicit:
            # d = o - c: the background's cotangent is its plane wave's minus d's sum
            go = gd
            geo_g["background"] = complex(to_numpy(gc - xp.sum(gd)))
        else:
            n = float(shape[0] * shape[1])
            go = gd - xp.mean(gd) + gc / n
        gz = np.asarray(B.to_host_float64(gp["zernike"], "zernike"), dtype=np.float64)
        # dL/dq = Re sum conj(g) c dA/dq, and for A = P(-k) E: dA/dq = (i dphi/dq + dlogE/dq) A;
        # ct_j = sum conj(g_j) c A_j = conj(<A_j, g_j>) c
        ct = np.conj(to_numpy(t)) * complex(c)
        if self.zernike_gradient and self.noll:
            gz = gz + Z @ np.real(1j * ct)
        if self.geometry_gradient:
            # derivative of the pupil's log at -k: i dphase + dlog(transmission)
            # (finite differences of the Zernike sum and of the edge)
            zc = np.asarray(r2[-1]["zernike"], dtype=np.float64)
            h = 1e-6 * self.setup.cutoff
            dlog = np.zeros(k.shape, dtype=np.complex128)
            for a in range(2):
                e = np.zeros(2)
                e[a] = h
                _, pp, mp = self._zernike_at(k + e, zc, edge)
                _, pm, mm = self._zernike_at(k - e, zc, edge)
                safe = inside > 1e-300
                dm = np.where(safe, (mp - mm) / (2 * h) / np.where(safe, inside, 1.0), 0.0)
                dlog[:, a] = 1j * (pp - pm) / (2 * h) + dm
            # d/dk of E = e^{-2 pi i k.r}: -2 pi i r; sum over r of conj(g) c A r
            p = self.setup.low_pixel_size
            y = xp.asarray(np.arange(self.low[0]) * p, device=B.device_of(g))
            x = xp.asarray(np.arange(self.low[1]) * p, device=B.device_of(g))
            q = xp.conj(g) * A * c
            ty = np.asarray(B.to_host_float64(xp.real(-1j * _TWO_PI * xp.sum(
                xp.sum(q, axis=-1) * y[None, :], axis=-1)), "ty"))
            tx = np.asarray(B.to_host_float64(xp.real(-1j * _TWO_PI * xp.sum(
                xp.sum(q, axis=-2) * x[None, :], axis=-1)), "tx"))
            gk = np.stack([ty, tx], axis=-1) + np.real(dlog * ct[:, None])
            J = self.setup.n_leds
            full = np.zeros((J, 2))
            full[np.arange(J) if subset is None else np.asarray(subset)] = gk
            geo = dict(p_l)
            pitch = geo.pop("pitch")
            extra = wavevectors_vjp(full, self.setup.rows, self.setup.cols, pitch,
                                    wavelength=self.setup.wavelength, **geo)
            for key in ("offset", "rotation", "height", "pitch"):
                geo_g[key] = geo_g[key] + np.asarray(extra[key], dtype=np.float64)
            # the edge's width is the LED's angle: it narrows as the height grows
            hh = 1e-6 * float(geo_in["height"])
            _, _, mp = self._zernike_at(k, zc, self._edge(dict(geo_in, height=geo_in["height"] + hh)))
            _, _, mm = self._zernike_at(k, zc, self._edge(dict(geo_in, height=geo_in["height"] - hh)))
            safe = inside > 1e-300
            dm = np.where(safe, (mp - mm) / (2 * hh) / np.where(safe, inside, 1.0), 0.0)
            geo_g["height"] = geo_g["height"] + float(np.sum(np.real(dm * ct)))
        if self.led_size_gradient:
            # d log(transmission) / d led_size, by central differences of the edge
            size = float(geo_in.get("led_size", self.led_size))
            hs = 1e-3 * max(size, 1e-6)
            zc = np.asarray(r2[-1]["zernike"], dtype=np.float64)
            gp_, gm_ = dict(geo_in, led_size=size + hs), dict(geo_in, led_size=max(size - hs, 0))
            _, _, mp = self._zernike_at(k, zc, self._edge(gp_))
            _, _, mm = self._zernike_at(k, zc, self._edge(gm_))
            safe = inside > 1e-300
            dm = np.where(safe, (mp - mm) / (size + hs - max(size - hs, 0)) /
                          np.where(safe, inside, 1.0), 0.0)
            geo_g["led_size"] = float(np.sum(np.real(dm * ct)))
        return go, geo_g, gz
