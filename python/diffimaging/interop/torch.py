"""The PyTorch part of the adapters: a ``torch.autograd.Function`` around an explicit VJP.

The forward runs diffimaging's array-API reference path on the tensors
themselves (same device, same precision); the backward calls the hand-derived
pullback of :func:`diffimaging.vjp`.  Nothing is traced by torch inside the
operator.  PyTorch's cotangent of a complex variable, dL/dRe(u) + i dL/dIm(u),
is diffimaging's, so cotangents pass through unchanged.  Argument handling,
models and messages are the shared :class:`~diffimaging.interop.core.Adapter`.
The public entry point is :func:`diffimaging.torch.function`.
"""
from __future__ import annotations

import torch  # absolute import: the PyTorch package, not this module
from torch.autograd.function import once_differentiable

from . import core

__all__ = ["function"]


class _Call:
    """What the autograd Function needs besides its tensor inputs."""

    __slots__ = ("fn", "arguments", "static")

    def __init__(self, fn, arguments: core.Arguments, static: dict):
        self.fn, self.arguments, self.static = fn, arguments, static


class _ExplicitVJP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, call: _Call, *tensors):
        primals = call.arguments.fill([t.detach() for t in tensors])
        out, pullback = core.vjp(call.fn, *primals, **call.static)
        if not isinstance(out, torch.Tensor):
            raise _ADAPTER.output_error(call.fn, out)
        ctx.call, ctx.pullback = call, pullback
        ctx.likes = [(tuple(t.shape), t.dtype, t.device) for t in tensors]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        need = ctx.needs_input_grad[1:]
        if not any(need):
            return (None,) * (1 + len(need))
        cts = ctx.pullback(g)
        grads = []
        for slot, needed, (shape, dtype, device) in zip(ctx.call.arguments.slots, need, ctx.likes):
            if not needed:
                grads.append(None)
                continue
            ct = cts[slot]
            if not isinstance(ct, torch.Tensor):
                ct = torch.as_tensor(ct, device=device)
            ct = core.reduce_cotangent(ct, shape, dtype.is_complex, f"argument {slot}")
            grads.append(ct.to(dtype=dtype, device=device))
        return (None, *grads)


class _TorchAdapter(core.Adapter):
    def __init__(self):
        super().__init__("torch", "torch", "torch tensor", convert="torch.as_tensor(...)",
                         backward_note="backward: its explicit VJP")

    def is_array(self, a) -> bool:
        return isinstance(a, torch.Tensor)

    def pack(self, fn, i, seq):
        # one tensor per entry would need one gradient per entry of a Python
        # sequence; a stacked tensor gets one of the argument's own shape
        if any(isinstance(b, torch.Tensor) and b.requires_grad for b in seq):
            raise TypeError(f"{self.prefix(fn)}: argument {i} is a {type(seq).__name__} holding "
                            f"tensors that require grad; stack them into one tensor "
                            f"(torch.stack) to differentiate them")
        return None

    def apply(self, fn, arguments, arrays, static):
        return _ExplicitVJP.apply(_Call(fn, arguments, static), *arrays)


_ADAPTER = _TorchAdapter()


def function(fn):
    return _ADAPTER.wrap(fn)


function.__doc__ = _ADAPTER.function_doc(
    returns="""\
Positional arguments are torch tensors (differentiable: each gets a
gradient of its own shape and dtype) or Python numbers and tuples of
numbers (constants, no gradient).  Keyword arguments are static and
passed to ``fn`` unchanged.  For a model, ``params`` maps parameter
names to values: tensors get gradients, other values are fixed.
Returns a torch tensor on the inputs' device; its backward is ``fn``'s
hand-derived pullback.  Double backward and the ``torch.func``
transforms are not supported.""",
    example="""\
>>> import torch, diffimaging as di, diffimaging.torch
>>> propagate = di.torch.function(di.propagate)
>>> intensity = di.torch.function(di.intensity)
>>> u = torch.ones(64, 64, dtype=torch.complex128, requires_grad=True)
>>> z = torch.tensor(1e-3, dtype=torch.float64, requires_grad=True)
>>> loss = intensity(propagate(u, z, wavelength=532e-9, pixel_size=2e-6)).sum()
>>> loss.backward()                   # u.grad, z.grad from the explicit VJPs""")
