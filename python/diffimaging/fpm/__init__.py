"""Uncertainty-aware Fourier ptychographic microscopy (FPM): the object
recovered together with the pupil aberrations, the LED-array geometry, the
LED brightnesses and the per-image noise levels.

- :mod:`.data` — :class:`Setup` (optics and nominal LED grid), :class:`Dataset`
  (one image per LED), :class:`Reconstruction`;
- :mod:`.geometry` — LED positions and illumination frequencies of a planar LED
  array (pitch, height, offset, rotation), with their explicit VJP;
- :mod:`.model` — the stages (:class:`Illumination` + :class:`PupilFilter`, and
  the fused :class:`SpectralIllumination` + :class:`SpectralPupil`) and
  :func:`model`, the forward model as a :class:`~diffimaging.Model`;
- :mod:`.imaging` — :class:`Imaging`: a field of view cut from an unbounded
  sample (the object's mean as an exact plane wave), what the reconstruction
  and the simulator use;
- :func:`simulate` — data with known truth (:mod:`.simulate`);
- :func:`reconstruct` — the joint recovery (:mod:`.reconstruct`);
- :func:`epry` — the classical baseline (:mod:`.classical`);
- :mod:`.losses` (fidelities, frame weights), :mod:`.metrics` (scores),
  :mod:`.io` (PtyLab HDF5, TIFF folders with a TOML setup, outputs).

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

from . import io, losses, metrics
from .data import Dataset, Reconstruction, Setup
from .geometry import led_positions, nominal_grid, wavevectors, wavevectors_vjp
from .model import (LEARNABLE, Illumination, PupilFilter, SpectralIllumination, SpectralPupil,
                    check_learn, model)
from .classical import epry, nominal_pixel_shifts
from .imaging import Imaging
from .reconstruct import calibrate_geometry, disc_centre, initial_object, reconstruct
from .simulate import sample_object, simulate, standard_setup

__all__ = ["led_positions", "nominal_grid", "wavevectors", "wavevectors_vjp", "Illumination",
           "PupilFilter", "SpectralIllumination", "SpectralPupil", "model", "check_learn",
           "LEARNABLE", "Setup", "Dataset", "Reconstruction", "simulate", "standard_setup",
           "sample_object", "reconstruct", "calibrate_geometry", "disc_centre", "initial_object",
           "io", "losses", "metrics", "epry", "nominal_pixel_shifts", "Imaging"]
