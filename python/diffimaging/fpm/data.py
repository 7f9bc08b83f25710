"""What a Fourier ptychographic microscope records and what its reconstruction gives.

- :class:`Setup` — the nominal optics and LED-array geometry (lengths in metres):
  LED grid ``rows`` x ``cols`` at ``pitch``, ``height`` above the sample,
  centred at ``offset`` (dy, dx) and rotated by ``rotation`` [rad];
  ``wavelength``, objective ``na``, ``magnification``, camera ``pixel_size``
  (on the sensor) and the ``upsampling`` of the reconstruction's grid.
- :class:`Dataset` — the J = rows * cols camera images (J, ny, nx), LED
  j = r * cols + c (row-major), with their nominal :class:`Setup` (and, for
  simulated data, the truth).
- :class:`Reconstruction` — the object, pupil, learned geometry next to the
  nominal, brightness, per-image noise weights, history and settings.

Grids: the camera image has pitch ``pixel_size / magnification`` at the sample
(``Setup.low_pixel_size``); the object has pitch ``low_pixel_size /
upsampling`` (``Setup.pixel_size_object``) and shape (ny u, nx u).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .._backend import validate as V
from .geometry import check_array_shape, led_positions, wavevectors

__all__ = ["Setup", "Dataset", "Reconstruction"]


def _real(value, name, unit):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number {unit}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Setup:
    """The nominal setup of a Fourier ptychographic microscope (SI units).

    Parameters
    ----------
    rows, cols : int
        LEDs along y and x.
    pitch : float [m]
        LED spacing.
    height : float [m]
        Distance from the sample up to the LED array.
    wavelength : float [m]
        Wavelength of the LEDs.
    na : float
        Numerical aperture of the objective (0 < na < 1).
    pixel_size : float [m]
        Camera pixel pitch on the sensor.
    magnification : float
        Magnification from sample to camera.
    upsampling : int
        Object-grid pixels per camera pixel along each axis (default 4).
    offset : (dy, dx) [m]
        Centre of the LED array relative to the optical axis (default 0).
    rotation : float [rad]
        Rotation of the array about the optical axis (default 0).

    Example
    -------
    >>> s = Setup(15, 15, pitch=4e-3, height=90e-3, wavelength=629.7e-9, na=0.1,
    ...           pixel_size=6.5e-6, magnification=4)
    >>> s.n_leds, s.low_pixel_size
    (225, 1.625e-06)
    """

    rows: int
    cols: int
    pitch: float
    height: float
    wavelength: float
    na: float
    pixel_size: float
    magnification: float
    upsampling: int = 4
    offset: tuple = (0.0, 0.0)
    rotation: float = 0.0

    def __post_init__(self):
        rows, cols = check_array_shape(self.rows, self.cols)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        object.__setattr__(self, "pitch", V.positive_scalar(self.pitch, "pitch",
                                                            typical=(1e-5, 1.0)))
        object.__setattr__(self, "height", V.positive_scalar(self.height, "height",
                                                             typical=(1e-4, 10.0)))
        object.__setattr__(self, "wavelength", V.wavelength(self.wavelength))
        na = V.positive_scalar(self.na, "na", unit="(dimensionless)")
        if na >= 1.0:
            raise ValueError(f"na must be a numerical aperture below 1 (a dry objective; the "
                             f"model has no immersion medium), got {na!r}")
        object.__setattr__(self, "na", na)
        object.__setattr__(self, "pixel_size", V.positive_scalar(
            self.pixel_size, "pixel_size", typical=(1e-7, 1e-3)))
        object.__setattr__(self, "magnification", V.positive_scalar(
            self.magnification, "magnification", unit="(dimensionless)"))
        object.__setattr__(self, "upsampling", V.integer(self.upsampling, "upsampling",
                                                         minimum=1))
        try:
            off = tuple(float(v) for v in np.asarray(self.offset, dtype=np.float64).ravel())
        except (TypeError, ValueError):
            raise TypeError(f"offset must be a (dy, dx) pair in metres, got "
                            f"{self.offset!r}") from None
        if len(off) != 2 or not all(math.isfinite(v) for v in off):
            raise ValueError(f"offset must be a finite (dy, dx) pair in metres, got "
                             f"{self.offset!r}")
        object.__setattr__(self, "offset", off)
        rot = _real(self.rotation, "rotation", "in radians")
        if abs(rot) > math.pi / 8:
            raise ValueError(f"rotation must be within +-pi/8 rad (it is in radians: 1 degree is "
                             f"0.01745), got {rot!r}")
        object.__setattr__(self, "rotation", rot)

    @property
    def n_leds(self) -> int:
        """J, the number of LEDs."""
        return self.rows * self.cols

    @property
    def low_pixel_size(self) -> float:
        """Camera pixel at the sample, ``pixel_size / magnification`` [m]."""
        return self.pixel_size / self.magnification

    @property
    def object_pixel_size(self) -> float:
        """Pixel of the reconstructed object, ``low_pixel_size / upsampling`` [m]."""
        return self.low_pixel_size / self.upsampling

    @property
    def cutoff(self) -> float:
        """The pupil's radius ``na / wavelength`` [1/m]."""
        return self.na / self.wavelength

    def object_shape(self, image_shape) -> tuple[int, int]:
        """(NY, NX) of the object for camera images of shape (..., ny, nx)."""
        ny, nx = (int(n) for n in tuple(image_shape)[-2:])
        return ny * self.upsampling, nx * self.upsampling

    def geometry(self) -> dict:
        """The array geometry: ``offset`` (2,), ``rotation``, ``height``, ``pitch``."""
        return dict(offset=np.asarray(self.offset, dtype=np.float64), rotation=self.rotation,
                    height=self.height, pitch=self.pitch)

    def wavevectors(self) -> np.ndarray:
        """(J, 2) illumination frequencies (ky, kx) [1/m] of the nominal geometry."""
        return wavevectors(self.rows, self.cols, self.pitch, offset=self.offset,
                           rotation=self.rotation, height=self.height,
                           wavelength=self.wavelength)

    def led_positions(self) -> np.ndarray:
        """(J, 3) LED positions (y, x, z) [m] of the nominal geometry."""
        return led_positions(self.rows, self.cols, self.pitch, offset=self.offset,
                             rotation=self.rotation, height=self.height)

    def illumination_na(self) -> np.ndarray:
        """(J,) the illumination NA of each LED, ``wavelength |k_j|``."""
        return self.wavelength * np.hypot(*self.wavevectors().T)

    def brightfield(self) -> np.ndarray:
        """(J,) bool: LEDs whose illumination NA is below the objective's (bright field)."""
        return self.illumination_na() < self.na

    def synthetic_na(self) -> float:
        """The synthetic aperture's NA: the objective's plus the largest illumination NA."""
        return float(self.na + np.max(self.illumination_na()))

    def with_geometry(self, *, offset=None, rotation=None, height=None, pitch=None) -> "Setup":
        """A copy with some geometry values replaced."""
        kw = {k: v for k, v in dict(offset=offset, rotation=rotation, height=height,
                                    pitch=pitch).items() if v is not None}
        if "offset" in kw:
            kw["offset"] = tuple(float(v) for v in np.asarray(kw["offset"]).ravel())
        for k in ("rotation", "height", "pitch"):
            if k in kw:
                kw[k] = float(kw[k])
        return replace(self, **kw)

    def to_dict(self) -> dict:
        """Plain values (JSON/TOML-ready)."""
        d = asdict(self)
        d["offset"] = list(d["offset"])
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "setup") -> "Setup":
        """A Setup from a mapping of its field names (unknown keys refused, naming ``where``)."""
        names = [f for f in cls.__dataclass_fields__]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; a setup has {names}")
        missing = [k for k in names[:8] if k not in d]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing} (lengths in metres)")
        return cls(**{k: (tuple(v) if k == "offset" else v) for k, v in d.items()})


@dataclass
class Dataset:
    """J FPM camera images with their nominal setup.

    Parameters
    ----------
    images : array (J, ny, nx), float
        One image per LED, LED j = r * cols + c, in photo-electrons or any
        linear unit (the reconstruction learns the scale as the brightness).
    setup : Setup
        The nominal setup.
    truth : dict, optional
        For simulated data: ``object`` (NY, NX complex), ``setup`` (the true
        Setup), ``zernike`` (9,) [rad], ``brightness`` (J,), ``background``,
        ``photons``, ``corrupted`` (indices) — never used by the reconstruction.
    """

    images: object
    setup: Setup
    truth: dict | None = None

    def __post_init__(self):
        if not isinstance(self.setup, Setup):
            raise TypeError(f"setup must be a diffimaging.fpm.Setup, got {type(self.setup).__name__}")
        shape = tuple(getattr(self.images, "shape", np.shape(self.images)))
        if len(shape) != 3:
            raise ValueError(f"images must be a stack (J, ny, nx) of one image per LED, got "
                             f"shape {shape}")
        if shape[0] != self.setup.n_leds:
            raise ValueError(f"images holds {shape[0]} images but the LED grid "
                             f"{self.setup.rows} x {self.setup.cols} has {self.setup.n_leds} "
                             f"LEDs (one image per LED, row-major)")
        if shape[1] < 8 or shape[2] < 8:
            raise ValueError(f"images of shape {shape[1:]} are too small (at least 8 x 8 pixels)")

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self.images.shape[-2:])

    @property
    def object_shape(self) -> tuple[int, int]:
        return self.setup.object_shape(self.image_shape)


@dataclass
class Reconstruction:
    """What :func:`diffimaging.fpm.reconstruct` (and :func:`~diffimaging.fpm.epry`) return.

    Attributes
    ----------
    object : ndarray (NY, NX) complex
        The complex transmission, pixel ``setup.object_pixel_size``; its global
        scale and phase are not determined by intensity data (the scale is
        fixed by the mean brightness being the images' photon scale, the phase
        by the mean phase being 0).
    pupil : ndarray (ny, nx) complex
        The learned coherent pupil on the camera grid's frequencies (FFT order).
    zernike : ndarray (M,) [rad], noll : list of int
        Its Zernike coefficients (Noll).
    setup : Setup
        The nominal setup; ``geometry`` the learned ``offset``, ``rotation``,
        ``height``, ``pitch``.
    brightness : ndarray (J,)
        Learned LED brightness a_j (photons per unit |field|^2).
    background : float
        Learned background b.
    noise : ndarray (J,)
        Learned per-image noise scale (relative dispersion of the fidelity,
        median 1); ``weights`` = 1 / noise are the frames' weights.
    history : dict
        ``loss`` per iteration, ``stage`` names, ``time`` [s], and stage records.
    settings : dict
        The reconstruction's settings.
    """

    object: np.ndarray
    pupil: np.ndarray
    zernike: np.ndarray
    noll: list
    setup: Setup
    geometry: dict
    brightness: np.ndarray
    background: float
    noise: np.ndarray
    history: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def weights(self) -> np.ndarray:
        """(J,) the frames' weights in the fidelity, 1 / noise."""
        return 1.0 / np.asarray(self.noise, dtype=np.float64)

    def learned_setup(self) -> Setup:
        """The nominal setup with the learned geometry."""
        g = self.geometry
        return self.setup.with_geometry(offset=g["offset"], rotation=g["rotation"],
                                        height=g["height"], pitch=g["pitch"])

    def wavevectors(self) -> np.ndarray:
        """(J, 2) learned illumination frequencies (ky, kx) [1/m]."""
        return self.learned_setup().wavevectors()

    def led_positions(self) -> np.ndarray:
        """(J, 3) learned LED positions (y, x, z) [m]."""
        return self.learned_setup().led_positions()
