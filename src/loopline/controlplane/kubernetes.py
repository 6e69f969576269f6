"""The control plane over the Kubernetes engine: the same REST API, the cluster as the state.

:class:`KubernetesControlPlane` is the :class:`~loopline.controlplane.service.ControlPlane`
whose deployment operations go to a namespace of a cluster
(:class:`~loopline.deploy.engines.kubernetes.deployer.KubernetesDeployer`) instead of local
processes; ``loopline controlplane --engine kubernetes`` (``LOOPLINE_ENGINE=kubernetes``)
builds it (:func:`loopline.controlplane.build.build_kubernetes_controlplane`).

- **State lives on the cluster.** The applied spec and a rollout's step are annotations of the
  Deployments (``loopline.dev/spec``, ``loopline.dev/canary-step``), so a restart, or a standby
  taking the lease over, carries on where the last holder stopped. Model pins and events are
  kept as locally (the metadata database and the event log).
- **The loop** is the engine's
  :class:`~loopline.deploy.engines.kubernetes.controller.RolloutController`: every progressive
  rollout of the namespace one decision per tick (weights, timed pauses, promotion), with
  nobody watching. Replicas, self-healing and rolling updates are the cluster's Deployment
  controller's; autoscaling decisions are the cluster's HorizontalPodAutoscaler's (``PUT
  …/autoscaling`` applies or deletes it) — the control plane never fights them.
- **Pinning** as locally: ``apply`` resolves ``name@alias`` through the registry and renders
  the version and its digest, so every pod of a revision serves the same bytes.
- **Analysis steps** run in the loop for Prometheus metrics
  (:mod:`loopline.deploy.engines.kubernetes.analysis`): Successful completes the step,
  Failed/Error aborts, Inconclusive holds for ``rollout promote``. The router and
  prediction-log providers read what only the local engine has, so a step using one waits
  for ``rollout promote``.
- **Not here**: replica processes and their logs (``/v1/replicas`` is empty: pods are the
  cluster's, ``kubectl logs``); Triggers and Monitors (they read the local store and the
  replicas' prediction logs). ``rollout retry`` applies the stored spec again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from loopline.controlplane.events import WARNING, EventLog
from loopline.controlplane.kubernetes_views import deployment_view, revision_views, rollout_view
from loopline.controlplane.leadership import Leadership
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.service import ControlPlane
from loopline.controlplane.views import strip_server_fields
from loopline.deploy.autoscaling import Autoscaling
from loopline.deploy.engines.kubernetes.analysis import StepAnalysis, stored_run
from loopline.deploy.engines.kubernetes.controller import RolloutController, deployment_names
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.deploy.engines.kubernetes.pod import ModelSource
from loopline.deploy.engines.kubernetes.traffic import GatewayRef
from loopline.deploy.fields import MAX_REPLICAS
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.state import DeploymentStateStore
from loopline.deploy.template_store import AnalysisTemplateStore
from loopline.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    shown,
)
from loopline.types import JsonDict

log = logging.getLogger(__name__)


class KubernetesControlPlane(ControlPlane):
    """Deployment operations on a cluster namespace (see the module docstring).

    Args:
        deployer: the namespace of the cluster.
        image: the loopline image the pods run.
        gateway: the Gateway for canary weights (None: replica ratios).
        pinner: resolves and records model references.
        events: recent events per deployment.
        store: the database's deployment store (empty here: the deployments are on the
            cluster; the API's list reports its unreadable records as locally).
        templates: the AnalysisTemplates (kept, and served, as locally).
        leadership: the database's controllers' lease (None: run the loop always).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        *,
        deployer: KubernetesDeployer,
        image: str,
        gateway: GatewayRef | None,
        pinner: ModelPinner,
        events: EventLog,
        store: DeploymentStateStore,
        templates: AnalysisTemplateStore | None = None,
        host: str = "127.0.0.1",
        leadership: Leadership | None = None,
        clock: Any = time.time,
    ) -> None:
        # Not ControlPlane.__init__: there is no local DeploymentManager to wrap; every method
        # of the base class that would reach one is overridden below.
        from loopline.controlplane.sync_events import SyncEvents

        self.deployer, self.image, self.gateway, self.clock = deployer, image, gateway, clock
        analysis = None if templates is None else StepAnalysis(
            lambda name: templates.get(name).template)  # fmt: skip
        self.controller = RolloutController(deployer, clock, analysis)
        self.leadership = leadership
        self.triggers_ops = None
        self.monitors_ops = None
        self.store = store
        self.pinner = pinner
        self.events = events
        self.host = host
        self.delete_timeout = 60.0
        self._mutate = threading.Lock()
        self.sync_events = SyncEvents(events)
        self._templates = templates

    # ---- reads -------------------------------------------------------------------------------

    def list_deployments(self) -> list[JsonDict]:
        return [self.get_deployment(n) for n in deployment_names(self.deployer)]

    def get_deployment(self, name: str) -> JsonDict:
        progress = None
        if self.deployer.progressive(name):
            progress = self.deployer.peek(name, now=self.clock())
        return deployment_view(self.deployer, name, progress, stored_run(self.deployer, name))

    def rollout_status(self, name: str) -> JsonDict:
        """The status as the loop left it (a GET never moves the rollout: the loop does)."""
        status = self.deployer.status(name, now=self.clock(), move=False)
        run = stored_run(self.deployer, name) if self.deployer.progressive(name) else None
        if run is not None and not status.done:
            verdict = f"{run.phase.value}{f' ({run.message})' if run.message else ''}"
            status = replace(status, message=f"{status.message}; analysis {run.name}: {verdict}")
        return rollout_view(self.deployer.primary(name), status)

    def revisions(self, name: str) -> list[JsonDict]:
        return revision_views(self.deployer.history(name))

    def replicas(self, name: str | None = None) -> list[JsonDict]:
        if name is not None:
            self.deployer.primary(name)  # NotFoundError for an unknown deployment
        return []  # pods are the cluster's: kubectl get pods -l app.kubernetes.io/instance=NAME

    def list_events(self, name: str, limit: int | None = None) -> list[JsonDict]:
        from loopline.controlplane.views import event_view

        self.deployer.primary(name)
        return [event_view(e) for e in self.events.list(name, limit)]

    def replica_log(self, replica_id: str, tail: int | None = None) -> str:
        raise NotFoundError(
            f"Replica {replica_id!r}: on the kubernetes engine replicas are pods; read their "
            "logs with kubectl logs -l app.kubernetes.io/instance=NAME."
        )

    # ---- writes ------------------------------------------------------------------------------

    def apply(
        self, doc: Any, *, create_only: bool = False, cause: str = ""
    ) -> tuple[JsonDict, str]:
        spec = DeploymentSpec.from_dict(strip_server_fields(doc))
        with self._mutate:
            exists = self._exists(spec.name)
            if exists and create_only:
                raise AlreadyExistsError(
                    f"Deployment {spec.name!r} already exists on the cluster; change it with "
                    "loopline apply -f FILE, or delete it first."
                )
            applied = self._apply(spec, cause or ("create" if not exists else "apply"))
        changed = [o for _, o in applied.objects if o != "unchanged"]
        outcome = "created" if not exists else "configured" if changed else "unchanged"
        if outcome != "unchanged":
            rollout = "; rollout started" if applied.rollout else ""
            self.events.add(spec.name, "SpecApplied",
                            f"Applied to the cluster: {spec.model}{rollout}")  # fmt: skip
        for warning in applied.warnings:
            self.events.add(spec.name, "RenderWarning", warning, WARNING)
        return self.get_deployment(spec.name), outcome

    def scale(self, name: str, replicas: Any) -> JsonDict:
        if (isinstance(replicas, bool) or not isinstance(replicas, int)
                or not 0 <= replicas <= MAX_REPLICAS):  # fmt: skip
            raise InvalidInputError(
                f"replicas = {shown(replicas)} is invalid: it must be an integer at least 0 and at "
                f"most {MAX_REPLICAS}."
            )
        with self._mutate:
            self.deployer.scale(name, replicas)
        self.events.add(name, "ScalingDeployment", f"Scaled to {replicas} replica(s)")
        return self.get_deployment(name)

    def set_model(self, name: str, ref: Any, cause: str = "") -> JsonDict:
        if not isinstance(ref, str):
            raise InvalidInputError(f"model = {shown(ref)} is invalid: it must be a string.")
        with self._mutate:
            spec = self._spec(name)
            self._apply(replace(spec, template=replace(spec.template, model=ref)),
                        cause or f"set model {ref}")  # fmt: skip
        self.events.add(name, "ModelChanged", f"Model set to {ref}")
        return self.get_deployment(name)

    def set_paused(self, name: str, paused: bool) -> JsonDict:
        with self._mutate:
            self.deployer.set_paused(name, paused)
        return self.get_deployment(name)

    def undo(self, name: str, to_revision: Any = 0) -> tuple[JsonDict, bool]:
        if isinstance(to_revision, bool) or not isinstance(to_revision, int) or to_revision < 0:
            raise InvalidInputError(
                f"toRevision = {shown(to_revision)} is invalid: it must be an integer ≥ 0 "
                "(0 means the previous revision)."
            )
        with self._mutate:
            done = self.deployer.undo(name, to_revision)
        if done:
            self.events.add(name, "RolledBack", f"Rolled back (toRevision {to_revision})")
        return self.get_deployment(name), not done

    def delete(self, name: str) -> None:
        with self._mutate:
            self.deployer.delete(name)
        self.pinner.forget(name)
        self.events.forget(name)

    def promote(self, name: str, full: bool = False) -> JsonDict:
        with self._mutate:
            self.deployer.promote(name, now=self.clock(), full=full)
        self.events.add(name, "RolloutPromoted", "Fully promoted" if full else "Promoted")
        return self.get_deployment(name)

    def abort(self, name: str) -> JsonDict:
        with self._mutate:
            self.deployer.abort(name)
        self.events.add(name, "RolloutAborted", "Aborted by a user", WARNING)
        return self.get_deployment(name)

    def retry(self, name: str) -> JsonDict:
        with self._mutate:
            spec = self._spec(name)
            if not self.deployer.aborted(name):
                raise ConflictError(f"Deployment {name!r} has no aborted rollout to retry.")
            self._apply(spec, "retry")
        self.events.add(name, "RolloutRetried", "Retried by a user")
        return self.get_deployment(name)

    def set_autoscaling(self, name: str, block: Any) -> JsonDict:
        autoscaling = None if block is None else Autoscaling.from_dict(block)
        with self._mutate:
            spec = self._spec(name)
            self._apply(replace(spec, autoscaling=autoscaling), "autoscale")
            if autoscaling is None:
                try:
                    self.deployer.autoscale(name, None)
                except NotFoundError:
                    pass  # there was none
        what = "removed" if autoscaling is None else (
            f"{autoscaling.min_replicas}..{autoscaling.max_replicas} replicas")  # fmt: skip
        self.events.add(name, "AutoscalingChanged", f"Autoscaling {what}")
        return self.get_deployment(name)

    def _template_store(self) -> AnalysisTemplateStore:
        if self._templates is None:
            raise ConflictError(
                "This control plane keeps no AnalysisTemplates (its store is not SQL-backed)."
            )
        return self._templates

    # ---- the loop ----------------------------------------------------------------------------

    def sync_once(self) -> None:
        for tick in self.controller.sync_all():
            if tick.error is not None:
                self.events.add(tick.name, "SyncFailed", tick.error, WARNING)

    def _run_controllers(self, stop: threading.Event, interval: float) -> None:
        """:meth:`sync_once` every ``interval`` s until ``stop``; a failed tick is logged and
        the next one runs (the loop never dies of one bad answer from the cluster)."""
        while not stop.is_set():
            try:
                self.sync_once()
            except Exception:
                log.exception("Kubernetes rollout controller: a tick failed")
            stop.wait(interval)

    def close(self, timeout: float) -> None:
        self.deployer.cluster.close()

    # ---- helpers -----------------------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        try:
            self.deployer.primary(name)
        except NotFoundError:
            return False
        return True

    def _spec(self, name: str) -> DeploymentSpec:
        spec = self.deployer.spec(name)
        if spec is None:
            raise ConflictError(
                f"Deployment {name!r} on the cluster carries no loopline.dev/spec annotation "
                "(it was not applied by loopline); apply its spec with loopline apply -f FILE."
            )
        return spec

    def _apply(self, spec: DeploymentSpec, cause: str) -> Any:
        """Pin the model, record the pin, apply to the cluster (the user's reference stays
        the spec's, so a re-apply of the same file re-resolves it)."""
        pinned = self.pinner.pin(spec, cause=cause)
        self.pinner.record(spec.name, pinned.spec, pinned.pin)
        source = ModelSource(pinned.pin.pinned_ref, digest=pinned.pin.digest)
        return self.deployer.apply(spec, image=self.image, gateway=self.gateway, model=source)
