"""``prometheus: {address, query, samplesQuery, timeout}``: an instant query over HTTP.

``GET {address}/api/v1/query?query=…`` (Prometheus' HTTP API). A ``scalar`` result is one
number (samples 1); a ``vector`` is one number per series (samples = the number of series,
so an empty vector waits for data instead of failing). With ``samplesQuery`` the sample size
is that query's value instead (e.g. ``sum(increase(http_requests_total{…}[5m]))``).
Values are Prometheus' strings: ``"NaN"``, ``"+Inf"`` and ``"-Inf"`` become floats.
"""

from __future__ import annotations

import math
from typing import Any

import httpx

from loopline.deploy.analysis.measurement import MeasurementOutcome
from loopline.deploy.analysis.provider_spec import PrometheusQuery
from loopline.deploy.analysis.providers.base import MeasureContext, MetricProvider
from loopline.deploy.analysis.template import Metric
from loopline.errors import BackendError


class PrometheusProvider(MetricProvider):
    """Runs the metric's PromQL query (and its samples query) against ``address``."""

    def measure(self, metric: Metric, context: MeasureContext) -> MeasurementOutcome:
        spec = metric.provider
        assert isinstance(spec, PrometheusQuery)
        value = query_prometheus(spec.address, spec.query, spec.timeout)
        if spec.samples_query is None:
            samples = 1 if isinstance(value, float) else len(value)
        else:
            raw = query_prometheus(spec.address, spec.samples_query, spec.timeout)
            if isinstance(raw, list):
                if len(raw) > 1:
                    raise BackendError(
                        f"samplesQuery {spec.samples_query!r} at {spec.address} returned "
                        f"{len(raw)} series; it must return one number (wrap it in sum(…))."
                    )
                raw = raw[0] if raw else 0.0
            samples = int(raw) if math.isfinite(raw) and raw > 0 else 0
        return MeasurementOutcome(value, samples, f"query {spec.query!r} at {spec.address}")


def query_prometheus(address: str, query: str, timeout: float) -> float | list[float]:
    """One instant query: a float for a scalar result, a list of floats for a vector.

    Raises:
        BackendError: no answer, an error answer, or a result type other than scalar/vector;
            the message names the address and the query.
    """
    where = f"Prometheus at {address} (query {query!r})"
    try:
        r = httpx.get(f"{address}/api/v1/query", params={"query": query}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise BackendError(f"{where} did not answer: {exc!r}.") from exc
    try:
        body: Any = r.json()
    except ValueError:
        raise BackendError(f"{where} answered {r.status_code} with a body that is not JSON: "
                           f"{r.text[:200]!r}.") from None  # fmt: skip
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise BackendError(f"{where} answered {r.status_code}: {error or str(body)[:200]}.")
    data = body.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    try:
        if kind == "scalar":
            return _sample(result)
        if kind == "vector" and isinstance(result, list):
            return [_sample(s["value"]) for s in result]
    except (KeyError, TypeError, ValueError, IndexError):
        raise BackendError(f"{where} returned a malformed {kind}: {str(result)[:200]}.") from None
    raise BackendError(
        f"{where} returned a {kind} result; use an instant query that returns a scalar or a "
        "vector (a range selector like [5m] needs a function such as rate(…))."
    )


def _sample(pair: Any) -> float:
    """``[timestamp, "value"]`` → the value as a float."""
    _, text = pair
    if not isinstance(text, str):
        raise ValueError(text)
    return float(text.replace("Inf", "inf"))
