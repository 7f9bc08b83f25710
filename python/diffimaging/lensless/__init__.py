"""Differentiable pixel-super-resolution lensless imaging.

K low-resolution in-line holograms recorded with the sensor moved by sub-pixel
steps and to several heights are combined into one high-resolution complex
field, while the true steps and heights are learned with it.

- :func:`simulate` — captures with known truth (:mod:`.simulate`);
- :func:`reconstruct` — the field and the geometry, learned (:mod:`.reconstruct`);
- :func:`classical` — interpolation super-resolution and multi-height
  Gerchberg-Saxton with the nominal geometry, the baseline (:mod:`.classical`);
- :func:`model` — the forward model as a :class:`~diffimaging.Model`
  (:mod:`.model`);
- :class:`SensorPreconditioner` — the solver's Fourier preconditioner for the
  detail the sensor pixels attenuate (:mod:`.precondition`);
- :mod:`.metrics` — PSNR, shift and height errors, resolution gain.
"""
from __future__ import annotations

from . import metrics
from .captures import Captures, Reconstruction
from .classical import classical, upsample
from .model import Heights, SensorGrid, default_pad, field_shape, model
from .precondition import SensorPreconditioner
from .reconstruct import initial_field, reconstruct
from .simulate import bar_target, simulate

__all__ = ["Captures", "Reconstruction", "simulate", "reconstruct", "classical", "model",
           "Heights", "SensorGrid", "field_shape", "default_pad", "upsample", "initial_field",
           "bar_target", "metrics", "SensorPreconditioner"]
