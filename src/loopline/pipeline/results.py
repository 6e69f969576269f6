"""What a run reports back: per-step results and the run's outcome."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from loopline.metadata.entities import Artifact, ExecutionState


class RunStatus(enum.Enum):
    """How a run ended."""

    RUNNING = "running"  # in progress (or its process died: see CRASHED)
    SUCCEEDED = "succeeded"  # every step completed or came from the cache
    FAILED = "failed"  # a step failed after its retries
    BLOCKED = "blocked"  # a gate (data validation, blessing) stopped the run
    CRASHED = "crashed"  # the runner process died; found by recovery on the next run


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of one step in one run."""

    step_id: str
    state: ExecutionState
    execution_id: int | None
    cached: bool
    seconds: float
    error: str | None
    gate: bool
    outputs: Mapping[str, int | None]
    # The output artifacts as the store returned them, by port, when the executor has them
    # at hand (the runner hands them to the next steps without reading them again).
    artifacts: Mapping[str, Artifact] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of a pipeline run."""

    run_id: int
    run_name: str
    pipeline: str
    status: RunStatus
    steps: Mapping[str, StepResult]

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status is RunStatus.SUCCEEDED

    def output(self, step_id: str, port: str) -> int | None:
        """The artifact id a step produced on a port (None if it did not run)."""
        return self.steps[step_id].outputs.get(port)
