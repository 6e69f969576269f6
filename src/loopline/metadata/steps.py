"""A pipeline step's record: what a runner writes when a step starts and when it finishes.

A step costs the metadata store two transactions (``MetadataStore.start_step`` and
``MetadataStore.record_step``) instead of one per row. Two, not one: the start must be
committed before the step writes any bytes, so that a runner killed mid-step leaves a RUNNING
execution and PENDING output rows for recovery to clean up (``loopline.pipeline.recovery``);
everything the step produced becomes visible at once, in the second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from loopline.metadata.entities import Artifact, Execution
from loopline.types import ArtifactId, Json


@dataclass(frozen=True)
class PlannedOutput:
    """An output a step is about to write: recorded PENDING by ``start_step``.

    ``uri`` is where its bytes will be published (``ArtifactStore.allocate``).
    """

    port: str
    type_name: str
    uri: str
    name: str | None = None


@dataclass(frozen=True)
class StepOutput:
    """A published output, handed to ``record_step``: the PENDING artifact ``artifact_id``
    whose bytes are in place with ``digest``; ``properties`` are merged into its own."""

    artifact_id: ArtifactId
    port: str
    digest: str
    properties: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """What ``record_step`` wrote: the final execution and its outputs as published (LIVE,
    with digests and properties), in the order given — read back in the same transaction,
    so the next step needs no read of its own."""

    execution: Execution
    outputs: tuple[Artifact, ...]


@dataclass(frozen=True)
class StepStart:
    """What ``start_step`` recorded: the RUNNING execution and its PENDING outputs, in the
    order of the planned outputs."""

    execution: Execution
    outputs: tuple[Artifact, ...]
