"""Router metrics and mirrored agreement, read through the real RouterAdminClient: from a
small HTTP server serving the ``/stats`` document, and from a real router in front of real
fake-model-server processes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.deploy.analysis.json_server import json_server

from loopline.deploy.analysis import (
    AnalysisTemplate,
    MeasureContext,
    Metric,
    RevisionModel,
    provider_for,
)
from loopline.deploy.analysis.providers import AgreementProvider, RouterMetricProvider
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.traffic import Traffic
from loopline.errors import BackendError, InvalidInputError

T0 = 1_700_000_000.0
STATS: dict[str, Any] = {
    "deployment": "taxi",
    "window": 60,
    "revisions": {
        "new1": {"label": "canary", "requests": 400, "errors": 2, "rate": 6.5,
                 "errorRate": 0.005, "latency": {"p50": 0.01, "p90": 0.02, "p95": 0.03,
                                                 "p99": 0.08}, "inFlight": 1},
        "old1": {"label": "stable", "requests": 3600, "errors": 0, "rate": 60.0,
                 "errorRate": 0.0, "latency": {"p50": 0.011, "p90": 0.021, "p95": 0.031,
                                               "p99": 0.05}, "inFlight": 3},
        "idle": {"label": "", "requests": 0, "errors": 0, "rate": 0.0, "errorRate": None,
                 "latency": None, "inFlight": 0},
    },
    "mirror": {"new1": {"sent": 500, "compared": 480, "agreed": 470, "errors": 5, "dropped": 15}},
    "held": 0,
    "heldTotal": 0,
}  # fmt: skip


def metric(provider: dict[str, Any]) -> Metric:
    return AnalysisTemplate.from_dict({
        "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
        "spec": {"metrics": [{"name": "m", "provider": provider}]},
    }).metrics[0]  # fmt: skip


def context(port: int | None, *, canary: str = "new1", stable: str | None = "old1",
            seconds: float = 60.0) -> MeasureContext:  # fmt: skip
    return MeasureContext(
        deployment="taxi",
        canary=RevisionModel(canary, "taxi", "2"),
        stable=None if stable is None else RevisionModel(stable, "taxi", "1"),
        admin_port=port,
        log_directory=None,
        window_start=T0,
        window_end=T0 + seconds,
    )


def stats_route(doc: Any, status: int = 200) -> Callable[[dict[str, str]], tuple[int, Any]]:
    return lambda query: (status, doc)


@pytest.mark.parametrize(
    ("provider", "value", "samples"),
    [
        ({"router": {"metric": "requestRate"}}, 6.5, 400),
        ({"router": {"metric": "errorRate"}}, 0.005, 400),
        ({"router": {"metric": "latencyP50"}}, 0.01, 400),
        ({"router": {"metric": "latencyP90"}}, 0.02, 400),
        ({"router": {"metric": "latencyP95"}}, 0.03, 400),
        ({"router": {"metric": "latencyP99"}}, 0.08, 400),
        ({"router": {"metric": "latencyP99", "revision": "stable"}}, 0.05, 3600),
        ({"router": {"metric": "requestRate", "revision": "stable"}}, 60.0, 3600),
        ({"agreement": {}}, 470 / 480, 480),
    ],
)
def test_reads_each_router_figure_of_the_right_revision(
    provider: dict[str, Any], value: float, samples: int
) -> None:
    with json_server({"/stats": stats_route(STATS)}) as server:
        m = metric(provider)
        out = provider_for(m).measure(m, context(server.port))
    assert out.value == pytest.approx(value) and out.samples == samples


def test_asks_for_the_analysis_window_clamped_to_what_the_router_keeps() -> None:
    m = metric({"router": {"metric": "errorRate"}})
    with json_server({"/stats": stats_route(STATS)}) as server:
        for seconds in (0.0, 90.0, 7200.0):
            provider_for(m).measure(m, context(server.port, seconds=seconds))
    assert [q["window"] for _, q in server.requests] == ["1", "90", "600"]


def test_a_revision_without_requests_has_no_value_and_no_samples() -> None:
    with json_server({"/stats": stats_route(STATS)}) as server:
        for name in ("errorRate", "latencyP99", "requestRate"):
            m = metric({"router": {"metric": name}})
            idle = provider_for(m).measure(m, context(server.port, canary="idle"))
            assert idle.samples == 0 and idle.value in (None, 0.0)
            unseen = provider_for(m).measure(m, context(server.port, canary="brand-new"))
            assert (unseen.value, unseen.samples) == (None, 0)
        m = metric({"agreement": {}})
        nothing = provider_for(m).measure(m, context(server.port, canary="idle"))
    assert (nothing.value, nothing.samples) == (None, 0)


def test_no_compared_answers_yet_is_no_value() -> None:
    doc = {**STATS, "mirror": {"new1": {"sent": 3, "compared": 0, "agreed": 0, "errors": 0,
                                        "dropped": 3}}}  # fmt: skip
    m = metric({"agreement": {}})
    with json_server({"/stats": stats_route(doc)}) as server:
        out = AgreementProvider().measure(m, context(server.port))
    assert (out.value, out.samples) == (None, 0)


def test_the_stable_side_needs_a_stable_revision() -> None:
    m = metric({"router": {"metric": "errorRate", "revision": "stable"}})
    with json_server({"/stats": stats_route(STATS)}) as server, pytest.raises(
        InvalidInputError, match="has no stable revision"
    ):
        RouterMetricProvider().measure(m, context(server.port, stable=None))


def test_router_failures_are_backend_errors_naming_the_problem() -> None:
    m = metric({"router": {"metric": "errorRate"}})
    with pytest.raises(BackendError, match="has no router admin port"):
        RouterMetricProvider().measure(m, context(None))
    bad = {**STATS, "revisions": {"new1": {**STATS["revisions"]["new1"], "requests": "many"}}}
    with json_server({"/stats": stats_route(bad)}) as server, pytest.raises(
        BackendError, match=r"revisions.new1.requests is not a count: 'many'"
    ):
        RouterMetricProvider().measure(m, context(server.port))
    with json_server({"/stats": stats_route({"error": "window"}, 400)}) as server, pytest.raises(
        BackendError, match="answered 400"
    ):
        RouterMetricProvider().measure(m, context(server.port))
    with json_server({}) as server:
        port = server.port
    with pytest.raises(BackendError, match="did not answer"):
        RouterMetricProvider().measure(m, context(port))


# ---- a real router --------------------------------------------------------------------------

INFER = "/v2/models/m/infer"
BODY = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}


def test_measures_a_real_router_in_front_of_two_revisions(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    canary_port, _ = backend(id="canary")
    stable_port, _ = backend(id="stable", latency_ms=30)
    rt = router_thread()
    rt.admin.set_routes(RouteTable(
        (Backend("c", "127.0.0.1", canary_port, "new1"),
         Backend("s", "127.0.0.1", stable_port, "old1")),
        Traffic((("new1", 1), ("old1", 3))),
    ))  # fmt: skip
    with httpx.Client(base_url=f"http://127.0.0.1:{rt.port}") as c:
        for _ in range(40):
            assert c.post(INFER, json=BODY).status_code == 200
    ctx = context(rt.admin_port, seconds=30.0)
    errors = metric({"router": {"metric": "errorRate"}})
    p99 = metric({"router": {"metric": "latencyP99", "revision": "stable"}})
    rate = metric({"router": {"metric": "requestRate"}})
    e = provider_for(errors).measure(errors, ctx)
    assert (e.value, e.samples) == (0.0, 10)
    slow = provider_for(p99).measure(p99, ctx)
    assert slow.samples == 30 and slow.value is not None and 0.025 <= slow.value <= 5.0
    r = provider_for(rate).measure(rate, ctx)
    assert r.samples == 10 and isinstance(r.value, float) and math.isfinite(r.value)
    assert r.value > 0
