"""``Pipeline``: an immutable, validated DAG of steps.

Everything that can be checked without running is checked here, when the pipeline is built:
duplicate step names, unknown or missing inputs, type mismatches between ports, references to
steps that are not in the pipeline, parameter types, and cycles. Each error names the step
and the port. Running happens elsewhere (``loopline.pipeline.runner``).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidDefinitionError
from loopline.pipeline.component import accepts
from loopline.pipeline.step import OutputRef, Param, Step
from loopline.types import Json, check_name


@dataclass(frozen=True, eq=False)
class Pipeline:
    """A named, immutable DAG of steps, in a valid topological order.

    Args:
        name: the pipeline name (its metadata context).
        steps: the steps; every step whose output is read must be listed.
        description: free text shown by ``loopline runs show``.

    Raises:
        InvalidDefinitionError: the definition breaks a rule; the message names the step and
            the port.
    """

    name: str
    steps: tuple[Step, ...]
    description: str = ""

    def __init__(self, name: str, steps: Sequence[Step], *, description: str = "") -> None:
        check_name("Pipeline", name)
        by_id: dict[str, Step] = {}
        for step in steps:
            if not isinstance(step, Step):
                raise InvalidDefinitionError(
                    f"Pipeline {name!r}: {step!r} is not a step; call the component "
                    "(e.g. train(data=...)) to make one."
                )
            if step.id in by_id:
                raise InvalidDefinitionError(
                    f"Pipeline {name!r} has two steps named {step.id!r}; give one another "
                    f"name with .with_id('{step.id}_2')."
                )
            by_id[step.id] = step
        for step in steps:
            _check_step(name, step, by_id)
        ordered = _toposort(name, steps, by_id)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "steps", tuple(ordered))
        object.__setattr__(self, "description", description)

    def step(self, step_id: str) -> Step:
        """The step with this id. Raises InvalidDefinitionError listing the known ids."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise InvalidDefinitionError(
            f"Pipeline {self.name!r} has no step {step_id!r}. "
            f"Steps: {', '.join(s.id for s in self.steps)}."
        )

    def params(self) -> Mapping[str, Json]:
        """The run-time parameters the steps use, with their defaults."""
        found: dict[str, Json] = {}
        for s in self.steps:
            for value in s.arguments.values():
                if isinstance(value, Param):
                    if value.name in found and found[value.name] != value.default:
                        raise InvalidDefinitionError(
                            f"Pipeline {self.name!r}: parameter {value.name!r} has two "
                            f"defaults, {found[value.name]!r} and {value.default!r}."
                        )
                    found[value.name] = value.default
        return types.MappingProxyType(found)

    def downstream(self, step_id: str) -> set[str]:
        """Ids of every step that depends, directly or not, on ``step_id``."""
        result: set[str] = set()
        frontier = {step_id}
        while frontier:
            nxt = {s.id for s in self.steps if set(s.upstream_ids()) & frontier} - result
            result |= nxt
            frontier = nxt
        return result

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps=[{', '.join(s.id for s in self.steps)}])"


def _check_step(pipeline: str, step: Step, by_id: Mapping[str, Step]) -> None:
    comp = step.component
    for port_name, port in comp.inputs.items():
        where = f"Pipeline {pipeline!r} step {step.id!r} input {port_name!r}"
        value = step.arguments.get(port_name)
        if value is None:
            if not port.optional:
                raise InvalidDefinitionError(
                    f"{where} ({port.type.type_name}) is not connected; pass the output of "
                    f"an earlier step, e.g. {port_name}=other.outputs.<name>."
                )
            continue
        if not isinstance(value, OutputRef):
            raise InvalidDefinitionError(
                f"{where} got {value!r}; inputs take a step output such as step.outputs.model."
            )
        source = by_id.get(value.step_id)
        if source is None:
            raise InvalidDefinitionError(
                f"{where} reads {value}, but the pipeline has no step {value.step_id!r}. "
                "Add that step to the pipeline's list of steps."
            )
        if value.port not in source.component.outputs:
            raise InvalidDefinitionError(
                f"{where} reads {value}, but step {value.step_id!r} has no output "
                f"{value.port!r}. Outputs: {', '.join(source.component.outputs) or '(none)'}."
            )
        produced = source.component.outputs[value.port].type
        if not issubclass(produced, port.type):
            raise InvalidDefinitionError(
                f"{where} expects {port.type.type_name} but {value} is {produced.type_name}."
            )
    for pname, spec in comp.parameters.items():
        where = f"Pipeline {pipeline!r} step {step.id!r} parameter {pname!r}"
        if pname not in step.arguments:
            if not spec.has_default:
                raise InvalidDefinitionError(f"{where} has no value and no default; pass one.")
            continue
        value = step.arguments[pname]
        if isinstance(value, OutputRef):
            raise InvalidDefinitionError(
                f"{where} got the artifact {value}; parameters take values. Declare the "
                "component argument as Input[...] to read an artifact."
            )
        check_value = value.default if isinstance(value, Param) else value
        if not accepts(spec, check_value):
            raise InvalidDefinitionError(
                f"{where} expects {spec.type.__name__}, got {check_value!r} "
                f"({type(check_value).__name__})."
            )


def _toposort(pipeline: str, steps: Iterable[Step], by_id: Mapping[str, Step]) -> list[Step]:
    order = [s.id for s in steps]
    indegree = {sid: len(set(by_id[sid].upstream_ids())) for sid in order}
    ready = [sid for sid in order if indegree[sid] == 0]
    result: list[Step] = []
    while ready:
        sid = ready.pop(0)
        result.append(by_id[sid])
        for other in order:
            if sid in set(by_id[other].upstream_ids()):
                indegree[other] -= 1
                if indegree[other] == 0:
                    ready.append(other)
    if len(result) != len(order):
        stuck = [sid for sid in order if indegree[sid] > 0]
        raise InvalidDefinitionError(
            f"Pipeline {pipeline!r} has a cycle through steps {', '.join(stuck)}; a step "
            "cannot depend on its own outputs."
        )
    return result


def resolve_params(pipeline: Pipeline, overrides: Mapping[str, Any]) -> dict[str, Json]:
    """Merge ``--param`` overrides into the pipeline's parameter defaults, type-checked.

    Raises:
        InvalidDefinitionError: an override names an unknown parameter.
    """
    defaults = dict(pipeline.params())
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise InvalidDefinitionError(
            f"Pipeline {pipeline.name!r} has no parameter {', '.join(map(repr, unknown))}. "
            f"Parameters: {', '.join(defaults) or '(none)'}."
        )
    return {**defaults, **overrides}
