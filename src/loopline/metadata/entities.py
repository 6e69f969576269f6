"""What happened, as frozen values: artifacts, executions, events, contexts, metrics, models.

MLMD's data model (google/ml-metadata), re-expressed in plain Python. No SQLAlchemy here:
ORM rows never leave ``loopline.metadata.sql``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from loopline.errors import ConflictError, InvalidInputError
from loopline.types import ArtifactId, ContextId, ExecutionId, Json


class ArtifactState(enum.Enum):
    """Lifecycle of an artifact's bytes."""

    # Row exists, bytes are being written under a temporary name; never read it.
    PENDING = "pending"
    # Bytes were published atomically and the digest recorded; safe to read and to reuse.
    LIVE = "live"
    # Bytes were removed (garbage collection, a user delete); lineage still refers to it.
    DELETED = "deleted"


class ExecutionState(enum.Enum):
    """Lifecycle of one execution (a step run, an alias move, a rollout action)."""

    NEW = "new"  # recorded, not started
    RUNNING = "running"  # started; a crash leaves it here until a sweep marks it FAILED
    COMPLETE = "complete"  # finished and published its outputs
    FAILED = "failed"  # raised, timed out or was killed
    CACHED = "cached"  # did not run: its outputs are those of an earlier COMPLETE execution
    CANCELED = "canceled"  # skipped because an upstream step failed or a gate blocked


TERMINAL_STATES = frozenset(
    {ExecutionState.COMPLETE, ExecutionState.FAILED, ExecutionState.CACHED, ExecutionState.CANCELED}
)


class EventType(enum.Enum):
    """Direction of the edge between an artifact and an execution."""

    INPUT = "input"  # the execution read the artifact
    OUTPUT = "output"  # the execution produced the artifact


class Direction(enum.Enum):
    """Which way a lineage query walks."""

    UPSTREAM = "upstream"  # towards the inputs that produced the start node
    DOWNSTREAM = "downstream"  # towards what was made from the start node
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Artifact:
    """A typed, addressable piece of data: a dataset split, a schema, a model, a blessing."""

    id: ArtifactId
    type_name: str
    uri: str
    state: ArtifactState
    digest: str | None
    name: str | None
    properties: Mapping[str, Json]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Execution:
    """One run of a component (or of a control action such as an alias move)."""

    id: ExecutionId
    type_name: str
    state: ExecutionState
    name: str | None
    cache_key: str | None
    properties: Mapping[str, Json]
    log_uri: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Event:
    """An edge between an artifact and an execution, on a named port."""

    artifact_id: ArtifactId
    execution_id: ExecutionId
    type: EventType
    port: str
    index: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """A grouping: a pipeline, a run, an experiment, a model. Unique by (type_name, name)."""

    id: ContextId
    type_name: str
    name: str
    properties: Mapping[str, Json]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Metric:
    """One logged value of a metric for an execution, at an optional step."""

    execution_id: ExecutionId
    key: str
    value: float
    step: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class LineageGraph:
    """The nodes and edges reached by a lineage query."""

    artifacts: tuple[Artifact, ...] = ()
    executions: tuple[Execution, ...] = ()
    events: tuple[Event, ...] = ()
    hops: Mapping[str, int] = field(default_factory=dict)
    """Distance of each node from the start, keyed ``"a:<id>"`` / ``"e:<id>"``."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """Version ``version`` of registered model ``name``: a pointer to a Model artifact."""

    name: str
    version: int
    artifact_id: ArtifactId
    description: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """A mutable pointer ``name@alias`` → version, with the execution that last moved it."""

    name: str
    alias: str
    version: int
    execution_id: ExecutionId | None
    updated_at: datetime


def check_alias_expect(name: str, alias: str, expect: object) -> None:
    """InvalidInputError unless ``expect`` is None (no condition), 0 (the alias must be
    unset) or a version ≥ 1."""
    if expect is None:
        return
    if isinstance(expect, bool) or not isinstance(expect, int) or expect < 0:
        raise InvalidInputError(
            f"Expected version {expect!r} of alias {name}@{alias} is not valid; pass a "
            "version ≥ 1, or 0 for 'the alias is not set'."
        )


def check_alias_expected(name: str, alias: str, current: int | None, expect: int) -> None:
    """The compare of an alias compare-and-set: ConflictError naming where ``name@alias`` is
    unless it is at version ``expect`` (0: unset)."""
    if (current or 0) == expect:
        return
    if current is None:
        state = f"is not set, not at version {expect}"
    else:
        state = f"is at version {current}, not " + ("unset" if expect == 0 else str(expect))
    raise ConflictError(f"Alias {name}@{alias} {state} as expected; re-read and retry.")
