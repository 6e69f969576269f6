"""The Prometheus provider against a small real HTTP server speaking Prometheus' query API."""

from __future__ import annotations

import math
from typing import Any

import pytest
from tests.deploy.analysis.json_server import json_server

from loopline.deploy.analysis import (
    AnalysisTemplate,
    MeasureContext,
    Metric,
    RevisionModel,
    provider_for,
)
from loopline.errors import BackendError

T0 = 1_700_000_000.0
CTX = MeasureContext("taxi", RevisionModel("new1", "taxi", "2"), None, None, None, T0, T0 + 60)


def metric(address: str, query: str, **extra: Any) -> Metric:
    return AnalysisTemplate.from_dict({
        "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
        "spec": {"metrics": [{"name": "m", "provider": {
            "prometheus": {"address": address, "query": query, **extra}}}]},
    }).metrics[0]  # fmt: skip


def ok(kind: str, result: Any) -> tuple[int, Any]:
    return 200, {"status": "success", "data": {"resultType": kind, "result": result}}


def series(*values: str) -> list[dict[str, Any]]:
    return [{"metric": {"pod": f"p{i}"}, "value": [T0, v]} for i, v in enumerate(values)]


QUERIES: dict[str, tuple[int, Any]] = {
    "scalar(up)": ok("scalar", [T0, "0.97"]),
    "scalar(nan)": ok("scalar", [T0, "NaN"]),
    "rate(errors[5m])": ok("vector", series("0.01", "0.02")),
    "absent": ok("vector", []),
    "odd": ok("vector", series("NaN", "+Inf", "-Inf")),
    "sum(requests)": ok("vector", series("312.7")),
    "range[5m]": ok("matrix", [{"metric": {}, "values": [[T0, "1"]]}]),
    "broken": (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}),
    "text": (200, "<html>proxy</html>"),
    "weird": ok("vector", [{"metric": {}}]),
}


def route(query: dict[str, str]) -> tuple[int, Any]:
    return QUERIES[query["query"]]


def measure(server_url: str, query: str, **extra: Any) -> Any:
    m = metric(server_url, query, **extra)
    return provider_for(m).measure(m, CTX)


def test_a_scalar_is_one_number_and_one_sample() -> None:
    with json_server({"/api/v1/query": route}) as server:
        out = measure(server.url, "scalar(up)")
    assert (out.value, out.samples) == (0.97, 1)
    assert server.requests == [("/api/v1/query", {"query": "scalar(up)"})]


def test_a_vector_is_one_number_per_series_and_as_many_samples() -> None:
    with json_server({"/api/v1/query": route}) as server:
        out = measure(server.url, "rate(errors[5m])")
        empty = measure(server.url, "absent")
        odd = measure(server.url, "odd")
    assert (out.value, out.samples) == ([0.01, 0.02], 2)
    assert (empty.value, empty.samples) == ([], 0)
    assert math.isnan(odd.value[0]) and odd.value[1:] == [math.inf, -math.inf]


def test_samples_query_sets_the_sample_size() -> None:
    with json_server({"/api/v1/query": route}) as server:
        out = measure(server.url, "scalar(up)", samplesQuery="sum(requests)")
        none = measure(server.url, "scalar(up)", samplesQuery="absent")
        nan = measure(server.url, "scalar(up)", samplesQuery="scalar(nan)")
    assert (out.value, out.samples) == (0.97, 312)
    assert none.samples == 0 and nan.samples == 0


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("broken", r"Prometheus at http://127.0.0.1:\d+ \(query 'broken'\) answered 400: "
                   "parse error at char 3"),
        ("range[5m]", r"\(query 'range\[5m\]'\) returned a matrix result; use an instant query"),
        ("text", r"\(query 'text'\) answered 200 with a body that is not JSON"),
        ("weird", r"\(query 'weird'\) returned a malformed vector"),
    ],
)  # fmt: skip
def test_errors_name_the_address_and_the_query(query: str, match: str) -> None:
    with json_server({"/api/v1/query": route}) as server, pytest.raises(BackendError, match=match):
        measure(server.url, query)


def test_a_samples_query_with_several_series_is_refused() -> None:
    with json_server({"/api/v1/query": route}) as server, pytest.raises(
        BackendError, match=r"samplesQuery 'rate\(errors\[5m\]\)' .* returned 2 series"
    ):
        measure(server.url, "scalar(up)", samplesQuery="rate(errors[5m])")


def test_an_unreachable_prometheus_is_a_backend_error() -> None:
    with json_server({}) as server:
        url = server.url
    with pytest.raises(BackendError, match=rf"Prometheus at {url} \(query 'up'\) did not answer"):
        measure(url, "up", timeout="2s")
