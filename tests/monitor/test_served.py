"""The contract end to end: a real model server (HTTP, V2 protocol) logs predictions and
feedback; the monitor reads exactly those rows, joins the labels and measures the windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from loopline.monitor import InMemoryMonitorStore, MonitorRunner, MonitorSpec
from loopline.serving import LogOptions, ServedModel, ServerOptions
from loopline.testing.artifacts import wait_for
from tests.monitor.conftest import Trained
from tests.serving.conftest import serve_models

TYPES = {"distance": "FP64", "hour": "INT64"}


def infer_body(rows: pd.DataFrame, request_id: str) -> dict[str, Any]:
    inputs = [
        {
            "name": c,
            "shape": [len(rows)],
            "datatype": TYPES.get(c, "BYTES"),
            "data": rows[c].tolist(),
        }
        for c in ["distance", "company", "local", "dow", "month", "hour"]
    ]
    return {"id": request_id, "inputs": inputs}


def test_what_a_real_server_logs_is_what_the_monitor_counts(
    trained: Trained, tmp_path: Path
) -> None:
    logs = tmp_path / "predictions"
    options = ServerOptions(log=LogOptions(logs, flush_seconds=0.1))
    rows = trained.data.sample(600, random_state=21).reset_index(drop=True)
    with (
        serve_models([ServedModel("taxi", "1", trained.model)], options) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for i in range(30):
            part = rows.iloc[i * 20 : (i + 1) * 20]
            answer = client.post("/v2/models/taxi/infer", json=infer_body(part, f"q{i}"))
            assert answer.status_code == 200, answer.text
            fb = client.post(
                "/v2/models/taxi/feedback",
                json={"request_id": f"q{i}", "labels": part["tip"].tolist()},
            )
            assert fb.status_code == 200, fb.text

        def logged() -> bool:
            found = list(logs.rglob("*.parquet"))
            return sum(1 for p in found if "feedback" in p.parts) > 0 and len(found) >= 2

        wait_for(logged, timeout=20, what="the server's first segments")
    spec = MonitorSpec.from_dict(
        {
            "apiVersion": "loopline/v1",
            "kind": "Monitor",
            "metadata": {"name": "served"},
            "spec": {
                "deployment": "taxi",
                "window": {"rows": 200},
                "label": {"task": "classification", "positiveClass": "yes"},
            },
        }
    )
    store = InMemoryMonitorStore()
    store.apply(spec, 0.0)
    runner = MonitorRunner(
        spec, store, trained.metadata, trained.registry, trained.artifacts, logs, model="taxi"
    )
    result = runner.tick(2e9)
    assert result.errors == () and result.rows == 600 and result.labels == 600
    assert [(w.index, w.rows, w.labelled_rows) for w in result.windows] == [
        (0, 200, 200),
        (1, 200, 200),
        (2, 200, 200),
    ]
    for w in result.windows:
        accuracy = w.metric("accuracy")
        assert accuracy is not None and accuracy.n == 200
        assert w.violations == ()
    assert runner.tick(2e9 + 1).rows == 0
