"""Monitors in the control plane: ``kind: Monitor`` operations and the monitor loop.

:class:`MonitorOperations` applies, lists, shows and deletes Monitors, serves their windows
and their status (:class:`~loopline.monitor.status.MonitorStatus`), and runs every applied
monitor's :meth:`~loopline.monitor.MonitorRunner.tick` on a thread of its own, every
``interval`` seconds, off the deployment sync loop. A tick that fails is recorded on that
monitor's status (``status.error``) and retried next round; it never stops the loop or the
other monitors. One runner per monitor and generation: a changed spec gets a fresh runner
(the runner's committed state decides where it resumes).

A monitor without ``spec.model`` watches the model its deployment serves (the registry name
of the deployment's ``spec.model``).
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.artifacts import ArtifactStore
from loopline.controlplane.timestamps import shown
from loopline.controlplane.views import strip_server_fields
from loopline.deploy.state import DeploymentStateStore
from loopline.errors import LooplineError, NotFoundError
from loopline.metadata import MetadataStore
from loopline.monitor import (
    ModelLineage,
    MonitorRunner,
    MonitorSpec,
    MonitorStatus,
    MonitorStore,
    StoredMonitor,
    build_status,
    model_lineage,
)
from loopline.registry import ModelRegistry
from loopline.types import JsonDict, ModelRef

if TYPE_CHECKING:
    from loopline.bundle import Trust

log = logging.getLogger(__name__)


class MonitorOperations:
    """What the ``/v1/monitors`` endpoints do, and the loop that ticks the monitors.

    Args:
        store: applied monitors and their progress.
        deployments: the deployment state (a monitor's model defaults to its deployment's).
        metadata, registry, artifacts: where references and Alert artifacts are found.
        log_root: the prediction-log directory the replicas write
            (``$LOOPLINE_HOME/predictions``).
        interval: seconds between rounds of the monitor loop.
        clock: epoch seconds (the ``now`` of every tick).
        trust: what loading a model bundle for a reference may run (the operator's
            ``Platform.trust``; None: loopline's built-in trust only).
    """

    def __init__(
        self,
        store: MonitorStore,
        *,
        deployments: DeploymentStateStore,
        metadata: MetadataStore,
        registry: ModelRegistry,
        artifacts: ArtifactStore,
        log_root: Path,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        trust: Trust | None = None,
    ) -> None:
        self.store = store
        self.deployments = deployments
        self.metadata = metadata
        self.registry = registry
        self.artifacts = artifacts
        self.log_root = log_root
        self.interval = interval
        self.clock = clock
        self.trust = trust
        self._runners: dict[str, tuple[int, MonitorRunner]] = {}
        self._errors: dict[str, str] = {}
        self._lineage: dict[tuple[str, str], ModelLineage] = {}
        self._lock = threading.Lock()  # one tick round at a time

    # ---- the API -----------------------------------------------------------------------------

    def apply(self, doc: Any) -> tuple[JsonDict, str]:
        """Create or update a Monitor; returns it and ``created``/``configured``/``unchanged``.

        Raises:
            InvalidDefinitionError: a field breaks a rule (the message names the field).
        """
        spec = MonitorSpec.from_dict(strip_server_fields(doc))
        stored, outcome = self.store.apply(spec, self.clock())
        if outcome != "unchanged":
            self._errors.pop(spec.name, None)
        return self._view(stored), outcome

    def list(self) -> builtins.list[JsonDict]:
        return [self._view(m) for m in self.store.list()]

    def get(self, name: str) -> JsonDict:
        return self._view(self.store.get(name))

    def status(self, name: str) -> MonitorStatus:
        return self._status(self.store.get(name))

    def delete(self, name: str) -> None:
        """Forget the monitor and its progress (its Alert artifacts stay in the metadata store)."""
        self.store.delete(name)
        self._runners.pop(name, None)
        self._errors.pop(name, None)

    def windows(
        self, name: str, *, version: str | None = None, limit: int | None = None
    ) -> builtins.list[JsonDict]:
        """Stored window results, oldest first (with ``limit``: the newest ``limit``)."""
        return [shown(w.to_dict()) for w in self.store.windows(name, version=version, limit=limit)]

    # ---- the loop ----------------------------------------------------------------------------

    def tick_all(self) -> None:
        """One round: tick every applied monitor once; a failure is recorded on its status."""
        with self._lock:
            monitors = self.store.list()
            names = {m.spec.name for m in monitors}
            for gone in set(self._runners) - names:
                del self._runners[gone]
            for stored in monitors:
                self._tick(stored)

    def run(self, stop: threading.Event) -> None:
        """Tick every ``interval`` seconds until ``stop`` (nothing escapes: the loop goes on)."""
        while not stop.is_set():
            try:
                self.tick_all()
            except Exception:  # the store itself failed: log it and try again next round
                log.exception("A round of the monitor loop failed; retrying.")
            stop.wait(self.interval)

    def _tick(self, stored: StoredMonitor) -> None:
        name = stored.spec.name
        try:
            runner = self._runner(stored)
            result = runner.tick(self.clock())
        except LooplineError as exc:
            self._errors[name] = str(exc)
            self._runners.pop(name, None)  # rebuilt from the committed state next round
            return
        except Exception as exc:
            log.exception("Monitor %r failed to tick.", name)
            self._errors[name] = f"The tick failed unexpectedly ({type(exc).__name__}: {exc})."
            self._runners.pop(name, None)
            return
        if result.errors:
            self._errors[name] = "; ".join(result.errors)
        else:
            self._errors.pop(name, None)

    def _runner(self, stored: StoredMonitor) -> MonitorRunner:
        name = stored.spec.name
        held = self._runners.get(name)
        if held is not None and held[0] == stored.generation:
            return held[1]
        runner = MonitorRunner(
            stored.spec,
            self.store,
            self.metadata,
            self.registry,
            self.artifacts,
            self.log_root,
            model=self._model(stored.spec),
            trust=self.trust,
        )
        self._runners[name] = (stored.generation, runner)
        return runner

    def _model(self, spec: MonitorSpec) -> str:
        """The registry name the monitor watches: ``spec.model``, else its deployment's."""
        if spec.model is not None:
            return spec.model
        try:
            deployment = self.deployments.get_deployment(spec.deployment)
        except NotFoundError:
            raise NotFoundError(
                f"Monitor {spec.name!r} watches deployment {spec.deployment!r}, which does not "
                "exist; apply the deployment, or name the model with spec.model."
            ) from None
        return ModelRef.parse(deployment.spec.model).name

    # ---- views -------------------------------------------------------------------------------

    def _status(self, stored: StoredMonitor) -> MonitorStatus:
        name = stored.spec.name
        state = self.store.load_state(name)
        versions = state.state.get("versions")
        known = sorted(versions) if isinstance(versions, dict) else []
        recent = {
            v: self.store.windows(name, version=v, limit=MonitorStatus.HISTORY) for v in known
        }
        try:
            model: str | None = self._model(stored.spec)
        except NotFoundError:
            model = None
        lineage = {}
        for v in known if model is not None else []:
            found = self._lineage_of(model or "", v)
            if found is not None:
                lineage[v] = found
        return build_status(
            stored,
            state,
            recent,
            self.store.alerts(name),
            model=model,
            lineage=lineage,
            error=self._errors.get(name),
        )

    def _lineage_of(self, model: str, version: str) -> ModelLineage | None:
        key = (model, version)
        if key not in self._lineage:
            try:
                self._lineage[key] = model_lineage(self.metadata, self.registry, model, version)
            except LooplineError as exc:
                log.warning("No lineage for %s version %s: %s", model, version, exc)
                return None
        return self._lineage[key]

    def _view(self, stored: StoredMonitor) -> JsonDict:
        doc = stored.spec.to_doc()
        meta = doc["metadata"]
        if isinstance(meta, dict):
            meta["generation"] = stored.generation
            meta["creationTimestamp"] = stored.created_at
        doc["status"] = self._status(stored).to_dict()
        result: JsonDict = shown(doc)
        return result
