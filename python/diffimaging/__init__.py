"""diffimaging: differentiable imaging with explicit VJPs over any array-API backend.

Core operators (SI units: metres, radians):

- :func:`propagate` — free-space propagation (angular spectrum / Fresnel)
- :func:`bin` — exact area-integration pixel binning with sub-pixel shifts
- :func:`shift` — periodic sub-pixel translation
- :func:`intensity` — |u|^2
- :func:`vjp` — ``(out, pullback)`` from the hand-derived VJPs
"""
# (no ``from __future__ import annotations`` here: it would put the name
# ``annotations`` into the package's namespace; every import below that is not
# public is bound to an underscored name)
import sys as _sys
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError, version as _version

try:
    __version__ = _version("diffimaging")
except _PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0+src"

from ._backend.autodiff import register_vjp, vjp
from ._backend.capabilities import BackendFallbackWarning
from ._backend.config import show_config
from ._backend.threads import get_num_threads, num_threads, set_num_threads
from ._backend.validate import SamplingWarning
from .ops.binning import bin
from .ops.propagate import free_workspace, propagate, transfer_function
from .ops.shift import intensity, shift
from . import optim
from .optim import losses
from .optim import (TV, AmplitudeAtMost, Box, Constraint, Intersection, L1, L2, NonNegative,
                    Regularizer, SolveResult, SolverError, Support, solve)
from .model import (AbsorptionPhase, Adjoint, AmplitudePhase, Bin, Complex, Custom, Gain, Intensity,
                    Model, Param, Propagate, Pupil, Quantize, Saturate, Shift, Stack, Stage, Sum,
                    zernike_noll)

__all__ = [
    "propagate",
    "transfer_function",
    "free_workspace",
    "bin",
    "shift",
    "intensity",
    "vjp",
    "register_vjp",
    "show_config",
    "get_num_threads",
    "set_num_threads",
    "num_threads",
    "SamplingWarning",
    "BackendFallbackWarning",
    "__version__",
    # forward models
    "Param", "Model", "Stage", "Propagate", "Shift", "Bin", "Intensity", "Pupil", "Gain",
    "Quantize", "Saturate", "Complex", "AmplitudePhase", "AbsorptionPhase", "Custom",
    "zernike_noll", "Sum", "Stack", "Adjoint",
    # losses (diffimaging.losses), regularisers, constraints, solvers, all in
    # diffimaging.optim with the problem, algorithm and run layers
    "optim", "losses", "Regularizer", "TV", "L1", "L2", "Constraint", "NonNegative", "Box", "Support",
    "AmplitudeAtMost", "Intersection", "solve", "SolveResult", "SolverError",
]

# ``import diffimaging.losses`` / ``from diffimaging.losses import ...`` keep working:
# the name is the losses module of diffimaging.optim
_sys.modules[__name__ + ".losses"] = losses


def __getattr__(name):
    # the framework adapters (public modules diffimaging.torch and diffimaging.jax,
    # implemented in diffimaging.interop) are imported on first use, so that
    # importing diffimaging never imports torch or jax
    if name in ("torch", "jax"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'diffimaging' has no attribute {name!r}")
