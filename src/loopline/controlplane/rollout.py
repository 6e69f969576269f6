"""``rollout status``: is the deployment's latest rollout done, still going, or failed?

Copies kubectl's ``DeploymentStatusViewer`` (``polymorphichelpers/rollout_status.go``),
with the same messages and the same order of checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loopline.deploy.deployment import Deployment
from loopline.deploy.rollout_state import Phase
from loopline.deploy.status import ConditionType, Reason
from loopline.deploy.strategies.progressive_sync import step_summary
from loopline.types import JsonDict


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """``done``: rolled out; ``failed``: the progress deadline passed; else still waiting."""

    done: bool
    failed: bool
    paused: bool
    message: str
    generation: int
    observed_generation: int
    revision: int

    def to_dict(self) -> JsonDict:
        return {
            "done": self.done,
            "failed": self.failed,
            "paused": self.paused,
            "message": self.message,
            "generation": self.generation,
            "observedGeneration": self.observed_generation,
            "revision": self.revision,
        }


def rollout_status(deployment: Deployment) -> RolloutStatus:
    """The rollout status of ``deployment`` as last observed by the controller."""
    d, s = deployment, deployment.status
    name = d.name

    def result(message: str, *, done: bool = False, failed: bool = False) -> RolloutStatus:
        return RolloutStatus(
            done=done,
            failed=failed,
            paused=d.spec.paused,
            message=message,
            generation=d.generation,
            observed_generation=s.observed_generation,
            revision=s.revision,
        )

    if d.generation > s.observed_generation:
        return result("Waiting for deployment spec update to be observed...")
    if d.spec.strategy.progressive and s.rollout is not None:
        return _progressive(d, result)
    progressing = s.condition(ConditionType.PROGRESSING)
    if progressing is not None and progressing.reason == Reason.PROGRESS_DEADLINE_EXCEEDED:
        return result(f"deployment {name!r} exceeded its progress deadline", failed=True)
    want = d.spec.replicas
    if s.updated_replicas < want:
        return result(
            f"Waiting for deployment {name!r} rollout to finish: {s.updated_replicas} out of "
            f"{want} new replicas have been updated..."
        )
    if s.replicas > s.updated_replicas:
        return result(
            f"Waiting for deployment {name!r} rollout to finish: "
            f"{s.replicas - s.updated_replicas} old replicas are pending termination..."
        )
    if s.available_replicas < s.updated_replicas:
        return result(
            f"Waiting for deployment {name!r} rollout to finish: {s.available_replicas} of "
            f"{s.updated_replicas} updated replicas are available..."
        )
    return result(f"deployment {name!r} successfully rolled out", done=True)


def _progressive(d: Deployment, result: Callable[..., RolloutStatus]) -> RolloutStatus:
    """Canary / BlueGreen: the step in progress, a pause and how to go on, an abort."""
    s, state, name = d.status, d.status.rollout, d.name
    assert state is not None
    if state.phase is Phase.DEGRADED:
        return result(f"deployment {name!r} rollout aborted: {state.message}", failed=True)
    if state.canary is not None:
        where = step_summary(d.spec, state)
        weights = dict(s.traffic.weights or ())
        weight = weights.get(state.canary)
        share = "" if weight is None else f", canary weight {weight}%"
        message = f"Waiting for deployment {name!r} rollout to finish: {where}{share}"
        if state.pause is not None:
            message += (
                f"; paused ({state.pause}): continue with `loopline rollout promote "
                f"deployment/{name}` or stop with `loopline rollout abort deployment/{name}`"
            )
        return result(message + "...")
    if d.spec.paused:
        return result(f"deployment {name!r} is paused; resume it to continue")
    want = d.spec.replicas
    if s.available_replicas < want:
        return result(
            f"Waiting for deployment {name!r} rollout to finish: {s.available_replicas} of "
            f"{want} replicas are available..."
        )
    return result(f"deployment {name!r} successfully rolled out", done=True)
