"""Measurements and per-metric results of an analysis run (Argo Rollouts' status types).

Values are stored as JSON with non-finite floats spelled as Prometheus does (``"NaN"``,
``"+Inf"``, ``"-Inf"``), so a run survives a round trip through any strict JSON store.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidInputError
from loopline.types import Json, JsonDict

Value = float | tuple[float, ...] | None


class AnalysisPhase(enum.StrEnum):
    """Phases of a measurement, a metric and a run (Argo's ``AnalysisPhase``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"

    @property
    def completed(self) -> bool:
        return self not in (AnalysisPhase.PENDING, AnalysisPhase.RUNNING)


# Argo's analysisStatusOrder, best to worst.
ORDER = (
    AnalysisPhase.SUCCESSFUL,
    AnalysisPhase.RUNNING,
    AnalysisPhase.PENDING,
    AnalysisPhase.INCONCLUSIVE,
    AnalysisPhase.ERROR,
    AnalysisPhase.FAILED,
)


def worse(a: AnalysisPhase, b: AnalysisPhase) -> AnalysisPhase:
    """The worse of two phases in Argo's order."""
    return a if ORDER.index(a) >= ORDER.index(b) else b


@dataclass(frozen=True, slots=True)
class MeasurementOutcome:
    """What a provider read: ``value`` (one number, one per series, or None for no data) and
    how many ``samples`` (requests, rows, series) it rests on."""

    value: float | Sequence[float] | None
    samples: int
    message: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 0:
            raise InvalidInputError(
                f"A measurement's samples must be a whole number ≥ 0, not {self.samples!r}."
            )
        v = self.value
        if v is None or _number(v):
            return
        if isinstance(v, Sequence) and not isinstance(v, str) and all(_number(x) for x in v):
            return
        raise InvalidInputError(
            f"A measurement's value must be a number, a list of numbers or None, not {v!r}."
        )

    def stored_value(self) -> Value:
        v = self.value
        if v is None:
            return None
        if isinstance(v, Sequence):
            return tuple(float(x) for x in v)
        return float(v)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One completed measurement; times are seconds since the epoch."""

    phase: AnalysisPhase
    started_at: float
    finished_at: float
    value: Value
    samples: int
    message: str = ""

    def to_json(self) -> JsonDict:
        return {"phase": self.phase.value, "startedAt": self.started_at,
                "finishedAt": self.finished_at, "value": value_to_json(self.value),
                "samples": self.samples, "message": self.message}  # fmt: skip

    @classmethod
    def from_json(cls, d: Any) -> Measurement:
        return cls(AnalysisPhase(d["phase"]), float(d["startedAt"]), float(d["finishedAt"]),
                   value_from_json(d["value"]), int(d["samples"]), str(d["message"]))  # fmt: skip


@dataclass(frozen=True, slots=True)
class MetricResult:
    """A metric's state in a run: Argo's counters, the last measurements and the sample wait.

    ``count`` counts completed non-Error measurements (Argo); ``measurements`` keeps the last
    ``measurementRetention`` of them. ``waiting_since`` is set while outcomes arrive with fewer
    samples than ``minSampleSize``; ``last_polled_at`` is when the provider last answered.
    """

    name: str
    phase: AnalysisPhase = AnalysisPhase.PENDING
    dry_run: bool = False
    count: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    consecutive_error: int = 0
    consecutive_success: int = 0
    measurements: tuple[Measurement, ...] = ()
    waiting_since: float | None = None
    last_polled_at: float | None = None
    message: str = ""

    @property
    def measured(self) -> int:
        """Completed measurements of any phase, Error included."""
        return self.count + self.error

    @property
    def last(self) -> Measurement | None:
        return self.measurements[-1] if self.measurements else None

    def to_json(self) -> JsonDict:
        return {
            "name": self.name, "phase": self.phase.value, "dryRun": self.dry_run,
            "count": self.count, "successful": self.successful, "failed": self.failed,
            "inconclusive": self.inconclusive, "error": self.error,
            "consecutiveError": self.consecutive_error,
            "consecutiveSuccess": self.consecutive_success,
            "measurements": [m.to_json() for m in self.measurements],
            "waitingSince": self.waiting_since, "lastPolledAt": self.last_polled_at,
            "message": self.message,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: Any) -> MetricResult:
        return cls(
            name=str(d["name"]), phase=AnalysisPhase(d["phase"]), dry_run=bool(d["dryRun"]),
            count=int(d["count"]), successful=int(d["successful"]), failed=int(d["failed"]),
            inconclusive=int(d["inconclusive"]), error=int(d["error"]),
            consecutive_error=int(d["consecutiveError"]),
            consecutive_success=int(d["consecutiveSuccess"]),
            measurements=tuple(Measurement.from_json(m) for m in d["measurements"]),
            waiting_since=_opt_float(d["waitingSince"]),
            last_polled_at=_opt_float(d["lastPolledAt"]), message=str(d["message"]),
        )  # fmt: skip


def value_to_json(v: Value) -> Json:
    if v is None:
        return None
    if isinstance(v, tuple):
        return [_float_to_json(x) for x in v]
    return _float_to_json(v)


def value_from_json(v: Any) -> Value:
    if v is None:
        return None
    if isinstance(v, list):
        return tuple(_float_from_json(x) for x in v)
    return _float_from_json(v)


def _float_to_json(x: float) -> Json:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return x


def _float_from_json(x: Any) -> float:
    return float(x.replace("Inf", "inf")) if isinstance(x, str) else float(x)


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)
