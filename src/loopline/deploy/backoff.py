"""Crash back-off for replicas, like the kubelet's (10 s, doubling, capped at 5 min)."""

from __future__ import annotations

from dataclasses import dataclass

from loopline.deploy.replica import Replica


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delay before restarting a replica that exited.

    The first exit restarts at once; the next ones wait ``initial``, then double up to
    ``cap``. A process that ran ``reset_after`` seconds or more before exiting starts a new
    streak (the kubelet forgets a back-off after twice its cap).
    """

    initial: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0

    def delay(self, crash_streak: int) -> float:
        """Seconds to wait after the ``crash_streak``-th consecutive failure (1-based)."""
        if crash_streak <= 1:
            return 0.0
        return float(min(self.cap, self.initial * 2 ** (crash_streak - 2)))

    def next_start(self, replica: Replica) -> float:
        """When a FAILED replica may be restarted (seconds since the epoch)."""
        if replica.last_exit is None:
            return 0.0
        return replica.last_exit.at + self.delay(replica.crash_streak)
