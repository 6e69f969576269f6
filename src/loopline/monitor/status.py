"""MonitorStatus: where one monitor stands, as a frozen, JSON-round-tripping document.

What ``loopline monitor status`` prints, ``GET /v1/monitors/NAME`` serves under ``status``, and
the report's header reads: the model and versions watched, rows ingested, and per version the
last closed window's drift per feature (value against its threshold, with the value's history
over the last windows), its performance (realised from labels with an interval, or estimated
by CBPE with its band), and the alerts firing or resolved.

:func:`build_status` is pure: the caller reads the store (state, recent windows, alerts) and
the lineage, and passes them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from loopline.monitor.model_lineage import ModelLineage
from loopline.monitor.store import MonitorState, StoredAlert, StoredMonitor
from loopline.monitor.window_result import (
    FeatureResult,
    PerformanceValue,
    WindowResult,
    _perf_doc,
    _perf_of,
)
from loopline.types import Json, JsonDict

HISTORY = 24  # windows of history kept per feature in a status
RESOLVED = 20  # resolved alerts shown, newest first


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature in the last window: its deciding check, and that metric's recent values."""

    name: str
    kind: str
    drifted: bool
    metric: str | None  # the deciding check's metric (None: not compared)
    value: float | None
    threshold: float | None
    calibrated: bool = False
    reason: str | None = None  # why it was not compared
    history: tuple[float | None, ...] = ()  # ``metric`` over the last windows, oldest first

    @classmethod
    def of(cls, f: FeatureResult, earlier: Sequence[WindowResult], pick: str) -> FeatureDrift:
        check = f.primary
        history: list[float | None] = []
        for w in earlier:
            seen = w.prediction if pick == "prediction" else w.feature(f.name)
            value = seen.metrics.get(check.metric) if seen is not None and check else None
            history.append(_finite(value))
        return cls(
            f.name,
            f.kind,
            f.drifted,
            None if check is None else check.metric,
            None if check is None else _finite(check.value),
            None if check is None else _finite(check.threshold),
            False if check is None else check.calibrated,
            f.reason,
            tuple(history),
        )

    @property
    def ratio(self) -> float | None:
        """value / threshold (1.0 is the threshold)."""
        if self.value is None or not self.threshold:
            return None
        return self.value / self.threshold

    def to_dict(self) -> JsonDict:
        return {
            "name": self.name,
            "kind": self.kind,
            "drifted": self.drifted,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "calibrated": self.calibrated,
            "reason": self.reason,
            "history": list[Json](self.history),
        }

    @classmethod
    def from_dict(cls, d: Any) -> FeatureDrift:
        return cls(
            d["name"],
            d["kind"],
            d["drifted"],
            d["metric"],
            d["value"],
            d["threshold"],
            d["calibrated"],
            d["reason"],
            tuple(d["history"]),
        )


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert event (``firing`` or ``resolved``) with its Alert artifact once recorded."""

    id: int
    rule: str
    model: str
    version: str
    state: str
    severity: str
    reason: str
    first_window: int
    last_window: int
    metric: str
    value: float | None
    at: float  # epoch seconds the event was committed
    artifact_id: int | None

    @classmethod
    def of(cls, a: StoredAlert) -> AlertView:
        e = a.event
        return cls(
            a.id,
            e.rule,
            e.model,
            e.version,
            e.state,
            e.severity,
            e.reason,
            e.first_window,
            e.last_window,
            e.metric,
            _finite(e.value),
            a.created_at,
            a.artifact_id,
        )

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "rule": self.rule,
            "model": self.model,
            "version": self.version,
            "state": self.state,
            "severity": self.severity,
            "reason": self.reason,
            "first_window": self.first_window,
            "last_window": self.last_window,
            "metric": self.metric,
            "value": self.value,
            "at": self.at,
            "artifact_id": self.artifact_id,
        }

    @classmethod
    def from_dict(cls, d: Any) -> AlertView:
        return cls(**d)


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """One model version: how many windows closed, and what the last one measured."""

    version: str
    windows: int  # windows closed so far
    last_index: int | None = None
    start_ts: float | None = None  # of the last window
    end_ts: float | None = None
    rows: int | None = None
    drift_share: float | None = None
    features: tuple[FeatureDrift, ...] = ()
    prediction: FeatureDrift | None = None
    violations: int = 0
    performance: tuple[PerformanceValue, ...] = ()  # realised from labels
    estimated: tuple[PerformanceValue, ...] = ()  # CBPE
    labelled_rows: int = 0
    lineage: ModelLineage | None = None

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    def to_dict(self) -> JsonDict:
        return {
            "version": self.version,
            "windows": self.windows,
            "last_index": self.last_index,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "rows": self.rows,
            "drift_share": self.drift_share,
            "features": [f.to_dict() for f in self.features],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "violations": self.violations,
            "performance": [_perf_doc(p) for p in self.performance],
            "estimated": [_perf_doc(p) for p in self.estimated],
            "labelled_rows": self.labelled_rows,
            "lineage": None if self.lineage is None else self.lineage.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> VersionStatus:
        pred, lineage = d["prediction"], d["lineage"]
        return cls(
            version=d["version"],
            windows=d["windows"],
            last_index=d["last_index"],
            start_ts=d["start_ts"],
            end_ts=d["end_ts"],
            rows=d["rows"],
            drift_share=d["drift_share"],
            features=tuple(FeatureDrift.from_dict(f) for f in d["features"]),
            prediction=None if pred is None else FeatureDrift.from_dict(pred),
            violations=d["violations"],
            performance=tuple(_perf_of(p) for p in d["performance"]),
            estimated=tuple(_perf_of(p) for p in d["estimated"]),
            labelled_rows=d["labelled_rows"],
            lineage=None if lineage is None else ModelLineage.from_dict(lineage),
        )


@dataclass(frozen=True, slots=True)
class MonitorStatus:
    """One monitor's status document."""

    HISTORY: ClassVar[int] = HISTORY  # windows per version a status reads (build_status)
    name: str
    deployment: str
    model: str | None  # None: the deployment's model could not be found yet
    window: JsonDict  # the spec's window ({"rows": n} or {"duration": "10m"})
    generation: int
    created_at: float
    rows: int = 0  # prediction rows ingested
    labels: int = 0  # feedback rows read
    last_tick_at: float | None = None  # when a tick last committed
    error: str | None = None  # why the last tick failed, or which versions it could not read
    versions: tuple[VersionStatus, ...] = ()
    firing: tuple[AlertView, ...] = ()
    resolved: tuple[AlertView, ...] = ()  # newest first

    @property
    def windows(self) -> int:
        return sum(v.windows for v in self.versions)

    @property
    def last_window_at(self) -> float | None:
        ends = [v.end_ts for v in self.versions if v.end_ts is not None]
        return max(ends) if ends else None

    def to_dict(self) -> JsonDict:
        return {
            "name": self.name,
            "deployment": self.deployment,
            "model": self.model,
            "window": self.window,
            "generation": self.generation,
            "created_at": self.created_at,
            "rows": self.rows,
            "labels": self.labels,
            "windows": self.windows,
            "last_tick_at": self.last_tick_at,
            "last_window_at": self.last_window_at,
            "error": self.error,
            "versions": [v.to_dict() for v in self.versions],
            "firing": [a.to_dict() for a in self.firing],
            "resolved": [a.to_dict() for a in self.resolved],
        }

    @classmethod
    def from_dict(cls, d: Any) -> MonitorStatus:
        return cls(
            name=d["name"],
            deployment=d["deployment"],
            model=d["model"],
            window=d["window"],
            generation=d["generation"],
            created_at=d["created_at"],
            rows=d["rows"],
            labels=d["labels"],
            last_tick_at=d["last_tick_at"],
            error=d["error"],
            versions=tuple(VersionStatus.from_dict(v) for v in d["versions"]),
            firing=tuple(AlertView.from_dict(a) for a in d["firing"]),
            resolved=tuple(AlertView.from_dict(a) for a in d["resolved"]),
        )


def build_status(
    stored: StoredMonitor,
    state: MonitorState,
    recent: Mapping[str, Sequence[WindowResult]],
    alerts: Sequence[StoredAlert],
    *,
    model: str | None,
    lineage: Mapping[str, ModelLineage] | None = None,
    error: str | None = None,
) -> MonitorStatus:
    """The status of ``stored`` from its committed ``state``, the ``recent`` windows of each
    version (oldest first, the last :data:`HISTORY` are used) and its alert events."""
    lineage = lineage or {}
    known = set(recent) | set(_dict(state.state.get("versions")))
    versions = tuple(
        _version(v, list(recent.get(v, ()))[-HISTORY:], lineage.get(v))
        for v in sorted(known, key=_version_key)
    )
    latest: dict[tuple[str, str], StoredAlert] = {}
    for a in alerts:  # oldest first: the last event of a rule and version is where it stands
        latest[(a.event.rule, a.event.version)] = a
    firing = tuple(AlertView.of(a) for a in latest.values() if a.event.state == "firing")
    resolved = [AlertView.of(a) for a in alerts if a.event.state == "resolved"]
    return MonitorStatus(
        name=stored.spec.name,
        deployment=stored.spec.deployment,
        model=model,
        window=stored.spec.window.to_doc(),
        generation=stored.generation,
        created_at=stored.created_at,
        rows=_count(state.state.get("rows")),
        labels=_count(state.state.get("labels")),
        last_tick_at=state.updated_at,
        error=error,
        versions=versions,
        firing=tuple(sorted(firing, key=lambda a: a.id)),
        resolved=tuple(reversed(resolved))[:RESOLVED],
    )


def _version(
    version: str, windows: list[WindowResult], lineage: ModelLineage | None
) -> VersionStatus:
    if not windows:
        return VersionStatus(version, 0, lineage=lineage)
    last = windows[-1]
    features = tuple(FeatureDrift.of(f, windows, "feature") for f in last.features)
    prediction = None
    if last.prediction is not None:
        prediction = FeatureDrift.of(last.prediction, windows, "prediction")
    return VersionStatus(
        version=version,
        windows=last.index + 1,
        last_index=last.index,
        start_ts=last.start_ts,
        end_ts=last.end_ts,
        rows=last.rows,
        drift_share=last.drift_share,
        features=features,
        prediction=prediction,
        violations=last.errors,
        performance=last.performance,
        estimated=last.estimated,
        labelled_rows=last.labelled_rows,
        lineage=lineage,
    )


def _version_key(v: str) -> tuple[int, int | str]:
    return (0, int(v)) if v.isdigit() else (1, v)


def _dict(x: object) -> Mapping[str, object]:
    return x if isinstance(x, Mapping) else {}


def _count(x: object) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


def _finite(x: float | None) -> float | None:
    return None if x is None or x != x or x in (float("inf"), float("-inf")) else float(x)
