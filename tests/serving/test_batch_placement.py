"""Where the batcher runs a batch: on the event loop when the model call is cheap, else in the
thread (``runs_inline``), decided on what a call costs the loop, not on the wall time the loop
sees through the thread hop and the GIL."""

from __future__ import annotations

import asyncio
import threading
import time
from itertools import pairwise
from typing import Any

import numpy as np

from loopline.bundle import Batch
from loopline.serving.batcher import (
    AdaptiveBatcher,
    LatencyModel,
    record_loop_cost,
    runs_inline,
)
from loopline.serving.options import BatchingOptions

INLINE_BELOW_MS = 1.0


def simulate(calls: int, rows: int, cpu_s: float, wall_inline_s: float) -> list[bool]:
    """Where each of ``calls`` batches runs, as the batcher measures them: a call in the thread
    is charged its CPU time ``cpu_s``, a call on the loop the wall time ``wall_inline_s`` it
    held the loop. No clock: the costs are given."""
    cost = LatencyModel()
    placed = []
    for _ in range(calls):
        inline = runs_inline(cost, rows, INLINE_BELOW_MS)
        placed.append(inline)
        record_loop_cost(cost, rows, wall_inline_s if inline else cpu_s, INLINE_BELOW_MS)
    return placed


def test_a_cheap_model_runs_on_the_loop_although_the_thread_path_looks_slow_from_the_loop() -> (
    None
):
    # 0.2 ms of CPU per 16-row call; seen from the loop under load, each call in the thread
    # took 3 ms (the hop and the waits for the GIL while the loop parses requests)
    placed = simulate(calls=200, rows=16, cpu_s=0.0002, wall_inline_s=0.00025)
    assert placed[:4] == [False] * 4  # the first calls run in the thread while it learns
    assert all(placed[4:])

    seen_from_loop = LatencyModel()  # the old rule: the loop's wall time of a thread call
    for _ in range(200):
        assert not runs_inline(seen_from_loop, 16, INLINE_BELOW_MS)
        seen_from_loop.record(16, 0.003)


def test_a_model_that_burns_more_cpu_than_the_threshold_stays_in_the_thread() -> None:
    assert not any(simulate(calls=200, rows=16, cpu_s=0.005, wall_inline_s=0.005))


def test_a_model_that_waits_without_cpu_goes_back_to_the_thread_after_one_call_on_the_loop() -> (
    None
):
    # a call that sleeps 50 ms uses no CPU, so it looks cheap from the thread; the one call
    # that then runs on the loop is charged the 50 ms it held the loop
    placed = simulate(calls=400, rows=1, cpu_s=0.00001, wall_inline_s=0.05)
    on_loop = [i for i, inline in enumerate(placed) if inline]
    assert on_loop and all(not placed[i + 1] for i in on_loop if i + 1 < len(placed))
    # it is retried on the loop only once the cheap thread calls outweigh the 50 ms sample in
    # the fit (or it leaves the 64-call window): a stall every ~30 calls at most
    assert all(later - earlier >= 15 for earlier, later in pairwise(on_loop))
    assert len(on_loop) <= 400 // 30


def test_the_inline_threshold_is_compared_with_the_prediction_for_the_batchs_rows() -> None:
    cost = LatencyModel()
    for n in range(1, 33):
        cost.record(n, 0.00005 * n)  # 50 µs per row
    assert runs_inline(cost, 10, INLINE_BELOW_MS)  # 0.5 ms
    assert not runs_inline(cost, 30, INLINE_BELOW_MS)  # 1.5 ms


def _where(run_cpu_s: float) -> tuple[list[int], int]:
    """The threads a real batcher ran 40 sequential calls on, and the loop's thread."""
    threads: list[int] = []

    def run(batch: Batch) -> dict[str, np.ndarray[Any, Any]]:
        threads.append(threading.get_ident())
        t0 = time.thread_time()
        while time.thread_time() - t0 < run_cpu_s:  # burn CPU, as a model does
            pass
        return {"y": batch["x"] * 2}

    batcher = AdaptiveBatcher(run, BatchingOptions(inline_below_ms=INLINE_BELOW_MS))

    async def main() -> int:
        for _ in range(40):
            out = await batcher.submit({"x": np.ones(2)}, 2)
            assert out["y"].tolist() == [2.0, 2.0]
        return threading.get_ident()

    try:
        loop_thread = asyncio.run(main())
    finally:
        batcher.close()
    return threads, loop_thread


def test_a_real_batcher_runs_a_cheap_model_on_the_event_loop_after_learning_its_cost() -> None:
    threads, loop_thread = _where(0.0)
    assert all(t != loop_thread for t in threads[:4])
    # a call on the loop is charged its wall time: a rare preemption of the loop's thread
    # (a shared machine) may send one call back to the thread
    assert sum(t == loop_thread for t in threads[4:]) >= 0.75 * len(threads[4:])


def test_a_real_batcher_keeps_a_model_costing_5_ms_of_cpu_in_its_thread() -> None:
    threads, loop_thread = _where(0.005)
    assert all(t != loop_thread for t in threads)
