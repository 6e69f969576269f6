"""MonitorRunner: one tick = ingest what is new, close windows, evaluate rules, commit, alert.

::

    runner = MonitorRunner(spec, store, metadata, registry, artifacts, log_root)
    result = runner.tick(now)          # the control plane calls this every few seconds

A tick reads the state committed last (cursor, open windows, rule states, label rows), reads
the new segments — feedback first, so labels read in this tick join predictions read in this
tick — folds the predictions into windows per model version, closes the windows that are
complete, steps every rule over every closed window, and commits all of it in **one**
transaction with the new cursor. Only then are the alert events recorded in the metadata store
(outbox, :mod:`loopline.monitor.alerts`): a crash before the commit re-reads the same segments
next tick, a crash after it reads none of them again and records the pending alerts.

The reference of each version (:func:`~loopline.monitor.reference.find_reference`), its
calibrated thresholds and its CBPE estimator are derived once per process and cached; they
are deterministic, so a restarted runner derives the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.artifacts import ArtifactStore
from loopline.data import (
    Calibration,
    profile_table,
)
from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata import MetadataStore
from loopline.monitor import evaluate as ev
from loopline.monitor.alerts import record_alert
from loopline.monitor.cbpe import CBPE
from loopline.monitor.labels import LabelJoin, labelled
from loopline.monitor.log_source import LogSource, Predictions, Segment
from loopline.monitor.reference import (
    Reference,
    calibrate_reference,
    find_reference,
    fit_cbpe,
    positive_class,
    positive_index,
    round_size,
)
from loopline.monitor.rules import AlertEvent, RuleState, step
from loopline.monitor.spec import MonitorSpec, Task
from loopline.monitor.store import Commit, MonitorStore
from loopline.monitor.window_result import WindowResult
from loopline.monitor.windows import (
    DEFAULT_LATENESS_S,
    OpenWindow,
    VersionState,
    buckets,
    due,
    plan_duration,
    plan_rows,
    window_bounds,
)
from loopline.registry import ModelRegistry
from loopline.types import ArtifactId, JsonDict

if TYPE_CHECKING:
    from loopline.bundle import Trust

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did."""

    revision: int
    segments: int = 0  # segments consumed
    rows: int = 0  # prediction rows ingested
    labels: int = 0  # feedback rows read
    windows: tuple[WindowResult, ...] = ()
    alerts: tuple[AlertEvent, ...] = ()
    recorded: tuple[ArtifactId, ...] = ()  # Alert artifacts recorded by this tick
    errors: tuple[str, ...] = ()  # versions that could not be monitored, and why


@dataclass
class _Tick:
    versions: dict[str, VersionState]
    join: LabelJoin
    closed: list[WindowResult] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)


class MonitorRunner:
    """Runs one monitor. Not thread-safe: one runner (one thread) per monitor.

    ``trust`` is what loading a version's bundle for its reference may run (the operator's,
    from the composition root; None: loopline's built-in trust only).
    """

    def __init__(
        self,
        spec: MonitorSpec,
        store: MonitorStore,
        metadata: MetadataStore,
        registry: ModelRegistry,
        artifacts: ArtifactStore,
        log_root: Any,
        *,
        model: str | None = None,
        lateness: float = DEFAULT_LATENESS_S,
        find: Callable[..., Reference] = find_reference,
        trust: Trust | None = None,
    ) -> None:
        name = spec.model or model
        if name is None:
            raise InvalidInputError(
                f"Monitor {spec.name!r} names no model: set spec.model, or pass the model of "
                f"deployment {spec.deployment!r} as model=."
            )
        self.spec, self.store, self.metadata, self.registry = spec, store, metadata, registry
        self.artifacts, self.model, self.lateness = artifacts, name, lateness
        self.source = LogSource(log_root, name)
        self._find = find
        self.trust = trust
        self._references: dict[str, Reference] = {}
        self._calibrations: dict[tuple[str, int], Calibration] = {}
        self._cbpe: dict[str, CBPE | None] = {}

    # ---- the tick --------------------------------------------------------------------------

    def tick(self, now: float) -> TickResult:
        """Ingest, window, evaluate, commit, then record alerts. ``now``: epoch seconds."""
        saved = self.store.load_state(self.spec.name)
        numeric = self.spec.label.task is Task.REGRESSION
        stored = saved.state.get("versions")
        versions = {
            v: VersionState.from_dict(d)
            for v, d in (stored.items() if isinstance(stored, dict) else ())
        }
        t = _Tick(versions, LabelJoin.from_bytes(saved.blob, numeric))
        if saved.state and saved.state.get("window") != self.spec.window.to_doc():
            # The window changed: the open windows' partial rows are dropped, not mixed in.
            for vs in versions.values():
                vs.open = OpenWindow(index=vs.open.index + 1)
            t.join = LabelJoin(t.join.rows.clear(), t.join.pending)
        new, forgotten = self.source.pending(saved.consumed)
        consumed: set[str] = set()
        errors: list[str] = []
        rows = labels = 0
        for version, segs in _by_version(new, "feedback").items():
            fb = self.source.read_feedback(segs)
            t.join = t.join.add_feedback(version, fb)
            labels += fb.height
            consumed.update(s.path for s in segs)
        for version, segs in _by_version(new, "predictions").items():
            try:
                ref = self._reference(version)
            except (NotFoundError, InvalidInputError) as exc:
                errors.append(f"version {version}: {exc}")
                continue  # its segments stay unconsumed: read again once the reference exists
            preds = self.source.read_predictions(segs)
            self._ingest(t, version, ref, preds)
            rows += preds.rows
            consumed.update(s.path for s in segs)
        if self.spec.window.duration is not None:
            for version, vs in t.versions.items():
                if due(vs.open, self.spec.window.duration, now, self.lateness):
                    self._close(t, version, self._reference(version))
        state: JsonDict = {
            "window": self.spec.window.to_doc(),
            "versions": {v: s.to_dict() for v, s in t.versions.items()},
            "rows": _count(saved.state, "rows") + rows,
            "labels": _count(saved.state, "labels") + labels,
            "dropped_labels": _count(saved.state, "dropped_labels") + t.join.dropped,
        }
        commit = Commit(
            state,
            t.join.to_bytes(),
            frozenset(consumed),
            forgotten,
            tuple(t.closed),
            tuple(t.events),
        )
        revision = self.store.commit(
            self.spec.name, saved.revision, commit, now, keep_windows=self.spec.retention_windows
        )
        recorded = self.record_pending_alerts()
        return TickResult(
            revision,
            len(consumed),
            rows,
            labels,
            tuple(t.closed),
            tuple(t.events),
            recorded,
            tuple(errors),
        )

    def record_pending_alerts(self) -> tuple[ArtifactId, ...]:
        """Record the outbox's alert events in the metadata store (each exactly once)."""
        out = []
        for pending in self.store.alerts(self.spec.name, pending=True):
            event = pending.event
            try:
                ref = self._reference(event.version)
                model_id, sources = ref.model_artifact.id, ref.sources
            except (NotFoundError, InvalidInputError):
                resolved = self.registry.resolve(f"{event.model}/{event.version}")
                model_id, sources = resolved.artifact.id, ()
            artifact = record_alert(self.metadata, event, model_id, sources)
            self.store.mark_recorded(self.spec.name, pending.id, artifact)
            out.append(artifact)
        return tuple(out)

    # ---- windows ---------------------------------------------------------------------------

    def _ingest(self, t: _Tick, version: str, ref: Reference, preds: Predictions) -> None:
        vs = t.versions.setdefault(version, VersionState(OpenWindow(), {}))
        if self.spec.window.rows is not None:
            for piece in plan_rows(vs.open.rows, preds.rows, self.spec.window.rows):
                self._add(t, version, ref, preds.slice(piece.start, piece.length))
                if piece.closes:
                    self._close(t, version, ref)
            return
        duration = self.spec.window.duration
        assert duration is not None
        ts = preds.keys["ts"].to_numpy()
        start = vs.open.bucket if vs.open.bucket is not None else vs.next_bucket
        order, pieces = plan_duration(start, buckets(ts, duration))
        index = pl.Series(order)
        ordered = Predictions(
            *(
                f.select(pl.all().gather(index)) if f.width else f
                for f in (preds.keys, preds.inputs, preds.outputs)
            )
        )
        for piece in pieces:
            vs = t.versions[version]
            if vs.open.rows > 0 and vs.open.bucket != piece.bucket:
                self._close(t, version, ref)
                vs = t.versions[version]
            if vs.open.bucket != piece.bucket:
                vs.open = replace(vs.open, bucket=piece.bucket)
            self._add(t, version, ref, ordered.slice(piece.start, piece.length))

    def _add(self, t: _Tick, version: str, ref: Reference, part: Predictions) -> None:
        vs = t.versions[version]
        columns = [c for c in ref.features if c in part.inputs.columns]
        inputs = profile_table(part.inputs.select(columns), ref.profile)
        predict = part.outputs.get_column("predict") if "predict" in part.outputs.columns else None
        if predict is not None and isinstance(predict.dtype, pl.List | pl.Array | pl.Struct):
            predict = None  # a multi-output prediction has no one distribution to compare
        pred_profile = None
        if predict is not None:
            edges_from = ref.prediction or vs.prediction_reference or vs.open.prediction
            pred_profile = profile_table(pl.DataFrame({"predict": predict}), edges_from)
        ts = part.keys["ts"]
        before = vs.open.rows
        vs.open = vs.open.add(part.rows, float(ts.min()), float(ts.max()), inputs, pred_profile)  # type: ignore[arg-type]
        if predict is not None:
            t.join = t.join.add_predictions(
                version, vs.open.index, part.keys, predict, self._scores(ref, part.outputs), before
            )

    def _scores(self, ref: Reference, outputs: pl.DataFrame) -> pl.Series | None:
        index = self._positive_index(ref)
        if index is None or "predict_proba" not in outputs.columns:
            return None
        proba = outputs.get_column("predict_proba")
        if isinstance(proba.dtype, pl.Array):
            return proba.arr.get(index)
        return proba.list.get(index)

    def _positive(self, ref: Reference) -> str | None:
        return positive_class(ref, self.spec.label.positive_class)

    def _positive_index(self, ref: Reference) -> int | None:
        return positive_index(ref, self._positive(ref))

    def _close(self, t: _Tick, version: str, ref: Reference) -> None:
        vs = t.versions[version]
        window = vs.open
        if window.rows == 0 or window.inputs is None:
            return
        start, end = window_bounds(window, self.spec.window.duration)
        features = ev.drift(
            ref.profile, window.inputs, ref.schema, self._calibration(version, ref, window.rows)
        )
        prediction = None
        pref = ref.prediction or vs.prediction_reference
        if window.prediction is not None:
            if pref is None:
                vs.prediction_reference = window.prediction  # the first window is the reference
            else:
                prediction = ev.drift(pref, window.prediction, None, None)[0]
        t.join, rows = t.join.take(version, window.index)
        positive = self._positive(ref)
        scored = rows.filter(pl.col("score").is_not_null())
        estimated = ev.estimated(
            self._cbpe_for(version, ref, window.rows),
            scored["score"].to_numpy() if scored.height else None,
            scored["predict"].to_numpy(),
        )
        result = WindowResult(
            monitor=self.spec.name,
            model=self.model,
            version=version,
            index=window.index,
            start_ts=start,
            end_ts=end,
            rows=window.rows,
            features=features,
            prediction=prediction,
            violations=ev.violations(window.inputs, ref.schema, ref.features),
            skewed=ev.skewed(ref.profile, window.inputs, ref.schema),
            performance=ev.realised(labelled(rows), self.spec.label.task, positive),
            estimated=estimated,
            labelled_rows=int(rows["label"].is_not_null().sum()),
        )
        t.closed.append(result)
        for rule in self.spec.rules:
            state = vs.rules.get(rule.name, RuleState(rule.name, version))
            vs.rules[rule.name], events = step(rule, state, result)
            t.events.extend(events)
        vs.next_bucket = None if window.bucket is None else window.bucket + 1
        vs.open = window.next()

    # ---- per-version reference, calibration, CBPE (cached) ----------------------------------

    def _reference(self, version: str) -> Reference:
        ref = self._references.get(version)
        if ref is None:
            ref = self._find(
                self.metadata,
                self.artifacts,
                self.model,
                version,
                self.spec.features,
                registry=self.registry,
                trust=self.trust,
            )
            self._references[version] = ref
        return ref

    def _calibration(self, version: str, ref: Reference, rows: int) -> Calibration:
        """Thresholds calibrated on reference chunks of about ``rows`` rows (cached)."""
        size = rows if self.spec.window.rows is not None else round_size(rows)
        key = (version, size)
        if key not in self._calibrations:
            self._calibrations[key] = calibrate_reference(
                ref, size, self.spec.reference.false_alarm_rate, self.spec.reference.chunks
            )
        return self._calibrations[key]

    def _cbpe_for(self, version: str, ref: Reference, rows: int) -> CBPE | None:
        """The version's CBPE estimator, fitted once (None: not a binary classifier)."""
        if version not in self._cbpe:
            fitted = None
            if self.spec.label.task is Task.CLASSIFICATION:
                fitted = fit_cbpe(ref, self._positive(ref), self.spec.window.rows or rows)
            self._cbpe[version] = fitted
        return self._cbpe[version]


def _count(state: JsonDict, key: str) -> int:
    value = state.get(key)
    return value if isinstance(value, int) else 0


def _by_version(segments: list[Segment], stream: str) -> dict[str, list[Segment]]:
    out: dict[str, list[Segment]] = {}
    for s in segments:
        if s.stream == stream:
            out.setdefault(s.version, []).append(s)
    return out
