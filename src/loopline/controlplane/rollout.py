"""``rollout status``: is the deployment's latest rollout done, still going, or failed?

Copies kubectl's ``DeploymentStatusViewer`` (``polymorphichelpers/rollout_status.go``),
with the same messages and the same order of checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.deploy.deployment import Deployment
from loopline.deploy.status import ConditionType, Reason
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
