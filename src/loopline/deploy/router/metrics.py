"""Per-revision request metrics, cheap enough for the hot path.

Each revision has one :class:`RevisionMetrics`: cumulative counters (status class, a latency
histogram on the fixed ``BOUNDS``, the sum of latencies) and, once per second, a snapshot
of them. A window is "now minus the snapshot at its start", so recording a request is a
``bisect`` and three increments, and a sliding window of up to :data:`MAX_WINDOW` seconds
costs nothing per request. :func:`histogram_quantile` interpolates like Prometheus'.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

# Upper bounds (seconds) of the latency buckets; one more bucket above the last (+Inf).
BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
)  # fmt: skip
MAX_WINDOW = 600  # seconds a sliding window may span (10 minutes)
_KEEP = MAX_WINDOW + 2  # per-second snapshots kept


class RevisionMetrics:
    """Counters of one revision since the router started, plus per-second snapshots."""

    __slots__ = ("codes", "hist", "second", "snaps", "sum")

    def __init__(self) -> None:
        self.codes = [0] * 10  # by status class: index 2 = 2xx … 5 = 5xx (6–9: malformed)
        self.hist = [0] * (len(BOUNDS) + 1)  # per bucket (not cumulative); last = +Inf
        self.sum = 0.0
        self.second = -1  # the second of the latest record
        # second → (histogram, 5xx count) as they were before that second's first record
        self.snaps: dict[int, tuple[list[int], int]] = {}

    def record(self, seconds: float, status_class: int, now: float) -> None:
        """One answered request: ``seconds`` from dispatch to answer, ``status_class`` 1–5
        (the hundreds digit), ``now`` a monotonic clock reading."""
        second = int(now)
        if second != self.second:
            self.tick(second)
        self.hist[bisect_left(BOUNDS, seconds)] += 1
        self.codes[status_class] += 1
        self.sum += seconds

    def tick(self, second: int) -> None:
        """The first record of ``second``: snapshot the counters as they were before it."""
        self.second = second
        snaps = self.snaps
        snaps[second] = (self.hist.copy(), self.codes[5])
        if len(snaps) > _KEEP:
            del snaps[next(iter(snaps))]  # the oldest (dicts keep insertion order)

    @property
    def requests(self) -> int:
        return sum(self.hist)

    def window(self, now: float, seconds: int) -> tuple[list[int], int]:
        """``(histogram, 5xx count)`` of the requests recorded in the last ``seconds`` whole
        seconds before ``now`` plus the current one (so between ``seconds`` and
        ``seconds + 1`` seconds of traffic)."""
        start = int(now) - seconds
        for second, (hist, errors) in self.snaps.items():  # ascending seconds
            if second >= start:
                return [a - b for a, b in zip(self.hist, hist, strict=True)], self.codes[5] - errors
        return [0] * len(self.hist), 0  # nothing recorded since ``start``


def histogram_quantile(q: float, counts: Sequence[int]) -> float | None:
    """The ``q`` quantile of a histogram over ``BOUNDS`` (per-bucket counts, last = +Inf),
    interpolated linearly inside the bucket like Prometheus' ``histogram_quantile``: the
    first bucket starts at 0; a rank in the +Inf bucket gives the largest finite bound.
    None when the histogram is empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for i, count in enumerate(counts):
        if count and below + count >= rank:
            if i == len(BOUNDS):
                return BOUNDS[-1]
            lower = BOUNDS[i - 1] if i else 0.0
            return lower + (BOUNDS[i] - lower) * (rank - below) / count
        below += count
    return BOUNDS[-1]  # q > 1 (callers pass 0 < q ≤ 1)


def quantiles(counts: Sequence[int]) -> dict[str, float | None]:
    """p50, p90, p95 and p99 of a histogram (seconds, None when empty)."""
    out: dict[str, float | None] = {}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        value = histogram_quantile(q, counts)
        out[name] = None if value is None else _round(value)
    return out


def _round(x: float) -> float:
    """Six significant digits: enough for latencies, stable in JSON."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, 5 - math.floor(math.log10(abs(x))))
