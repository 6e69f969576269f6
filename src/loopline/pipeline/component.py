"""``@component``: turn a typed Python function into a pipeline component definition.

The signature is the contract: ``Input[T]`` parameters are input ports, ``Output[T]``
parameters are output ports, a ``StepContext`` parameter receives the tracking context, and
every other parameter is a typed value (int, float, str, bool, list, dict, or Optional of
those). Breaking a rule raises InvalidDefinitionError when the function is decorated, naming
the component and the parameter.

Calling the component with arguments does not run it: it returns a :class:`Step`, a node
of a pipeline.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

from loopline.errors import InvalidDefinitionError
from loopline.pipeline.artifact_types import ArtifactType
from loopline.pipeline.context import StepContext
from loopline.pipeline.ports import Input, Output
from loopline.pipeline.step import Param, Step, StepOptions
from loopline.types import check_name

Isolation = Literal["thread", "process"]

PARAMETER_TYPES: tuple[type, ...] = (int, float, str, bool, list, dict)


@dataclass(frozen=True, slots=True)
class InputPort:
    """An input port: its name, artifact type and whether it may be left unconnected."""

    name: str
    type: type[ArtifactType]
    optional: bool


@dataclass(frozen=True, slots=True)
class OutputPort:
    """An output port: its name and artifact type."""

    name: str
    type: type[ArtifactType]


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """A value parameter: its name, accepted Python type, whether None is allowed, default."""

    name: str
    type: type
    optional: bool
    has_default: bool
    default: Any


@dataclass(frozen=True, eq=False)
class Component:
    """A component definition: the function and its declared ports and parameters."""

    name: str
    fn: Callable[..., Any]
    inputs: Mapping[str, InputPort]
    outputs: Mapping[str, OutputPort]
    parameters: Mapping[str, ParameterSpec]
    context_arg: str | None
    options: StepOptions
    kind: str = "component"
    """``"component"`` (runs user code that writes outputs) or ``"resolver"``."""

    def __call__(self, **kwargs: Any) -> Step:
        """Make a step of this component; validation of the wiring happens in ``Pipeline``."""
        unknown = sorted(set(kwargs) - set(self.inputs) - set(self.parameters))
        if unknown:
            raise InvalidDefinitionError(
                f"Component {self.name!r} got unknown argument(s) {', '.join(unknown)}. "
                f"Inputs: {', '.join(self.inputs) or '(none)'}; "
                f"parameters: {', '.join(self.parameters) or '(none)'}."
            )
        return Step(
            id=self.name,
            component=self,
            arguments=types.MappingProxyType(dict(kwargs)),
            options=self.options,
        )

    def __repr__(self) -> str:
        return f"Component({self.name!r})"


@overload
def component(fn: Callable[..., Any], /) -> Component: ...


@overload
def component(
    *,
    name: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    cache: bool = True,
    isolation: Isolation = "thread",
    cpu: str | None = None,
    memory: str | None = None,
) -> Callable[[Callable[..., Any]], Component]: ...


def component(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    cache: bool = True,
    isolation: Isolation = "thread",
    cpu: str | None = None,
    memory: str | None = None,
) -> Component | Callable[[Callable[..., Any]], Component]:
    """Declare a component. Use bare (``@component``) or with options.

    Args:
        name: the component (and default step) name; defaults to the function name.
        retries: how many times a failed run is retried (gates are never retried).
        timeout: seconds one attempt may take; the step fails with StepTimeoutError after.
        cache: reuse the outputs of an identical earlier execution (on by default).
        isolation: ``"thread"`` runs in the runner's process, ``"process"`` in a child
            process (killed at the timeout; a crash cannot take the runner down).
        cpu, memory: the container's limits when the pipeline is compiled for Kubeflow
            Pipelines (``"2"``, ``"500m"``; ``"4Gi"``); the local runner limits neither.

    Raises:
        InvalidDefinitionError: a parameter lacks an annotation or has an unsupported type.
    """
    options = StepOptions(
        retries=retries,
        timeout=timeout,
        cache=cache,
        isolation=isolation,
        cpu=cpu,
        memory=memory,
    )
    options.validate(name or (fn.__name__ if fn else "component"))

    def wrap(f: Callable[..., Any]) -> Component:
        return _build(f, name or f.__name__, options)

    return wrap(fn) if fn is not None else wrap


def _build(fn: Callable[..., Any], name: str, options: StepOptions) -> Component:
    check_name("Component", name)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # NameError on forward refs, etc.
        raise InvalidDefinitionError(
            f"Component {name!r}: cannot resolve the annotations of {fn.__qualname__}: {exc}. "
            "Import every type used in the signature at module level."
        ) from exc
    inputs: dict[str, InputPort] = {}
    outputs: dict[str, OutputPort] = {}
    params: dict[str, ParameterSpec] = {}
    context_arg: str | None = None
    for pname, p in inspect.signature(fn).parameters.items():
        where = f"Component {name!r} parameter {pname!r}"
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise InvalidDefinitionError(f"{where}: *args/**kwargs are not allowed; name it.")
        if pname not in hints:
            raise InvalidDefinitionError(
                f"{where} has no type annotation; annotate it (e.g. Input[Dataset], int)."
            )
        hint = hints[pname]
        has_default = p.default is not inspect.Parameter.empty
        base, optional = _strip_optional(hint)
        origin = typing.get_origin(base)
        if base is StepContext:
            context_arg = pname
        elif origin is Input:
            inputs[pname] = InputPort(pname, _artifact_arg(where, base), optional)
            if has_default and p.default is not None:
                raise InvalidDefinitionError(f"{where}: an input can only default to None.")
            if optional and not has_default:
                raise InvalidDefinitionError(f"{where}: an optional input needs '= None'.")
        elif origin is Output:
            if optional or has_default:
                raise InvalidDefinitionError(f"{where}: an output cannot be optional.")
            outputs[pname] = OutputPort(pname, _artifact_arg(where, base))
        else:
            ptype = origin if origin in (list, dict) else base
            if ptype not in PARAMETER_TYPES:
                raise InvalidDefinitionError(
                    f"{where} has type {hint!r}; parameters must be int, float, str, bool, "
                    "list or dict (or Optional of those); artifacts use Input[T]/Output[T]."
                )
            if has_default and not _accepts(ptype, optional, p.default):
                raise InvalidDefinitionError(
                    f"{where} defaults to {p.default!r}, which is not a {ptype.__name__}."
                )
            params[pname] = ParameterSpec(
                pname, ptype, optional, has_default, p.default if has_default else None
            )
    return Component(
        name=name,
        fn=fn,
        inputs=types.MappingProxyType(inputs),
        outputs=types.MappingProxyType(outputs),
        parameters=types.MappingProxyType(params),
        context_arg=context_arg,
        options=options,
    )


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _artifact_arg(where: str, hint: Any) -> type[ArtifactType]:
    args = typing.get_args(hint)
    if len(args) != 1 or not (isinstance(args[0], type) and issubclass(args[0], ArtifactType)):
        raise InvalidDefinitionError(
            f"{where}: {hint!r} must name one artifact type, e.g. Input[Dataset]."
        )
    return args[0]


def _accepts(ptype: type, optional: bool, value: Any) -> bool:
    if value is None:
        return optional
    if isinstance(value, Param):
        return True
    if ptype is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if ptype is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, ptype)


def accepts(spec: ParameterSpec, value: Any) -> bool:
    """True if ``value`` is acceptable for parameter ``spec`` (ints pass for floats)."""
    return _accepts(spec.type, spec.optional, value)
