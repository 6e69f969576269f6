"""Metrics the deployment's router measures per revision: request rate, error rate, latency
quantiles, and the agreement of mirrored answers.

Both read ``RouterAdminClient(admin_port).stats(window)``, whose JSON is::

    {"window": s, "revisions": {hash: {"label", "requests", "errors", "rate",
      "errorRate" (null without requests), "latency": {"p50","p90","p95","p99"} | null,
      "inFlight"}}, "mirror": {hash: {"sent", "compared", "agreed", "errors", "dropped"}},
     "held": int, "heldTotal": int}

Latencies are seconds; rates are requests per second; ``errorRate`` is a share in [0, 1].
The router keeps a sliding window of at most ``MAX_WINDOW`` (600) seconds, so the window
asked for is the analysis window clamped to [1 s, 600 s]: a run longer than ten minutes
measures its last ten. The mirror counters are the canary revision's since the router
started (a canary is a new revision, so that is since it first received mirrored traffic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from loopline.deploy.analysis.measurement import MeasurementOutcome
from loopline.deploy.analysis.provider_spec import RouterMetric, RouterQuery, Side
from loopline.deploy.analysis.providers.base import MeasureContext, MetricProvider
from loopline.deploy.analysis.template import Metric
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.metrics import MAX_WINDOW
from loopline.errors import BackendError, InvalidInputError

_LATENCY = {
    RouterMetric.LATENCY_P50: "p50",
    RouterMetric.LATENCY_P90: "p90",
    RouterMetric.LATENCY_P95: "p95",
    RouterMetric.LATENCY_P99: "p99",
}


class StatsSource(Protocol):
    def stats(self, window: float) -> dict[str, Any]: ...


def _admin_client(port: int) -> StatsSource:
    return RouterAdminClient(port)


class _RouterReader(MetricProvider):
    def __init__(self, client: Callable[[int], StatsSource] = _admin_client) -> None:
        self._client = client

    def _stats(self, context: MeasureContext) -> Mapping[str, Any]:
        if context.admin_port is None:
            raise BackendError(
                f"Deployment {context.deployment!r} has no router admin port, so router "
                "metrics cannot be read; is its router running?"
            )
        window = min(float(MAX_WINDOW), max(1.0, context.window))
        stats = self._client(context.admin_port).stats(window)
        if not isinstance(stats, Mapping):
            raise BackendError(f"The router's stats are not a JSON object: {stats!r:.200}.")
        return stats


class RouterMetricProvider(_RouterReader):
    """``router: {metric, revision}``: one revision's figure; samples = its requests."""

    def measure(self, metric: Metric, context: MeasureContext) -> MeasurementOutcome:
        query = metric.provider
        assert isinstance(query, RouterQuery)
        return router_outcome(self._stats(context), query, context)


class AgreementProvider(_RouterReader):
    """``agreement: {}``: agreed / compared of the answers mirrored to the canary;
    samples = compared."""

    def measure(self, metric: Metric, context: MeasureContext) -> MeasurementOutcome:
        return agreement_outcome(self._stats(context), context)


def router_outcome(
    stats: Mapping[str, Any], query: RouterQuery, context: MeasureContext
) -> MeasurementOutcome:
    """The outcome of ``query`` in a stats document (pure)."""
    if query.revision is Side.CANARY:
        side = context.canary
    elif context.stable is not None:
        side = context.stable
    else:
        raise InvalidInputError(
            f"Metric reads router {query.metric.value} of the stable revision, but deployment "
            f"{context.deployment!r} has no stable revision in this analysis."
        )
    rev = _section(stats, "revisions").get(side.revision)
    if rev is None:  # the router has not seen this revision in the window
        return MeasurementOutcome(None, 0, f"The router saw no requests for {side.revision}.")
    requests = _count(rev, "requests", f"revisions.{side.revision}")
    if query.metric is RouterMetric.REQUEST_RATE:
        value = _number(rev, "rate", f"revisions.{side.revision}")
    elif query.metric is RouterMetric.ERROR_RATE:
        value = _number(rev, "errorRate", f"revisions.{side.revision}")
    else:
        latency = rev.get("latency")
        if latency is None:
            value = None
        elif isinstance(latency, Mapping):
            value = _number(latency, _LATENCY[query.metric], f"revisions.{side.revision}.latency")
        else:
            raise BackendError(f"The router's stats have a bad latency field: {latency!r:.200}.")
    return MeasurementOutcome(value, requests, f"{requests} requests to {side.revision}")


def agreement_outcome(stats: Mapping[str, Any], context: MeasureContext) -> MeasurementOutcome:
    """agreed / compared of the canary's mirror section (pure)."""
    rev = context.canary.revision
    mirror = _section(stats, "mirror").get(rev)
    if mirror is None:
        return MeasurementOutcome(None, 0, f"No requests were mirrored to {rev}.")
    compared = _count(mirror, "compared", f"mirror.{rev}")
    agreed = _count(mirror, "agreed", f"mirror.{rev}")
    value = agreed / compared if compared else None
    return MeasurementOutcome(value, compared, f"{agreed} of {compared} mirrored answers agreed")


def _section(stats: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    section = stats.get(key, {})
    if not isinstance(section, Mapping):
        raise BackendError(f"The router's stats field {key!r} is not an object: {section!r:.200}.")
    return section


def _count(d: Mapping[str, Any], key: str, where: str) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BackendError(f"The router's stats field {where}.{key} is not a count: {v!r}.")
    return v


def _number(d: Mapping[str, Any], key: str, where: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BackendError(f"The router's stats field {where}.{key} is not a number: {v!r}.")
    return float(v)
