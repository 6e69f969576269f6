"""Which provider reads a metric: one stateless instance per ``provider:`` kind."""

from __future__ import annotations

from loopline.deploy.analysis.provider_spec import (
    AccuracyQuery,
    AgreementQuery,
    DriftQuery,
    PrometheusQuery,
    RouterQuery,
)
from loopline.deploy.analysis.providers.base import MetricProvider
from loopline.deploy.analysis.providers.logs import AccuracyProvider, PredictionDriftProvider
from loopline.deploy.analysis.providers.prometheus import PrometheusProvider
from loopline.deploy.analysis.providers.router import AgreementProvider, RouterMetricProvider
from loopline.deploy.analysis.template import Metric

_PROVIDERS: dict[type, MetricProvider] = {
    RouterQuery: RouterMetricProvider(),
    AgreementQuery: AgreementProvider(),
    DriftQuery: PredictionDriftProvider(),
    AccuracyQuery: AccuracyProvider(),
    PrometheusQuery: PrometheusProvider(),
}


def provider_for(metric: Metric) -> MetricProvider:
    """The provider that measures ``metric`` (by the kind of its ``provider:`` block)."""
    return _PROVIDERS[type(metric.provider)]
