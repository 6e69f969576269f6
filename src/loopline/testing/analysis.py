"""Fakes for analysis: metric providers that answer what a test scripts."""

from __future__ import annotations

from loopline.deploy.analysis import (
    MeasureContext,
    MeasurementOutcome,
    Metric,
    MetricProvider,
)
from loopline.errors import BackendError


class ScriptedProviders(MetricProvider):
    """Answers every metric from ``values``: metric name → ``(value, samples)``.

    Use it as the ``providers`` factory (``ScriptedProviders(...)`` is callable with a
    metric and returns itself). A metric missing from ``values`` raises BackendError, which
    the run records as an Error measurement. ``calls`` counts measurements per metric.
    """

    def __init__(self, values: dict[str, tuple[float | None, int]]) -> None:
        self.values = dict(values)
        self.calls: dict[str, int] = {}

    def __call__(self, metric: Metric) -> MetricProvider:
        return self

    def measure(self, metric: Metric, context: MeasureContext) -> MeasurementOutcome:
        self.calls[metric.name] = self.calls.get(metric.name, 0) + 1
        if metric.name not in self.values:
            raise BackendError(f"No scripted value for metric {metric.name!r}.")
        value, samples = self.values[metric.name]
        return MeasurementOutcome(value, samples)
