"""The control plane's operations, independent of HTTP: what each API endpoint does.

``ControlPlane`` wraps a :class:`~loopline.deploy.manager.DeploymentManager`: it pins model
references before storing specs and serialises read-modify-write mutations (scale, set model,
pause, undo). It runs the manager's sync loop (:meth:`DeploymentManager.run`, the one loop,
which also keeps deletions from racing it) with :class:`SyncEvents` as the loop's hooks: each
sync's before/after views and actions become events and downtime reports. Everything durable is in
the manager's state store and the metadata store.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.controlplane.events import WARNING, EventLog
from loopline.controlplane.leadership import Leadership
from loopline.controlplane.pinning import ModelPin, ModelPinner
from loopline.controlplane.replica_log import tail_lines
from loopline.controlplane.rollout import rollout_status
from loopline.controlplane.sync_events import SyncEvents
from loopline.controlplane.triggers import TriggerOperations
from loopline.controlplane.views import (
    deployment_view,
    event_view,
    replica_view,
    revision_view,
    strip_server_fields,
    template_view,
)
from loopline.deploy.analysis import AnalysisTemplate
from loopline.deploy.autoscaling import Autoscaling
from loopline.deploy.deployment import Deployment
from loopline.deploy.fields import MAX_REPLICAS
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.replica import Replica
from loopline.deploy.spec import DeploymentSpec, template_hash
from loopline.deploy.strategies import verbs
from loopline.deploy.template_store import AnalysisTemplateStore
from loopline.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StepTimeoutError,
    shown,
)
from loopline.types import JsonDict, check_name

if TYPE_CHECKING:
    from loopline.controlplane.monitors import MonitorOperations

log = logging.getLogger(__name__)

class ControlPlane:
    """Deployment operations over a manager, a model pinner and an event log; runs the
    manager's sync loop with :class:`~loopline.controlplane.sync_events.SyncEvents` as hooks.

    Args:
        manager: the deployment manager (its store is the source of truth).
        pinner: resolves and records model references.
        events: recent events per deployment.
        host: the address routers listen on, for the URLs shown to users.
        delete_timeout: seconds a delete may take to drain and stop every replica.
        triggers: the Trigger operations and loop (None: this control plane keeps none).
        monitors: the Monitor operations and loop (None: this control plane keeps none).
        leadership: the database's controllers' lease (None: run the controllers always,
            for a store no other process shares).
    """

    def __init__(
        self,
        *,
        manager: DeploymentManager,
        pinner: ModelPinner,
        events: EventLog,
        host: str = "127.0.0.1",
        delete_timeout: float = 60.0,
        triggers: TriggerOperations | None = None,
        monitors: MonitorOperations | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.manager = manager
        self.leadership = leadership
        self.triggers_ops = triggers
        self.monitors_ops = monitors
        self.store = manager.store
        self.pinner = pinner
        self.events = events
        self.host = host
        self.delete_timeout = delete_timeout
        self._mutate = threading.Lock()  # one read-modify-write at a time
        self.sync_events = SyncEvents(events)

    # ---- reads -------------------------------------------------------------------------------

    def list_deployments(self) -> list[JsonDict]:
        return [self._view(d) for d in self.store.list_deployments()]

    def get_deployment(self, name: str) -> JsonDict:
        return self._view(self.store.get_deployment(name))

    def rollout_status(self, name: str) -> JsonDict:
        return rollout_status(self.store.get_deployment(name)).to_dict()

    def revisions(self, name: str) -> list[JsonDict]:
        snap = self.store.snapshot(name)
        pins = self.pinner.pins(name)
        current = template_hash(snap.deployment.spec.template)
        return [revision_view(r, pins, current) for r in snap.revisions]

    def replicas(self, name: str | None = None) -> list[JsonDict]:
        snaps = [self.store.snapshot(name)] if name is not None else self.store.snapshot_all()
        out: list[JsonDict] = []
        for snap in snaps:
            revs = {r.hash: r for r in snap.revisions}
            out.extend(replica_view(rep, revs) for rep in snap.replicas)
        return out

    def list_events(self, name: str, limit: int | None = None) -> list[JsonDict]:
        self.store.get_deployment(name)
        return [event_view(e) for e in self.events.list(name, limit)]

    def replica_log(self, replica_id: str, tail: int | None = None) -> str:
        """The replica's log file (its last ``tail`` lines; at most 4 MiB).

        Raises:
            NotFoundError: no replica has that id, or it has no log file yet.
        """
        rep = self._find_replica(replica_id)
        if rep.log_path is None:
            raise NotFoundError(f"Replica {replica_id!r} has no log file yet; it has not started.")
        path = Path(rep.log_path)
        if not path.is_file():
            raise NotFoundError(f"The log file {str(path)!r} of replica {replica_id!r} is gone.")
        return tail_lines(path, tail)

    # ---- writes ------------------------------------------------------------------------------

    def apply(
        self, doc: Any, *, create_only: bool = False, cause: str = ""
    ) -> tuple[JsonDict, str]:
        """Create or update a deployment from its object form (``status`` and the
        server-filled metadata of a ``get -o yaml`` output are ignored).

        Returns the stored deployment and what happened: ``created``, ``configured`` or
        ``unchanged``.

        Raises:
            InvalidDefinitionError: the object breaks a rule (the message names the field) or
                its model reference does not resolve.
            AlreadyExistsError: ``create_only`` and the deployment exists.
            ConflictError: the deployment is being deleted.
        """
        spec = DeploymentSpec.from_dict(strip_server_fields(doc))
        with self._mutate:
            self._check_not_deleting(spec.name)
            try:
                before: Deployment | None = self.store.get_deployment(spec.name)
            except NotFoundError:
                before = None
            if before is not None and create_only:
                raise AlreadyExistsError(
                    f"Deployment {spec.name!r} already exists; change it with loopline apply -f "
                    "FILE, or delete it first."
                )
            stored = self._store(spec, cause or ("create" if before is None else "apply"))
        if before is None:
            outcome = "created"
        elif stored.generation != before.generation:
            outcome = "configured"
        else:
            outcome = "unchanged"
        if outcome != "unchanged":
            self.events.add(
                spec.name,
                "SpecApplied",
                f"Generation {stored.generation}: {spec.model} → {stored.spec.model}, "
                f"{stored.spec.replicas} replica(s)",
            )
        return self._view(stored), outcome

    def scale(self, name: str, replicas: Any) -> JsonDict:
        """Set the replica count (the template, and so the revision, stays)."""
        if (
            isinstance(replicas, bool)
            or not isinstance(replicas, int)
            or not 0 <= replicas <= MAX_REPLICAS
        ):
            raise InvalidInputError(
                f"replicas = {shown(replicas)} is invalid: it must be an integer at least 0 and at "
                f"most {MAX_REPLICAS}."
            )
        with self._mutate:
            d = self._current(name)
            stored = self.manager.apply(replace(d.spec, replicas=replicas))
        if stored.generation != d.generation:
            self.events.add(name, "ScalingDeployment", f"Scaled to {replicas} replica(s)")
        return self._view(stored)

    def set_model(self, name: str, ref: Any, cause: str = "") -> JsonDict:
        """Point the deployment at another model reference (a new revision if it resolves
        to another version)."""
        if not isinstance(ref, str):
            raise InvalidInputError(f"model = {shown(ref)} is invalid: it must be a string.")
        with self._mutate:
            d = self._current(name)
            template = replace(d.spec.template, model=ref)
            stored = self._store(replace(d.spec, template=template), cause or f"set model {ref}")
        if stored.generation != d.generation:
            self.events.add(name, "ModelChanged", f"Model set to {ref} ({stored.spec.model})")
        return self._view(stored)

    def set_paused(self, name: str, paused: bool) -> JsonDict:
        """``rollout pause`` / ``rollout resume``."""
        with self._mutate:
            d = self._current(name)
            if d.spec.paused == paused:
                state = "paused" if paused else "not paused"
                raise ConflictError(f"Deployment {name!r} is already {state}.")
            stored = self.manager.apply(replace(d.spec, paused=paused))
        return self._view(stored)

    def undo(self, name: str, to_revision: Any = 0) -> tuple[JsonDict, bool]:
        """``rollout undo``; returns the deployment and whether it was skipped (already
        at that template).

        Raises:
            ConflictError: the deployment is paused.
            NotFoundError: no such revision.
        """
        if isinstance(to_revision, bool) or not isinstance(to_revision, int) or to_revision < 0:
            raise InvalidInputError(
                f"toRevision = {shown(to_revision)} is invalid: it must be an integer ≥ 0 "
                "(0 means the previous revision)."
            )
        with self._mutate:
            self._current(name)
            result = self.manager.undo(name, to_revision)
        if not result.skipped:
            self.events.add(
                name,
                "RolledBack",
                f"Rolled back to revision {result.revision.number} "
                f"({result.revision.template.model})",
            )
        return self.get_deployment(name), result.skipped

    def delete(self, name: str) -> None:
        """Drain and stop every replica and the router, then forget the deployment.

        Raises:
            NotFoundError: no such deployment.
            ConflictError: it is already being deleted.
            StepTimeoutError: the replicas did not stop within ``delete_timeout``.
            ConflictError: this control plane is a standby (another one runs the
                controllers, and so the replicas, of this database).
        """
        if self.leadership is not None and not self.leadership.leading:
            leader = self.leadership.status()["leader"] or "another control plane"
            raise ConflictError(
                f"This control plane is a standby: the controllers of its database run in "
                f"{leader}; delete deployment {name!r} through that one."
            )
        with self._mutate:  # a read-modify-write in flight finishes first
            self._check_not_deleting(name)
        try:
            # Waits for a sync in flight; the loop leaves the deployment alone afterwards.
            self.manager.delete(name, timeout=self.delete_timeout)
        except TimeoutError:
            raise StepTimeoutError(
                f"Deployment {name!r}: its replicas did not stop within "
                f"{self.delete_timeout:g} s; retry the delete."
            ) from None
        self.pinner.forget(name)
        self.events.forget(name)

    # ---- progressive delivery ----------------------------------------------------------------

    def promote(self, name: str, full: bool = False) -> JsonDict:
        """``rollout promote [--full]``."""
        d = self.manager.change_rollout(
            name, lambda spec, state, now: verbs.promote(spec, state, full, now)
        )
        self.events.add(name, "RolloutPromoted", "Fully promoted" if full else "Promoted")
        return self._view(d)

    def abort(self, name: str) -> JsonDict:
        """``rollout abort``: all traffic back to the stable revision at once."""
        d = self.manager.change_rollout(name, verbs.abort)
        self.events.add(name, "RolloutAborted", "Aborted by a user", WARNING)
        return self._view(d)

    def retry(self, name: str) -> JsonDict:
        """``rollout retry``: start an aborted rollout over."""
        d = self.manager.change_rollout(name, verbs.retry)
        self.events.add(name, "RolloutRetried", "Retried by a user")
        return self._view(d)

    def set_autoscaling(self, name: str, block: Any) -> JsonDict:
        """``autoscale deployment NAME``: set (or, with None, remove) ``spec.autoscaling``."""
        autoscaling = None if block is None else Autoscaling.from_dict(block)
        with self._mutate:
            d = self._current(name)
            stored = self.manager.apply(replace(d.spec, autoscaling=autoscaling))
        if stored.generation != d.generation:
            what = "removed" if autoscaling is None else (
                f"{autoscaling.min_replicas}..{autoscaling.max_replicas} replicas")  # fmt: skip
            self.events.add(name, "AutoscalingChanged", f"Autoscaling {what}")
        return self._view(stored)

    def _template_store(self) -> AnalysisTemplateStore:
        if self.manager.templates is None:
            raise ConflictError(
                "This control plane keeps no AnalysisTemplates (its store is not SQL-backed)."
            )
        return self.manager.templates

    def apply_template(self, doc: Any) -> tuple[JsonDict, str]:
        """Create or update an AnalysisTemplate; returns it and ``created``/``configured``/
        ``unchanged``. Raises InvalidDefinitionError naming the field."""
        template = AnalysisTemplate.from_dict(doc)
        stored, outcome = self._template_store().apply(template, time.time())
        return template_view(stored), outcome

    def list_templates(self) -> list[JsonDict]:
        return [template_view(t) for t in self._template_store().list()]

    def get_template(self, name: str) -> JsonDict:
        return template_view(self._template_store().get(name))

    def delete_template(self, name: str) -> None:
        self._template_store().delete(name)

    def triggers(self) -> TriggerOperations:
        """The Trigger operations. Raises ConflictError when this control plane keeps none."""
        if self.triggers_ops is None:
            raise ConflictError(
                "This control plane keeps no Triggers (it was built without a trigger store)."
            )
        return self.triggers_ops

    def monitors(self) -> MonitorOperations:
        """The Monitor operations. Raises ConflictError when this control plane keeps none."""
        if self.monitors_ops is None:
            raise ConflictError(
                "This control plane keeps no Monitors (it was built without a monitor store)."
            )
        return self.monitors_ops

    # ---- the loop ----------------------------------------------------------------------------

    def sync_once(self) -> None:
        """One tick of the sync loop (every deployment once), with this control plane's
        hooks; an error in one deployment is reported and does not stop the others."""
        self.manager.sync_all(self.sync_events)

    def run(self, stop: threading.Event, interval: float = 0.25) -> None:
        """The controllers until ``stop``: with a :attr:`leadership`, only while this control
        plane holds the database's controllers' lease (an API-only standby otherwise);
        without one, always."""
        if self.leadership is None:
            self._run_controllers(stop, interval)
        else:
            self.leadership.run(stop, lambda lost: self._run_controllers(lost, interval))

    def _run_controllers(self, stop: threading.Event, interval: float) -> None:
        """The manager's sync loop (adopt, then a tick every ``interval`` s until ``stop``)
        with this control plane's hooks; the trigger loop and the monitor loop, if any, each on
        a thread of its own; returns once all three have stopped."""
        loops = [
            threading.Thread(
                target=ops.run, args=(stop,), name=f"controlplane-{kind}", daemon=True
            )
            for kind, ops in (("triggers", self.triggers_ops), ("monitors", self.monitors_ops))
            if ops is not None
        ]
        for thread in loops:
            thread.start()
        try:
            self.manager.run(stop, interval, hooks=self.sync_events)
        finally:
            for thread in loops:
                thread.join()

    def close(self, timeout: float) -> None:
        """At shutdown: wait up to ``timeout`` seconds for replica stops still in flight.

        Raises:
            TimeoutError: some are still in flight (the next start resumes them).
        """
        self.manager.close(timeout=timeout)

    def controllers_status(self) -> dict[str, object]:
        """Whether this control plane runs the controllers (for /healthz)."""
        if self.leadership is None:
            return {"controllers": "active", "leader": None}
        return self.leadership.status()

    def _store(self, spec: DeploymentSpec, cause: str) -> Deployment:
        pinned = self.pinner.pin(spec, cause=cause)
        # The pin first: a stored spec always has its pin (a pin whose spec failed to store
        # is harmless history).
        self.pinner.record(spec.name, pinned.spec, pinned.pin)
        return self.manager.apply(pinned.spec)

    def _current(self, name: str) -> Deployment:
        self._check_not_deleting(name)
        return self.store.get_deployment(name)

    def _check_not_deleting(self, name: str) -> None:
        if self.manager.is_deleting(name):
            raise ConflictError(f"Deployment {name!r} is being deleted; wait for it to finish.")

    def _view(self, d: Deployment) -> JsonDict:
        return deployment_view(d, self.pins(d.name), self.host)

    def pins(self, name: str) -> dict[str, ModelPin]:
        return self.pinner.pins(name)

    def _find_replica(self, replica_id: str) -> Replica:
        check_name("Replica", replica_id)
        for snap in self.store.snapshot_all():
            for rep in snap.replicas:
                if rep.id == replica_id:
                    return rep
        raise NotFoundError(
            f"Replica {replica_id!r} does not exist; list replicas with: loopline get replicas"
        )
