"""The framework-independent part of diffimaging's autodiff adapters.

An adapter turns a differentiable diffimaging function (one with a registered
explicit VJP, see :func:`diffimaging.register_vjp`) or a
:class:`diffimaging.Model` into a function of some framework's arrays whose
backward is the hand-derived pullback.  Everything that does not depend on the
framework lives here, once:

- which callables are differentiable (:func:`has_vjp`, :func:`is_model`) and
  what they are called in messages (:func:`name_of`);
- a model with some of its parameters as positional arguments
  (:class:`BoundModel`), whose pullback gives one cotangent per positional
  argument: the adapters then treat models and functions alike;
- which positional arguments are differentiable arrays and which are constants
  (:meth:`Adapter.classify`, giving the layout :class:`Arguments` and the arrays);
- reducing a cotangent to its input's kind and checking its shape
  (:func:`reduce_cotangent`);
- the checks and error messages of :meth:`Adapter.wrap`, the body of
  ``diffimaging.torch.function`` and ``diffimaging.jax.function``.

A framework adapter subclasses :class:`Adapter` and supplies what needs the
framework: which objects are its arrays, what a sequence holding arrays means,
and :meth:`Adapter.apply` (``torch.autograd.Function``, ``jax.custom_vjp``);
converting cotangents to its dtypes, devices and complex convention is its
part too.  Nothing here imports torch or JAX.
"""
from __future__ import annotations

import functools
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import array_api_compat as aac

from .._backend import autodiff

__all__ = [
    "Adapter",
    "Arguments",
    "BoundModel",
    "has_vjp",
    "is_model",
    "name_of",
    "reduce_cotangent",
    "vjp",
]


def name_of(fn) -> str:
    """The name of ``fn`` in messages: its ``__name__``, else its type's name."""
    return getattr(fn, "__name__", None) or type(fn).__name__


def is_model(fn) -> bool:
    """True for a forward model: an object with its own VJP
    (``__diffimaging_vjp__(x, params)``, pullback ``g -> (gx, {name: cotangent})``)
    and a ``params`` mapping of parameter names, e.g. :class:`diffimaging.Model`."""
    return (getattr(fn, "__diffimaging_vjp__", None) is not None
            and isinstance(getattr(fn, "params", None), Mapping))


def has_vjp(fn) -> bool:
    """True if :func:`diffimaging.vjp` can differentiate ``fn``: a registered
    explicit VJP, or an object with its own ``__diffimaging_vjp__``."""
    if getattr(fn, "__diffimaging_vjp__", None) is not None:
        return True
    return autodiff.has_rule(fn)


def vjp(fn, *primals, **static):
    """:func:`diffimaging.vjp`: ``(out, pullback)`` from ``fn``'s explicit VJP."""
    return autodiff.vjp(fn, *primals, **static)


def reduce_cotangent(ct, shape, complex_input: bool, what: str):
    """The cotangent ``ct`` of an input of shape ``shape``, reduced to the input's kind.

    A real input gets the real part of a complex cotangent (diffimaging's
    convention: dL/dRe(u) + i dL/dIm(u), whose real part is dL/du for a real
    u).  ``ct`` is an array of any array-API library; its dtype and device are
    the adapter's to set.

    Raises
    ------
    RuntimeError
        If the shape differs from ``shape`` (a pullback that breaks the
        convention "each cotangent has its primal's shape"); ``what`` names the
        input in the message.
    """
    if not complex_input and aac.array_namespace(ct).isdtype(ct.dtype, "complex floating"):
        ct = ct.real
    if tuple(ct.shape) != tuple(shape):
        raise RuntimeError(f"internal error: cotangent of {what} has shape {tuple(ct.shape)}, "
                           f"expected {tuple(shape)}")
    return ct


class BoundModel:
    """A model as a plain differentiable function of ``(x, *values)``.

    ``BoundModel(model, names)(x, *values, fixed=None)`` evaluates
    ``model(x, params)`` with the parameters ``names`` set to ``values`` and
    those in the mapping ``fixed`` set to its values; the others keep their
    current values.  Its VJP gives one cotangent per positional argument,
    ``(gx, *[cotangent of name for name in names])``, so an adapter
    differentiates it like any registered function.  Two bound models are
    equal when they bind the same model object to the same names (the JAX
    adapter caches output shapes per function).
    """

    __slots__ = ("model", "names", "__name__")

    def __init__(self, model, names: Sequence[str]):
        self.model = model
        self.names = tuple(names)
        self.__name__ = f"{name_of(model)}[{', '.join(self.names)}]"

    def _params(self, values, fixed) -> dict:
        if len(values) != len(self.names):
            raise TypeError(f"{self.__name__} takes {len(self.names)} parameter value(s) after "
                            f"x, got {len(values)}")
        return {**(fixed or {}), **dict(zip(self.names, values))}

    def __call__(self, x, *values, fixed=None):
        return self.model(x, self._params(values, fixed))

    def __diffimaging_vjp__(self, x, *values, fixed=None):
        y, pullback = vjp(self.model, x, self._params(values, fixed))
        names = self.names

        def pullback_positional(g):
            gx, named = pullback(g)
            return (gx, *[named[k] for k in names])

        return y, pullback_positional

    def __eq__(self, other):
        return (isinstance(other, BoundModel) and other.model is self.model
                and other.names == self.names)

    def __hash__(self):
        return hash((id(self.model), self.names))

    def __repr__(self):
        return f"BoundModel({self.model!r}, {self.names!r})"


class Arguments(NamedTuple):
    """The layout of positional arguments: constants and differentiable slots.

    ``template`` holds the constants, with ``None`` at the ``slots`` of the
    dynamic (differentiable) arguments.  The arrays themselves are kept apart
    (:meth:`Adapter.classify` returns them alongside), so that a layout holds
    no framework array and can be captured by a backward or used as a cache key.
    """

    template: tuple
    slots: tuple

    def fill(self, values: Sequence) -> list:
        """The positional arguments with ``values`` (one per slot) at the slots."""
        args = list(self.template)
        for i, v in zip(self.slots, values):
            args[i] = v
        return args


class Adapter(ABC):
    """What every framework adapter does, given a few framework-specific hooks.

    Subclasses name their framework for messages and docstrings (the
    constructor's arguments) and implement :meth:`is_array`, :meth:`pack` and
    :meth:`apply`; :meth:`wrap` is the body of their public ``function(fn)``.

    Parameters
    ----------
    framework : str
        Module name, e.g. ``"torch"``: messages name ``diffimaging.torch.function``.
    title : str
        The framework as named in docstrings, e.g. ``"torch"``, ``"JAX"``.
    array_noun : str
        One differentiable argument, e.g. ``"torch tensor"``.
    convert : str
        How to convert another array, e.g. ``"torch.as_tensor(...)"``.
    backward_note : str
        The backward in a few words, for the wrappers' docstrings.
    """

    def __init__(self, framework: str, title: str, array_noun: str, convert: str,
                 backward_note: str):
        self.framework, self.title, self.array_noun = framework, title, array_noun
        self.convert, self.backward_note = convert, backward_note

    # ------------------------------------------------------------ hooks

    @abstractmethod
    def is_array(self, a) -> bool:
        """True if ``a`` is a differentiable positional argument of this framework."""

    def as_array(self, a):
        """``a`` (for which :meth:`is_array` holds) as the framework's array."""
        return a

    @abstractmethod
    def pack(self, fn, i: int, seq):
        """A tuple or list ``seq`` holding arrays (and numbers), given as argument
        ``i``: the one array it stands for (then differentiable), or ``None`` to
        pass it to ``fn`` as a constant tuple.  May raise ``TypeError``."""

    def param_is_input(self, value) -> bool:
        """True if a model parameter's ``value`` becomes a positional argument
        of the bound model (it may get a gradient); False keeps it fixed."""
        return self.is_array(value)

    @abstractmethod
    def apply(self, fn, arguments: Arguments, arrays: tuple, static: dict):
        """``fn(*arguments.fill(arrays), **static)`` as a differentiable
        operation of the framework whose backward is ``fn``'s explicit VJP."""

    # -------------------------------------------------- messages and docs

    def function_doc(self, returns: str, example: str, notes: str = "") -> str:
        """The docstring of the public ``function(fn)``: the parts every adapter
        shares, with this framework's ``returns`` (the body of the Returns
        entry), ``notes`` (a Notes section, may be empty) and ``example``
        (doctest lines), each given without indentation."""
        sections = [
            f"Wrap a diffimaging function or model with an explicit VJP as a differentiable "
            f"{self.title} function.",
            "Parameters\n----------\n"
            "fn : callable with a registered VJP, or a :class:`diffimaging.Model`\n"
            "    :func:`diffimaging.propagate`, :func:`diffimaging.bin`,\n"
            "    :func:`diffimaging.shift`, :func:`diffimaging.intensity`, a function\n"
            "    registered with :func:`diffimaging.register_vjp`, or a model.",
            "Returns\n-------\ncallable ``f(*args, **static)`` (a model: ``f(x, params=None)``)\n"
            + _indent(returns),
            notes and "Notes\n-----\n" + notes,
            "Raises\n------\n"
            "TypeError\n"
            f"    If ``fn`` has no registered VJP, or (on call) if a positional argument\n"
            f"    is of another kind than {self.array_noun}s and Python numbers.\n"
            "KeyError\n"
            "    On call of a model, if ``params`` names a parameter it does not have.",
            "Example\n-------\n" + example,
        ]
        return "\n\n".join(part.strip("\n") for part in sections if part) + "\n"

    def prefix(self, fn) -> str:
        """``"diffimaging.<framework>.function(<name>)"``, the start of call-time errors."""
        return f"diffimaging.{self.framework}.function({name_of(fn)})"

    def output_error(self, fn, out) -> TypeError:
        """The error for a forward that did not return one array."""
        return TypeError(f"{self.prefix(fn)} needs a function that returns one "
                         f"{self.array_noun}, got {type(out).__name__}")

    # ----------------------------------------------------- classification

    def classify(self, fn, args: Sequence) -> tuple[Arguments, tuple]:
        """Split the positional ``args`` of ``fn`` into constants and arrays:
        ``(layout, arrays)``, one array (:meth:`as_array`) per slot of the layout.

        Arrays (:meth:`is_array`) are differentiable; ``None``, Python numbers,
        strings and tuples or lists of numbers are constants (passed as tuples);
        a tuple or list holding arrays is what :meth:`pack` makes of it.

        Raises
        ------
        TypeError
            Naming the argument's position and type, for any other object.
        """
        template, slots, arrays = [], [], []
        for i, a in enumerate(args):
            if self.is_array(a):
                template.append(None)
                slots.append(i)
                arrays.append(self.as_array(a))
            elif a is None or isinstance(a, (numbers.Number, str)):
                template.append(a)
            elif isinstance(a, (tuple, list)):
                for b in a:
                    if not (self.is_array(b) or isinstance(b, numbers.Number)):
                        raise TypeError(f"{self.prefix(fn)}: argument {i} holds a "
                                        f"{_type_name(b)}; pass {self.array_noun}s or Python "
                                        f"numbers")
                packed = self.pack(fn, i, a) if any(map(self.is_array, a)) else None
                if packed is None:
                    template.append(tuple(a))
                else:
                    template.append(None)
                    slots.append(i)
                    arrays.append(packed)
            else:
                raise TypeError(f"{self.prefix(fn)}: argument {i} is a {_type_name(a)}; "
                                f"positional arguments must be {self.array_noun}s or Python "
                                f"numbers (constants, no gradient) - convert with "
                                f"{self.convert} first, or call diffimaging.{name_of(fn)} "
                                f"directly on other arrays")
        return Arguments(tuple(template), tuple(slots)), tuple(arrays)

    def bind(self, model, params) -> tuple[BoundModel, list, dict]:
        """``(bound model, values, static)`` for ``model(x, params)``: the values
        for which :meth:`param_is_input` holds become positional (sorted by
        name), the others ``static["fixed"]``.

        Raises
        ------
        KeyError
            If ``params`` names a parameter the model does not have.
        """
        params = dict(params or {})
        unknown = set(params) - set(model.params)
        if unknown:
            raise KeyError(f"unknown parameter(s) {sorted(unknown)}; the model has "
                           f"{sorted(model.params)}")
        names = sorted(k for k, v in params.items() if self.param_is_input(v))
        fixed = {k: v for k, v in params.items() if k not in names}
        static = {"fixed": fixed} if fixed else {}
        return BoundModel(model, names), [params[k] for k in names], static

    # ------------------------------------------------------------- wrapping

    def call(self, fn, args: Sequence, static: dict):
        """``fn(*args, **static)`` differentiably: checks, :meth:`classify`, :meth:`apply`."""
        if not args:
            raise TypeError(f"{self.prefix(fn)} needs at least one positional (differentiable) "
                            f"argument")
        arguments, arrays = self.classify(fn, args)
        if not arrays:
            raise TypeError(f"{self.prefix(fn)}: no {self.array_noun} among the positional "
                            f"arguments (nothing to differentiate); call "
                            f"diffimaging.{name_of(fn)} directly")
        return self.apply(fn, arguments, arrays, static)

    def wrap(self, fn) -> Callable:
        """The differentiable version of ``fn`` (the public ``function(fn)``).

        A function becomes ``f(*args, **static)``; a model (:func:`is_model`)
        becomes ``f(x, params=None)``, where ``params`` maps parameter names to
        values, those that are arrays getting gradients.

        Raises
        ------
        TypeError
            If ``fn`` has no explicit VJP (:func:`has_vjp`).
        """
        name = name_of(fn)
        if not has_vjp(fn):
            raise TypeError(f"diffimaging.{self.framework}.function: {name} has no registered "
                            f"VJP; differentiable functions of diffimaging are propagate, bin, "
                            f"shift and intensity (register others with "
                            f"diffimaging.register_vjp)")
        if is_model(fn):
            def wrapped_model(x, params=None):
                bound, values, static = self.bind(fn, params)
                return self.call(bound, (x, *values), static)

            wrapped_model.__name__ = wrapped_model.__qualname__ = name
            wrapped_model.__doc__ = (f"Differentiable {self.title} version of a diffimaging "
                                     f"model ({self.backward_note}): f(x, params={{name: "
                                     f"value}}); {self.array_noun}s among the values get "
                                     f"gradients.")
            return wrapped_model

        @functools.wraps(fn)
        def wrapped(*args, **static):
            return self.call(fn, args, static)

        wrapped.__doc__ = (f"Differentiable {self.title} version of diffimaging.{name} "
                           f"({self.backward_note}).  Positional {self.array_noun}s get "
                           f"gradients; numbers are constants.\n\n" + (fn.__doc__ or ""))
        return wrapped


def _type_name(a: Any) -> str:
    return f"{type(a).__module__}.{type(a).__name__}"


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.strip("\n").splitlines())
