"""One sweep of a run: measure every due metric through its provider and record the answers.

This is the only function of the package that does I/O (through the providers); the
decisions stay in :mod:`.run`.
"""

from __future__ import annotations

from collections.abc import Callable

from loopline.deploy.analysis.providers import MeasureContext, MetricProvider, provider_for
from loopline.deploy.analysis.run import AnalysisRun, due_metrics, record, record_error
from loopline.deploy.analysis.template import Metric
from loopline.errors import LooplineError


def measure_due(
    run: AnalysisRun,
    context: MeasureContext,
    now: float,
    providers: Callable[[Metric], MetricProvider] = provider_for,
) -> AnalysisRun:
    """``run`` after measuring each metric due at ``now``; a provider's loopline error is
    recorded as an Error measurement with its message. Stops early once the run completes."""
    for name in due_metrics(run, now):
        if run.completed:
            break
        metric = run.metric(name)
        try:
            outcome = providers(metric).measure(metric, context)
        except LooplineError as exc:
            run = record_error(run, name, str(exc), now)
            continue
        run = record(run, name, outcome, now)
    return run
