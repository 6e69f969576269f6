"""The router's HTTP limits on its client side, and the pure decision of when a connection is
overdue.

The defaults are the model server's (:class:`loopline.serving.ServerOptions`): the body cap is
its ``max_body_bytes`` and the head, URL, deadline and pipelining limits its ``http`` ones, so
a request the router accepts is one a replica accepts. ``max_connections`` is the router's
own: it fronts every client of a deployment. So are the two limits that face elsewhere: the
cap on a replica's response head (a replica, or anything the admin API was pointed at, must
not grow the router with an endless head; Envoy's default cap is 60 KiB), and the admin API's
connection cap (its requests are held to the same head, body and deadline limits as a
client's; see :mod:`loopline.deploy.router.admin`).

A client connection is always in one :class:`Phase`, read off its state by the router's
periodic sweep (nothing is timed per request):

- ``IDLE``: nothing unanswered and no byte of a next request (fresh or kept alive). Closed
  silently after ``idle_timeout``.
- ``HEAD``: part of a request head has arrived. After ``head_timeout`` the router answers 408
  and closes: a client sending one byte a second cannot hold a connection longer.
- ``BODY``: the head is complete, the body is not. After ``body_timeout``: 408 and close.
- ``BUSY``: a request is being answered (the backend is the slow one; the router's
  ``response_timeout`` bounds it). No deadline.

The sweep notes when it first saw a connection in a phase (for a given number of requests
framed), so a deadline fires between its timeout and one sweep interval later, never early.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# One definition of the connection phases, the field checks and the deadline rule, shared
# with the model server (Phase and overdue are re-exported for the router's modules).
from loopline.serving import Phase, ServerOptions, check_limits, overdue

_SERVER = ServerOptions()


@dataclass(frozen=True, slots=True)
class RouterLimits:
    """Resource limits of the router's client connections (per router process).

    Attributes:
        max_header_bytes: a request head (request line and headers) larger than this gets 431.
        max_url_bytes: a request target longer than this gets 414.
        max_body_bytes: a request body larger than this gets 413 (the router buffers bodies to
            retry them).
        head_timeout: seconds from the first byte of a request until its head is complete (408).
        body_timeout: seconds from a complete head until the body is complete (408).
        idle_timeout: seconds a connection may wait for the first byte of a request, fresh or
            kept alive after an answer; then it is closed.
        max_connections: open client connections per router process; one beyond it gets 503
            with Retry-After and is closed at once.
        max_pipelined: requests queued behind the one being answered on a connection; the
            router stops reading the connection while the queue is full; requests read with
            the one that filled it are queued up to twice the bound, and a client whose one
            read holds more gets the queued answers and then a closed connection.
        max_response_head_bytes: a replica's response head (status line and headers) larger
            than this is not forwarded: the client gets 502, the connection to the replica is
            closed, and the replica stays in rotation (an answer says nothing of its health).
        max_admin_connections: open admin API connections per router process; one beyond it
            gets 503 with Retry-After and is closed at once.
    """

    max_header_bytes: int = _SERVER.http.max_header_bytes
    max_url_bytes: int = _SERVER.http.max_url_bytes
    max_body_bytes: int = _SERVER.max_body_bytes
    head_timeout: float = _SERVER.http.head_timeout
    body_timeout: float = _SERVER.http.body_timeout
    idle_timeout: float = _SERVER.http.idle_timeout
    max_connections: int = 1000
    max_pipelined: int = _SERVER.http.max_pipelined
    max_response_head_bytes: int = 64 * 1024
    max_admin_connections: int = 64
    _timeouts: dict[Phase, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_limits(
            self,
            integers=(
                "max_header_bytes",
                "max_url_bytes",
                "max_body_bytes",
                "max_connections",
                "max_pipelined",
                "max_response_head_bytes",
                "max_admin_connections",
            ),
            seconds=("head_timeout", "body_timeout", "idle_timeout"),
        )
        timeouts = {Phase.IDLE: float(self.idle_timeout), Phase.HEAD: float(self.head_timeout),
                    Phase.BODY: float(self.body_timeout)}  # fmt: skip
        object.__setattr__(self, "_timeouts", timeouts)

    def timeout(self, phase: Phase) -> float | None:
        """Seconds a connection may stay in ``phase`` (None: no deadline)."""
        return self._timeouts.get(phase)

    def sweep_interval(self) -> float:
        """How often the deadlines are checked: a tenth of the shortest one, at most 1 s."""
        return min(1.0, min(self._timeouts.values()) / 10)


__all__ = ["Phase", "RouterLimits", "overdue"]
