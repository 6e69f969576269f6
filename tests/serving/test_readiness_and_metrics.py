"""Readiness gates on warm-up; Prometheus metrics count requests, batches and shedding."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from loopline.bundle import infer_signature, load_model, save_model
from loopline.serving import ServedModel


def test_model_whose_warm_up_fails_is_never_ready(
    models: Any, serve_models: Any, tmp_path: Path
) -> None:
    f = models.frame
    strict = make_pipeline(
        ColumnTransformer([("c", OneHotEncoder(), ["city"])]), LogisticRegression()
    ).fit(f[["city"]], f.fare > 50)
    # no input example: the synthetic warm-up row (city="") is an unknown category
    save_model(strict, tmp_path / "m", signature=infer_signature(f[["city"]], f.fare > 50))
    served = [
        ServedModel("strict", "1", load_model(tmp_path / "m")),
        ServedModel("lr", "1", models.lr),
    ]
    with serve_models(served) as s, httpx.Client(base_url=s.url) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").status_code == 503
        strict = c.get("/v2/models/strict/ready").json()
        assert (strict["name"], strict["ready"]) == ("strict", False)
        assert c.get("/v2/models/lr/ready").status_code == 200
        body = {"inputs": [{"name": "city", "shape": [1], "datatype": "BYTES", "data": ["nice"]}]}
        r = c.post("/v2/models/strict/infer", json=body)
        assert r.status_code == 503 and "is not ready" in r.json()["error"]
        assert r.headers["retry-after"] == "1"
        assert 'loopline_model_ready{model="strict",version="1"} 0' in c.get("/metrics").text


def _value(text: str, pattern: str) -> float:
    m = re.search(re.escape(pattern) + r" ([0-9.e+-]+)", text)
    assert m, f"{pattern} not in metrics"
    return float(m.group(1))


def test_metrics_count_requests_latency_and_batches(
    client: httpx.Client, models: Any, v2_body: Any
) -> None:
    before = client.get("/metrics").text
    for _ in range(3):
        client.post("/v2/models/rf/infer", json=v2_body(models.x[:2]))
    client.post("/v2/models/rf/infer", json={"inputs": []})
    text = client.get("/metrics").text
    assert "# TYPE loopline_request_duration_seconds histogram" in text
    key = 'loopline_requests_total{model="rf",version="1",protocol="v2",code="200"}'
    assert _value(text, key) - (_value(before, key) if key in before else 0) == 3
    assert (
        _value(text, 'loopline_requests_total{model="rf",version="1",protocol="v2",code="400"}')
        >= 1
    )
    assert _value(text, 'loopline_batch_size_rows_count{model="rf",version="1"}') >= 3
    assert _value(text, 'loopline_batch_queue_delay_seconds_count{model="rf",version="1"}') >= 3
    calls = _value(text, 'loopline_batch_duration_seconds_count{model="rf",version="1"}')
    assert calls == _value(text, 'loopline_batch_size_rows_count{model="rf",version="1"}')
    assert _value(text, 'loopline_batch_duration_seconds_sum{model="rf",version="1"}') > 0
    assert _value(text, 'loopline_requests_in_flight{model="rf",version="1"}') == 0
    assert 'loopline_request_duration_seconds_bucket{model="rf",version="1",le="+Inf"}' in text
