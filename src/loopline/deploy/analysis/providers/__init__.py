"""Metric providers: router figures, mirrored agreement, prediction drift, online accuracy
and Prometheus queries, behind one :class:`MetricProvider` contract.

The log-reading providers are imported on first use (they need Polars and the data package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.deploy.analysis.providers.logs import AccuracyProvider, PredictionDriftProvider

from loopline.deploy.analysis.providers.base import MeasureContext, MetricProvider, RevisionModel
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


def __getattr__(name: str) -> Any:
    if name in ("AccuracyProvider", "PredictionDriftProvider"):
        return getattr(importlib.import_module("loopline.deploy.analysis.providers.logs"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
