"""Prediction logs and feedback: Parquet segments the monitor reads with Polars."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from loopline.errors import InvalidInputError, NotFoundError
from loopline.serving import (
    LogOptions,
    ServedModel,
    ServerOptions,
    read_feedback,
    read_prediction_logs,
)
from loopline.serving.prediction_log import LogRecord, SegmentWriter


def _wait_for(fn: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def test_predictions_and_feedback_are_logged_and_joinable(
    models: Any, serve_models: Any, tmp_path: Path, v2_body: Any
) -> None:
    opts = ServerOptions(log=LogOptions(tmp_path, flush_seconds=0.1))
    served = [ServedModel("lr", "4", models.lr), ServedModel("tab", "1", models.tab)]
    with serve_models(served, opts) as s, httpx.Client(base_url=s.url) as c:
        r = c.post("/v2/models/lr/infer", json={**v2_body(models.x[:3]), "id": "a1"})
        assert r.status_code == 200
        c.post("/v2/models/lr/infer", json=v2_body(models.x[3:4]), headers={"x-request-id": "b2"})
        f = models.frame.head(2)
        c.post(
            "/v2/models/tab/infer",
            json={
                "inputs": [
                    {"name": "age", "shape": [2], "datatype": "INT64", "data": f.age.tolist()},
                    {"name": "fare", "shape": [2], "datatype": "FP64", "data": f.fare.tolist()},
                    {"name": "city", "shape": [2], "datatype": "BYTES", "data": f.city.tolist()},
                ]
            },
        )
        fb = c.post("/v2/models/lr/feedback", json={"request_id": "a1", "labels": [1, 0, 1]})
        assert fb.status_code == 200 and fb.json() == {"accepted": 3, "dropped": 0}
        many = {"feedback": [{"request_id": "b2", "label": 1}]}
        assert c.post("/v2/models/lr/versions/4/feedback", json=many).json()["accepted"] == 1
        bad = c.post("/v2/models/lr/feedback", json={"request_id": "a1", "labels": ["x"]})
        assert bad.status_code == 400 and "expects int64" in bad.json()["error"]
        _wait_for(lambda: len(read_feedback(tmp_path)) == 4)
    preds = read_prediction_logs(tmp_path, model="lr")
    assert preds.columns == ["request_id", "row", "ts", "model", "version", "inputs", "outputs"]
    assert preds["request_id"].to_list() == ["a1", "a1", "a1", "b2"]
    assert preds["row"].to_list() == [0, 1, 2, 0]
    assert preds["version"].unique().to_list() == ["4"]
    inputs = np.array(preds.unnest("inputs")["input"].to_list())
    np.testing.assert_allclose(inputs, models.x[:4])
    outs = preds.unnest("outputs")
    assert outs["predict"].to_list() == models.lr.predict(models.x[:4])["predict"].tolist()
    tab = read_prediction_logs(tmp_path, model="tab").unnest("inputs")
    assert tab["city"].to_list() == models.frame.city.head(2).tolist()
    labels = read_feedback(tmp_path)
    joined = preds.join(labels.select("request_id", "row", "label"), on=["request_id", "row"])
    assert joined["label"].to_list() == [1, 0, 1, 1]
    assert not list(tmp_path.rglob(".tmp-*"))


def test_sampling_rate_zero_logs_nothing(
    models: Any, serve_models: Any, tmp_path: Path, v2_body: Any
) -> None:
    opts = ServerOptions(log=LogOptions(tmp_path, sample_rate=0.0, flush_seconds=0.05))
    with (
        serve_models([ServedModel("lr", "1", models.lr)], opts) as s,
        httpx.Client(base_url=s.url) as c,
    ):
        for _ in range(5):
            assert c.post("/v2/models/lr/infer", json=v2_body(models.x[:1])).status_code == 200
    assert read_prediction_logs(tmp_path).is_empty()


def test_feedback_without_log_directory_is_404(client: httpx.Client) -> None:
    r = client.post("/v2/models/lr/feedback", json={"request_id": "a", "label": 1})
    assert r.status_code == 404 and "--log-dir" in r.json()["error"]


def test_full_buffer_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    writer = SegmentWriter(
        tmp_path,
        "predictions",
        LogOptions(tmp_path, buffer_rows=100, flush_seconds=3600),
        on_dropped=dropped.append,
    )
    writer.start()
    rec = LogRecord(
        "r",
        time.time(),
        "m",
        "1",
        10,
        {"inputs": {"x": np.zeros(10)}, "outputs": {"predict": np.ones(10)}},
    )
    # The writer flushes once an hour: an offer that waited for room would never return.
    accepted = sum(writer.offer(rec) for _ in range(10_000))
    assert accepted == 10 and writer.dropped == 99_900 and sum(dropped) == 99_900
    writer.close()
    assert len(read_prediction_logs(tmp_path)) == 100


def test_reader_rejects_missing_directory_and_mixed_schemas(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="No log directory"):
        read_prediction_logs(tmp_path / "nope")
    for model, col in (("a", "x"), ("b", "y")):
        w = SegmentWriter(tmp_path, "predictions", LogOptions(tmp_path))
        w.offer(
            LogRecord(
                "r",
                time.time(),
                model,
                "1",
                1,
                {"inputs": {col: np.zeros(1)}, "outputs": {"p": np.zeros(1)}},
            )
        )
        w.flush()
    both = read_prediction_logs(tmp_path)
    assert isinstance(both, pl.DataFrame)
    assert len(both) == 2
    assert len(read_prediction_logs(tmp_path, model="a")) == 1
    assert {"x", "y"} <= set(both.unnest("inputs").columns)  # structs unify across models


def test_the_buffer_is_bounded_in_bytes_so_a_few_huge_requests_are_dropped_and_counted(
    tmp_path: Path,
) -> None:
    dropped: list[int] = []
    writer = SegmentWriter(
        tmp_path,
        "predictions",
        LogOptions(tmp_path, buffer_bytes=4 << 20, flush_seconds=3600),
        on_dropped=dropped.append,
    )
    huge = LogRecord(  # one request of 1,000 rows × 128 float64 features: ~1 MiB of inputs
        "big",
        time.time(),
        "m",
        "1",
        1000,
        {"inputs": {"x": np.zeros((1000, 128))}, "outputs": {"predict": np.ones(1000)}},
    )
    accepted = [writer.offer(huge) for _ in range(10)]
    assert accepted == [True] * 4 + [False] * 6
    assert writer.dropped == 6000 and sum(dropped) == 6000
    assert writer.buffered_bytes <= 4 << 20
    writer.flush()
    assert writer.buffered_bytes == 0 and writer.offer(huge)


def test_string_columns_count_their_characters_against_the_byte_budget(tmp_path: Path) -> None:
    writer = SegmentWriter(
        tmp_path, "predictions", LogOptions(tmp_path, buffer_bytes=1 << 20, flush_seconds=3600)
    )
    text = np.array(["x" * (600 << 10)], dtype=object)  # 600 KiB behind one 8-byte pointer
    rec = LogRecord("s", time.time(), "m", "1", 1,
                    {"inputs": {"t": text}, "outputs": {"p": np.zeros(1)}})  # fmt: skip
    assert writer.offer(rec) and not writer.offer(rec)


def test_a_byte_budget_below_one_is_rejected_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="Log buffer_bytes 0 must be ≥ 1"):
        LogOptions(tmp_path, buffer_bytes=0)
