"""Events: what one sync did, in words, bounded per deployment."""

from __future__ import annotations

from loopline.controlplane.events import EventLog
from loopline.deploy.actions import ScaleRevision, StopReplica, UpdateStatus
from loopline.deploy.revision import Revision
from loopline.deploy.spec import Template
from loopline.deploy.status import Condition, ConditionType, DeploymentStatus


def rev(replicas: int) -> Revision:
    return Revision("web", "abc1234567", 3, Template(model="taxi/3"), 0.0, replicas=replicas)


def test_scaling_and_stopping_are_described_with_revision_numbers() -> None:
    log = EventLog(clock=lambda: 5.0)
    log.record_sync(
        "web",
        [rev(3)],
        DeploymentStatus(),
        [ScaleRevision("abc1234567", 1, 1, 2), StopReplica("web-abc1234567-1")],
    )
    messages = [(e.reason, e.message) for e in log.list("web")]
    assert messages == [
        ("ScalingRevision", "Scaled down revision 3 (abc1234567) from 3 to 1"),
        ("ReplicaStopping", "Draining and stopping replica web-abc1234567-1"),
    ]


def test_a_condition_change_becomes_a_warning_when_it_is_bad_news() -> None:
    log = EventLog(clock=lambda: 5.0)
    stalled = Condition(
        ConditionType.PROGRESSING, "False", "ProgressDeadlineExceeded", "too slow", 1.0, 1.0
    )
    log.record_sync(
        "web", [], DeploymentStatus(), [UpdateStatus(DeploymentStatus(conditions=(stalled,)))]
    )
    (event,) = log.list("web")
    assert (event.type, event.reason) == ("Warning", "ProgressDeadlineExceeded")
    log.record_sync(
        "web",
        [],
        DeploymentStatus(conditions=(stalled,)),
        [UpdateStatus(DeploymentStatus(conditions=(stalled,), replicas=2))],
    )
    assert len(log.list("web")) == 1  # an unchanged condition is not repeated


def test_each_deployment_keeps_a_bounded_ring() -> None:
    log = EventLog(clock=lambda: 0.0, per_deployment=3)
    for i in range(5):
        log.add("web", "Note", str(i))
    assert [e.message for e in log.list("web")] == ["2", "3", "4"]
    assert [e.message for e in log.list("web", limit=1)] == ["4"]
