"""Replica phase changes go through one function that checks ALLOWED_TRANSITIONS."""

from __future__ import annotations

import pytest

from loopline.deploy.replica import ALLOWED_TRANSITIONS, Replica, ReplicaPhase, transition
from loopline.errors import ConflictError


def replica(phase: ReplicaPhase) -> Replica:
    return Replica("web-aaa-1", "web", "aaa", phase, created_at=1.0, port=9, pid=10)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (old, new)
        for old, allowed in ALLOWED_TRANSITIONS.items()
        for new in sorted(allowed, key=lambda p: p.value)
    ],
)
def test_every_allowed_transition_moves_the_phase_and_sets_the_fields(
    old: ReplicaPhase, new: ReplicaPhase
) -> None:
    moved = transition(replica(old), new, ready=False, restarts=2)
    assert (moved.phase, moved.restarts, moved.id) == (new, 2, "web-aaa-1")


def test_a_terminating_replica_can_never_come_back() -> None:
    with pytest.raises(
        ConflictError,
        match=r"Replica 'web-aaa-1' is Terminating; it cannot become Running "
        r"\(allowed from Terminating: none\)\. The sync loop tried an illegal phase change",
    ):
        transition(replica(ReplicaPhase.TERMINATING), ReplicaPhase.RUNNING, ready=True)


def test_staying_in_a_phase_is_not_a_transition() -> None:
    with pytest.raises(ConflictError, match=r"is Running; it cannot become Running \(allowed "
                       r"from Running: Failed, Terminating\)"):  # fmt: skip
        transition(replica(ReplicaPhase.RUNNING), ReplicaPhase.RUNNING)


def test_a_failed_replica_restarts_as_pending_never_straight_to_running() -> None:
    with pytest.raises(ConflictError, match="is Failed; it cannot become Running"):
        transition(replica(ReplicaPhase.FAILED), ReplicaPhase.RUNNING)
    assert transition(replica(ReplicaPhase.FAILED), ReplicaPhase.PENDING).phase is (
        ReplicaPhase.PENDING
    )
