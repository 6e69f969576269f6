"""measure_due: a run driven through real providers (HTTP on 127.0.0.1) on a fake clock."""

from __future__ import annotations

from typing import Any

from tests.deploy.analysis.json_server import json_server

import loopline.deploy.analysis as analysis
from loopline.deploy.analysis import (
    AnalysisPhase,
    AnalysisTemplate,
    MeasureContext,
    RevisionModel,
    RunKind,
    measure_due,
    next_due,
    start_run,
)

T0 = 1_700_000_000.0
CANARY, STABLE = RevisionModel("new1", "taxi", "2"), RevisionModel("old1", "taxi", "1")


def test_a_run_measures_through_its_providers_until_it_decides() -> None:
    state: dict[str, Any] = {"requests": 0, "error_rate": 0.0, "prom_ok": False}

    def stats(query: dict[str, str]) -> tuple[int, Any]:
        n = state["requests"]
        canary = {"label": "canary", "requests": n, "errors": 0, "rate": n / 60, "latency": None,
                  "inFlight": 0, "errorRate": state["error_rate"] if n else None}
        return 200, {"window": int(query["window"]), "held": 0, "heldTotal": 0, "mirror": {},
                     "revisions": {"new1": canary}}  # fmt: skip

    def prom(query: dict[str, str]) -> tuple[int, Any]:
        if not state["prom_ok"]:
            return 503, {"status": "error", "error": "overloaded"}
        return 200, {"status": "success", "data": {"resultType": "scalar", "result": [T0, "1"]}}

    with json_server({"/stats": stats, "/api/v1/query": prom}) as server:
        template = AnalysisTemplate.from_dict({
            "apiVersion": "loopline/v1", "kind": "AnalysisTemplate",
            "metadata": {"name": "taxi-errors"},
            "spec": {"metrics": [
                {"name": "error-rate", "interval": "30s", "count": 2, "minSampleSize": 100,
                 "successCondition": "result <= 0.01",
                 "provider": {"router": {"metric": "errorRate"}}},
                {"name": "up", "successCondition": "result == 1",
                 "provider": {"prometheus": {"address": server.url, "query": "scalar(up)"}}},
            ]},
        })  # fmt: skip
        run = start_run("taxi-2-step-1", RunKind.STEP, [template], canary="new1",
                        stable="old1", now=T0)  # fmt: skip
        now = T0
        while not run.completed and now < T0 + 600:
            ctx = MeasureContext("taxi", CANARY, STABLE, server.port, None, T0, now)
            state["requests"] = int(2 * (now - T0))  # 2 requests per second reach the canary
            state["prom_ok"] = now >= T0 + 15
            run = measure_due(run, ctx, now)
            due = next_due(run)
            now = max(now + 1, due if due is not None else now + 1)
    errors, up = run.result("error-rate"), run.result("up")
    assert run.phase is AnalysisPhase.SUCCESSFUL
    assert up.error == 2 and up.successful == 1  # failed at 0 s and 10 s, answered at 20 s
    assert up.measurements[-1].finished_at == T0 + 20
    assert "answered 503: overloaded" in up.measurements[0].message
    assert errors.successful == 2 and errors.measurements[0].samples == 100
    first, second = errors.measurements
    assert (first.started_at, first.finished_at) == (T0, T0 + 50)  # waited for 100 samples
    assert second.finished_at == T0 + 80 and run.finished_at == T0 + 80


def test_the_package_face_is_pinned() -> None:
    assert sorted(analysis.__all__) == sorted([
        "AccuracyMetric", "AccuracyQuery", "AgreementQuery", "AnalysisPhase", "AnalysisRun",
        "AnalysisTemplate", "Condition", "DriftMeasure", "DriftQuery", "MeasureContext",
        "Measurement", "MeasurementOutcome", "Metric", "MetricProvider", "MetricResult",
        "PrometheusQuery", "ProviderSpec", "RevisionModel", "RouterMetric", "RouterQuery",
        "RunKind", "Side", "assess_metric", "due_at", "due_metrics", "evaluate", "measure_due",
        "next_due", "provider_for", "record", "record_error", "start_run",
        "templates_from_yaml", "terminate",
    ])  # fmt: skip
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None
