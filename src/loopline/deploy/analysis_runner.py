"""Takes the measurements a deployment's analysis runs need, off the sync loop.

The runs live in the deployment status (``status.rollout.analysisRuns``); which metric is due
when is decided by :func:`~loopline.deploy.analysis.due_metrics` (pure). Providers do I/O
(router stats, prediction logs, Prometheus), so with an executor each sweep of a run runs on
a worker thread: the sync that finds it due submits it, a later sync records the result. A
result is recorded only onto the very run it was taken from: if the controller terminated
or replaced the run meanwhile, the late answer is dropped. Without an executor (tests, the
simulator) sweeps run inline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path

from loopline.deploy.analysis import (
    AnalysisRun,
    MeasureContext,
    Metric,
    MetricProvider,
    RevisionModel,
    due_metrics,
    measure_due,
    provider_for,
)
from loopline.deploy.deployment import Deployment
from loopline.deploy.revision import Revision
from loopline.deploy.rollout_state import RolloutState
from loopline.errors import InvalidInputError
from loopline.types import ModelRef

log = logging.getLogger(__name__)


class AnalysisRunner:
    """Measures due metrics of every running analysis run.

    Args:
        providers: the provider for a metric (default: the built-in ones).
        log_directory: where replicas write prediction logs (None: logging unavailable).
        executor: runs sweeps in the background; None runs them inline.
    """

    def __init__(
        self,
        *,
        providers: Callable[[Metric], MetricProvider] = provider_for,
        log_directory: Path | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.providers = providers
        self.log_directory = log_directory
        self.executor = executor
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], tuple[AnalysisRun, Future[AnalysisRun]]] = {}

    def advance(self, d: Deployment, revisions: list[Revision], now: float) -> RolloutState | None:
        """The deployment's rollout state with new measurements recorded (None: unchanged)."""
        state = d.status.rollout
        if state is None or not state.analysis_runs:
            return None
        changed = False
        for run in state.analysis_runs:
            updated = self._advance_run(d, revisions, run, now)
            if updated is not None and updated != run:
                state = state.with_run(updated)
                changed = True
        return state if changed else None

    def forget(self, name: str) -> None:
        """Drop pending sweeps of a deleted deployment."""
        with self._lock:
            for key in [k for k in self._pending if k[0] == name]:
                del self._pending[key]

    def _advance_run(
        self, d: Deployment, revisions: list[Revision], run: AnalysisRun, now: float
    ) -> AnalysisRun | None:
        key = (d.name, run.name)
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None:
                taken_from, future = pending
                if not future.done():
                    return None
                del self._pending[key]
                if taken_from == run:
                    try:
                        return future.result()
                    except Exception:
                        log.exception("Measuring analysis run %r failed.", run.name)
                        return None
                # the run changed meanwhile (terminated, replaced): the answer is stale
        if run.completed or run.terminated or not due_metrics(run, now):
            return None
        try:
            context = self._context(d, revisions, run, now)
        except InvalidInputError as exc:
            log.warning("Analysis run %r cannot be measured: %s", run.name, exc)
            return None
        if self.executor is None:
            return measure_due(run, context, now, self.providers)
        future = self.executor.submit(measure_due, run, context, now, self.providers)
        with self._lock:
            self._pending[key] = (run, future)
        return None

    def _context(
        self, d: Deployment, revisions: list[Revision], run: AnalysisRun, now: float
    ) -> MeasureContext:
        by_hash = {r.hash: r for r in revisions}
        canary = _side(by_hash.get(run.canary), run.canary)
        stable = None if run.stable is None else _side(by_hash.get(run.stable), run.stable)
        return MeasureContext(
            deployment=d.name,
            canary=canary,
            stable=stable,
            admin_port=None if d.router is None else d.router.admin_port,
            log_directory=self.log_directory,
            window_start=min(run.started_at, now),
            window_end=now,
        )


def _side(revision: Revision | None, hash: str) -> RevisionModel:
    """The revision with the model name and version its prediction logs are written under."""
    if revision is None:
        return RevisionModel(hash, "", "")
    ref = ModelRef.parse(revision.template.model)
    version = "" if ref.version is None else str(ref.version)
    return RevisionModel(hash, ref.name, version)



