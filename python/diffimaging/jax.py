"""JAX autodiff for diffimaging's operators and models, from their explicit VJPs.

``diffimaging.jax.function(fn)`` wraps a differentiable diffimaging function
(one with a registered VJP: :func:`~diffimaging.propagate`,
:func:`~diffimaging.bin`, :func:`~diffimaging.shift`,
:func:`~diffimaging.intensity`, or anything registered with
:func:`~diffimaging.register_vjp`) or a :class:`~diffimaging.Model` as a
``jax.custom_vjp`` function.  JAX arrays are converted to numpy at the
boundary, so the work is done by diffimaging's compiled CPU kernels; results
come back as JAX arrays.  Under ``jax.jit`` / ``jax.vmap`` the numpy
computation runs inside ``jax.pure_callback``.  The work always runs on the
host: arrays on an accelerator are copied to the host and back (explicitly,
by the wrapper).

Gradient convention: JAX's cotangent of a complex variable is the complex
conjugate of diffimaging's (and PyTorch's) dL/dRe(u) + i dL/dIm(u).  The
wrapper conjugates complex cotangents on the way in and on the way out, so
``jax.grad`` of a real loss through a wrapped function equals ``jax.grad``
of the same operator written in ``jax.numpy``.

Implemented in :mod:`diffimaging.interop.jax`.  Imported on demand:
``import diffimaging`` alone never imports JAX.
"""
import jax  # noqa: F401  (the JAX package, as diffimaging.jax.jax)

from .interop.jax import function

__all__ = ["function"]
