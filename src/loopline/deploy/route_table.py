"""The router's whole configuration, and how the sync loop derives it (a pure function).

A :class:`RouteTable` is pushed whole on every change and compared whole, so an unchanged
table costs nothing: the ready backends, the controller's :class:`~loopline.deploy.traffic.
Traffic` (exact weights, header routes, mirror, preview revision), how long to hold requests
while no backend is ready (scale from zero), and a label per revision for the router's
metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from loopline.deploy.replica import Replica, ReplicaPhase
from loopline.deploy.traffic import Traffic


@dataclass(frozen=True, slots=True)
class Backend:
    """One ready replica as the router sees it."""

    id: str  # the replica id
    host: str
    port: int
    revision: str  # revision hash, for per-revision weights


@dataclass(frozen=True, slots=True)
class RouteTable:
    """What one router should do.

    ``traffic.weights`` None: spread over every backend by load; else revision hash → share.
    A revision with weight but no ready backend gets no traffic (its share goes to the
    others) rather than errors. ``hold_seconds`` > 0: with no ready backend, a request waits
    up to that long for one (Knative's activator) instead of failing at once with 503.
    """

    backends: tuple[Backend, ...] = ()
    traffic: Traffic = field(default_factory=Traffic)
    hold_seconds: float = 0.0
    labels: tuple[tuple[str, str], ...] = ()
    """Revision hash → ``stable``/``canary``/``preview``, for the router's metrics."""


def route_table(
    replicas: Iterable[Replica],
    host: str,
    *,
    traffic: Traffic | None = None,
    hold_seconds: float = 0.0,
    labels: tuple[tuple[str, str], ...] = (),
    previous: RouteTable | None = None,
) -> RouteTable:
    """The table for the replicas as observed now.

    Ready RUNNING replicas are the backends. When none is ready but some are RUNNING, the
    ones the router already had are kept (Envoy's panic mode, one level up): probes starved
    by load must not turn a working deployment into a wall of 503s; a replica that really
    died is no longer RUNNING, and the router retries a failed request on another one.
    """
    live = [r for r in replicas if r.phase is ReplicaPhase.RUNNING and r.port is not None]
    chosen = [r for r in live if r.ready]
    if not chosen and previous is not None:
        before = {b.id for b in previous.backends}
        chosen = [r for r in live if r.id in before]
    backends = tuple(
        Backend(id=r.id, host=host, port=r.port, revision=r.revision)
        for r in chosen
        if r.port is not None
    )
    return RouteTable(
        backends=backends,
        traffic=traffic if traffic is not None else Traffic(),
        hold_seconds=hold_seconds,
        labels=labels,
    )
