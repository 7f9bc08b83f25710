"""The forward model of Fourier ptychographic microscopy (FPM).

A thin sample of complex transmission o, sampled on a high-resolution grid of
(NY, NX) pixels of pitch p = camera pixel / magnification / upsampling [m], is
lit in turn by the J LEDs of a planar array (:mod:`diffimaging.fpm.geometry`).
LED j sends a plane wave of transverse frequency k_j = (ky_j, kx_j) [1/m]; the
camera (pixels of camera pixel / magnification at the sample) records::

    I_j = a_j | s * IFFT_n( P * W( FFT_N( o * exp(-2 pi i k_j . r) ) ) ) |^2 + b

- ``exp(-2 pi i k_j . r)``, r = (i p, j p) the pixel centres (CONVENTIONS.md),
  is the tilted illumination; it shifts the spectrum *continuously*:
  FFT(o e^{-2 pi i k.r})(f) = O(f + k) exactly for any, non-integer, k (the
  grid is periodic, so a k that is not a multiple of the frequency step
  1/(N p) sees the object's edges joined).
- ``W`` keeps the (ny, nx) = (NY / upsampling, NX / upsampling) frequencies
  of the low-resolution camera grid around zero (FFT order, no fftshift).
- ``P(f) = circ(|f| <= na / wavelength) exp(i sum_m c_m Z_m(f / (na / wavelength)))``
  is the coherent pupil with Noll-indexed Zernike aberrations c_m [rad].
- FFT normalisation: unnormalised forward FFTs and inverse FFTs with 1 / size
  (numpy's), and ``s = (ny nx) / (NY NX)`` so that the low-resolution field is
  the band-limited object *sampled* on the camera grid: a clear sample (o = 1)
  under the on-axis LED gives |field| = 1, and with no aberration the field is
  the low-pass ``IFFT_N(circ * FFT_N(o))`` taken at every ``upsampling``-th pixel.
- ``a_j`` (per-LED brightness) and ``b`` (background) are a
  :class:`~diffimaging.model.Gain` stage.

The stages have explicit VJPs: :class:`Illumination` (o -> the J tilted fields;
cotangents of o and of the LED geometry through k_j, using
d/dk exp(-2 pi i k.r) = -2 pi i r exp(-2 pi i k.r)) and :class:`PupilFilter`
(the J tilted fields -> the J low-resolution fields; cotangents of the fields
and of the Zernike coefficients).  :func:`model` chains them with
:class:`~diffimaging.model.Intensity` and the gain into a
:class:`~diffimaging.model.Model` with the parameters ``"leds.offset"`` (dy, dx)
[m], ``"leds.rotation"`` [rad], ``"leds.height"`` [m], ``"leds.pitch"`` [m]
(fixed by default), ``"pupil.zernike"`` [rad], ``"brightness.gain"`` (J, 1, 1)
and ``"brightness.offset"``.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import _backend as B
from .._backend import fft as F
from .._backend import validate as V
from ..model import (Gain, Intensity, Model, Param, Stage, cotangent_like, param_value,
                     zernike_noll)
from .geometry import check_array_shape, wavevectors, wavevectors_vjp

__all__ = ["Illumination", "PupilFilter", "SpectralIllumination", "SpectralPupil", "model",
           "check_learn", "LEARNABLE"]

#: names of the parameter groups that :func:`model` can make learnable
LEARNABLE = ("offset", "rotation", "height", "pitch", "zernike", "brightness")

_TWO_PI = 2.0 * math.pi


def _as_complex(x, name, xp):
    """``x`` (float or complex, (..., ny, nx)) in the complex dtype of its precision."""
    V.field_array(x, name, xp)
    return xp.astype(x, B.complex_dtype_for(xp, x.dtype)) if not B.is_complex(xp, x.dtype) else x


class Illumination(Stage):
    """o (NY, NX) -> the J tilted fields ``o * exp(-2 pi i k_j . r)`` (J, NY, NX),
    k_j the illumination frequencies of an LED array (see
    :func:`diffimaging.fpm.geometry.wavevectors`) and r the pixel centres.

    Parameters
    ----------
    rows, cols : int
        LEDs along y and along x (J = rows * cols, row-major).
    pitch : float or Param [m]
        LED spacing.
    height : float or Param [m]
        Distance from the sample up to the LED array.
    wavelength : float [m]
        Wavelength of the LEDs.
    pixel_size : float [m]
        Pitch p of the object's grid.
    offset : (dy, dx) or Param [m]
        Array centre relative to the optical axis.
    rotation : float or Param [rad]
        Rotation of the array about the optical axis.

    The parameters (``offset``, ``rotation``, ``height``, ``pitch``) are
    differentiable; the stage is linear in o (``.H`` is its adjoint).

    Example
    -------
    >>> st = Illumination(3, 3, 4e-3, 80e-3, wavelength=520e-9, pixel_size=0.4e-6)
    >>> st(np.ones((32, 32), complex)).shape
    (9, 32, 32)
    """

    linear = True

    def __init__(self, rows, cols, pitch, height, *, wavelength, pixel_size, offset=(0.0, 0.0),
                 rotation=0.0, name=None):
        super().__init__(name or "leds")
        self.rows, self.cols = check_array_shape(rows, cols)
        self.wavelength = V.wavelength(wavelength)
        self.pixel_size = V.pixel_size(pixel_size)
        if isinstance(offset, (tuple, list)):
            offset = np.asarray(offset, dtype=np.float64)
        for key, value in (("offset", offset), ("rotation", rotation), ("height", height),
                           ("pitch", pitch)):
            self._declare(key, value)
        if self.param_shape("offset") != (2,):
            raise ValueError(f"offset must be a (dy, dx) pair in metres, got shape "
                             f"{self.param_shape('offset')}")
        for key in ("rotation", "height", "pitch"):
            if self.param_shape(key) != ():
                raise ValueError(f"{key} must be a scalar, got shape {self.param_shape(key)}")
        for key in ("height", "pitch"):
            val = float(B.to_host_float64(self.params[key].value, key))
            V.positive_scalar(val, key, typical=(1e-5, 10.0))

    @property
    def n_leds(self) -> int:
        """J, the number of LEDs."""
        return self.rows * self.cols

    def _geometry(self, p, like):
        return dict(offset=param_value(p, "offset", like), rotation=param_value(p, "rotation", like),
                    height=param_value(p, "height", like), pitch=param_value(p, "pitch", like))

    def wavevectors(self, p=None, like=None):
        """(J, 2) = (ky, kx) [1/m] at the parameters' current values (or ``p``)."""
        p = self.param_values(p)
        like = np.zeros(1) if like is None else like
        xp = B.namespace(like)
        geo = self._geometry(p, like)
        return wavevectors(self.rows, self.cols, geo.pop("pitch"), wavelength=self.wavelength,
                           xp=xp, device=B.device_of(like), **geo)

    def _coords(self, xp, shape, device):
        ny, nx = shape
        y = xp.arange(ny, dtype=xp.float64, device=device) * self.pixel_size[0]
        x = xp.arange(nx, dtype=xp.float64, device=device) * self.pixel_size[1]
        return y, x

    def forward(self, x, p):
        xp = B.namespace(x)
        self.oshape(tuple(x.shape))
        xc = _as_complex(x, "object", xp)
        cdt = xc.dtype
        device = B.device_of(x)
        k = self.wavevectors(p, x)
        y, xx = self._coords(xp, tuple(x.shape[-2:]), device)
        phase = (-_TWO_PI) * (k[:, 0][:, None, None] * y[None, :, None]
                              + k[:, 1][:, None, None] * xx[None, None, :])
        e = xp.astype(xp.cos(phase), cdt) + xp.astype(xp.sin(phase), cdt) * 1j
        out = xc[None, ...] * e
        return out, (x, e, out, p, y, xx)

    def backward(self, res, g):
        x, e, out, p, y, xx = res
        xp = B.namespace(g)
        gx = xp.sum(xp.conj(e) * g, axis=0)
        if not B.is_complex(xp, x.dtype):
            gx = xp.real(gx)
        # dL/dk = Re sum conj(g) (-2 pi i r) out = 2 pi sum r Im(conj(g) out)
        t = xp.astype(xp.imag(xp.conj(g) * out), xp.float64) * _TWO_PI
        gky = xp.sum(xp.sum(t, axis=-1) * y[None, :], axis=-1)
        gkx = xp.sum(xp.sum(t, axis=-2) * xx[None, :], axis=-1)
        geo = self._geometry(p, g)
        pitch = geo.pop("pitch")
        gk = xp.stack([gky, gkx], axis=-1)
        gg = wavevectors_vjp(gk, self.rows, self.cols, pitch, wavelength=self.wavelength, xp=xp,
                             **geo)
        out = {key: cotangent_like(gg[key], p[key]) for key in ("offset", "rotation", "height",
                                                                "pitch")}
        if hasattr(p["offset"], "shape"):
            out["offset"] = xp.reshape(gg["offset"], tuple(p["offset"].shape))
        return gx, out

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        if len(ishape) != 2:
            raise ValueError(f"Illumination stage {self.name!r} takes one object of shape "
                             f"(ny, nx), got shape {ishape}")
        return (self.n_leds,) + ishape

    def ishape(self, oshape) -> tuple:
        oshape = self._image_shape(oshape)
        if len(oshape) != 3 or oshape[0] != self.n_leds:
            raise ValueError(f"Illumination stage {self.name!r} outputs arrays of shape "
                             f"(J={self.n_leds}, ny, nx), got shape {oshape}")
        return oshape[1:]


def _window(n_big: int, n: int) -> tuple[slice, slice, int]:
    """The two slices of an ``n_big``-point FFT axis holding the ``n`` lowest
    frequencies in FFT order (those of ``fftfreq(n)``), and the split point."""
    a = n - n // 2
    return slice(0, a), slice(n_big - n // 2, n_big), a


class PupilFilter(Stage):
    """The camera's coherent imaging of the J tilted fields (..., NY, NX) ->
    the low-resolution fields (..., NY / upsampling, NX / upsampling):
    ``s * IFFT_n(P * W(FFT_N(x)))`` (the module docstring gives W, P and s).

    Parameters
    ----------
    na : float
        Numerical aperture of the objective.
    wavelength : float [m]
        Wavelength.
    pixel_size : float [m]
        Pitch p of the high-resolution grid (camera pixel / magnification / upsampling).
    upsampling : int
        High-resolution pixels per camera pixel along each axis.
    zernike : array or Param [rad], optional
        Aberration coefficients (Noll normalisation: unit RMS over the pupil).
    noll : sequence of int, optional
        Noll indices of the coefficients (default 1, 2, ..., len(zernike)).

    Example
    -------
    >>> st = PupilFilter(0.1, 520e-9, 0.4e-6, upsampling=4, zernike=np.zeros(9))
    >>> st(np.ones((9, 32, 32), complex)).shape
    (9, 8, 8)
    """

    linear = True

    def __init__(self, na, wavelength, pixel_size, *, upsampling, zernike=None, noll=None,
                 name=None):
        super().__init__(name or "pupil")
        self.na = _na(na)
        self.wavelength = V.wavelength(wavelength)
        self.pixel_size = V.pixel_size(pixel_size)
        self.upsampling = V.integer(upsampling, "upsampling", minimum=1)
        if zernike is not None:
            zv = zernike.value if isinstance(zernike, Param) else zernike
            zshape = tuple(np.shape(B.to_host_float64(zv, "zernike")))
            if len(zshape) != 1:
                raise ValueError(f"zernike must be a 1-d array of coefficients in radians, got "
                                 f"shape {zshape}")
            nz = zshape[0]
            self.noll = (list(range(1, nz + 1)) if noll is None
                         else [V.integer(j, "noll", minimum=1) for j in noll])
            if len(self.noll) != nz:
                raise ValueError(f"noll has {len(self.noll)} indices for {nz} zernike coefficients")
        else:
            if noll is not None:
                raise ValueError("noll given without zernike coefficients")
            self.noll = []
        self._declare("zernike", zernike)
        self._cache = {}

    def low_shape(self, shape) -> tuple[int, int]:
        """(ny, nx) of the camera grid for a high-resolution grid ``shape`` (NY, NX)."""
        u = self.upsampling
        ny, nx = (int(n) for n in shape[-2:])
        if ny % u or nx % u:
            raise ValueError(f"PupilFilter stage {self.name!r}: the field's shape {(ny, nx)} must "
                             f"be a multiple of upsampling = {u}")
        return ny // u, nx // u

    def _basis(self, xp, shape, device):
        key = (id(xp), tuple(shape), str(device))
        if key not in self._cache:
            ny, nx = shape
            u = self.upsampling
            fy = F.fftfreq(ny, u * self.pixel_size[0])[:, None]
            fx = F.fftfreq(nx, u * self.pixel_size[1])[None, :]
            rho = np.sqrt(fy ** 2 + fx ** 2) / (self.na / self.wavelength)
            theta = np.arctan2(fy, fx)
            mask = (rho <= 1.0).astype(np.float64)
            Z = (np.stack([zernike_noll(j, rho, theta) for j in self.noll]) if self.noll
                 else np.zeros((0, ny, nx)))
            self._cache = {key: (xp.asarray(mask, device=device), xp.asarray(Z, device=device))}
        return self._cache[key]

    def pupil(self, p, like, shape):
        """The complex pupil P (ny, nx) on the camera grid's frequencies (FFT order)."""
        xp = B.namespace(like)
        mask, Z = self._basis(xp, shape, B.device_of(like))
        cdt = B.complex_dtype_for(xp, like.dtype)
        if not self.noll:
            return xp.astype(mask, cdt), Z
        c = xp.asarray(param_value(p, "zernike", like), dtype=xp.float64)
        phi = xp.sum(xp.reshape(c, (-1, 1, 1)) * Z, axis=0)
        return xp.astype(mask * xp.cos(phi), cdt) + xp.astype(mask * xp.sin(phi), cdt) * 1j, Z

    def _crop(self, X, small):
        xp = B.namespace(X)
        (ya, yb, _), (xa, xb, _) = (_window(int(X.shape[-2]), small[0]),
                                    _window(int(X.shape[-1]), small[1]))
        top = xp.concat([X[..., ya, xa], X[..., ya, xb]], axis=-1)
        bottom = xp.concat([X[..., yb, xa], X[..., yb, xb]], axis=-1)
        return xp.concat([top, bottom], axis=-2)

    def _pad(self, C, big):
        """The adjoint of :meth:`_crop`: ``C`` placed in zeros of shape (..., *big)."""
        xp = B.namespace(C)
        (ya, yb, sy), (xa, xb, sx) = (_window(big[0], int(C.shape[-2])),
                                      _window(big[1], int(C.shape[-1])))
        out = xp.zeros(tuple(C.shape[:-2]) + tuple(big), dtype=C.dtype, device=B.device_of(C))
        out[..., ya, xa] = C[..., :sy, :sx]
        out[..., ya, xb] = C[..., :sy, sx:]
        out[..., yb, xa] = C[..., sy:, :sx]
        out[..., yb, xb] = C[..., sy:, sx:]
        return out

    def forward(self, x, p):
        xp = B.namespace(x)
        xc = _as_complex(x, "field", xp)
        big = tuple(int(n) for n in x.shape[-2:])
        small = self.low_shape(big)
        P, Z = self.pupil(p, xc, small)
        C = self._crop(F.fftn(xc), small)
        s = (small[0] * small[1]) / (big[0] * big[1])
        y = F.ifftn(C * P, overwrite=True) * s
        return y, (x, C, P, Z, big, p)

    def backward(self, res, g):
        x, C, P, Z, big, p = res
        xp = B.namespace(g)
        G = F.fftn(g)
        # s N^2 / n^2 = 1: the adjoint is IFFT_N(pad(conj(P) FFT_n(g)))
        gx = F.ifftn(self._pad(G * xp.conj(P), big), overwrite=True)
        if not B.is_complex(xp, x.dtype):
            gx = xp.real(gx)
        out = {}
        if self.noll:
            # dL/dc_m = (s / n^2) Re sum conj(G) i Z_m P C,  s / n^2 = 1 / (NY NX)
            t = xp.astype(xp.real(xp.conj(G) * P * C * 1j), xp.float64)
            t = xp.sum(xp.reshape(t, (-1,) + tuple(t.shape[-2:])), axis=0)
            gz = xp.sum(xp.sum(t[None, ...] * Z, axis=-1), axis=-1) / float(big[0] * big[1])
            v = p["zernike"]
            out["zernike"] = xp.reshape(gz, tuple(v.shape)) if hasattr(v, "shape") else gz
        return gx, out

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        return ishape[:-2] + self.low_shape(ishape)

    def ishape(self, oshape) -> tuple:
        oshape = self._image_shape(oshape)
        return oshape[:-2] + tuple(n * self.upsampling for n in oshape[-2:])


class SpectralIllumination(Illumination):
    """o (NY, NX) -> the windowed spectra of the J tilted fields (J, ny, nx):
    ``W(FFT_N(o * exp(-2 pi i k_j . r)))`` = O(f_m + k_j) at the (ny, nx) =
    (NY / upsampling, NX / upsampling) lowest frequencies f_m of the object
    grid (FFT order), k_j continuous.

    The same map as :class:`Illumination` followed by the FFT and the window
    of :class:`PupilFilter`, computed without the J full-size FFTs: the tilt
    is separable, so every LED's window is a partial DFT at shifted
    frequencies, ``B_y^j o (B_x^j)^T`` with ``B_y^j[m, i] = exp(-2 pi i i
    (m / NY + ky_j p))`` — two batched matrix products (BLAS / cuBLAS) of
    O(J NY NX nx) operations, exact for any k_j.  Parameters, errors and VJP
    (object and geometry) as :class:`Illumination`; ``upsampling`` sets the
    window.  Pair it with :class:`SpectralPupil`.

    Example
    -------
    >>> st = SpectralIllumination(3, 3, 4e-3, 80e-3, wavelength=520e-9, pixel_size=0.4e-6,
    ...                           upsampling=4)
    >>> st(np.ones((32, 32), complex)).shape
    (9, 8, 8)
    """

    def __init__(self, rows, cols, pitch, height, *, wavelength, pixel_size, upsampling,
                 offset=(0.0, 0.0), rotation=0.0, name=None):
        super().__init__(rows, cols, pitch, height, wavelength=wavelength, pixel_size=pixel_size,
                         offset=offset, rotation=rotation, name=name)
        self.upsampling = V.integer(upsampling, "upsampling", minimum=1)
        self._dft = {}
        #: False skips the geometry's cotangents (zeros then), e.g. while only the object moves
        self.geometry_gradient = True
        #: None (all LEDs) or the indices of the LEDs to model (a mini-batch: the output
        #: then has len(subset) spectra; the geometry's cotangents stay those of the array)
        self.subset = None
        #: (J, 2) cotangent of the wave vectors of the last backward pass (zeros off the subset)
        self.last_wavevector_cotangent = None
        #: None, or a separable taper (wy (NY,), wx (NX,)) the object is multiplied by before
        #: the transform: a field that falls smoothly to zero at the grid's edges has no
        #: edge (the spectrum of a truncated or wrapped field rings over the image)
        self.window = None

    def low_shape(self, shape) -> tuple[int, int]:
        u = self.upsampling
        ny, nx = (int(n) for n in shape[-2:])
        if ny % u or nx % u:
            raise ValueError(f"SpectralIllumination stage {self.name!r}: the object's shape "
                             f"{(ny, nx)} must be a multiple of upsampling = {u}")
        return ny // u, nx // u

    def _matrices(self, k, xp, shape, cdt, device):
        """(By, Bx): (J, ny, NY) and (J, nx, NX) partial-DFT matrices at the shifted
        frequencies, phases in float64."""
        big = tuple(int(n) for n in shape)
        small = self.low_shape(big)
        key = (id(xp), big, str(device), str(cdt))
        if key not in self._dft:
            mats = []
            for N, n in zip(big, small):
                m = np.round(F.fftfreq(n, 1.0 / n)).astype(np.float64)
                ph = -_TWO_PI * np.outer(m, np.arange(N)) / N
                mats.append(xp.asarray(np.exp(1j * ph).astype(np.dtype(str(cdt).split(".")[-1])),
                                       device=device))
            self._dft = {key: mats}
        Dy, Dx = self._dft[key]
        out = []
        for axis, (N, D) in enumerate(zip(big, (Dy, Dx))):
            r = xp.arange(N, dtype=xp.float64, device=device)
            ph = (-_TWO_PI * self.pixel_size[axis]) * (k[:, axis][:, None] * r[None, :])
            e = xp.astype(xp.cos(ph), cdt) + xp.astype(xp.sin(ph), cdt) * 1j
            if self.window is not None:
                wv = self.window[axis]
                if int(wv.shape[0]) != N:
                    raise ValueError(f"SpectralIllumination stage {self.name!r}: window[{axis}] "
                                     f"has {int(wv.shape[0])} values for an axis of {N}")
                e = e * xp.astype(xp.asarray(wv, device=device), cdt)
            out.append(D[None, :, :] * e[:, None, :])
        return out

    def forward(self, x, p):
        xp = B.namespace(x)
        self.oshape(tuple(x.shape))
        xc = _as_complex(x, "object", xp)
        NY, NX = (int(n) for n in x.shape[-2:])
        k = self.wavevectors(p, x)
        if self.subset is not None:
            k = xp.take(k, xp.asarray(self.subset, device=B.device_of(x)), axis=0)
        J = int(k.shape[0])
        By, Bx = self._matrices(k, xp, (NY, NX), xc.dtype, B.device_of(x))
        nx = int(Bx.shape[1])
        # T_j = o Bx_j^T for all j at once: (NY, NX) @ (NX, J nx)
        T = xc @ xp.permute_dims(xp.reshape(Bx, (J * nx, NX)), (1, 0))
        T = xp.permute_dims(xp.reshape(T, (NY, J, nx)), (1, 0, 2))
        out = By @ T
        return out, (x, By, Bx, T, p, self.subset)

    def backward(self, res, g):
        x, By, Bx, T, p, subset = res
        xp = B.namespace(g)
        J, ny, NY = (int(n) for n in By.shape)
        nx, NX = (int(n) for n in Bx.shape[1:])
        H = xp.permute_dims(xp.conj(By), (0, 2, 1)) @ g                     # (J, NY, nx)
        Hf = xp.reshape(xp.permute_dims(H, (1, 0, 2)), (NY, J * nx))
        gx = Hf @ xp.reshape(xp.conj(Bx), (J * nx, NX))
        if not B.is_complex(xp, x.dtype):
            gx = xp.real(gx)
        out = {}
        if self.geometry_gradient:
            xc = _as_complex(x, "object", xp)
            y, xx = self._coords(xp, (NY, NX), B.device_of(g))
            # dL/dky_j = 2 pi sum_i y_i sum_n Im(conj(H_j) T_j)[i, n]
            ty = xp.astype(xp.sum(xp.imag(xp.conj(H) * T), axis=-1), xp.float64)
            gky = _TWO_PI * xp.sum(ty * y[None, :], axis=-1)
            # dL/dkx_j = 2 pi sum_l x_l sum_m Im(conj(K_j) U_j)[m, l], U_j = By_j o, K_j = g_j conj(Bx_j)
            U = xp.reshape(xp.reshape(By, (J * ny, NY)) @ xc, (J, ny, NX))
            K = g @ xp.conj(Bx)
            tx = xp.astype(xp.sum(xp.imag(xp.conj(K) * U), axis=-2), xp.float64)
            gkx = _TWO_PI * xp.sum(tx * xx[None, :], axis=-1)
            gk = xp.stack([gky, gkx], axis=-1)
            if subset is not None:
                full = np.zeros((self.n_leds, 2))
                full[np.asarray(subset)] = B.to_host_float64(gk, "gk")
                gk = xp.asarray(full, device=B.device_of(g))
            self.last_wavevector_cotangent = gk
            geo = self._geometry(p, g)
            pitch = geo.pop("pitch")
            gg = wavevectors_vjp(gk, self.rows, self.cols, pitch,
                                 wavelength=self.wavelength, xp=xp, **geo)
        else:
            gg = {"offset": xp.zeros(2, dtype=xp.float64, device=B.device_of(g)),
                  **{k: xp.asarray(0.0, dtype=xp.float64, device=B.device_of(g))
                     for k in ("rotation", "height", "pitch")}}
        for key in ("offset", "rotation", "height", "pitch"):
            out[key] = cotangent_like(gg[key], p[key])
        if hasattr(p["offset"], "shape"):
            out["offset"] = xp.reshape(gg["offset"], tuple(p["offset"].shape))
        return gx, out

    def oshape(self, ishape) -> tuple:
        ishape = self._image_shape(ishape)
        if len(ishape) != 2:
            raise ValueError(f"SpectralIllumination stage {self.name!r} takes one object of "
                             f"shape (ny, nx), got shape {ishape}")
        n = self.n_leds if self.subset is None else len(self.subset)
        return (n,) + self.low_shape(ishape)

    def ishape(self, oshape) -> tuple:
        oshape = self._image_shape(oshape)
        n = self.n_leds if self.subset is None else len(self.subset)
        if len(oshape) != 3 or oshape[0] != n:
            raise ValueError(f"SpectralIllumination stage {self.name!r} outputs arrays of shape "
                             f"(J={n}, ny, nx), got shape {oshape}")
        return tuple(n * self.upsampling for n in oshape[1:])


class SpectralPupil(PupilFilter):
    """The windowed spectra (..., ny, nx) of :class:`SpectralIllumination` ->
    the low-resolution fields ``s * IFFT_n(P * S)`` (..., ny, nx), s = 1 /
    upsampling^2 (the module docstring's P and s).  Parameters as
    :class:`PupilFilter`; linear in S.

    Example
    -------
    >>> st = SpectralPupil(0.1, 520e-9, 0.4e-6, upsampling=4, zernike=np.zeros(9))
    >>> st(np.ones((9, 8, 8), complex)).shape
    (9, 8, 8)
    """

    def forward(self, x, p):
        xp = B.namespace(x)
        S = _as_complex(x, "spectra", xp)
        small = tuple(int(n) for n in x.shape[-2:])
        P, Z = self.pupil(p, S, small)
        s = 1.0 / float(self.upsampling ** 2)
        y = F.ifftn(S * P) * s
        return y, (x, S, P, Z, small, p)

    def backward(self, res, g):
        x, S, P, Z, small, p = res
        xp = B.namespace(g)
        n = small[0] * small[1]
        s = 1.0 / float(self.upsampling ** 2)
        G = F.fftn(g) * (s / n)
        gx = G * xp.conj(P)
        if not B.is_complex(xp, x.dtype):
            gx = xp.real(gx)
        out = {}
        if self.noll and not getattr(self, "zernike_gradient", True):
            v = p["zernike"]
            out["zernike"] = xp.zeros(tuple(v.shape) if hasattr(v, "shape") else (len(self.noll),),
                                      dtype=xp.float64, device=B.device_of(g))
        elif self.noll:
            t = xp.astype(xp.real(xp.conj(G) * P * S * 1j), xp.float64)
            t = xp.sum(xp.reshape(t, (-1,) + tuple(t.shape[-2:])), axis=0)
            gz = xp.sum(xp.sum(t[None, ...] * Z, axis=-1), axis=-1)
            v = p["zernike"]
            out["zernike"] = xp.reshape(gz, tuple(v.shape)) if hasattr(v, "shape") else gz
        return gx, out

    def oshape(self, ishape) -> tuple:
        return self._image_shape(ishape)

    def ishape(self, oshape) -> tuple:
        return self._image_shape(oshape)


def _na(na) -> float:
    na = V.positive_scalar(na, "na", unit="(dimensionless)")
    if na > 1.5:
        raise ValueError(f"na must be a numerical aperture (0 < na <= 1.5), got {na!r}")
    return na


def check_learn(learn) -> tuple:
    """``learn`` as a tuple of names from :data:`LEARNABLE` (a clear error otherwise)."""
    return V.names(learn, "learn", LEARNABLE)


def model(rows, cols, *, pitch, height, wavelength, na, pixel_size, magnification, upsampling,
          offset=(0.0, 0.0), rotation=0.0, zernike=None, noll=None, brightness=None,
          background=0.0, learn=("offset", "rotation", "height", "zernike", "brightness"),
          fused=True) -> Model:
    """The FPM forward model of J = rows * cols LED images as a :class:`~diffimaging.Model`.

    ``model(o)`` maps a complex object ``o`` (NY, NX) of pitch
    ``p = pixel_size / magnification / upsampling`` to the J predicted camera
    images (J, NY / upsampling, NX / upsampling), LED j = r * cols + c.

    Parameters
    ----------
    rows, cols : int
        LEDs along y and x.
    pitch : float [m]
        LED spacing ("leds.pitch", fixed unless "pitch" is in ``learn``; bounds +-10 %).
    height : float [m]
        Sample-to-array distance ("leds.height"; bounds [0.5, 1.5] * height).
    wavelength : float [m]
        Wavelength of the LEDs.
    na : float
        Numerical aperture of the objective.
    pixel_size : float [m]
        Camera pixel pitch (on the sensor).
    magnification : float
        Magnification of the microscope.
    upsampling : int
        High-resolution pixels per camera pixel along each axis.
    offset : (dy, dx) [m]
        Array centre relative to the optical axis ("leds.offset"; bounds +-2 pitches).
    rotation : float [rad]
        Array rotation about the axis ("leds.rotation"; bounds +-pi/8).
    zernike : (M,) [rad], optional
        Pupil aberration coefficients ("pupil.zernike"; default 9 zeros, Noll 1..9).
    noll : sequence of int, optional
        Noll indices of ``zernike`` (default 1..M).
    brightness : (J,), optional
        Relative LED brightness a_j ("brightness.gain", shape (J, 1, 1); default ones).
    background : float
        Offset b added to every pixel ("brightness.offset").
    learn : subset of ("offset", "rotation", "height", "pitch", "zernike", "brightness")
        Learnable groups ("brightness" makes a_j and b learnable).
    fused : bool
        True (default): the stages :class:`SpectralIllumination` and
        :class:`SpectralPupil` (the windowed spectra by batched partial DFTs, no
        full-size FFT per LED); False: :class:`Illumination` and
        :class:`PupilFilter` (the J tilted fields, then FFTs).  Same values, same
        parameter names.

    Returns
    -------
    Model with the stages "leds", "pupil", "intensity" and "brightness".

    Warns
    -----
    SamplingWarning
        When the pupil is wider than the camera grid's band (camera
        under-sampling) or a shifted pupil leaves the high-resolution band
        (the spectrum would wrap around).

    Example
    -------
    >>> m = model(5, 5, pitch=4e-3, height=80e-3, wavelength=520e-9, na=0.1,
    ...           pixel_size=6.5e-6, magnification=4, upsampling=4)
    >>> m(np.ones((64, 64), complex)).shape
    (25, 16, 16)
    """
    learn = check_learn(learn)
    rows, cols = check_array_shape(rows, cols)
    J = rows * cols
    lam = V.wavelength(wavelength)
    na = _na(na)
    cam = V.positive_scalar(pixel_size, "pixel_size", typical=(1e-9, 1e-2))
    mag = V.positive_scalar(magnification, "magnification", unit="(dimensionless)")
    u = V.integer(upsampling, "upsampling", minimum=1)
    pitch = V.positive_scalar(pitch, "pitch", typical=(1e-5, 1.0))
    height = V.positive_scalar(height, "height", typical=(1e-4, 10.0))
    if isinstance(rotation, bool) or not isinstance(rotation, numbers.Real):
        raise TypeError(f"rotation must be a real number in radians, got {rotation!r}")
    rotation = float(rotation)
    if not abs(rotation) <= math.pi / 8:
        raise ValueError(f"rotation must be a finite angle in radians within +-pi/8 (its bounds), "
                         f"got {rotation!r}")
    try:
        off = np.asarray(B.to_host_float64(offset, "offset") if hasattr(offset, "shape")
                         else offset, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"offset must be a (dy, dx) pair of numbers in metres, got "
                        f"{offset!r}") from None
    if off.shape != (2,) or not np.all(np.isfinite(off)):
        raise ValueError(f"offset must be a finite (dy, dx) pair in metres, got {offset!r}")
    if zernike is None:
        zernike = np.zeros(9) if noll is None else np.zeros(len(noll))
    zernike = np.asarray(B.to_host_float64(zernike, "zernike"), dtype=np.float64)
    if brightness is None:
        brightness = np.ones(J)
    brightness = np.asarray(B.to_host_float64(brightness, "brightness"), dtype=np.float64)
    if brightness.shape != (J,):
        raise ValueError(f"brightness must have one value per LED, shape ({J},), got shape "
                         f"{brightness.shape}")
    background = float(background)

    p_low = cam / mag
    p_high = p_low / u
    fc = na / lam
    if fc > 1.0 / (2.0 * p_low) * (1 + 1e-12):
        warnings.warn(f"the pupil's radius na / wavelength = {fc:.4g} 1/m exceeds the camera grid's "
                      f"Nyquist frequency {1 / (2 * p_low):.4g} 1/m (camera pixel {cam:g} m / "
                      f"magnification {mag:g}): the pupil is cut to the camera band",
                      V.SamplingWarning, stacklevel=2)
    kmax = float(np.max(np.hypot(*wavevectors(rows, cols, pitch, offset=off, rotation=rotation,
                                              height=height, wavelength=lam).T)))
    if kmax + fc > 1.0 / (2.0 * p_high) * (1 + 1e-12):
        warnings.warn(f"the outermost LED's spectrum reaches {kmax + fc:.4g} 1/m beyond the "
                      f"high-resolution grid's Nyquist frequency {1 / (2 * p_high):.4g} 1/m: "
                      f"increase upsampling (now {u}) or the spectrum wraps around",
                      V.SamplingWarning, stacklevel=2)

    kind = dict(upsampling=u) if fused else {}
    leds = (SpectralIllumination if fused else Illumination)(
        rows, cols,
        Param(pitch, bounds=(0.9 * pitch, 1.1 * pitch), fixed="pitch" not in learn,
              scale=pitch / 100),
        Param(height, bounds=(0.5 * height, 1.5 * height), fixed="height" not in learn,
              scale=height / 100),
        wavelength=lam, pixel_size=p_high, **kind,
        offset=Param(off, bounds=(-2 * pitch, 2 * pitch), fixed="offset" not in learn,
                     scale=pitch / 10),
        rotation=Param(rotation, bounds=(-math.pi / 8, math.pi / 8),
                       fixed="rotation" not in learn, scale=1e-2))
    pupil = (SpectralPupil if fused else PupilFilter)(na, lam, p_high, upsampling=u,
                        zernike=Param(zernike, fixed="zernike" not in learn, scale=0.1), noll=noll)
    lb = "brightness" in learn
    gain = Gain(Param(brightness.reshape(J, 1, 1), bounds=(0.0, None), fixed=not lb, scale=0.1),
                Param(background, fixed=not lb, scale=0.01), name="brightness")
    return Model(leds, pupil, Intensity(), gain, name="fpm")
