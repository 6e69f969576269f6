"""Status and conditions: ``calculateStatus``, ``syncRolloutStatus``, paused conditions.

Copied from Kubernetes ``deployment/{sync,progress}.go`` and ``deployment/util``. loopline
always has a progress deadline (``progressDeadlineSeconds`` defaults to 600), so the
Progressing condition is always maintained.
"""

from __future__ import annotations

from dataclasses import replace

from loopline.deploy.fenceposts import max_unavailable
from loopline.deploy.plan import (
    Plan,
    RevisionState,
    get_condition,
    new_condition,
    remove_condition,
    set_condition,
)
from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.status import Condition, ConditionType, DeploymentStatus, Reason


def calculate_status(plan: Plan) -> DeploymentStatus:
    """``calculateStatus``: counts from revisions, plus the Available condition."""
    spec = plan.spec
    all_rs = plan.all()
    available = sum(s.available for s in all_rs)
    total_desired = sum(s.replicas for s in all_rs)
    conditions = list(plan.conditions)
    if available >= spec.replicas - max_unavailable(spec):
        cond = new_condition(
            ConditionType.AVAILABLE,
            "True",
            Reason.MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.",
            plan.now,
        )
    else:
        cond = new_condition(
            ConditionType.AVAILABLE,
            "False",
            Reason.MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            plan.now,
        )
    conditions = set_condition(conditions, cond)
    return DeploymentStatus(
        observed_generation=plan.deployment.generation,
        replicas=sum(s.observed for s in all_rs),
        updated_replicas=plan.new.observed if plan.new is not None else 0,
        ready_replicas=sum(s.ready for s in all_rs),
        available_replicas=available,
        unavailable_replicas=max(0, total_desired - available),
        conditions=tuple(conditions),
        revision=plan.new.number if plan.new is not None else 0,
    )


def deployment_complete(plan: Plan, status: DeploymentStatus) -> bool:
    """``DeploymentComplete``: every replica updated and available, generation observed."""
    n = plan.spec.replicas
    return (
        status.updated_replicas == n
        and status.replicas == n
        and status.available_replicas == n
        and status.observed_generation >= plan.deployment.generation
    )


def _progressing(old: DeploymentStatus, new: DeploymentStatus) -> bool:
    """``DeploymentProgressing``: any measurable step forward since the last status."""
    old_old = old.replicas - old.updated_replicas
    new_old = new.replicas - new.updated_replicas
    return (
        new.updated_replicas > old.updated_replicas
        or new_old < old_old
        or new.ready_replicas > old.ready_replicas
        or new.available_replicas > old.available_replicas
    )


def _timed_out(plan: Plan, status: DeploymentStatus) -> bool:
    cond = status.condition(ConditionType.PROGRESSING)
    if cond is None or cond.reason == Reason.NEW_REVISION_AVAILABLE:
        return False
    if cond.reason == Reason.PROGRESS_DEADLINE_EXCEEDED:
        return True
    return cond.last_update_time + plan.spec.progress_deadline_seconds < plan.now


def sync_rollout_status(plan: Plan) -> DeploymentStatus:
    """``syncRolloutStatus``: counts + Progressing (complete / progress / deadline) + failures."""
    status = calculate_status(plan)
    old = plan.deployment.status
    conds = list(status.conditions)
    current = get_condition(list(old.conditions), ConditionType.PROGRESSING)
    complete = (
        status.replicas == status.updated_replicas
        and current is not None
        and current.reason == Reason.NEW_REVISION_AVAILABLE
    )
    name = plan.new.revision.name if plan.new is not None else plan.spec.name
    if not complete:
        if deployment_complete(plan, status):
            conds = set_condition(
                conds,
                new_condition(
                    ConditionType.PROGRESSING,
                    "True",
                    Reason.NEW_REVISION_AVAILABLE,
                    f"Revision {name!r} has successfully progressed.",
                    plan.now,
                ),
            )
        elif _progressing(old, status):
            cond = new_condition(
                ConditionType.PROGRESSING,
                "True",
                Reason.REVISION_UPDATED,
                f"Revision {name!r} is progressing.",
                plan.now,
            )
            # Same reason must still refresh lastUpdateTime: remove, then set.
            if current is not None:
                if current.status == "True":
                    cond = replace(cond, last_transition_time=current.last_transition_time)
                conds = remove_condition(conds, ConditionType.PROGRESSING)
            conds = set_condition(conds, cond)
        elif _timed_out(plan, replace(status, conditions=tuple(conds))):
            conds = set_condition(
                conds,
                new_condition(
                    ConditionType.PROGRESSING,
                    "False",
                    Reason.PROGRESS_DEADLINE_EXCEEDED,
                    f"Revision {name!r} has timed out progressing.",
                    plan.now,
                ),
            )
    failure = replica_failure(plan)
    if failure is not None:
        conds = set_condition(conds, failure)
    else:
        conds = remove_condition(conds, ConditionType.REPLICA_FAILURE)
    return replace(status, conditions=tuple(conds))


def replica_failure(plan: Plan) -> Condition | None:
    """ReplicaFailure from failing replicas, the new revision's first (``getReplicaFailures``).

    ``FailedCreate`` when the engine could not start a process, ``CrashLoopBackOff`` when a
    process keeps exiting.
    """
    order: list[RevisionState] = ([plan.new] if plan.new is not None else []) + plan.old
    for rs in order:
        failing = [
            r
            for r in plan.replicas
            if r.revision == rs.hash and r.phase is not ReplicaPhase.TERMINATING and r.is_failing()
        ]
        if not failing:
            continue
        r = failing[0]
        assert r.last_exit is not None  # narrowed above
        reason = Reason.FAILED_CREATE if r.last_exit.start_failed else Reason.CRASH_LOOP_BACK_OFF
        msg = (
            f"Replica {r.id!r} of revision {rs.revision.name!r} {r.last_exit.message} "
            f"({r.restarts} restart(s)); {len(failing)} replica(s) of this revision failing."
        )
        return new_condition(ConditionType.REPLICA_FAILURE, "True", reason, msg, plan.now)
    return None


def check_paused_conditions(plan: Plan) -> None:
    """``checkPausedConditions``: Progressing=Unknown DeploymentPaused / DeploymentResumed."""
    cond = get_condition(plan.conditions, ConditionType.PROGRESSING)
    if cond is not None and cond.reason == Reason.PROGRESS_DEADLINE_EXCEEDED:
        return
    paused_exists = cond is not None and cond.reason == Reason.DEPLOYMENT_PAUSED
    if plan.spec.paused and not paused_exists:
        plan.set_condition(
            new_condition(
                ConditionType.PROGRESSING,
                "Unknown",
                Reason.DEPLOYMENT_PAUSED,
                "Deployment is paused.",
                plan.now,
            )
        )
    elif not plan.spec.paused and paused_exists:
        plan.set_condition(
            new_condition(
                ConditionType.PROGRESSING,
                "Unknown",
                Reason.DEPLOYMENT_RESUMED,
                "Deployment is resumed.",
                plan.now,
            )
        )


def sync_deployment_status(plan: Plan) -> DeploymentStatus:
    """``syncDeploymentStatus``: counts and Available only (scaling / paused path)."""
    status = calculate_status(plan)
    conds = list(status.conditions)
    failure = replica_failure(plan)
    if failure is not None:
        conds = set_condition(conds, failure)
    else:
        conds = remove_condition(conds, ConditionType.REPLICA_FAILURE)
    return replace(status, conditions=tuple(conds))
