"""PyTorch autograd for diffimaging's operators and models, from their explicit VJPs.

``diffimaging.torch.function(fn)`` wraps a differentiable diffimaging function
(one with a registered VJP: :func:`~diffimaging.propagate`,
:func:`~diffimaging.bin`, :func:`~diffimaging.shift`,
:func:`~diffimaging.intensity`, or anything registered with
:func:`~diffimaging.register_vjp`) or a :class:`~diffimaging.Model` in a
``torch.autograd.Function``.  The forward runs diffimaging's array-API
reference path on the tensors themselves (same device, same precision); the
backward calls the hand-derived pullback of :func:`diffimaging.vjp`.  Nothing
is traced by torch inside the operator.

Gradient convention: diffimaging's cotangent of a complex variable,
dL/dRe(u) + i dL/dIm(u), is PyTorch's own, so cotangents pass through unchanged.

Implemented in :mod:`diffimaging.interop.torch`.  Imported on demand:
``import diffimaging`` alone never imports torch.
"""
import torch  # noqa: F401  (the PyTorch package, as diffimaging.torch.torch)

from .interop.torch import function

__all__ = ["function"]
