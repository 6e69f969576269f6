"""Retiring replicas: drain from the router, stop the process, forget the record.

A replica marked TERMINATING by a sync is retired after that sync's commit: the router was
already given a table without it, so it first waits (≤ ``drain_timeout``) for requests in
flight, then SIGTERM → SIGKILL after ``stop_grace``, then the engine releases what it kept
for the replica (its working directory), then its record is removed in its own small
commit. With a pool this happens on worker threads (a drain never blocks the loop); without
one, inline (deterministic tests). One stop per replica at a time; a stop that failed is
retried by the next sync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from loopline.deploy.deployment import Deployment
from loopline.deploy.engines.base import DeployEngine
from loopline.deploy.observer import process_handle
from loopline.deploy.replica import Replica
from loopline.deploy.routing import Routing
from loopline.deploy.state import DeploymentStateStore
from loopline.deploy.writes import DropReplica
from loopline.errors import BackendError, NotFoundError

log = logging.getLogger(__name__)


class Retirer:
    """Drains and stops TERMINATING replicas."""

    def __init__(
        self,
        *,
        store: DeploymentStateStore,
        engine: DeployEngine,
        routing: Routing | None,
        forget: Callable[[str], None],
        drain_timeout: float,
        stop_grace: float,
        pool: ThreadPoolExecutor | None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.routing = routing
        self.forget = forget  # the observer's per-replica cadence state
        self.drain_timeout = drain_timeout
        self.stop_grace = stop_grace
        self._pool = pool
        self._stopping: dict[str, Future[bool]] = {}
        self._lock = threading.Lock()  # guards _stopping

    @property
    def background(self) -> bool:
        """Stops run on worker threads (else inline, done when :meth:`retire` returns)."""
        return self._pool is not None

    def retire(self, d: Deployment, rep: Replica, drain: bool) -> Future[bool]:
        """Drain and stop a TERMINATING replica, then remove its record: on a worker thread,
        or inline without a pool (the future is then already done). The future says whether
        the record was removed."""
        with self._lock:
            running = self._stopping.get(rep.id)
            if running is not None and not running.done():
                return running
            if self._pool is not None:
                fut = self._pool.submit(self._finish_stop, d, rep, drain)
                self._stopping[rep.id] = fut
                return fut
        done: Future[bool] = Future()
        done.set_result(self._finish_stop(d, rep, drain))
        return done

    def close(self, timeout: float) -> None:
        """Wait (≤ ``timeout`` s) for stops in flight; the processes keep running otherwise."""
        if self._pool is None:
            return
        deadline = time.monotonic() + timeout
        for fut in list(self._stopping.values()):
            fut.result(timeout=max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False)

    def _finish_stop(self, d: Deployment, rep: Replica, drain: bool) -> bool:
        try:
            # The router no longer routes to it (pushed before its TERMINATING was stored):
            # wait for in-flight requests, then signal the process.
            if drain and self.routing is not None and rep.port is not None:
                self.routing.drain(d, rep.id, self.drain_timeout)
            handle = process_handle(rep)
            if handle is not None:
                self.engine.stop(handle, self.stop_grace)
            try:  # a replica that never started (or crashed) has a directory too
                self.engine.release_replica(rep.id)
            except BackendError as exc:  # the replica is stopped all the same
                log.warning("Replica %r is stopped but not released: %s", rep.id, exc)
            self.store.commit(d.name, [DropReplica(rep.id)])
            return True
        except NotFoundError:
            return True  # the deployment or replica was deleted meanwhile
        except Exception:
            log.exception("Stopping replica %r failed; the next sync retries.", rep.id)
            return False
        finally:
            self.forget(rep.id)
            with self._lock:
                self._stopping.pop(rep.id, None)
