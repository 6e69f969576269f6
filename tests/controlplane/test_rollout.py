"""``rollout status`` messages, in kubectl's order of checks."""

from __future__ import annotations

from dataclasses import replace

from loopline.controlplane.rollout import rollout_status
from loopline.deploy.deployment import Deployment
from loopline.deploy.spec import DeploymentSpec, Template
from loopline.deploy.status import Condition, ConditionType, DeploymentStatus


def dep(generation: int = 2, **status: object) -> Deployment:
    spec = DeploymentSpec(name="taxi", template=Template(model="taxi/1"), replicas=3)
    base = DeploymentStatus(observed_generation=2, replicas=3, updated_replicas=3,
                            ready_replicas=3, available_replicas=3)  # fmt: skip
    return Deployment(spec=spec, generation=generation, created_at=0.0,
                      status=replace(base, **status))  # type: ignore[arg-type]  # fmt: skip


def test_an_unobserved_spec_is_waiting() -> None:
    s = rollout_status(dep(generation=3))
    assert (s.done, s.failed) == (False, False)
    assert s.message == "Waiting for deployment spec update to be observed..."


def test_a_passed_progress_deadline_fails() -> None:
    cond = Condition(ConditionType.PROGRESSING, "False", "ProgressDeadlineExceeded", "", 0, 0)
    s = rollout_status(dep(conditions=(cond,), updated_replicas=1))
    assert s.failed and not s.done
    assert s.message == "deployment 'taxi' exceeded its progress deadline"


def test_waiting_messages_follow_kubectl() -> None:
    assert rollout_status(dep(updated_replicas=1)).message.endswith(
        "1 out of 3 new replicas have been updated..."
    )
    assert rollout_status(dep(replicas=4)).message.endswith(
        "1 old replicas are pending termination..."
    )
    assert rollout_status(dep(available_replicas=2)).message.endswith(
        "2 of 3 updated replicas are available..."
    )


def test_complete_rollout_is_done() -> None:
    s = rollout_status(dep())
    assert s.done and s.message == "deployment 'taxi' successfully rolled out"
