"""Autodiff framework adapters: diffimaging's explicit VJPs inside PyTorch and JAX.

- :mod:`diffimaging.interop.core` — everything framework-independent (which
  callables are differentiable, argument classification, models bound to
  their parameters, cotangent reduction, messages); imports no framework.
- :mod:`diffimaging.interop.torch` — ``torch.autograd.Function``
  (public name: :func:`diffimaging.torch.function`).
- :mod:`diffimaging.interop.jax` — ``jax.custom_vjp`` + ``jax.pure_callback``
  (public name: :func:`diffimaging.jax.function`).

Importing this package imports neither torch nor JAX; each framework module
does, when imported.
"""
