"""Triggers in the control plane: ``kind: Trigger`` operations and the trigger loop.

:class:`TriggerOperations` applies, lists, shows and deletes Triggers, reads a trigger's run
history, and runs the :class:`~loopline.triggers.TriggerController` loop on its own thread
(off the deployment sync loop's critical path). :class:`DeploymentRollouts` is the
controller's view of deployments: it sets a deployment's model through the control plane (so
the model is pinned and recorded like ``loopline set model``) and reads where its rollout is.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.controlplane.rollout import rollout_status
from loopline.controlplane.timestamps import shown
from loopline.controlplane.views import strip_server_fields
from loopline.deploy.rollout_state import Phase
from loopline.errors import InvalidDefinitionError
from loopline.triggers import (
    RolloutObservation,
    RolloutPhase,
    StoredTrigger,
    TriggerController,
    TriggerSpec,
    TriggerStore,
)
from loopline.types import Json, JsonDict

if TYPE_CHECKING:
    from loopline.controlplane.service import ControlPlane

log = logging.getLogger(__name__)


class DeploymentRollouts:
    """:class:`~loopline.triggers.Rollouts` over a control plane."""

    def __init__(self, service: ControlPlane) -> None:
        self.service = service

    def set_model(self, deployment: str, ref: str, cause: str) -> int:
        self.service.set_model(deployment, ref, cause=cause)
        return self.service.store.get_deployment(deployment).generation

    def observe(self, deployment: str) -> RolloutObservation:
        d = self.service.store.get_deployment(deployment)
        status = rollout_status(d)
        state = d.status.rollout
        if status.failed:
            phase, message = RolloutPhase.DEGRADED, status.message
            if state is not None and state.phase is Phase.DEGRADED:
                failed = [
                    f"analysis {r.name}: {r.message}"
                    for r in state.analysis_runs
                    if r.message and r.phase.value in ("Failed", "Error")
                ]
                message = "; ".join([state.message or status.message, *failed])
        elif status.done:
            phase, message = RolloutPhase.HEALTHY, status.message
        else:
            phase, message = RolloutPhase.PROGRESSING, status.message
        return RolloutObservation(
            serving=d.spec.template.model,
            generation=d.generation,
            observed_generation=d.status.observed_generation,
            phase=phase,
            message=message,
        )


class TriggerOperations:
    """What the ``/v1/triggers`` endpoints do, and the loop that runs the triggers."""

    def __init__(
        self, store: TriggerStore, controller: TriggerController, interval: float = 1.0
    ) -> None:
        self.store = store
        self.controller = controller
        self.interval = interval

    def apply(self, doc: Any) -> tuple[JsonDict, str]:
        """Create or update a Trigger; returns it and ``created``/``configured``/``unchanged``.

        Raises:
            InvalidDefinitionError: a field breaks a rule, or ``spec.run.pipeline`` is not a
                file this control plane can read (the message names the field).
        """
        spec = TriggerSpec.from_dict(strip_server_fields(doc))
        pipeline = Path(spec.run.pipeline)
        if not pipeline.is_file():
            raise InvalidDefinitionError(
                f"Trigger field spec.run.pipeline = {spec.run.pipeline!r} is invalid: no such "
                f"file on the control plane's machine (relative paths start at "
                f"{str(Path.cwd())!r}); give an absolute path.",
                field="spec.run.pipeline",
            )
        stored, outcome = self.store.apply(spec, time.time())
        return self._view(stored), outcome

    def list(self) -> list[JsonDict]:
        return [self._view(t) for t in self.store.list()]

    def get(self, name: str) -> JsonDict:
        return self._view(self.store.get(name))

    def delete(self, name: str) -> None:
        """Forget the trigger; a run in flight still finishes (its runs stay as history)."""
        self.store.delete(name)

    def history(self, name: str, limit: int | None = None) -> builtins.list[JsonDict]:
        """The trigger's runs, newest first."""
        self.store.get(name)
        return [shown(r.to_dict()) for r in self.store.list_runs(trigger=name, limit=limit)]

    def run(self, stop: threading.Event) -> None:
        """The trigger loop until ``stop`` (errors are logged; the loop goes on)."""
        try:
            self.controller.run(stop, self.interval)
        except Exception:  # the thread must not die silently
            log.exception("The trigger loop stopped unexpectedly.")

    def _view(self, stored: StoredTrigger) -> JsonDict:
        doc = stored.spec.to_dict()
        meta = doc["metadata"]
        if isinstance(meta, dict):
            meta["generation"] = stored.generation
            meta["creationTimestamp"] = stored.created_at
        runs = self.store.list_runs(trigger=stored.spec.name, limit=1)
        doc["status"] = {
            "cursor": stored.cursor,
            "lastRun": runs[0].to_dict() if runs else None,
            # this round's skipped and deferred events, and why (the first 20)
            "waiting": list[Json](self.controller.last_decisions.get(stored.spec.name, [])[:20]),
        }
        result: JsonDict = shown(doc)
        return result
