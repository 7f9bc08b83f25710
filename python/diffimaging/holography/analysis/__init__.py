"""Analysis of reconstructed volumes: particle extraction (:mod:`.particles`), one-to-one
matching (:mod:`.matching`), 3-D PIV (:mod:`.piv`), PTV (:mod:`.ptv`) and particle motion
for simulated sequences (:mod:`.motion`).  Positions are (y, x, z) in metres."""
from . import motion
from .matching import MatchResult, as_positions, match
from .particles import FoundParticles, find_particles
from .piv import PIVResult, normalized_median_test, piv, plane_spacing
from .ptv import Links, link, predictor_from_links, predictor_from_piv

__all__ = ["motion", "match", "MatchResult", "as_positions", "find_particles", "FoundParticles",
           "piv", "PIVResult", "normalized_median_test", "plane_spacing", "link",
           "Links", "predictor_from_piv", "predictor_from_links"]
