"""Backend selection: exact per-revision weights (smooth weighted round robin), then the
least-outstanding ready backend of that revision (rotating among ties).

The smooth WRR sequence of a set of weights is periodic (its period is their sum, divided by
their greatest common divisor), so it is computed once per route table and walked with an
index; only a pick that lands on a revision without a healthy backend runs the algorithm
step by step over the revisions that have one.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loopline.deploy.router.metrics import RevisionMetrics

if TYPE_CHECKING:
    from loopline.deploy.router.mirror import MirrorProtocol
    from loopline.deploy.router.upstream import UpstreamProtocol


@dataclass(eq=False)
class BackendState:
    """One backend as the router tracks it."""

    id: str
    host: str
    port: int
    revision: str
    healthy: bool = True
    draining: bool = False
    outstanding: int = 0
    failures: int = 0  # consecutive failed active health checks
    pool: deque[UpstreamProtocol] = field(default_factory=deque)
    mirror_pool: deque[MirrorProtocol] = field(default_factory=deque)  # mirrored copies only
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: RevisionMetrics = field(default_factory=RevisionMetrics)  # shared per revision

    def usable(self) -> bool:
        return self.healthy and not self.draining

    def close_pool(self) -> None:
        for pool in (self.pool, self.mirror_pool):
            while pool:
                up = pool.pop()
                if up.transport is not None:
                    up.transport.close()


class Balancer:
    """The set of backends and how requests are spread over them."""

    def __init__(self) -> None:
        self.backends: dict[str, BackendState] = {}
        self.retiring: dict[str, BackendState] = {}  # removed, still finishing requests
        self.weights: dict[str, int] | None = None
        self._current: dict[str, int] = {}  # smooth WRR state of the step-by-step picks
        self._cycle: tuple[str, ...] = ()  # one period of the smooth WRR sequence
        self._position = 0
        self._by_revision: dict[str, list[BackendState]] = {}
        self._all: list[BackendState] = []  # self.backends' values
        self._rotation = 0

    def replace(self, backends: list[BackendState], weights: Mapping[str, int] | None) -> None:
        """Install a new backend set; removed backends finish their in-flight requests."""
        new: dict[str, BackendState] = {}
        for b in backends:
            old = self.backends.get(b.id)
            if old is not None and (old.host, old.port) == (b.host, b.port):
                old.revision = b.revision
                new[b.id] = old
            else:
                new[b.id] = b
        for bid, old in self.backends.items():
            if new.get(bid) is not old:
                self._retire(old)
        self.backends = new
        self.weights = dict(weights) if weights else None
        self._current = {}
        self._cycle = smooth_cycle(self.weights) if self.weights else ()
        self._position = 0
        self._by_revision = {}
        for b in new.values():
            self._by_revision.setdefault(b.revision, []).append(b)
        self._all = list(new.values())

    def _retire(self, b: BackendState) -> None:
        b.draining = True
        b.close_pool()
        if b.outstanding:
            self.retiring[b.id] = b

    def release(self, b: BackendState) -> None:
        """A request to ``b`` finished."""
        b.outstanding -= 1
        if b.outstanding == 0 and b.draining:  # only a draining backend is waited for
            self.release_idle(b)

    def release_idle(self, b: BackendState) -> None:
        """``b`` (draining) has nothing in flight any more: wake its drain, forget it."""
        b.idle.set()
        if self.retiring.get(b.id) is b:
            del self.retiring[b.id]

    def find(self, backend_id: str) -> BackendState | None:
        return self.backends.get(backend_id) or self.retiring.get(backend_id)

    def pick(self, exclude: BackendState | None = None) -> BackendState | None:
        """The backend for the next request, or None if none is usable.

        When every backend is failing its health checks, all non-draining ones are tried
        anyway (Envoy's "panic" mode): a health checker starved of CPU must not turn a
        working deployment into a wall of 503s; the retry covers a truly dead one.
        """
        cycle = self._cycle
        if cycle:  # weighted: the backends of the next revision of the precomputed sequence
            revision = cycle[self._position]
            self._position = (self._position + 1) % len(cycle)
            pool: Sequence[BackendState] = self._by_revision.get(revision, ())
        elif self.weights is not None:  # a period too long to precompute
            return self._pick_among_all(exclude)
        else:
            pool = self._all
        candidates = []
        for b in pool:  # usable(), inlined; a loop, as a comprehension is one more call
            if b.healthy and not b.draining and b is not exclude:
                candidates.append(b)
        if not candidates:
            return self._pick_among_all(exclude)
        # self._least_outstanding(candidates), inlined: this runs once per request
        n = len(candidates)
        self._rotation = (self._rotation + 1) % 1_000_003
        start = self._rotation % n
        best = candidates[start]
        for i in range(1, n):
            b = candidates[(start + i) % n]
            if b.outstanding < best.outstanding:
                best = b
        return best

    def _pick_among_all(self, exclude: BackendState | None) -> BackendState | None:
        """:meth:`pick` step by step: the weights among the revisions with a healthy backend
        (when the one the precomputed sequence chose has none, or there is no sequence), or
        any healthy backend, else panic."""
        candidates = [
            b for b in self.backends.values() if b.healthy and not b.draining and b is not exclude
        ]
        if not candidates:
            candidates = [b for b in self.backends.values() if not b.draining and b is not exclude]
            if not candidates:
                return None
        if self.weights is not None:
            revisions = {b.revision for b in candidates}
            eligible = {r: w for r, w in self.weights.items() if w > 0 and r in revisions}
            if eligible:
                chosen = self._smooth_wrr(eligible)
                candidates = [b for b in candidates if b.revision == chosen]
        return self._least_outstanding(candidates)

    def pick_revision(
        self, revision: str, exclude: BackendState | None = None
    ) -> BackendState | None:
        """The least-outstanding backend of ``revision`` (weights do not apply), or None.

        Same panic mode as :meth:`pick`: when all of the revision's backends fail their
        health checks, the non-draining ones are tried anyway.
        """
        of_revision = self._by_revision.get(revision, ())
        candidates = []
        for b in of_revision:  # a loop, as a comprehension is one more call (a copy per call)
            if b.healthy and not b.draining and b is not exclude:
                candidates.append(b)
        if not candidates:
            candidates = [b for b in of_revision if not b.draining and b is not exclude]
            if not candidates:
                return None
        return self._least_outstanding(candidates)

    def _least_outstanding(self, candidates: list[BackendState]) -> BackendState:
        """The candidate with the fewest requests in flight, rotating among ties."""
        n = len(candidates)
        self._rotation = (self._rotation + 1) % 1_000_003
        start = self._rotation % n
        best = candidates[start]
        for i in range(1, n):
            b = candidates[(start + i) % n]
            if b.outstanding < best.outstanding:
                best = b
        return best

    def _smooth_wrr(self, weights: dict[str, int]) -> str:
        return smooth_wrr_step(weights, self._current)


def smooth_wrr_step(weights: Mapping[str, int], current: dict[str, int]) -> str:
    """nginx's smooth weighted round robin, one pick (``current`` is its state): exact
    shares, evenly interleaved. ``weights`` must have a positive one."""
    total = 0
    best: str | None = None
    for rev, w in weights.items():
        cur = current.get(rev, 0) + w
        current[rev] = cur
        total += w
        if best is None or cur > current[best]:
            best = rev
    assert best is not None  # weights is non-empty
    current[best] -= total
    return best


def smooth_cycle(weights: Mapping[str, int], limit: int = 10_000) -> tuple[str, ...]:
    """One period of the smooth WRR sequence of ``weights`` (after dividing them by their
    greatest common divisor); empty if no weight is positive or the period exceeds
    ``limit`` (then every pick runs the algorithm)."""
    positive = {rev: w for rev, w in weights.items() if w > 0}
    if not positive:
        return ()
    divisor = math.gcd(*positive.values())
    reduced = {rev: w // divisor for rev, w in positive.items()}
    period = sum(reduced.values())
    if period > limit:
        return ()
    current: dict[str, int] = {}
    return tuple(smooth_wrr_step(reduced, current) for _ in range(period))
