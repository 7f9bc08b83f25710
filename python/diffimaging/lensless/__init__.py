"""Differentiable pixel-super-resolution lensless imaging.

K low-resolution in-line holograms recorded with the sensor moved by sub-pixel
steps and to several heights are combined into one high-resolution complex
field, while the true steps and heights are learned with it.
"""
from __future__ import annotations

from .captures import Captures, Reconstruction

__all__ = ["Captures", "Reconstruction"]
