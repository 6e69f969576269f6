"""The sync loop's hooks in the control plane: what each sync becomes for people.

:class:`SyncEvents` is the :class:`~loopline.deploy.manager.SyncHooks` the control plane runs
the manager's loop with: a sync's before/after views and actions become events (the
autoscaler's decisions included), a failed sync one ``SyncFailed`` event per distinct error,
and each stretch with no available replica a ``Downtime`` report.
"""

from __future__ import annotations

import logging

from loopline.controlplane.events import NORMAL, WARNING, EventLog
from loopline.deploy.status import DeploymentStatus
from loopline.deploy.sync import SyncResult

log = logging.getLogger(__name__)


class SyncEvents:
    """Events from the sync loop (see the module docstring), kept in ``events``."""

    def __init__(self, events: EventLog) -> None:
        self.events = events
        self._last_error: dict[str, str] = {}
        self._down_since: dict[str, float] = {}

    def synced(self, result: SyncResult) -> None:
        """Events from one sync's before/after views and actions; downtime tracking."""
        name = result.name
        self._last_error.pop(name, None)
        before = result.before.deployment.status.autoscaler
        after = result.after.deployment.status.autoscaler
        if after is not None and (before is None or after.observed_at != before.observed_at):
            for e in after.events:  # the autoscaler's decision of this sync
                kind = WARNING if e.get("type") == "Warning" else NORMAL
                self.events.add(name, str(e["reason"]), str(e["message"]), kind)
        if not result.actions:
            return
        old = result.before.deployment.status
        self.events.record_sync(name, result.before.revisions, old, result.actions)
        new = result.after.deployment.status
        if new != old:
            self._track_downtime(name, old, new)

    def sync_failed(self, name: str, error: Exception) -> None:
        """A failed sync becomes one SyncFailed event (again only when the error changes)."""
        message = f"Sync failed: {error}"
        if self._last_error.get(name) != message:
            log.error("Sync of deployment %r failed; retrying next round.", name, exc_info=error)
            self.events.add(name, "SyncFailed", message, WARNING)
            self._last_error[name] = message

    def _track_downtime(self, name: str, old: DeploymentStatus, new: DeploymentStatus) -> None:
        """Report each stretch with no available replica (Recreate's downtime, a crash)."""
        now = self.events.clock()
        if old.available_replicas > 0 and new.available_replicas == 0:
            self._down_since[name] = now
        elif new.available_replicas > 0 and name in self._down_since:
            lasted = now - self._down_since.pop(name)
            self.events.add(
                name,
                "Downtime",
                f"No replica was available for {lasted:.1f} s; available again: "
                f"{new.available_replicas}",
                WARNING,
            )
