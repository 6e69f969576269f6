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
from loopline.deploy.analysis.providers.prometheus import PrometheusProvider
from loopline.deploy.analysis.providers.router import AgreementProvider, RouterMetricProvider
from loopline.deploy.analysis.template import Metric

_PROVIDERS: dict[type, MetricProvider] = {
    RouterQuery: RouterMetricProvider(),
    AgreementQuery: AgreementProvider(),
    PrometheusQuery: PrometheusProvider(),
}


def provider_for(metric: Metric) -> MetricProvider:
    """The provider that measures ``metric`` (by the kind of its ``provider:`` block).

    The log-reading providers (Polars, the data package) are imported on first use, so the
    sync loop and the CLI do not pay for them unless a template reads prediction logs.
    """
    kind = type(metric.provider)
    if kind not in _PROVIDERS and kind in (DriftQuery, AccuracyQuery):
        from loopline.deploy.analysis.providers.logs import (
            AccuracyProvider,
            PredictionDriftProvider,
        )

        _PROVIDERS[DriftQuery] = PredictionDriftProvider()
        _PROVIDERS[AccuracyQuery] = AccuracyProvider()
    return _PROVIDERS[kind]
