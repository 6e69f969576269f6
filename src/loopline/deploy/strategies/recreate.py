"""Recreate (Kubernetes ``deployment/recreate.go``): all old replicas down, then new up."""

from __future__ import annotations

from loopline.deploy.plan import Plan


def rollout_recreate(plan: Plan) -> bool:
    """One Recreate step; True when old revisions were scaled down this sync.

    The new revision is created only once no process of an old revision is left, so the two
    never serve side by side (downtime by design).
    """
    plan.sync_revision(create=False)
    scaled_down = False
    for rs in plan.old:
        if rs.replicas > 0:
            plan.scale_and_record(rs, 0)
            scaled_down = True
    if scaled_down:
        return True
    if any(rs.observed > 0 or rs.any_process for rs in plan.old):
        return False
    if plan.new is None:
        plan.sync_revision(create=True)
    assert plan.new is not None
    if plan.new.replicas != plan.spec.replicas:
        plan.scale_and_record(plan.new, plan.spec.replicas)
    return False
