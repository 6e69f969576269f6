"""One controller per database: the control plane runs its loops only while it holds the
``controllers`` lease (:mod:`loopline.deploy.lease`), and serves as an API-only standby
otherwise.

A standby polls the lease and takes over when it expires (its holder stopped, crashed or
lost the database for longer than the lease); the new holder's sync loop starts by
re-adopting the replicas and routers the store records. The holder renews every third of
the lease; when a renewal finds the lease taken by another process, or the database has been
unreachable until the lease's own expiry, it stops its loops at once and becomes a standby.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from loopline.deploy.lease import CONTROLLERS, Lease, LeaseStore
from loopline.errors import LooplineError

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0


def holder_id(home: Path | None = None) -> str:
    """The holder id of the control plane of ``home`` on this host: the same after a restart
    (one control plane per home runs at a time, under the home's lock), so a control plane
    restarted after ``kill -9`` takes its own lease back at once instead of waiting for it
    to expire. Without a home: unique to this call."""
    host = socket.gethostname()[:100]
    if home is None:
        return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"
    return f"{host}:{hashlib.sha256(str(home).encode()).hexdigest()[:16]}"


class Leadership:
    """Runs ``lead`` while this process holds the lease; a standby otherwise.

    Args:
        store: where the lease lives (the control plane's database).
        description: who this is, for the standby's messages (pid, host, home).
        ttl: seconds a lease lasts without renewal.
        clock: seconds since the epoch (shared by every process on the database).
        holder: this control plane's holder id (:func:`holder_id` of its home; default:
            one unique to this object).
    """

    def __init__(
        self,
        store: LeaseStore,
        description: str,
        *,
        ttl: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.description = description
        self.ttl = ttl
        self.clock = clock
        self.holder = holder or holder_id()
        self._lease: Lease | None = None
        self._leading = threading.Event()

    @property
    def leading(self) -> bool:
        """True while this process runs the controllers."""
        return self._leading.is_set()

    def status(self) -> dict[str, object]:
        """``{"controllers": "active"|"standby", "leader": <description>}`` for /healthz."""
        lease = self._lease
        return {
            "controllers": "active" if self.leading else "standby",
            "leader": lease.description if lease is not None and lease.holder else None,
        }

    def run(self, stop: threading.Event, lead: Callable[[threading.Event], None]) -> None:
        """Until ``stop``: wait for the lease, then run ``lead(lost)`` on a thread while
        renewing it; ``lost`` is set when the lease is lost or ``stop`` is set, and ``lead``
        must return soon after. Releases the lease on the way out."""
        period = self.ttl / 3
        announced = ""
        try:
            while not stop.is_set():
                lease = self._try()
                if lease is None or lease.holder != self.holder:
                    if lease is not None and lease.holder != announced:
                        log.warning(
                            "Standby: the controllers of this database run in another control "
                            "plane (%s); this one serves the API only and takes over if that "
                            "one stops renewing its lease.", lease.description,
                        )  # fmt: skip
                        announced = lease.holder
                    stop.wait(period)
                    continue
                announced = ""
                self._lead(stop, lead, period)
        finally:
            self._leading.clear()
            try:
                self.store.release(CONTROLLERS, self.holder)
            except LooplineError as exc:
                log.warning("Could not release the controllers' lease: %s", exc)

    def _lead(
        self, stop: threading.Event, lead: Callable[[threading.Event], None], period: float
    ) -> None:
        log.info("This control plane holds the controllers' lease; running the controllers.")
        lost = threading.Event()
        self._leading.set()
        worker = threading.Thread(target=lead, args=(lost,), name="controlplane-lead",
                                  daemon=True)  # fmt: skip
        worker.start()
        expires = self._lease.expires_at if self._lease is not None else 0.0
        try:
            while not stop.wait(period) and worker.is_alive():
                lease = self._try()
                if lease is not None and lease.holder == self.holder:
                    expires = lease.expires_at
                    continue
                if lease is not None:  # another process took it: we stalled past expiry
                    log.error("Another control plane (%s) took the controllers' lease; "
                              "stopping the controllers here.", lease.description)  # fmt: skip
                    break
                if self.clock() >= expires - period:  # the database is unreachable
                    log.error("The controllers' lease could not be renewed before it "
                              "expires; stopping the controllers here.")  # fmt: skip
                    break
        finally:
            lost.set()
            self._leading.clear()
            worker.join()

    def _try(self) -> Lease | None:
        """Take or renew the lease; None when the database cannot be reached."""
        try:
            lease = self.store.acquire(
                CONTROLLERS, self.holder, self.description, self.clock(), self.ttl
            )
        except LooplineError as exc:
            log.warning("Could not reach the controllers' lease: %s", exc)
            return None
        self._lease = lease
        return lease
