"""A lease in the state store: which one process runs the controllers of a database.

Two control planes on one database (two ``LOOPLINE_HOME``\\ s, or two machines on one
PostgreSQL) must not both reconcile: each would start its own replicas for the same
deployments. The controllers therefore run only in the holder of the ``controllers`` lease.
A holder renews it well before it expires; another process may take it only once it has
expired (its holder stopped, crashed or lost the database for longer than the lease). Times
are seconds since the epoch read by each process, so machines sharing a database need
synchronised clocks (NTP); the lease's length absorbs small skews.

:func:`may_take` is the whole rule, pure; a store applies it atomically.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass, replace

CONTROLLERS = "controllers"


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease as stored. ``holder`` is empty when nobody ever held it."""

    name: str
    holder: str
    description: str
    """Who holds it, for people: pid, host and home of the holding control plane."""
    acquired_at: float
    renewed_at: float
    expires_at: float

    def held_by(self, holder: str, now: float) -> bool:
        """True if ``holder`` holds it and it has not expired at ``now``."""
        return self.holder == holder and now < self.expires_at


def may_take(current: Lease | None, holder: str, now: float) -> bool:
    """Whether ``holder`` may take (or renew) the lease at ``now``: it is free, expired, or
    already its own."""
    return (
        current is None or not current.holder or current.holder == holder
        or current.expires_at <= now
    )  # fmt: skip


def taken(current: Lease | None, name: str, holder: str, description: str, now: float,
          ttl: float) -> Lease:  # fmt: skip
    """The lease after ``holder`` takes or renews it at ``now`` for ``ttl`` seconds
    (``acquired_at`` stays while the same holder renews)."""
    if current is not None and current.holder == holder:
        return replace(current, description=description, renewed_at=now, expires_at=now + ttl)
    return Lease(name, holder, description, acquired_at=now, renewed_at=now, expires_at=now + ttl)


class LeaseStore(abc.ABC):
    """Where leases live (the deployment state's database)."""

    @abc.abstractmethod
    def acquire(self, name: str, holder: str, description: str, now: float, ttl: float) -> Lease:
        """Take or renew lease ``name`` for ``holder`` if :func:`may_take` allows it, in one
        atomic step; return the lease as it stands afterwards (held by someone else when
        it could not be taken)."""

    @abc.abstractmethod
    def release(self, name: str, holder: str) -> None:
        """Give the lease up now, if ``holder`` holds it (a clean stop: the next control
        plane need not wait for it to expire)."""

    @abc.abstractmethod
    def get(self, name: str) -> Lease | None:
        """The lease as stored, or None if it was never taken."""


class InMemoryLeaseStore(LeaseStore):
    """Leases in a dict (one process; tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}

    def acquire(self, name: str, holder: str, description: str, now: float, ttl: float) -> Lease:
        with self._lock:
            current = self._leases.get(name)
            if may_take(current, holder, now):
                self._leases[name] = taken(current, name, holder, description, now, ttl)
            return self._leases[name]

    def release(self, name: str, holder: str) -> None:
        with self._lock:
            current = self._leases.get(name)
            if current is not None and current.holder == holder:
                self._leases[name] = replace(current, expires_at=0.0)

    def get(self, name: str) -> Lease | None:
        with self._lock:
            return self._leases.get(name)
