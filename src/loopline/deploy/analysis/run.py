"""An analysis run and the pure functions that drive it (no I/O, no clock: ``now`` is given).

The caller (a rollout's reconcile) loops::

    run = start_run("taxi-7-step-2", RunKind.STEP, [template], canary="ab12", stable="cd34",
                    now=now)
    for name in due_metrics(run, now):          # interval / count / initialDelay honoured
        run = record(run, name, provider.measure(...), now)   # or record_error(...)
    run.phase                                   # Successful → next step; Failed/Error → abort;
                                                # Inconclusive → pause
    run = terminate(run, now)                   # background runs, when the rollout ends

Timing copies Argo's ``generateMetricTasks``: the first measurement after ``initialDelay``,
the next ``interval`` after the last one finished, 10 s after an Error; none once ``count``
is reached. Run phase copies ``assessRunStatus``: Running until every metric completed; as
soon as a non-dry-run metric is Failed, Error or Inconclusive the run is *terminating*: no
more measurements, unfinished metrics are assessed as terminating, and the run takes the
worst phase (Successful < Running < Pending < Inconclusive < Error < Failed). Dry-run
metrics are measured and assessed but never decide the run.

Sample size (loopline): an outcome with fewer samples than ``minSampleSize`` is not a
measurement. It starts (or continues) a wait, polled every 10 s; an outcome that arrives once
the wait has lasted ``sampleTimeout`` is recorded as an Inconclusive measurement, and a metric
terminated while it waits with nothing measured yet is Inconclusive too: too little traffic
is never Successful (Error measurements do not count as evidence).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from loopline.deploy.analysis.assess import (
    assess_metric,
    count_measurement,
    evaluate,
    limits_breached,
)
from loopline.deploy.analysis.measurement import (
    AnalysisPhase,
    Measurement,
    MeasurementOutcome,
    MetricResult,
    worse,
)
from loopline.deploy.analysis.template import AnalysisTemplate, Metric, parse_metric
from loopline.deploy.duration import format_duration
from loopline.errors import ConflictError, InvalidDefinitionError, NotFoundError
from loopline.types import JsonDict

P = AnalysisPhase
ERROR_RETRY_INTERVAL = 10.0  # Argo's DefaultErrorRetryInterval
SAMPLE_POLL_INTERVAL = 10.0  # how often a metric waiting for samples asks again


class RunKind(enum.StrEnum):
    """Where a run comes from (Argo's CanaryStep, CanaryBackground, BlueGreen pre/post)."""

    STEP = "step"
    BACKGROUND = "background"
    PRE_PROMOTION = "prePromotion"
    POST_PROMOTION = "postPromotion"


@dataclass(frozen=True, slots=True)
class AnalysisRun:
    """One run of one or more templates against a canary (new) and a stable revision.

    ``metrics`` is a frozen copy of the templates' metrics, so editing a template never
    changes a run in progress. Times are seconds since the epoch.
    """

    name: str
    kind: RunKind
    templates: tuple[str, ...]
    metrics: tuple[Metric, ...]
    canary: str
    stable: str | None
    started_at: float
    results: tuple[MetricResult, ...]
    phase: AnalysisPhase = P.RUNNING
    message: str = ""
    terminated: bool = False
    finished_at: float | None = None

    @property
    def completed(self) -> bool:
        return self.phase.completed

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise NotFoundError(
            f"Analysis run {self.name!r} has no metric {name!r}; its metrics are "
            f"{[m.name for m in self.metrics]}."
        )

    def result(self, name: str) -> MetricResult:
        self.metric(name)
        return next(r for r in self.results if r.name == name)

    def to_json(self) -> JsonDict:
        return {
            "name": self.name, "kind": self.kind.value, "templates": list(self.templates),
            "metrics": [m.to_dict() for m in self.metrics], "canary": self.canary,
            "stable": self.stable, "startedAt": self.started_at, "phase": self.phase.value,
            "message": self.message, "terminated": self.terminated,
            "finishedAt": self.finished_at,
            "metricResults": [r.to_json() for r in self.results],
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: Any) -> AnalysisRun:
        """Inverse of :meth:`to_json`; the metrics are validated again."""
        return cls(
            name=str(d["name"]), kind=RunKind(d["kind"]),
            templates=tuple(str(t) for t in d["templates"]),
            metrics=tuple(parse_metric(m, f"analysisRun.metrics[{i}]")
                          for i, m in enumerate(d["metrics"])),
            canary=str(d["canary"]), stable=None if d["stable"] is None else str(d["stable"]),
            started_at=float(d["startedAt"]), phase=AnalysisPhase(d["phase"]),
            message=str(d["message"]), terminated=bool(d["terminated"]),
            finished_at=None if d["finishedAt"] is None else float(d["finishedAt"]),
            results=tuple(MetricResult.from_json(r) for r in d["metricResults"]),
        )  # fmt: skip


def start_run(
    name: str,
    kind: RunKind,
    templates: Sequence[AnalysisTemplate],
    *,
    canary: str,
    stable: str | None,
    now: float,
) -> AnalysisRun:
    """A new Running run of every metric of ``templates``.

    Raises:
        InvalidDefinitionError: no metrics; two templates define the same metric name; or a
            metric with an interval and no count (it measures until terminated) in a run that
            is not a background run (nothing would ever end it).
    """
    metrics: list[Metric] = []
    owner: dict[str, str] = {}
    for t in templates:
        for m in t.metrics:
            if m.name in owner:
                raise InvalidDefinitionError(
                    f"Analysis run {name!r}: metric {m.name!r} is defined by both template "
                    f"{owner[m.name]!r} and template {t.name!r}; rename one of them."
                )
            owner[m.name] = t.name
            if m.effective_count is None and kind is not RunKind.BACKGROUND:
                raise InvalidDefinitionError(
                    f"Analysis run {name!r} ({kind.value}): metric {m.name!r} of template "
                    f"{t.name!r} has an interval and no count, so it measures until the run "
                    "is terminated, which only happens to background runs; give it a count."
                )
            metrics.append(m)
    if not metrics:
        raise InvalidDefinitionError(f"Analysis run {name!r} has no metrics; name a template.")
    return AnalysisRun(
        name=name,
        kind=kind,
        templates=tuple(t.name for t in templates),
        metrics=tuple(metrics),
        canary=canary,
        stable=stable,
        started_at=now,
        results=tuple(MetricResult(m.name, dry_run=m.dry_run) for m in metrics),
    )


def due_at(run: AnalysisRun, name: str) -> float | None:
    """When metric ``name`` should next be measured; None: never again."""
    m, r = run.metric(name), run.result(name)
    if run.completed or run.terminated or r.phase.completed:
        return None
    if r.waiting_since is not None:
        polled = r.last_polled_at if r.last_polled_at is not None else r.waiting_since
        return min(polled + SAMPLE_POLL_INTERVAL, r.waiting_since + m.sample_timeout)
    last = r.last
    if last is None:
        return run.started_at + m.initial_delay
    count = m.effective_count
    if count is not None and r.count >= count:
        return None
    if last.phase is P.ERROR:
        return last.finished_at + ERROR_RETRY_INTERVAL
    if m.interval is None:
        return None
    return last.finished_at + m.interval


def due_metrics(run: AnalysisRun, now: float) -> tuple[str, ...]:
    """Names of the metrics to measure at ``now``, in template order."""
    out = []
    for m in run.metrics:
        at = due_at(run, m.name)
        if at is not None and now >= at:
            out.append(m.name)
    return tuple(out)


def next_due(run: AnalysisRun) -> float | None:
    """The earliest time any metric is due (when to requeue the run); None: nothing is."""
    times = [t for m in run.metrics if (t := due_at(run, m.name)) is not None]
    return min(times) if times else None


def record(run: AnalysisRun, name: str, outcome: MeasurementOutcome, now: float) -> AnalysisRun:
    """``run`` after the provider of metric ``name`` answered ``outcome`` at ``now``.

    Raises:
        NotFoundError: the run has no such metric.
        ConflictError: the run or the metric has already completed.
    """
    m, r = _open(run, name)
    r = replace(r, last_polled_at=now)
    if outcome.samples < m.min_sample_size:
        since = r.waiting_since if r.waiting_since is not None else now
        seen = f"{outcome.samples} of the {m.min_sample_size} samples it needs"
        if now - since < m.sample_timeout:
            r = replace(r, waiting_since=since, message=f"Waiting for samples: {seen} so far.")
            return _assess(_put(run, r), now)
        waited = format_duration(now - since)
        measurement = Measurement(P.INCONCLUSIVE, since, now, outcome.stored_value(),
                                  outcome.samples, f"Waited {waited} and saw only {seen}: "
                                  "too little traffic to decide.")  # fmt: skip
    else:
        phase, why = evaluate(m, outcome.stored_value())
        started = r.waiting_since if r.waiting_since is not None else now
        measurement = Measurement(phase, started, now, outcome.stored_value(), outcome.samples,
                                  why or outcome.message)  # fmt: skip
    r = count_measurement(replace(r, waiting_since=None), measurement, m.measurement_retention)
    return _assess(_put(run, r), now)


def record_error(run: AnalysisRun, name: str, message: str, now: float) -> AnalysisRun:
    """``run`` after the provider of metric ``name`` failed at ``now`` (an Error measurement;
    a sample wait in progress goes on)."""
    m, r = _open(run, name)
    measurement = Measurement(P.ERROR, now, now, None, 0, message)
    r = count_measurement(replace(r, last_polled_at=now), measurement, m.measurement_retention)
    return _assess(_put(run, r), now)


def terminate(run: AnalysisRun, now: float) -> AnalysisRun:
    """Stop ``run`` (a background run when its rollout ends, or any run on abort): no more
    measurements; metrics without a verdict are assessed as terminating (Successful unless
    they are still waiting for their first sample size). A completed run is returned as is."""
    if run.completed:
        return run
    return _assess(replace(run, terminated=True), now)


def _open(run: AnalysisRun, name: str) -> tuple[Metric, MetricResult]:
    m, r = run.metric(name), run.result(name)
    if run.completed or run.terminated:
        raise ConflictError(
            f"Analysis run {run.name!r} is {run.phase.value}"
            f"{' (terminated)' if run.terminated else ''}; it takes no more measurements."
        )
    if r.phase.completed:
        raise ConflictError(
            f"Metric {name!r} of analysis run {run.name!r} is already {r.phase.value}; "
            "it takes no more measurements."
        )
    return m, r


def _put(run: AnalysisRun, r: MetricResult) -> AnalysisRun:
    return replace(run, results=tuple(r if x.name == r.name else x for x in run.results))


def _waited_out(m: Metric, r: MetricResult, since: float, now: float) -> MetricResult:
    note = (f"Terminated after waiting {format_duration(now - since)} for {m.min_sample_size} "
            "samples: too little traffic to decide.")  # fmt: skip
    inconclusive = Measurement(P.INCONCLUSIVE, since, now, None, 0, note)
    return count_measurement(r, inconclusive, m.measurement_retention)


def _terminating(run: AnalysisRun) -> bool:
    bad = (P.FAILED, P.ERROR, P.INCONCLUSIVE)
    return run.terminated or any(r.phase in bad and not r.dry_run for r in run.results)


def _assess(run: AnalysisRun, now: float) -> AnalysisRun:
    """Re-assess every metric, then the run (Argo's ``assessRunStatus``)."""
    for _ in range(2):  # a metric turning Failed makes the run terminating: assess once more
        terminating = _terminating(run)
        results = []
        for m, r in zip(run.metrics, run.results, strict=True):
            since = r.waiting_since
            if terminating and not r.phase.completed and since is not None:
                r = replace(r, waiting_since=None)
                if r.count == 0:  # nothing but errors and waits: never Successful
                    r = _waited_out(m, r, since, now)
            phase = assess_metric(m, r, terminating)
            if phase is not r.phase:
                r = replace(r, phase=phase, message=r.last.message if r.last else r.message)
            results.append(r)
        run = replace(run, results=tuple(results))
    terminating = _terminating(run)
    worst: AnalysisPhase | None = None
    message = "Run Terminated" if run.terminated else ""
    for m, r in zip(run.metrics, run.results, strict=True):
        if not r.phase.completed or r.dry_run:
            continue
        if worst is None or worse(worst, r.phase) is not worst:
            worst = r.phase
            _, why = limits_breached(m, r)
            if why:
                message = f'Metric "{m.name}" assessed {r.phase.value} due to {why}'
                if r.message:
                    message += f': "Error Message: {r.message}"'
    everything = all(r.phase.completed for r in run.results)
    if all(r.dry_run for r in run.results) and everything:
        worst = P.SUCCESSFUL
    if terminating:
        phase = worst or P.SUCCESSFUL
    elif not everything or worst is None:
        phase, message = P.RUNNING, ""
    else:
        phase = worst
    finished = now if phase.completed and run.finished_at is None else run.finished_at
    return replace(run, phase=phase, message=message, finished_at=finished)
