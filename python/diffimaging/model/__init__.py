"""Differentiable forward models y = f(x, theta): parameters, stages and models.

A :class:`Model` chains :class:`Stage` objects in the order light meets them.
Every stage has an explicit VJP, so ``diffimaging.vjp(model, x)`` returns the
cotangent of the object *and* of every system parameter without any tracing::

    model = Model(AbsorptionPhase(),
                  Propagate(Param(3e-3, bounds=(1e-3, 5e-3)), wavelength=532e-9, pixel_size=2e-6),
                  Intensity())
    y = model(x)                                   # forward
    y, pullback = vjp(model, x)
    gx, gparams = pullback(g)                      # gparams["propagate.z"], ...

Parameters given as plain values are fixed (known); :class:`Param` objects are
learnable unless ``fixed=True``.  Units are SI (metres, radians).

Every stage reports its output shape (``stage.oshape(ishape)``); linear stages
and models of linear stages have an adjoint stage, ``.H`` (their VJP in x).
:class:`Sum` and :class:`Stack` compose models beyond a chain (a sum over
illuminations, several captures of one object); see
:mod:`diffimaging.model.compose` for how parameters are named.

Modules: :mod:`~.param` (Param), :mod:`~.stage` (Stage, Adjoint and the helpers
for writing stages), :mod:`~.optics` (Propagate, Shift, Pupil),
:mod:`~.zernike`, :mod:`~.sensor` (Bin, Intensity, Gain, Quantize, Saturate),
:mod:`~.objects` (Complex, AmplitudePhase, AbsorptionPhase), :mod:`~.custom`
(Custom), :mod:`~.compose` (Model, Sum, Stack).
"""
from __future__ import annotations

from .compose import Model, Stack, Sum
from .custom import Custom
from .objects import AbsorptionPhase, AmplitudePhase, Complex
from .optics import Propagate, Pupil, Shift
from .param import Param
from .sensor import Bin, Gain, Intensity, Quantize, Saturate
from .stage import Adjoint, Stage, cotangent_like, param_value
from .zernike import noll_to_nm, zernike_noll

__all__ = [
    "Param", "Model", "Stage", "Propagate", "Shift", "Bin", "Intensity", "Pupil", "Gain",
    "Quantize", "Saturate", "Complex", "AmplitudePhase", "AbsorptionPhase", "Custom",
    "zernike_noll", "noll_to_nm", "Sum", "Stack", "Adjoint", "param_value", "cotangent_like",
]
