"""RollingUpdate (Kubernetes ``deployment/rolling.go``): one scaling step per sync."""

from __future__ import annotations

from loopline.deploy.fenceposts import max_unavailable
from loopline.deploy.plan import Plan, RevisionState, creation_key, new_revision_replicas


def rollout_rolling(plan: Plan) -> bool:
    """Scale the new revision up or the old ones down; True if something was scaled.

    The caller syncs rollout status afterwards either way, and cleans history up when the
    deployment is complete.
    """
    plan.sync_revision(create=True)
    if _reconcile_new(plan):
        return True
    return _reconcile_old(plan)


def _reconcile_new(plan: Plan) -> bool:
    new = plan.new
    assert new is not None  # sync_revision(create=True) always leaves one
    n = plan.spec.replicas
    if new.replicas == n:
        return False
    if new.replicas > n:
        return plan.scale_and_record(new, n)
    return plan.scale_and_record(new, new_revision_replicas(plan.spec, plan.all(), new))


def _reconcile_old(plan: Plan) -> bool:
    new = plan.new
    assert new is not None
    old = [rs for rs in plan.old if rs.replicas > 0]
    if sum(rs.replicas for rs in old) == 0:
        return False
    all_pods = sum(rs.replicas for rs in plan.all())
    min_available = plan.spec.replicas - max_unavailable(plan.spec)
    new_unavailable = new.replicas - new.available
    # Broken new replicas are not capacity: this is what lets undo escape a crash loop.
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return False
    cleaned = _cleanup_unhealthy(plan, old, max_scaled_down)
    scaled = _scale_down_old(plan, old)
    return cleaned + scaled > 0


def _cleanup_unhealthy(plan: Plan, old: list[RevisionState], budget: int) -> int:
    """``cleanupUnhealthyReplicas``: drop unavailable old replicas first, oldest revision first."""
    done = 0
    for rs in sorted(old, key=creation_key):
        if done >= budget:
            break
        if rs.replicas == 0 or rs.replicas == rs.available:
            continue
        k = min(budget - done, rs.replicas - rs.available)
        plan.scale_and_record(rs, rs.replicas - k)
        done += k
    return done


def _scale_down_old(plan: Plan, old: list[RevisionState]) -> int:
    """``scaleDownOldReplicaSetsForRollingUpdate``: keep ``replicas - maxUnavailable`` up."""
    min_available = plan.spec.replicas - max_unavailable(plan.spec)
    available = sum(rs.available for rs in plan.all())
    if available <= min_available:
        return 0
    budget, done = available - min_available, 0
    for rs in sorted(old, key=creation_key):
        if done >= budget:
            break
        if rs.replicas == 0:
            continue
        k = min(rs.replicas, budget - done)
        plan.scale_and_record(rs, rs.replicas - k)
        done += k
    return done
