"""Replica-level reconcile: the ReplicaSet controller plus the kubelet's restart policy.

Each revision's desired size is matched by starting or stopping replica slots; a FAILED
slot is restarted once its back-off has elapsed. Which replicas go first on scale-down
follows Kubernetes ``ActivePods`` ordering: failed, then pending, then not ready, then ready
for the shortest time, most restarts, newest.
"""

from __future__ import annotations

from loopline.deploy.actions import Action, RestartReplica, StartReplica, StopReplica
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.plan import Plan
from loopline.deploy.replica import Replica, ReplicaPhase

MAX_STARTS_PER_SYNC = 50
"""Replica processes one sync may start or restart, over every revision of a deployment
(Kubernetes' ReplicaSet ``burstReplicas``, 500 there): the rest start in the next syncs, so
one spec never forks hundreds of processes at once."""

_PHASE_RANK = {ReplicaPhase.FAILED: 0, ReplicaPhase.PENDING: 1, ReplicaPhase.RUNNING: 2}


def deletion_order(replicas: list[Replica]) -> list[Replica]:
    """Replicas sorted so that the first ones are the cheapest to lose."""

    def key(r: Replica) -> tuple[int, int, float, int, float]:
        return (
            _PHASE_RANK.get(r.phase, 0),
            1 if r.ready else 0,
            -(r.ready_since or 0.0),
            -r.restarts,
            -r.created_at,
        )

    return sorted(replicas, key=key)


def heal(plan: Plan, backoff: BackoffPolicy) -> list[Action]:
    """Actions that bring every revision's live replicas to its desired count, starting or
    restarting at most :data:`MAX_STARTS_PER_SYNC` processes (the next sync starts the rest)."""
    actions = _heal(plan, backoff)
    budget = MAX_STARTS_PER_SYNC
    kept: list[Action] = []
    for action in actions:
        if isinstance(action, StartReplica | RestartReplica):
            if budget == 0:
                continue
            budget -= 1
        kept.append(action)
    return kept


def _heal(plan: Plan, backoff: BackoffPolicy) -> list[Action]:
    actions: list[Action] = []
    known = {rs.hash: rs for rs in plan.revisions}
    for rep in plan.replicas:  # replicas of a revision that no longer exists
        if rep.revision not in known and rep.phase is not ReplicaPhase.TERMINATING:
            actions.append(StopReplica(rep.id))
    for rs in plan.revisions:
        live = [
            r
            for r in plan.replicas
            if r.revision == rs.hash and r.phase is not ReplicaPhase.TERMINATING
        ]
        surplus = len(live) - rs.replicas
        if surplus > 0:
            victims = deletion_order(live)[:surplus]
            actions.extend(StopReplica(r.id) for r in victims)
            ids = {r.id for r in victims}
            live = [r for r in live if r.id not in ids]
        elif surplus < 0:
            actions.extend(StartReplica(rs.hash) for _ in range(-surplus))
        for r in live:
            if r.phase is ReplicaPhase.FAILED and backoff.next_start(r) <= plan.now:
                actions.append(RestartReplica(r.id))
    return actions


def waiting_reason(replica: Replica, backoff: BackoffPolicy, now: float) -> str | None:
    """``CrashLoopBackOff`` while a FAILED replica waits for its back-off, else None."""
    if replica.phase is ReplicaPhase.FAILED and backoff.next_start(replica) > now:
        return "CrashLoopBackOff"
    return None
