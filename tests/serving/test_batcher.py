"""Adaptive batching: callers get their own rows; overload is refused, not queued forever."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from loopline.bundle import Batch
from loopline.serving import AdaptiveBatcher, BatchingOptions, Overloaded


def test_concurrent_callers_each_get_their_own_rows(models: Any) -> None:
    model = models.rf
    sizes: list[int] = []
    batcher = AdaptiveBatcher(
        model.predict,
        BatchingOptions(max_batch_size=64),
        on_batch=lambda rows, delays: sizes.append(rows),
    )
    rng = np.random.default_rng(1)
    requests = [models.x[rng.integers(0, len(models.x), n)] for n in rng.integers(1, 6, 120)]

    async def main() -> list[dict[str, np.ndarray]]:
        return await asyncio.gather(*(batcher.submit({"input": r}, len(r)) for r in requests))

    results = asyncio.run(main())
    batcher.close()
    for req, got in zip(requests, results, strict=True):
        want = model.predict(req)
        np.testing.assert_array_equal(got["predict"], want["predict"])
        np.testing.assert_allclose(got["predict_proba"], want["predict_proba"])
    assert max(sizes) > 5, "concurrent requests should have been batched together"
    assert sum(sizes) == sum(len(r) for r in requests)


def test_a_bad_request_fails_alone_inside_a_batch(models: Any) -> None:
    model = models.tab
    batcher = AdaptiveBatcher(model.predict, BatchingOptions())
    good = {
        "age": np.array([30], dtype=np.int64),
        "fare": np.array([1.0]),
        "city": np.array(["nice"], dtype=object),
    }
    bad = {**good, "city": np.array(["atlantis"], dtype=object)}

    async def main() -> list[Any]:
        return await asyncio.gather(
            batcher.submit(good, 1),
            batcher.submit(bad, 1),
            batcher.submit(good, 1),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    batcher.close()
    assert isinstance(results[1], ValueError)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)


def _slow(seconds: float, started: threading.Event | None = None) -> Any:
    def run(batch: Batch) -> dict[str, np.ndarray]:
        if started is not None:
            started.set()
        time.sleep(seconds)
        n = len(next(iter(batch.values())))
        return {"predict": np.arange(n)}

    return run


def test_full_queue_is_refused_with_retry_after() -> None:
    batcher = AdaptiveBatcher(_slow(0.2), BatchingOptions(max_queue_rows=4, max_latency_ms=10_000))
    shed: list[str] = []
    batcher._on_shed = shed.append
    one = {"x": np.zeros(1)}

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(batcher.submit(one, 1) for _ in range(10)), return_exceptions=True
        )

    results = asyncio.run(main())
    batcher.close()
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert len(refused) == 6
    assert all(r.retry_after >= 1 and r.reason == "queue_full" for r in refused)
    assert shed == ["queue_full"] * 6
    with pytest.raises(Overloaded, match="its limit is 4"):
        raise refused[0]


def test_requests_projected_past_max_latency_are_shed() -> None:
    batcher = AdaptiveBatcher(_slow(0.05), BatchingOptions(max_batch_size=1, max_latency_ms=120))
    one = {"x": np.zeros(1)}

    async def main() -> list[Any]:
        await batcher.submit(one, 1)  # teach the latency model: ~50 ms per batch
        await batcher.submit(one, 1)
        return await asyncio.gather(
            *(batcher.submit(one, 1) for _ in range(8)), return_exceptions=True
        )

    start = time.monotonic()
    results = asyncio.run(main())
    batcher.close()
    shed = [r for r in results if isinstance(r, Overloaded)]
    assert shed and all(r.reason == "latency" for r in shed)
    assert len(results) - len(shed) >= 1  # the head of the queue is always served
    assert time.monotonic() - start < 3.0  # refused at once, not after waiting


def test_batch_cap_follows_the_measured_latency() -> None:
    batcher = AdaptiveBatcher(_slow(0.0), BatchingOptions(max_batch_size=512, max_latency_ms=100))
    for n in range(1, 40):
        batcher.latency.record(n, 0.001 * n + 0.002)  # 1 ms per row + 2 ms per call
    assert 45 <= batcher.batch_cap() <= 50  # (50 ms budget - 2 ms) / 1 ms


def test_over_http_concurrent_requests_each_get_their_own_predictions(
    server: Any, models: Any
) -> None:
    import httpx

    rng = np.random.default_rng(7)
    picks = [rng.integers(0, len(models.x), int(n)) for n in rng.integers(1, 4, 48)]

    async def main() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            return await asyncio.gather(
                *(
                    c.post(
                        "/v2/models/rf/infer",
                        json={
                            "id": str(i),
                            "inputs": [
                                {
                                    "name": "input",
                                    "shape": [len(p), 30],
                                    "datatype": "FP64",
                                    "data": models.x[p].ravel().tolist(),
                                }
                            ],
                        },
                    )
                    for i, p in enumerate(picks)
                )
            )

    responses = asyncio.run(main())
    for i, (p, r) in enumerate(zip(picks, responses, strict=True)):
        body = r.json()
        assert r.status_code == 200 and body["id"] == str(i)
        out = {o["name"]: o for o in body["outputs"]}
        assert out["predict"]["data"] == models.rf.predict(models.x[p])["predict"].tolist()
        assert out["predict_proba"]["shape"] == [len(p), 2]
