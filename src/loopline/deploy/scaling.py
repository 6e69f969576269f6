"""Proportional scaling and revision-history clean-up (Kubernetes ``deployment/sync.go``)."""

from __future__ import annotations

from loopline.deploy.actions import DeleteRevision
from loopline.deploy.fenceposts import max_surge, round_half_away
from loopline.deploy.plan import Plan, RevisionState, creation_key
from loopline.deploy.spec import StrategyType


def is_scaling_event(plan: Plan) -> bool:
    """``isScalingEvent``: an active revision was sized for a different replica count."""
    for rs in plan.all():
        if rs.replicas > 0 and rs.desired_replicas is not None:
            if rs.desired_replicas != plan.spec.replicas:
                return True
    return False


def _find_active_or_latest(plan: Plan) -> RevisionState | None:
    if plan.new is None and not plan.old:
        return None
    active = [rs for rs in plan.all() if rs.replicas > 0]
    if len(active) == 1:
        return active[0]
    if not active:
        if plan.new is not None:
            return plan.new
        return max(plan.old, key=creation_key)
    return None


def _is_saturated(plan: Plan, rs: RevisionState | None) -> bool:
    if rs is None or rs.desired_replicas is None:
        return False
    n = plan.spec.replicas
    return rs.replicas == n and rs.desired_replicas == n and rs.available == n


def _fraction(plan: Plan, rs: RevisionState) -> int:
    spec = plan.spec
    if spec.replicas == 0:
        return -rs.replicas
    max_now = spec.replicas + max_surge(spec)
    before = rs.max_replicas
    if not before:
        before = plan.deployment.status.replicas
        if before == 0:
            return 0
    return round_half_away(rs.replicas / before * max_now) - rs.replicas


def _proportion(plan: Plan, rs: RevisionState, to_add: int, added: int) -> int:
    if rs.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    frac = _fraction(plan, rs)
    allowed = to_add - added
    return min(frac, allowed) if to_add > 0 else max(frac, allowed)


def scale(plan: Plan) -> None:
    """``scale``: resize revisions after ``replicas`` changed, keeping their proportions."""
    target = _find_active_or_latest(plan)
    if target is not None:
        if target.replicas != plan.spec.replicas:
            plan.scale(target, plan.spec.replicas)
        return
    if _is_saturated(plan, plan.new):
        for rs in plan.old:
            if rs.replicas > 0:
                plan.scale(rs, 0)
        return
    if plan.spec.strategy.type is not StrategyType.ROLLING_UPDATE:
        return
    active = [rs for rs in plan.all() if rs.replicas > 0]
    allowed = plan.spec.replicas + max_surge(plan.spec) if plan.spec.replicas > 0 else 0
    to_add = allowed - sum(rs.replicas for rs in active)
    if to_add > 0:  # bigger first; ties: newer first
        active.sort(key=lambda rs: (-rs.replicas, -rs.created_at, rs.hash))
    elif to_add < 0:  # bigger first; ties: older first
        active.sort(key=lambda rs: (-rs.replicas, rs.created_at, rs.hash))
    added = 0
    sizes: dict[str, int] = {}
    for rs in active:
        if to_add != 0:
            prop = _proportion(plan, rs, to_add, added)
            sizes[rs.hash] = rs.replicas + prop
            added += prop
        else:
            sizes[rs.hash] = rs.replicas
    for i, rs in enumerate(active):
        if i == 0 and to_add != 0:
            sizes[rs.hash] = max(0, sizes[rs.hash] + to_add - added)
        plan.scale(rs, sizes[rs.hash])


def cleanup_history(plan: Plan) -> None:
    """``cleanupDeployment``: delete the oldest empty old revisions beyond the history limit."""
    old = plan.old
    diff = len(old) - plan.spec.revision_history_limit
    if diff <= 0:
        return
    old.sort(key=lambda rs: (rs.number, rs.created_at))
    for rs in old[:diff]:
        if rs.observed != 0 or rs.replicas != 0 or rs.any_process:
            continue
        plan.revisions.remove(rs)
        plan.actions.append(DeleteRevision(rs.hash))
