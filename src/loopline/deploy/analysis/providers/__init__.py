"""Metric providers: router figures, mirrored agreement, prediction drift, online accuracy
and Prometheus queries, behind one :class:`MetricProvider` contract."""

from loopline.deploy.analysis.providers.base import MeasureContext, MetricProvider, RevisionModel
from loopline.deploy.analysis.providers.logs import AccuracyProvider, PredictionDriftProvider
from loopline.deploy.analysis.providers.prometheus import PrometheusProvider, query_prometheus
from loopline.deploy.analysis.providers.registry import provider_for
from loopline.deploy.analysis.providers.router import (
    AgreementProvider,
    RouterMetricProvider,
    agreement_outcome,
    router_outcome,
)

__all__ = [
    "AccuracyProvider",
    "AgreementProvider",
    "MeasureContext",
    "MetricProvider",
    "PredictionDriftProvider",
    "PrometheusProvider",
    "RevisionModel",
    "RouterMetricProvider",
    "agreement_outcome",
    "provider_for",
    "query_prometheus",
    "router_outcome",
]
