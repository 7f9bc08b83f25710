"""The :class:`Stage` base class, its adjoint :class:`Adjoint`, and the helpers
stage authors use to read parameter values and return parameter cotangents."""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod

import numpy as np

from .. import _backend as B
from .._backend.autodiff import as_cotangent
from .param import Param

__all__ = ["Stage", "Adjoint", "param_value", "cotangent_like"]


def param_value(p, key, like):
    """The value ``p[key]`` of a stage's parameter, ready to combine with ``like``.

    A real Python number comes back as a ``float``; an array of ``like``'s
    library as it is; any other array (numpy values of a Param applied to torch
    data, say) as a float64 array of ``like``'s library on ``like``'s device.
    Stage authors call it in ``forward`` for each parameter they use.
    """
    v = p[key]
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    xp = B.namespace(like)
    try:
        B.namespace(v, like)
        return v
    except TypeError:
        host = B.to_host_float64(v, key)
        return xp.asarray(host, device=B.device_of(like))


def cotangent_like(ct, value):
    """A parameter cotangent ``ct`` in the form of the parameter's ``value``:
    a ``float`` for a Python-number value (when ``ct`` is 0-d), else ``ct``."""
    if isinstance(value, numbers.Real):
        return float(ct) if not hasattr(ct, "shape") or tuple(ct.shape) == () else ct
    return ct


class Stage(ABC):
    """Base class of a differentiable stage.

    Subclasses declare their parameters with ``self._declare(name, value)`` and
    implement ``forward(x, p) -> (y, residuals)`` and
    ``backward(residuals, g) -> (gx, {name: cotangent})``, where ``p`` maps the
    stage's parameter names to their current values (arrays of the data's
    library or Python floats; read them with :func:`param_value`).

    Shapes: ``oshape(ishape)`` gives the output shape for an input shape (a
    ``ValueError`` naming the stage when the input does not fit).

    Linear stages (``linear`` is True) have an adjoint, ``stage.H``: a stage
    applying A^H at the parameters' current values (see :class:`Adjoint`);
    ``stage.H.H`` is ``stage``.  Their VJP in x is that adjoint (CONVENTIONS.md).
    Stages that change the shape of their input also implement
    ``ishape(oshape)``, the input shape the adjoint maps back to.

    ``name`` (default: the class name in lower case) names the stage's
    parameters in a :class:`~diffimaging.Model` ("propagate.z"); it must not
    contain a dot.  A Model never changes it.
    """

    #: whether the stage is linear in its input (subclasses override)
    linear = False
    _kind = "stage"

    def __init__(self, name: str | None = None):
        name = name or type(self).__name__.lower()
        if not isinstance(name, str) or "." in name:
            raise ValueError(f"a stage name must be a string without dots, got {name!r}")
        self.name = name
        self._params: dict[str, Param] = {}

    @property
    def params(self) -> dict[str, Param]:
        """The stage's parameters by name."""
        return self._params

    def _declare(self, name, value):
        """Declare parameter ``name``: a :class:`Param`, or a plain value (fixed)."""
        if value is None:
            return
        self._params[name] = value if isinstance(value, Param) else Param(value, fixed=True)

    def param_shape(self, key) -> tuple:
        """Shape of parameter ``key``'s current value (``()`` for a scalar)."""
        return self.params[key].shape

    @abstractmethod
    def forward(self, x, p):
        """(y, residuals) for input x and parameter values p."""

    @abstractmethod
    def backward(self, res, g):
        """(cotangent of x, {parameter name: cotangent}) for the output cotangent g."""

    def param_values(self, overrides=None) -> dict:
        """Every parameter's value: the Params' current values, with ``overrides``
        ({name: value}) taking precedence; unknown names raise a KeyError."""
        overrides = dict(overrides or {})
        params = self.params
        unknown = set(overrides) - set(params)
        if unknown:
            raise KeyError(f"unknown parameter(s) {sorted(unknown)}; this {self._kind} has "
                           f"{sorted(params)}")
        return {k: overrides.get(k, prm.value) for k, prm in params.items()}

    def __call__(self, x, **values):
        return self.forward(x, self.param_values(values))[0]

    def __diffimaging_vjp__(self, x, params=None):
        """``diffimaging.vjp(stage, x, params)``: ``(y, pullback)`` with
        ``pullback(g) -> (gx, {parameter name: cotangent})``."""
        y, res = self.forward(x, self.param_values(params))
        return y, lambda g: self.backward(res, as_cotangent(g, y))

    # ------------------------------------------------------------------ shapes

    def oshape(self, ishape) -> tuple:
        """Output shape for an input of shape ``ishape``."""
        raise NotImplementedError(f"{type(self).__name__} does not declare its output shape "
                                  f"(override Stage.oshape)")

    def ishape(self, oshape) -> tuple:
        """Input shape of the adjoint's result for an output of shape ``oshape``.
        Shape-preserving stages need not override it; when several input shapes
        give ``oshape`` (broadcast batch axes), the widest one (keeping every
        batch axis of the output) is the stage's choice."""
        return tuple(int(n) for n in oshape)

    def _image_shape(self, ishape) -> tuple:
        """``ishape`` as a tuple of ints, checked to be ``(..., ny, nx)``."""
        ishape = tuple(int(n) for n in ishape)
        if len(ishape) < 2:
            raise ValueError(f"{type(self).__name__} stage {self.name!r} expects an input of shape "
                             f"(..., ny, nx), got {ishape}")
        return ishape

    def _broadcast(self, **shapes) -> tuple:
        """The broadcast of the named shapes, or a ValueError naming the stage and them."""
        try:
            return tuple(int(n) for n in np.broadcast_shapes(*shapes.values()))
        except ValueError:
            parts = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
            raise ValueError(f"{type(self).__name__} stage {self.name!r}: shapes do not broadcast "
                             f"({parts})") from None

    def _shift_batch(self, ishape, key="shift") -> tuple:
        """Batch shape of the output of a stage whose ``(..., 2)`` shift parameter
        ``key`` broadcasts with the batch axes of an input of shape ``ishape``."""
        sb = self.param_shape(key)
        if len(sb) < 1 or sb[-1] != 2:
            raise ValueError(f"{type(self).__name__} stage {self.name!r}: {key} must have shape "
                             f"(..., 2) ordered (sy, sx), got {sb}")
        return self._broadcast(input_batch=ishape[:-2], shift_batch=sb[:-1])

    # ----------------------------------------------------------------- adjoint

    @property
    def H(self) -> "Adjoint":
        """The adjoint stage (linear stages only)."""
        if not self.linear:
            raise AttributeError(f"{type(self).__name__} stage {self.name!r} is nonlinear: it has "
                                 f"no adjoint (use diffimaging.vjp for its vector-Jacobian product)")
        return Adjoint(self)

    def __repr__(self):
        ps = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({ps})"


class Adjoint(Stage):
    """The adjoint A^H of a linear stage or model A, itself a (linear) stage.

    ``Adjoint(op)(y)`` maps an output-space array ``y`` to A^H y, an array of
    ``op.ishape(y.shape)`` (or of ``ishape`` when given: needed where several
    input shapes give the same output shape, e.g. a K-distance Propagate in
    mode "auto" after a single image) with ``y``'s dtype.  It shares ``op``'s
    parameters (same names, same :class:`Param` objects) and uses their current
    values, or those of ``adjoint(y, params={name: value})``; ``Adjoint(op).H``
    is ``op``.  ``op.H`` is ``Adjoint(op)``.

    A^H y is computed as the VJP of ``op`` in x (for a linear map the two are
    the same): a forward pass on zeros, then the backward pass; a stage with a
    cheaper closed form may override :meth:`forward`.  Its own VJP is exact
    for the parameters too: d Re<w, A(theta)^H y> / d theta is the parameter
    cotangent of A's VJP at input w with output cotangent y.
    """

    linear = True

    def __init__(self, op: Stage, ishape=None, name=None):
        if not isinstance(op, Stage):
            raise TypeError(f"Adjoint needs a Stage or a Model, got {type(op).__name__}")
        if not op.linear:
            raise ValueError(f"{type(op).__name__} stage {op.name!r} is nonlinear: it has no adjoint "
                             f"(use diffimaging.vjp for its vector-Jacobian product)")
        super().__init__(name or f"{op.name}_adjoint")
        self.op = op
        self._ishape = None if ishape is None else tuple(int(n) for n in ishape)

    @property
    def params(self) -> dict[str, Param]:
        return self.op.params

    @property
    def H(self) -> Stage:
        return self.op

    def _op_input(self, oshape) -> tuple:
        return self._ishape if self._ishape is not None else self.op.ishape(oshape)

    def forward(self, y, p):
        xp = B.namespace(y)
        x0 = xp.zeros(self._op_input(tuple(y.shape)), dtype=y.dtype, device=B.device_of(y))
        y0, res = self.op.forward(x0, p)
        if tuple(y0.shape) != tuple(y.shape):
            raise ValueError(f"the adjoint of {type(self.op).__name__} stage {self.op.name!r} got an "
                             f"array of shape {tuple(y.shape)}; the stage's output for an input of "
                             f"shape {tuple(x0.shape)} has shape {tuple(y0.shape)}")
        gx, _ = self.op.backward(res, y)
        return gx, (y, p)

    def backward(self, res, w):
        y, p = res
        aw, r = self.op.forward(w, p)
        _, gp = self.op.backward(r, y)
        return aw, gp

    def param_values(self, overrides=None) -> dict:
        return self.op.param_values(overrides)

    def __call__(self, y, params=None):
        return self.forward(y, self.param_values(params))[0]

    def oshape(self, ishape) -> tuple:
        ishape = tuple(int(n) for n in ishape)
        out = self._op_input(ishape)
        if self.op.oshape(out) != ishape:
            raise ValueError(f"the adjoint of {type(self.op).__name__} stage {self.op.name!r} cannot "
                             f"take an input of shape {ishape}")
        return out

    def ishape(self, oshape) -> tuple:
        return self.op.oshape(oshape)

    def __repr__(self):
        return f"Adjoint({self.op!r})"
