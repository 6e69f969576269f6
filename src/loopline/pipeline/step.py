"""Steps (component instances in a pipeline), references to their outputs, and run-time
parameters (``Param``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidDefinitionError
from loopline.types import Json, check_name

if TYPE_CHECKING:
    from loopline.pipeline.component import Component


CPU_QUANTITY = re.compile(r"(?:\d+(?:\.\d+)?|\.\d+)m?")
MEMORY_QUANTITY = re.compile(r"(?:\d+(?:\.\d+)?|\.\d+)(?:[KMGTPE]i|[kKMGTPE])?")


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How a step runs: retries, timeout (seconds), caching, isolation, and the container
    limits ``cpu`` (Kubernetes quantity: ``"2"``, ``"500m"``) and ``memory`` (``"4Gi"``,
    ``"512M"``) that ``loopline compile`` gives the step's container on Kubeflow Pipelines
    (the local runner runs steps on this machine and limits neither)."""

    retries: int = 0
    timeout: float | None = None
    cache: bool = True
    isolation: str = "thread"
    cpu: str | None = None
    memory: str | None = None

    def validate(self, owner: str) -> None:
        """Raise InvalidDefinitionError naming ``owner`` if an option is out of range."""
        if not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidDefinitionError(
                f"{owner}: retries={self.retries!r} must be an integer ≥ 0."
            )
        if self.timeout is not None and not (
            isinstance(self.timeout, int | float) and self.timeout > 0
        ):
            raise InvalidDefinitionError(
                f"{owner}: timeout={self.timeout!r} must be a number of seconds > 0 or None."
            )
        if self.isolation not in ("thread", "process"):
            raise InvalidDefinitionError(
                f"{owner}: isolation={self.isolation!r} must be 'thread' or 'process'."
            )
        if self.cpu is not None and not (
            isinstance(self.cpu, str) and CPU_QUANTITY.fullmatch(self.cpu)
        ):
            raise InvalidDefinitionError(
                f"{owner}: cpu={self.cpu!r} must be a CPU quantity string such as '2' or '500m'."
            )
        if self.memory is not None and not (
            isinstance(self.memory, str) and MEMORY_QUANTITY.fullmatch(self.memory)
        ):
            raise InvalidDefinitionError(
                f"{owner}: memory={self.memory!r} must be a memory quantity string such as "
                "'4Gi' or '512M'."
            )


@dataclass(frozen=True, slots=True)
class OutputRef:
    """``step.outputs.model``: the output port ``port`` of the step named ``step_id``."""

    step_id: str
    port: str
    type_name: str

    def __str__(self) -> str:
        return f"{self.step_id}.{self.port}"


@dataclass(frozen=True, slots=True)
class Param:
    """A run-time pipeline parameter, overridable with ``loopline run --param name=value``."""

    name: str
    default: Json

    def __post_init__(self) -> None:
        check_name("Parameter", self.name)


class Outputs:
    """Attribute access to a step's output references: ``step.outputs.model``."""

    def __init__(self, step: Step) -> None:
        self._step = step

    def __getattr__(self, port: str) -> OutputRef:
        if port.startswith("_"):
            raise AttributeError(port)
        return self[port]

    def __getitem__(self, port: str) -> OutputRef:
        outputs = self._step.component.outputs
        if port not in outputs:
            raise InvalidDefinitionError(
                f"Step {self._step.id!r} has no output {port!r}. "
                f"Outputs: {', '.join(outputs) or '(none)'}."
            )
        return OutputRef(self._step.id, port, outputs[port].type.type_name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._step.component.outputs)


@dataclass(frozen=True, eq=False)
class Step:
    """One node of a pipeline: a component with its arguments, an id and run options."""

    id: str
    component: Component
    arguments: Mapping[str, Any]
    options: StepOptions

    def __post_init__(self) -> None:
        check_name("Step", self.id)

    @property
    def outputs(self) -> Outputs:
        """References to this step's outputs, to pass as inputs of later steps."""
        return Outputs(self)

    def with_id(self, step_id: str) -> Step:
        """A copy of this step under another name (to use a component twice)."""
        return dataclasses.replace(self, id=step_id)

    def with_options(self, **changes: Any) -> Step:
        """A copy with other run options (``retries``, ``timeout``, ``cache``, ``isolation``,
        ``cpu``, ``memory``)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(StepOptions)}
        if unknown:
            raise InvalidDefinitionError(
                f"Step {self.id!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                "known: retries, timeout, cache, isolation, cpu, memory."
            )
        options = dataclasses.replace(self.options, **changes)
        options.validate(f"Step {self.id!r}")
        return dataclasses.replace(self, options=options)

    def upstream_ids(self) -> list[str]:
        """Ids of the steps whose outputs this step reads, in argument order."""
        return [v.step_id for v in self.arguments.values() if isinstance(v, OutputRef)]

    def __repr__(self) -> str:
        return f"Step({self.id!r}, component={self.component.name!r})"
