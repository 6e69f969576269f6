"""Every 503 the model server sends says why in a JSON body and when to retry (Retry-After):
readiness while a model is not ready or the server shuts down, inference while a model is not
ready or the batch queue is full, feedback while its log cannot take it, and a connection
beyond the cap."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from loopline.bundle import infer_signature, load_model, save_model
from loopline.serving import BatchingOptions, HttpLimits, LogOptions, ServedModel, ServerOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter
from loopline.testing.artifacts import wait_for


def _unavailable(response: httpx.Response) -> str:
    """The reason of a 503 that carries both a JSON reason and a Retry-After."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    reason = body.get("error") or body.get("message")
    assert isinstance(reason, str) and reason, body
    return reason


def _strict(models: Any, tmp_path: Path) -> ServedModel:
    """A model whose warm-up fails: it is never ready."""
    f = models.frame
    strict = make_pipeline(
        ColumnTransformer([("c", OneHotEncoder(), ["city"])]), LogisticRegression()
    ).fit(f[["city"]], f.fare > 50)
    save_model(strict, tmp_path / "m", signature=infer_signature(f[["city"]], f.fare > 50))
    return ServedModel("strict", "1", load_model(tmp_path / "m"))


def test_readiness_of_a_model_that_failed_its_warm_up_is_503_naming_it(
    models: Any, serve_models: Any, tmp_path: Path
) -> None:
    served = [_strict(models, tmp_path), ServedModel("lr", "1", models.lr)]
    with serve_models(served) as s, httpx.Client(base_url=s.url) as c:
        for path in ("/v2/health/ready", "/ping", "/health"):
            reason = _unavailable(c.get(path))
            assert "Model 'strict' version 1 is not ready" in reason, path
        ready = c.get("/v2/models/strict/ready")
        assert "failed its warm-up or is still loading" in _unavailable(ready)
        assert ready.json()["ready"] is False and ready.json()["name"] == "strict"
        assert c.get("/v2/models/lr/ready").status_code == 200
        body = {"inputs": [{"name": "city", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}
        assert "is not ready" in _unavailable(c.post("/v2/models/strict/infer", json=body))


def test_readiness_of_a_server_shutting_down_is_503_saying_so(
    models: Any, serve_models: Any
) -> None:
    with serve_models([ServedModel("lr", "1", models.lr)]) as s, httpx.Client(base_url=s.url) as c:
        assert c.get("/v2/health/ready").status_code == 200
        s.app.begin_shutdown()
        assert "shutting down" in _unavailable(c.get("/v2/health/ready"))
        assert "shutting down" in _unavailable(c.get("/ping"))
        assert "shutting down" in _unavailable(c.get("/v2/models/lr/ready"))


def test_inference_beyond_the_batch_queue_is_503_with_the_queue_named(
    models: Any, serve_models: Any, v2_body: Any
) -> None:
    class Slow:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def predict(self, batch: Any) -> Any:
            time.sleep(0.3)
            return self._inner.predict(batch)

    served = [ServedModel("lr", "1", Slow(models.lr), batching=True)]  # type: ignore[arg-type]
    options = ServerOptions(batching=BatchingOptions(max_queue_rows=2, max_latency_ms=60_000))
    answers: list[httpx.Response] = []
    with serve_models(served, options) as s:

        def send() -> None:
            with httpx.Client(base_url=s.url, timeout=30) as c:
                answers.append(c.post("/v2/models/lr/infer", json=v2_body(models.x[:2])))

        threads = [threading.Thread(target=send) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    refused = [a for a in answers if a.status_code != 200]
    assert len(answers) == 6 and refused
    for answer in refused:
        assert "queue" in _unavailable(answer)


def _feedback_server(models: Any, serve_models: Any, log: LogOptions) -> Any:
    return serve_models([ServedModel("lr", "1", models.lr)], ServerOptions(log=log))


def test_feedback_beyond_the_log_buffer_is_503_naming_the_buffer_and_what_was_logged(
    models: Any, serve_models: Any, tmp_path: Path
) -> None:
    log = LogOptions(tmp_path, buffer_rows=3, flush_rows=10**6, flush_seconds=3600)
    with _feedback_server(models, serve_models, log) as s, httpx.Client(base_url=s.url) as c:
        first = c.post("/v2/models/lr/feedback", json={"request_id": "a", "labels": [1, 0]})
        assert first.status_code == 200 and first.json() == {"accepted": 2, "dropped": 0}
        items = [{"request_id": "b", "label": 1}, {"request_id": "c", "labels": [0, 1]}]
        full = c.post("/v2/models/lr/feedback", json={"feedback": items})
        reason = _unavailable(full)
        assert "feedback[1] and after were not logged" in reason
        assert "the feedback log's buffer holds 3 of its 3 rows" in reason
        assert full.json()["accepted"] == 1 and full.json()["dropped"] == 2


def test_feedback_that_alone_passes_the_log_buffer_is_413_asking_for_smaller_parts(
    models: Any, serve_models: Any, tmp_path: Path
) -> None:
    log = LogOptions(tmp_path, buffer_rows=3, flush_seconds=3600)
    with _feedback_server(models, serve_models, log) as s, httpx.Client(base_url=s.url) as c:
        big = c.post("/v2/models/lr/feedback", json={"request_id": "a", "labels": [1, 0, 1, 0]})
    assert big.status_code == 413
    assert "more than the feedback log buffers at most (3 rows" in big.json()["error"]
    assert "smaller" in big.json()["error"]


def test_feedback_after_its_log_failed_to_write_is_503_naming_the_failure(
    models: Any, serve_models: Any, tmp_path: Path
) -> None:
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / "model=lr").write_text("a file where a folder must go")
    log = LogOptions(tmp_path, flush_rows=1, flush_seconds=60)
    with _feedback_server(models, serve_models, log) as s, httpx.Client(base_url=s.url) as c:
        sent = c.post("/v2/models/lr/feedback", json={"request_id": "a", "label": 1})
        assert sent.status_code == 200  # buffered; its write fails off the request path
        wait_for(lambda: s.app._feedback_log.dropped == 1, timeout=10, what="the failed write")
        again = c.post("/v2/models/lr/feedback", json={"request_id": "b", "label": 1})
        reason = _unavailable(again)
    assert "the last write of the feedback log failed" in reason
    assert again.headers["retry-after"] == "60"


def test_a_closed_log_writer_refuses_records_saying_the_server_is_shutting_down(
    tmp_path: Path,
) -> None:
    writer = SegmentWriter(tmp_path, "feedback", LogOptions(tmp_path))
    writer.start()
    writer.close()
    label = np.asarray([1], dtype=np.int64)
    record = LogRecord("a", 1.7e9, "lr", "1", 1, {"label": {"label": label}})
    refusal = writer.admit(record)
    assert refusal is not None and refusal.retry_after == 1
    assert refusal.reason == "the feedback log is closed: the server is shutting down"
    assert writer.dropped == 1


def test_a_connection_beyond_the_cap_is_503_with_a_json_reason(
    models: Any, serve_models: Any
) -> None:
    options = ServerOptions(http=HttpLimits(max_connections=1, idle_timeout=60.0))
    with serve_models([ServedModel("lr", "1", models.lr)], options) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=20) as held:
            held.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            assert held.recv(65536).startswith(b"HTTP/1.1 200")
            with socket.create_connection(("127.0.0.1", s.port), timeout=20) as extra:
                answer = b""
                while chunk := extra.recv(65536):
                    answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503") and b"\r\nretry-after: 1" in head
    assert "1 open connections, its limit" in orjson.loads(body)["error"]
