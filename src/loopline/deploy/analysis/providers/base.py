"""The provider contract: read one metric's value over the analysis window."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from loopline.deploy.analysis.measurement import MeasurementOutcome
from loopline.deploy.analysis.template import Metric
from loopline.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class RevisionModel:
    """One side of the analysis: a revision hash and the model version it serves (the
    ``model``/``version`` its prediction logs are written under)."""

    revision: str
    model: str
    version: str


@dataclass(frozen=True, slots=True)
class MeasureContext:
    """What a provider may read, given by the caller (no provider reads settings).

    ``window_start`` is when the run (or the step) started and ``window_end`` is now, both
    in seconds since the epoch; ``admin_port`` is the deployment's router admin port and
    ``log_directory`` the replicas' prediction-log directory (None when logging is off).
    """

    deployment: str
    canary: RevisionModel
    stable: RevisionModel | None
    admin_port: int | None
    log_directory: Path | None
    window_start: float
    window_end: float

    def __post_init__(self) -> None:
        if self.window_end < self.window_start:
            raise InvalidInputError(
                f"The analysis window of {self.deployment!r} ends ({self.window_end}) before "
                f"it starts ({self.window_start})."
            )

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return self.window_end - self.window_start


class MetricProvider(abc.ABC):
    """Reads one kind of metric. Stateless; one instance serves every run."""

    @abc.abstractmethod
    def measure(self, metric: Metric, context: MeasureContext) -> MeasurementOutcome:
        """The metric's value and sample size over the context's window.

        Raises:
            LooplineError: the source could not be read or made no sense; the run records an
                Error measurement with the message.
        """
