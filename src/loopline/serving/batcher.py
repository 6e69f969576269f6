"""Adaptive batching: concurrent requests to one model run as one model call.

Policy (anchored on BentoML's CORK dispatcher, ``research/serving.md`` §b5, simplified where
a CPU server allows): a batch is dispatched as soon as the model is free, holding every
queued request up to a size cap — so batches grow exactly when requests arrive faster than
the model answers, and a lone request never waits for company. The cap is the largest batch
that the measured latency model ``d(n) = a·n + b`` (least squares over the last 64 batches)
finishes within half of ``max_latency_ms``, bounded by ``max_batch_size``. A request whose
projected completion (queue ahead of it, in batches, times ``d``) exceeds ``max_latency_ms``,
or that would push the queue past ``max_queue_rows``, is refused at once with
:class:`Overloaded` (→ 503 + Retry-After); a queued request that has waited ``max_latency_ms``
is shed. Each caller gets back only its own rows.

Where a batch runs (:func:`runs_inline`): on the event loop when what the model call costs the
loop, predicted for its rows by a second ``a·n + b`` fit, is under ``inline_below_ms``;
otherwise in one worker thread, so request parsing overlaps prediction. A call made in the
thread is measured by its own CPU time (``time.thread_time`` around the call, in the thread):
the wall time seen from the loop includes the hop to the thread and the waits for the GIL while
the loop parses, so under load a cheap model, once in the thread, measured above the threshold
for good. A call made on the loop is measured by the wall time it held the loop, so a model
that waits without using the CPU (I/O, sleeping) goes back to the thread.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.bundle import Batch
from loopline.errors import LooplineError
from loopline.serving.options import BatchingOptions

Outputs = dict[str, np.ndarray[Any, Any]]
RunFn = Callable[[Batch], Outputs]

_HISTORY = 64
_WINDOW_S = 1.0
_CORK_POLL_S = 0.0002
_MIN_CORK_S = 0.001


class Overloaded(LooplineError):
    """The batch queue is full or too slow; the client should retry after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int, reason: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


@dataclass(slots=True)
class _Item:
    batch: Batch
    rows: int
    future: asyncio.Future[Outputs]
    enqueued: float


class LatencyModel:
    """``d(n) = a·n + b`` seconds for a batch of ``n`` rows, fitted on recent batches."""

    def __init__(self) -> None:
        self.samples: deque[tuple[int, float]] = deque(maxlen=_HISTORY)
        self.a = 0.0
        self.b = 0.0
        self._since_fit = 0

    def record(self, rows: int, seconds: float, *, refit: bool = False) -> None:
        """Add a sample; the fit is redone every 8 samples (the first 8: each), or now."""
        self.samples.append((rows, seconds))
        self._since_fit += 1
        if refit or self._since_fit >= 8 or len(self.samples) <= 8:
            self._fit()

    def _fit(self) -> None:
        self._since_fit = 0
        n = np.array([s[0] for s in self.samples], dtype=np.float64)
        d = np.array([s[1] for s in self.samples], dtype=np.float64)
        if len(n) >= 2 and np.ptp(n) > 0:
            a, b = np.polyfit(n, d, 1)
            self.a, self.b = max(float(a), 0.0), max(float(b), 0.0)
            if self.b == 0.0:
                self.a = float(np.mean(d / n))
        else:
            self.a, self.b = 0.0, float(np.mean(d))

    def predict(self, rows: int) -> float:
        return self.a * rows + self.b


class AdaptiveBatcher:
    """Queue requests for one model and run them as batches (see module docstring).

    ``on_batch(rows, queue_delays)``, ``on_done(rows, seconds)`` (the model call's duration)
    and ``on_shed(reason)`` report to metrics.
    """

    def __init__(
        self,
        run: RunFn,
        options: BatchingOptions,
        *,
        on_batch: Callable[[int, list[float]], None] = lambda rows, delays: None,
        on_done: Callable[[int, float], None] = lambda rows, seconds: None,
        on_shed: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._run = run
        self._opts = options
        self._on_batch = on_batch
        self._on_done = on_done
        self._on_shed = on_shed
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._busy = False
        self._scheduled = False
        self._cork: asyncio.TimerHandle | None = None
        self._inside = 0  # requests submitted and not yet answered
        self._peak = (0, 0)  # peak of _inside in the previous and the current window
        self._window_start = 0.0
        self._inflight_started = 0.0
        self._inflight_rows = 0
        self.latency = LatencyModel()
        self.loop_cost = LatencyModel()  # seconds a call holds the event loop (see runs_inline)
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ sizing
    def batch_cap(self) -> int:
        """Rows per batch allowed by the latency model (≥ 1, ≤ max_batch_size)."""
        cap = self._opts.max_batch_size
        a, b = self.latency.a, self.latency.b
        budget = self._opts.max_latency_ms / 1000.0 / 2.0
        if a > 0:
            cap = min(cap, max(1, int((budget - b) / a)))
        return cap

    def projected_wait(self, extra_rows: int) -> float:
        """Seconds until a request of ``extra_rows`` rows enqueued now would be answered."""
        cap = self.batch_cap()
        remaining = 0.0
        if self._busy:
            elapsed = time.perf_counter() - self._inflight_started
            remaining = max(0.0, self.latency.predict(self._inflight_rows) - elapsed)
        batches = math.ceil((self._queued_rows + extra_rows) / cap)
        return remaining + batches * self.latency.predict(min(cap, self._queued_rows + extra_rows))

    # ------------------------------------------------------------------ submit
    async def submit(self, batch: Batch, rows: int) -> Outputs:
        """Queue ``batch`` (``rows`` rows) and return its own outputs.

        Raises:
            Overloaded: the queue is full or the projected wait exceeds max_latency_ms.
        """
        max_latency = self._opts.max_latency_ms / 1000.0
        if self._queued_rows + rows > self._opts.max_queue_rows:
            self._on_shed("queue_full")
            raise Overloaded(
                f"The batch queue holds {self._queued_rows} rows, its limit is "
                f"{self._opts.max_queue_rows}; retry later.",
                retry_after=max(1, math.ceil(self.projected_wait(0))),
                reason="queue_full",
            )
        wait = self.projected_wait(rows)
        if self._queue and wait > max_latency:
            self._on_shed("latency")
            raise Overloaded(
                f"The projected wait of {wait * 1000:.0f} ms exceeds the server's "
                f"max_latency_ms={self._opts.max_latency_ms:g}; retry later.",
                retry_after=max(1, math.ceil(wait)),
                reason="latency",
            )
        loop = asyncio.get_running_loop()
        item = _Item(batch, rows, loop.create_future(), time.perf_counter())
        self._queue.append(item)
        self._queued_rows += rows
        self._inside += 1
        self._note_population(item.enqueued)
        if not self._busy:
            if self._cork is not None and len(self._queue) >= self.population():
                self._cork.cancel()  # everyone we were waiting for is here
                self._cork = None
                self._scheduled = False
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._dispatch)
        try:
            return await item.future
        finally:
            self._inside -= 1

    def _note_population(self, now: float) -> None:
        prev, cur = self._peak
        if now - self._window_start > _WINDOW_S:
            self._peak = (cur, self._inside)
            self._window_start = now
        elif self._inside > cur:
            self._peak = (prev, self._inside)

    def population(self) -> int:
        """How many requests have recently been waiting at once (peak over ~1 s)."""
        return max(self._peak)

    def _should_cork(self, now: float) -> bool:
        """Hold the batch briefly while the clients answered by the last batch come back.

        With n queued requests but a recent population of more, waiting up to the model's
        per-call cost ``b`` lets the next batch carry everyone, so the per-call cost is paid
        once per wave instead of once per fragment (the idea of BentoML's CORK).
        """
        if not self._queue or self.latency.b < _MIN_CORK_S:
            return False  # cheap calls: a timer tick would cost more than the batching saves
        waited = now - self._queue[0].enqueued
        max_wait = min(self.latency.b, self._opts.max_latency_ms / 4000.0)
        return (
            len(self._queue) < self.population()
            and self._queued_rows < self.batch_cap()
            and waited < max_wait
        )

    # ---------------------------------------------------------------- dispatch
    def _take(self) -> list[_Item]:
        now = time.perf_counter()
        max_latency = self._opts.max_latency_ms / 1000.0
        while self._queue and now - self._queue[0].enqueued >= max_latency:
            old = self._queue.popleft()
            self._queued_rows -= old.rows
            if not old.future.done():
                self._on_shed("timeout")
                old.future.set_exception(
                    Overloaded(
                        f"The request waited {(now - old.enqueued) * 1000:.0f} ms in the batch "
                        "queue, past max_latency_ms; retry later.",
                        retry_after=1,
                        reason="timeout",
                    )
                )
        cap = self.batch_cap()
        items: list[_Item] = []
        rows = 0
        while self._queue and (not items or rows + self._queue[0].rows <= cap):
            item = self._queue.popleft()
            self._queued_rows -= item.rows
            if item.future.done():  # the caller went away
                continue
            items.append(item)
            rows += item.rows
        return items

    def _dispatch(self) -> None:
        self._scheduled = False
        self._cork = None
        if self._busy:
            return
        loop = asyncio.get_running_loop()
        if self._should_cork(time.perf_counter()):
            self._scheduled = True
            self._cork = loop.call_later(_CORK_POLL_S, self._dispatch)
            return
        items = self._take()
        if not items:
            return
        self._busy = True
        start = time.perf_counter()
        self._inflight_started = start
        self._inflight_rows = sum(i.rows for i in items)
        self._on_batch(self._inflight_rows, [start - i.enqueued for i in items])
        if runs_inline(self.loop_cost, self._inflight_rows, self._opts.inline_below_ms):
            self._finish(items, start, _run_items(self._run, items, True))
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="loopline-batch")
        fut = loop.run_in_executor(self._executor, _run_items, self._run, items, False)
        fut.add_done_callback(lambda f: self._finish(items, start, f.result()))

    def _finish(
        self, items: list[_Item], start: float, ran: tuple[list[Outputs | BaseException], float]
    ) -> None:
        results, cost = ran
        seconds = time.perf_counter() - start
        self.latency.record(self._inflight_rows, seconds)
        record_loop_cost(self.loop_cost, self._inflight_rows, cost, self._opts.inline_below_ms)
        self._on_done(self._inflight_rows, seconds)
        for item, result in zip(items, results, strict=False):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
        self._busy = False
        if self._queue and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=False)
            self._executor = None


def runs_inline(loop_cost: LatencyModel, rows: int, inline_below_ms: float) -> bool:
    """Whether a batch of ``rows`` rows runs on the event loop: once ``loop_cost`` (seconds a
    model call holds the loop, see :func:`_run_items`) has 4 samples, when it predicts less
    than ``inline_below_ms`` for ``rows``. Until then batches run in the thread, where a slow
    first call cannot stall the loop."""
    return len(loop_cost.samples) >= 4 and loop_cost.predict(rows) * 1000.0 < inline_below_ms


def record_loop_cost(
    loop_cost: LatencyModel, rows: int, seconds: float, inline_below_ms: float
) -> None:
    """Record that a call of ``rows`` rows holds the loop ``seconds``; one at or past
    ``inline_below_ms`` is fitted at once, so a model that held the loop too long (it waits
    without using the CPU, or grew slower) is not run on it again before the next refit."""
    loop_cost.record(rows, seconds, refit=seconds * 1000.0 >= inline_below_ms)


def _run_items(
    run: RunFn, items: list[_Item], on_loop: bool
) -> tuple[list[Outputs | BaseException], float]:
    """Run the items (see :func:`_call_items`); return the results and the seconds the call
    holds the event loop: on the loop, its wall time; in the thread, the CPU time the thread
    spent on it (``time.thread_time``: neither the hop nor the waits for the GIL count)."""
    clock = time.perf_counter if on_loop else time.thread_time
    t0 = clock()
    results = _call_items(run, items)
    return results, clock() - t0


def _call_items(run: RunFn, items: list[_Item]) -> list[Outputs | BaseException]:
    """Run the items as one batch; if that fails, run each alone so one bad row fails alone."""
    if len(items) == 1:
        try:
            return [run(items[0].batch)]
        except Exception as exc:
            return [exc]
    keys = items[0].batch.keys()
    merged = {k: np.concatenate([i.batch[k] for i in items]) for k in keys}
    try:
        out = run(merged)
    except Exception:
        results: list[Outputs | BaseException] = []
        for item in items:
            try:
                results.append(run(item.batch))
            except Exception as exc:
                results.append(exc)
        return results
    split: list[Outputs | BaseException] = []
    offset = 0
    for item in items:
        split.append({k: v[offset : offset + item.rows] for k, v in out.items()})
        offset += item.rows
    return split
