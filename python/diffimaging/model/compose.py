"""Compositions of stages: :class:`Model` (a chain), :class:`Sum` (a chain summed
over a batch axis) and :class:`Stack` (several captures of one object).

Parameter names
---------------
A composition names its children and calls a child's parameter ``k``
``"<child name>.<k>"``:

- :class:`Model` and :class:`Sum` name their stages by the stages' own names
  (``Stage.name``, by default the class name in lower case), made unique in
  order by suffixes: a second "propagate" becomes "propagate_1", a third
  "propagate_2" (a suffix already taken is skipped);
- :class:`Stack` names its members by position: "0", "1", ...

A composition nested in another is one child like any stage, so names nest:
``Model(Stack([Model(Shift(s0), Bin(2)), Model(Shift(s1), Bin(2))]))`` has
the parameters "stack.0.shift.shift" and "stack.1.shift.shift".  The names live
in the composition (``named_stages``); the stages themselves are never changed,
so one stage object may serve several models.
"""
from __future__ import annotations

from .. import _backend as B
from .._backend import validate as V
from .._backend.autodiff import as_cotangent
from .param import Param
from .stage import Adjoint, Stage

__all__ = ["Model", "Sum", "Stack"]


def _unique(names) -> list[str]:
    """The names made unique in order: repeats get the first free suffix _1, _2, ..."""
    taken: set[str] = set()
    out = []
    for base in names:
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        out.append(name)
    return out


def _axis(axis, ndim: int, what: str) -> int:
    """``axis`` normalised to 0 .. ndim - 1 (an IndexError-free ValueError otherwise)."""
    axis = V.integer(axis, "axis")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {what} of {ndim} dimensions")
    return axis % ndim


class Model(Stage):
    """A forward model: stages in the order light meets them.

    ``model(x)`` runs it with the parameters' current values;
    ``model(x, params={"propagate.z": 2e-3})`` overrides some;
    ``model.params`` maps dotted names ("stage.param") to the :class:`Param`
    objects; ``diffimaging.vjp(model, x)`` returns ``(y, pullback)`` with
    ``pullback(g) -> (gx, {name: cotangent})`` for every parameter, fixed or not.
    Stage names are made unique in the model (a second Propagate's parameter is
    "propagate_1.z"; see the module's notes on parameter names).

    A Model is itself a stage: it nests in another Model (its parameters then
    read "<its name>.<stage>.<param>"; ``name`` defaults to "model"), in
    :class:`Sum` and in :class:`Stack`.  ``model.oshape(ishape)`` chains the
    stages' shapes; a model of linear stages has an adjoint, ``model.H``.
    """

    _kind = "model"

    def __init__(self, *stages: Stage, name: str | None = None):
        super().__init__(name or type(self).__name__.lower())
        if not stages:
            raise ValueError(f"{type(self).__name__} needs at least one stage")
        for s in stages:
            if not isinstance(s, Stage):
                raise TypeError(f"{type(self).__name__} stages must be Stage objects, got "
                                f"{type(s).__name__}")
        self.stages = list(stages)
        self._names = self._child_names()

    def _child_names(self) -> list[str]:
        return _unique([s.name for s in self.stages])

    @property
    def named_stages(self) -> dict[str, Stage]:
        """The stages by their names in this model (in order)."""
        return dict(zip(self._names, self.stages))

    @property
    def params(self) -> dict[str, Param]:
        return {f"{n}.{k}": prm for n, s in zip(self._names, self.stages)
                for k, prm in s.params.items()}

    def _split(self, p) -> list[dict]:
        """Per child: its parameter values, from this model's dotted ``p``."""
        return [{k: p[f"{n}.{k}"] for k in s.params} for n, s in zip(self._names, self.stages)]

    def forward(self, x, params=None):
        """(y, tape): ``params`` maps parameter names to values (missing ones: current values)."""
        tape = []
        for s, p in zip(self.stages, self._split(self.param_values(params))):
            x, res = s.forward(x, p)
            tape.append(res)
        return x, tape

    def backward(self, tape, g):
        grads = {}
        for n, s, res in zip(reversed(self._names), reversed(self.stages), reversed(tape)):
            g, gp = s.backward(res, g)
            for k, v in gp.items():
                grads[f"{n}.{k}"] = v
        return g, grads

    def __call__(self, x, params=None):
        return self.forward(x, params)[0]

    def __diffimaging_vjp__(self, x, params=None):
        y, tape = self.forward(x, params)
        return y, lambda g: self.backward(tape, as_cotangent(g, y))

    # ------------------------------------------------------------ shapes, adjoint

    def _each(self, fn, shape, stages):
        for n, s in stages:
            try:
                shape = fn(s, shape)
            except ValueError as e:
                raise ValueError(f"in {type(self).__name__} {self.name!r}, stage {n!r}: {e}") from None
        return shape

    def oshape(self, ishape) -> tuple:
        return self._each(lambda s, sh: s.oshape(sh), tuple(int(n) for n in ishape),
                          zip(self._names, self.stages))

    def ishape(self, oshape) -> tuple:
        return self._each(lambda s, sh: s.ishape(sh), tuple(int(n) for n in oshape),
                          zip(reversed(self._names), reversed(self.stages)))

    @property
    def linear(self) -> bool:
        return all(s.linear for s in self.stages)

    @property
    def H(self) -> Adjoint:
        """The adjoint (a stage): for models of linear stages only."""
        bad = [f"{n!r} ({type(s).__name__})" for n, s in self.named_stages.items() if not s.linear]
        if bad:
            raise AttributeError(f"{type(self).__name__} {self.name!r} is nonlinear (stage(s) "
                                 f"{', '.join(bad)}): it has no adjoint (use diffimaging.vjp for "
                                 f"its vector-Jacobian product)")
        return Adjoint(self)

    def _repr_items(self) -> list[str]:
        return [f"{n}: {s!r}" if n != s.name else repr(s) for n, s in zip(self._names, self.stages)]

    def __repr__(self):
        body = ",\n".join(self._repr_items()).replace("\n", "\n  ")
        return f"{type(self).__name__}(\n  {body}\n)"


class Sum(Model):
    """The chain of ``stages`` (as in :class:`Model`), summed over ``axis`` of
    its output: y = sum_k (chain(x))_k.

    E.g. Fourier ptychography with K simultaneous illuminations: a chain whose
    output holds one intensity per illumination on axis 0, summed into one
    image.  The VJP broadcasts the cotangent over the summed axis and pulls it
    back through the chain.  Parameter names are the chain's ("pupil.zernike");
    nested in a Model they read "sum.pupil.zernike" (``name`` defaults to "sum").
    """

    def __init__(self, *stages: Stage, axis: int = 0, name: str | None = None):
        super().__init__(*stages, name=name)
        self.axis = V.integer(axis, "axis")

    def forward(self, x, params=None):
        y, tape = super().forward(x, params)
        ax = _axis(self.axis, y.ndim, f"the output of Sum {self.name!r}'s chain")
        xp = B.namespace(y)
        return xp.sum(y, axis=ax), (tape, tuple(y.shape), ax)

    def backward(self, res, g):
        tape, shape, ax = res
        xp = B.namespace(g)
        full = xp.zeros(shape, dtype=g.dtype, device=B.device_of(g)) + xp.expand_dims(g, axis=ax)
        return super().backward(tape, full)

    def oshape(self, ishape) -> tuple:
        inner = super().oshape(ishape)
        ax = _axis(self.axis, len(inner), f"the output of Sum {self.name!r}'s chain")
        return inner[:ax] + inner[ax + 1:]

    def ishape(self, oshape) -> tuple:
        raise ValueError(f"Sum {self.name!r}: the adjoint cannot infer the length of the summed axis "
                         f"from the output shape; use Adjoint(model, ishape=...)")

    def _repr_items(self) -> list[str]:
        return super()._repr_items() + [f"axis={self.axis}"]


class Stack(Model):
    """Several captures of the same object: ``members`` (stages or models, each
    with its own parameters) all applied to the input, their outputs stacked
    on ``axis``: y[k] = members[k](x).

    E.g. pixel super-resolution, each capture with its own shift and defocus:
    ``Stack([Model(Shift(Param(s0)), Propagate(Param(z0), ...), Intensity(), Bin(4)),
    Model(Shift(Param(s1)), ...)])``.  The outputs must have the same shape.
    The VJP sums the members' object cotangents.  Members are named by
    position: "0.shift.shift", "1.shift.shift" (nested in a Model:
    "stack.0.shift.shift"; ``name`` defaults to "stack").
    """

    def __init__(self, members, axis: int = 0, name: str | None = None):
        if not isinstance(members, (list, tuple)):
            raise TypeError(f"Stack needs a list of stages or models, got {type(members).__name__}")
        super().__init__(*members, name=name)
        self.axis = V.integer(axis, "axis")

    def _child_names(self) -> list[str]:
        return [str(k) for k in range(len(self.stages))]

    def forward(self, x, params=None):
        outs, tape = [], []
        for n, s, p in zip(self._names, self.stages, self._split(self.param_values(params))):
            y, res = s.forward(x, p)
            if outs and tuple(y.shape) != tuple(outs[0].shape):
                raise ValueError(f"Stack {self.name!r}: member {n} outputs shape {tuple(y.shape)}, "
                                 f"member 0 {tuple(outs[0].shape)}")
            outs.append(y)
            tape.append(res)
        ax = _axis(self.axis, outs[0].ndim + 1, f"the output of Stack {self.name!r}")
        return B.namespace(outs[0]).stack(outs, axis=ax), (tape, ax)

    def backward(self, res, g):
        tape, ax = res
        gx, grads = None, {}
        for k, (n, s, r) in enumerate(zip(self._names, self.stages, tape)):
            gk, gp = s.backward(r, g[(slice(None),) * ax + (k, ...)])
            gx = gk if gx is None else gx + gk
            for name, v in gp.items():
                grads[f"{n}.{name}"] = v
        return gx, grads

    def oshape(self, ishape) -> tuple:
        ishape = tuple(int(n) for n in ishape)
        shapes = self._member_shapes(lambda s: s.oshape(ishape))
        ax = _axis(self.axis, len(shapes[0]) + 1, f"the output of Stack {self.name!r}")
        return shapes[0][:ax] + (len(self.stages),) + shapes[0][ax:]

    def ishape(self, oshape) -> tuple:
        oshape = tuple(int(n) for n in oshape)
        ax = _axis(self.axis, len(oshape), f"the output of Stack {self.name!r}")
        if oshape[ax] != len(self.stages):
            raise ValueError(f"Stack {self.name!r} of {len(self.stages)} members outputs arrays with "
                             f"{len(self.stages)} entries on axis {self.axis}, got shape {oshape}")
        member = oshape[:ax] + oshape[ax + 1:]
        return self._member_shapes(lambda s: s.ishape(member))[0]

    def _member_shapes(self, fn) -> list[tuple]:
        shapes = []
        for n, s in zip(self._names, self.stages):
            try:
                shapes.append(fn(s))
            except ValueError as e:
                raise ValueError(f"in Stack {self.name!r}, member {n}: {e}") from None
        if any(sh != shapes[0] for sh in shapes):
            raise ValueError(f"Stack {self.name!r}: its members' shapes differ: {shapes}")
        return shapes

    def _repr_items(self) -> list[str]:
        return super()._repr_items() + [f"axis={self.axis}"]
