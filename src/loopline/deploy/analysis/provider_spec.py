"""A metric's ``provider:`` block: which numbers a measurement reads (exactly one kind).

=================  ==========================================================================
key                fields (defaults)
=================  ==========================================================================
``router``         ``metric`` requestRate | errorRate | latencyP50/P90/P95/P99;
                   ``revision`` canary | stable (canary)
``agreement``      none: share of mirrored requests where canary and stable answered the same
``predictionDrift``  ``measure`` jensenShannon | wasserstein | psi (jensenShannon);
                   ``output`` the logged output column (the first one)
``accuracy``       ``metric`` accuracy | rmse | mae (accuracy); ``output`` (the first one)
``prometheus``     ``address`` (http[s]://…), ``query``; ``samplesQuery`` (a query whose
                   value is the sample size; default: the number of series); ``timeout`` (10s)
=================  ==========================================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias
from urllib.parse import urlsplit

from loopline.deploy.analysis.fields import Fields, duration_out, invalid
from loopline.types import JsonDict


class RouterMetric(enum.StrEnum):
    """A per-revision figure the router exports."""

    REQUEST_RATE = "requestRate"
    ERROR_RATE = "errorRate"
    LATENCY_P50 = "latencyP50"
    LATENCY_P90 = "latencyP90"
    LATENCY_P95 = "latencyP95"
    LATENCY_P99 = "latencyP99"


class Side(enum.StrEnum):
    """Which revision of the analysis a figure is about."""

    CANARY = "canary"
    STABLE = "stable"


class DriftMeasure(enum.StrEnum):
    """A distance of the data package, in its unit (``loopline.data.distances``)."""

    JENSEN_SHANNON = "jensenShannon"  # base 2, in [0, 1]
    WASSERSTEIN = "wasserstein"  # W1 / the stable side's std (numeric outputs only)
    PSI = "psi"  # nats, ε = 1e-4


class AccuracyMetric(enum.StrEnum):
    """How predictions are scored against feedback labels."""

    ACCURACY = "accuracy"  # share of exact matches (classifiers)
    RMSE = "rmse"  # root mean squared error (regressors)
    MAE = "mae"  # mean absolute error (regressors)


@dataclass(frozen=True, slots=True)
class RouterQuery:
    key: ClassVar[str] = "router"
    metric: RouterMetric
    revision: Side = Side.CANARY

    def to_dict(self) -> JsonDict:
        return {"metric": self.metric.value, "revision": self.revision.value}


@dataclass(frozen=True, slots=True)
class AgreementQuery:
    key: ClassVar[str] = "agreement"

    def to_dict(self) -> JsonDict:
        return {}


@dataclass(frozen=True, slots=True)
class DriftQuery:
    key: ClassVar[str] = "predictionDrift"
    measure: DriftMeasure = DriftMeasure.JENSEN_SHANNON
    output: str | None = None

    def to_dict(self) -> JsonDict:
        out: JsonDict = {"measure": self.measure.value}
        if self.output is not None:
            out["output"] = self.output
        return out


@dataclass(frozen=True, slots=True)
class AccuracyQuery:
    key: ClassVar[str] = "accuracy"
    metric: AccuracyMetric = AccuracyMetric.ACCURACY
    output: str | None = None

    def to_dict(self) -> JsonDict:
        out: JsonDict = {"metric": self.metric.value}
        if self.output is not None:
            out["output"] = self.output
        return out


@dataclass(frozen=True, slots=True)
class PrometheusQuery:
    key: ClassVar[str] = "prometheus"
    address: str
    query: str
    samples_query: str | None = None
    timeout: float = 10.0

    def to_dict(self) -> JsonDict:
        out: JsonDict = {"address": self.address, "query": self.query}
        if self.samples_query is not None:
            out["samplesQuery"] = self.samples_query
        out["timeout"] = duration_out(self.timeout)
        return out


ProviderSpec: TypeAlias = (
    RouterQuery | AgreementQuery | DriftQuery | AccuracyQuery | PrometheusQuery
)
KINDS = ("router", "agreement", "predictionDrift", "accuracy", "prometheus")


def provider_to_dict(spec: ProviderSpec) -> JsonDict:
    """``{<kind>: {...}}``, the inverse of :func:`parse_provider`."""
    return {spec.key: spec.to_dict()}


def parse_provider(data: Any, path: str) -> ProviderSpec:
    """Read ``provider:``; raises InvalidDefinitionError naming the field."""
    top = Fields(data, path, set(KINDS))
    if len(top.data) != 1:
        raise invalid(path, dict(top.data), f"must name exactly one of {', '.join(KINDS)}")
    (kind, body), = top.data.items()
    sub = top.sub(kind)
    if kind == "router":
        f = Fields(body, sub, {"metric", "revision"})
        return RouterQuery(
            f.choice("metric", RouterMetric), f.choice("revision", Side, Side.CANARY)
        )
    if kind == "agreement":
        Fields({} if body is None else body, sub, set())
        return AgreementQuery()
    if kind == "predictionDrift":
        f = Fields({} if body is None else body, sub, {"measure", "output"})
        return DriftQuery(
            f.choice("measure", DriftMeasure, DriftMeasure.JENSEN_SHANNON), f.text("output")
        )
    if kind == "accuracy":
        f = Fields({} if body is None else body, sub, {"metric", "output"})
        return AccuracyQuery(
            f.choice("metric", AccuracyMetric, AccuracyMetric.ACCURACY), f.text("output")
        )
    f = Fields(body, sub, {"address", "query", "samplesQuery", "timeout"})
    address = f.text("address")
    parts = urlsplit(address or "")
    if address is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(f.sub("address"), address, "must be an http:// or https:// URL")
    query = f.text("query")
    if query is None:
        raise invalid(f.sub("query"), None, "must be a PromQL query")
    timeout = f.duration("timeout", 10.0)
    assert timeout is not None
    if timeout <= 0:
        raise invalid(f.sub("timeout"), f.data.get("timeout"), "must be longer than zero")
    return PrometheusQuery(address.rstrip("/"), query, f.text("samplesQuery"), timeout)
