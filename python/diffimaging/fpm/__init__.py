"""Fourier ptychographic microscopy (FPM): the LED-array geometry and the
differentiable forward model.

- :mod:`.geometry`: LED positions and illumination frequencies of a planar LED
  array (pitch, height, offset, rotation), with their explicit VJP.
- :mod:`.model`: the stages :class:`Illumination` and :class:`PupilFilter` and
  :func:`model`, the FPM forward model as a :class:`~diffimaging.Model`.

Example
-------
>>> import numpy as np
>>> from diffimaging import fpm
>>> m = fpm.model(3, 3, pitch=4e-3, height=80e-3, wavelength=520e-9, na=0.1,
...               pixel_size=6.5e-6, magnification=4, upsampling=4)
>>> m(np.ones((32, 32), complex)).shape
(9, 8, 8)
"""
from __future__ import annotations

from . import losses, metrics
from .data import Dataset, Reconstruction, Setup
from .geometry import led_positions, nominal_grid, wavevectors, wavevectors_vjp
from .model import (LEARNABLE, Illumination, PupilFilter, SpectralIllumination, SpectralPupil,
                    check_learn, model)
from .reconstruct import calibrate_geometry, disc_centre, initial_object, reconstruct
from .simulate import sample_object, simulate, standard_setup

__all__ = ["led_positions", "nominal_grid", "wavevectors", "wavevectors_vjp", "Illumination",
           "PupilFilter", "SpectralIllumination", "SpectralPupil", "model", "check_learn",
           "LEARNABLE", "Setup", "Dataset", "Reconstruction", "simulate", "standard_setup",
           "sample_object", "reconstruct", "calibrate_geometry", "disc_centre", "initial_object",
           "losses", "metrics"]
