"""Differentiable holography (∂H) and volumetric particle imaging.

:func:`reconstruct` is the entry point (∂H with the distance offset and the
illumination learned, or back-propagation); also hologram simulation (:func:`simulate_particles`), preprocessing (:func:`preprocess`, :func:`estimate_background`,
:func:`divide_background`, :func:`crop_fast`), streamed back-propagation to a depth
stack or its projections (:func:`backpropagate`) and one-to-one particle matching
(:func:`match`), 3-D PIV (:func:`piv`, window deformation) and PTV (:func:`link`
with :func:`predictor_from_piv` / :func:`predictor_from_links`), and particle
motion for simulated sequences (:mod:`.motion`, :func:`simulate_sequence`); time
series of thousands of frames on Dask, resumable (:func:`process_series`).
On numpy, ∂H of absorbing particles runs on a fused real-object engine
(``reconstruct(engine="auto")``).  Positions are (y, x, z) in metres: pixel (i, j) of the hologram sits
at (i dy, j dx); z is the distance to the sensor.
"""
from .backprop import backpropagate
from .analysis import (FoundParticles, Links, MatchResult, PIVResult, find_particles, link, match,
                       motion, normalized_median_test, piv, predictor_from_links,
                       predictor_from_piv)
from .analysis.motion import simulate_sequence
from .io import (check_optics, open_volume, read_hologram, read_projections, read_table, read_volume,
                 write_particles_csv, write_particles_vtk, write_piv_vtk, write_projections,
                 write_tracks_vtk, write_vectors_csv, write_volume, write_vtk_points)
from .preprocess import crop_fast, divide_background, estimate_background, preprocess
from .simulate import ParticleTable, random_particles, simulate_particles
from .volume import Volume
from .multislice import MultiSlice
from .reconstruct import Reconstruction, reconstruct
from .autofocus import FocusResult, autofocus, focus_curve
from .series import SeriesResult, SeriesSettings, process_series
from .mie import mie_amplitudes, mie_coefficients, mie_efficiencies, mie_field, mie_hologram
from . import realistic  # realistic particle-field recordings (RealisticField, simulate_field, ...)

__all__ = ["backpropagate", "open_volume", "realistic", "match", "MatchResult", "preprocess", "estimate_background",
           "divide_background", "crop_fast", "simulate_particles", "random_particles",
           "ParticleTable", "find_particles", "FoundParticles", "Volume", "MultiSlice",
           "reconstruct", "Reconstruction", "autofocus", "FocusResult", "focus_curve", "piv",
           "PIVResult", "normalized_median_test", "link", "Links", "predictor_from_piv",
           "predictor_from_links", "motion", "simulate_sequence",
           "check_optics", "read_hologram", "read_volume", "write_volume", "write_projections",
           "read_projections", "write_particles_csv",
           "write_vectors_csv", "write_vtk_points", "read_table", "write_particles_vtk",
           "write_tracks_vtk", "write_piv_vtk", "mie_hologram", "mie_field", "mie_amplitudes",
           "mie_efficiencies", "mie_coefficients", "process_series", "SeriesSettings",
           "SeriesResult"]
