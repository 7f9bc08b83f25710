"""A set of lensless captures and the result of its reconstruction.

:class:`Captures` is what a pixel-super-resolution lensless microscope records:
K low-resolution holograms taken with the sensor (or the sample) moved by
sub-pixel steps and/or to several heights, with the *nominal* (roughly known)
steps and heights.  :class:`Reconstruction` is what
:func:`diffimaging.lensless.reconstruct` returns.

Geometry (all lengths in metres):

- ``pixel_size`` is the sensor pitch P.  The high-resolution field has pitch
  P / ``factor``.
- ``shifts[k] = (sy, sx)`` is the lateral position of capture k's sensor grid
  relative to the high-resolution window: sensor pixel (i, j) of capture k
  integrates the intensity over y in [i P + sy, (i+1) P + sy) and x in
  [j P + sx, (j+1) P + sx), the window's origin being the corner of its pixel
  (0, 0).
- ``z[k]`` is the distance from the sample plane to the sensor (positive).
- ``wavelength`` is the vacuum wavelength; the medium between sample and
  sensor has refractive index ``n_medium``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._backend import validate as V

__all__ = ["Captures", "Reconstruction"]


def _as_host(a, name: str, ndim: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers ({what}), got "
                        f"{type(a).__name__}") from None
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s) ({what}), got shape {arr.shape}")
    return arr


@dataclass
class Captures:
    """K low-resolution lensless captures with their nominal geometry.

    Parameters
    ----------
    images : array (K, ny, nx), float
        The captures, background-normalised intensities (about 1 where the
        sample is clear).  Any array-API library; kept as given.
    shifts : array (K, 2) [m]
        Nominal lateral sensor positions (sy, sx) of each capture.
    z : array (K,) [m]
        Nominal sample-to-sensor distances.
    wavelength : float [m]
        Vacuum wavelength.
    pixel_size : float [m]
        Sensor pixel pitch.
    factor : int
        Super-resolution factor: the reconstructed field has pitch
        ``pixel_size / factor``.
    n_medium : float
        Refractive index between sample and sensor (1.0 air).
    truth : dict, optional
        For simulated sets: the true ``"shifts"`` (K, 2) [m], ``"z"`` (K,) [m]
        and ``"field"`` (complex high-resolution transmission), used to score
        reconstructions.  Never used by the reconstruction itself.

    Example
    -------
    >>> caps = Captures(images, shifts, z, wavelength=532e-9, pixel_size=1.6e-6, factor=2)
    >>> caps.K, caps.sensor_shape
    """

    images: object
    shifts: np.ndarray
    z: np.ndarray
    wavelength: float
    pixel_size: float
    factor: int
    n_medium: float = 1.0
    truth: dict = field(default_factory=dict)

    def __post_init__(self):
        shape = tuple(getattr(self.images, "shape", ()))
        if len(shape) != 3:
            raise ValueError(f"images must be a stack of captures (K, ny, nx), got shape {shape}; "
                             f"captures of different shapes cannot be stacked (crop them to one "
                             f"size first)")
        K = shape[0]
        if K < 1:
            raise ValueError("images must hold at least one capture")
        self.shifts = _as_host(self.shifts, "shifts", 2, "(K, 2) nominal (sy, sx) in metres")
        if self.shifts.shape != (K, 2):
            raise ValueError(f"shifts must be (K, 2) = ({K}, 2), one (sy, sx) pair in metres per "
                             f"capture, got shape {self.shifts.shape}")
        z = np.asarray(self.z, dtype=np.float64)
        self.z = np.full(K, float(z)) if z.ndim == 0 else _as_host(z, "z", 1, "(K,) in metres")
        if self.z.shape != (K,):
            raise ValueError(f"z must be one distance or one per capture ({K}), got shape "
                             f"{self.z.shape}")
        if not (np.all(np.isfinite(self.shifts)) and np.all(np.isfinite(self.z))):
            raise ValueError("shifts and z must be finite")
        if np.any(self.z <= 0):
            raise ValueError(f"z must be positive distances in metres, got {self.z.tolist()}")
        self.wavelength = V.wavelength(self.wavelength)
        self.pixel_size = V.positive_scalar(self.pixel_size, "pixel_size", typical=(1e-9, 1e-2))
        self.factor = V.factor(self.factor)
        self.n_medium = V.n_medium(self.n_medium)
        if np.any(np.abs(self.shifts) > 1e-2) or np.any(self.z > 1.0):
            raise ValueError("shifts and z look like they are not in metres (|shift| > 1 cm or "
                             "z > 1 m); give lengths in metres, e.g. 400e-6 for 400 um")

    @property
    def K(self) -> int:
        """Number of captures."""
        return int(self.images.shape[0])

    @property
    def sensor_shape(self) -> tuple[int, int]:
        """(ny, nx) sensor pixels of one capture."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def hr_pixel_size(self) -> float:
        """Pitch of the high-resolution field [m]."""
        return self.pixel_size / self.factor


@dataclass
class Reconstruction:
    """The result of :func:`diffimaging.lensless.reconstruct`.

    Attributes
    ----------
    field : array (NY, NX), complex
        High-resolution complex transmission of the sample (pitch
        ``pixel_size / factor``), same array library as the captures.
    shifts, z : np.ndarray (K, 2), (K,) [m]
        Learned (or, for parameters not learned, nominal) geometry.
    nominal_shifts, nominal_z : np.ndarray [m]
        The geometry given.
    history : dict
        Per-iteration ``"loss"`` and any other traces of the solver.
    settings : dict
        The settings used (JSON-serialisable), for the files written.
    """

    field: object
    shifts: np.ndarray
    z: np.ndarray
    nominal_shifts: np.ndarray
    nominal_z: np.ndarray
    history: dict
    settings: dict
