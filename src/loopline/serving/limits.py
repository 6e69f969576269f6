"""The model server's HTTP connection limits, and the pure decision of when a connection is overdue.

A connection is always in one :class:`Phase`, set by the HTTP parser as bytes arrive:

- ``IDLE``: nothing unanswered and no byte of a next request yet (a fresh or kept-alive
  connection). Closed silently after ``HttpLimits.idle_timeout``.
- ``HEAD``: the first byte of a request head arrived, the head is not complete. After
  ``HttpLimits.head_timeout`` the server answers 408 (when no earlier response is pending) and
  closes: a slowloris client sending one byte a second cannot hold a connection longer.
- ``BODY``: the head is complete, the body is not. After ``HttpLimits.body_timeout`` the
  server answers 408 (when the request's response has not started) and closes.
- ``BUSY``: the requests received so far are being answered; no deadline (the server is the
  slow one; batching's ``max_latency_ms`` bounds a queued request).

Time counts only while the server is reading: when it paused reading (a pipelined request
queued, a body buffered faster than the application reads it) the phase's clock restarts.
:func:`overdue` is the decision, a pure function of the phase, its start and ``now``; the
connection protocol (:mod:`loopline.serving.connection`) applies it from a periodic sweep.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loopline.errors import InvalidInputError


class Phase(enum.Enum):
    """Where a connection is in its request/response cycle (see the module docstring)."""

    IDLE = "idle"
    HEAD = "head"
    BODY = "body"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Resource limits of each connection and of each worker process.

    Attributes:
        max_header_bytes: a request head (request line and headers) larger than this gets 431.
        max_url_bytes: a request target longer than this gets 414.
        head_timeout: seconds from a request's first byte until its head is complete (408).
        body_timeout: seconds from a complete head until the body is complete (408).
        idle_timeout: seconds a connection may wait for the first byte of a request, fresh
            or kept alive after a response; then it is closed.
        max_connections: open connections per worker process; a connection beyond it gets
            503 with Retry-After and is closed at once (served connections are not touched).
        max_pipelined: requests queued behind the one being answered on a connection; the
            server stops reading while that many are queued. Requests that arrived in the
            same read are queued up to twice the bound; a client that pushes past that gets
            the queued answers and then a closed connection.
    """

    max_header_bytes: int = 16 * 1024
    max_url_bytes: int = 8 * 1024
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    max_connections: int = 1000
    max_pipelined: int = 32

    def __post_init__(self) -> None:
        check_limits(
            self,
            integers=("max_header_bytes", "max_url_bytes", "max_connections", "max_pipelined"),
            seconds=("head_timeout", "body_timeout", "idle_timeout"),
        )

    def timeout(self, phase: Phase) -> float | None:
        """Seconds a connection may stay in ``phase`` (None: no deadline)."""
        if phase is Phase.HEAD:
            return self.head_timeout
        if phase is Phase.BODY:
            return self.body_timeout
        if phase is Phase.IDLE:
            return self.idle_timeout
        return None


def check_limits(limits: Any, *, integers: Sequence[str], seconds: Sequence[str]) -> None:
    """Validate a limits value object (the model server's, the router's): ``integers`` are
    ints ≥ 1, ``seconds`` finite numbers > 0, and the URL cap fits in the head cap.

    Raises:
        InvalidInputError: naming the class, the field and its value.
    """
    kind = type(limits).__name__
    for name in integers:
        value = getattr(limits, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{kind}.{name} is {value!r}; use an integer ≥ 1.")
    if limits.max_url_bytes > limits.max_header_bytes:
        raise InvalidInputError(
            f"{kind}.max_url_bytes ({limits.max_url_bytes}) is larger than "
            f"max_header_bytes ({limits.max_header_bytes}); the URL is part of the head, "
            "so raise max_header_bytes or lower max_url_bytes."
        )
    for name in seconds:
        value = getattr(limits, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise InvalidInputError(
                f"{kind}.{name} is {value!r}; use a finite number of seconds > 0."
            )


class Deadlines(Protocol):
    def timeout(self, phase: Phase) -> float | None: ...


def overdue(limits: Deadlines, phase: Phase, since: float, now: float) -> bool:
    """True when a connection in ``phase`` since ``since`` has passed its deadline at ``now``."""
    timeout = limits.timeout(phase)
    return timeout is not None and now - since >= timeout


__all__ = ["Deadlines", "HttpLimits", "Phase", "check_limits", "overdue"]
