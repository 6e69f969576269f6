"""Requests held while a deployment has no backend (Knative's activator, for scale from zero).

With ``holdSeconds`` > 0 in the route table, a request that finds no usable backend waits
here, in arrival order, until the next route table brings one (then it is sent) or its hold
expires (then 503 with ``Retry-After``). The queue is bounded: a request beyond
:data:`HOLD_LIMIT` gets 503 at once. Held requests are demand the autoscaler sees
(``held`` in the router's stats).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.deploy.router.protocols import Exchange

HOLD_LIMIT = 1000


class HoldQueue:
    """The held requests, oldest first; ``on_expired(ex)`` answers one whose hold ended
    (called from a timer on the running loop)."""

    __slots__ = ("_timer", "limit", "on_expired", "queue", "total")

    def __init__(self, on_expired: Callable[[Exchange], None], limit: int = HOLD_LIMIT) -> None:
        self.on_expired = on_expired
        self.limit = limit
        self.queue: deque[Exchange] = deque()
        self.total = 0  # requests ever held
        self._timer: asyncio.TimerHandle | None = None

    def add(self, ex: Exchange, seconds: float) -> bool:
        """Hold ``ex`` for ``seconds``; False when the queue is full."""
        self._forget_abandoned()
        if len(self.queue) >= self.limit:
            return False
        ex.hold_until = monotonic() + seconds
        self.queue.append(ex)
        self.total += 1
        if self._timer is None:
            self._arm(seconds)
        return True

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(max(delay, 0.001), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = monotonic()
        for ex in self.expired(now):
            self.on_expired(ex)
        if self.queue:  # the next deadline (holds may differ after a table change)
            self._arm(min(ex.hold_until for ex in self.queue) - now)

    def cancel(self) -> None:
        """Stop the timer (the router is shutting down)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def take_all(self) -> list[Exchange]:
        """Every held request whose client is still there, oldest first; the queue empties."""
        out = [ex for ex in self.queue if not ex.client.closed]
        self.queue.clear()
        return out

    def expired(self, now: float) -> list[Exchange]:
        """Remove and return the held requests whose hold ended by ``now`` (clients still
        there only)."""
        out = [ex for ex in self.queue if ex.hold_until <= now and not ex.client.closed]
        self.queue = deque(ex for ex in self.queue if ex.hold_until > now and not ex.client.closed)
        return out

    def held(self) -> int:
        """Requests waiting now (their clients still connected)."""
        return sum(not ex.client.closed for ex in self.queue)

    def _forget_abandoned(self) -> None:
        if len(self.queue) >= self.limit:
            self.queue = deque(ex for ex in self.queue if not ex.client.closed)
