"""One sync of a Canary or BlueGreen deployment: the strategy, then the status.

The status keeps Kubernetes' counts and Available condition (so ``get deployments`` reads
the same for every strategy) and maps the rollout phase onto the Progressing condition:
Healthy → True/NewRevisionAvailable, Progressing → True/RevisionUpdated, Paused →
Unknown/RolloutPaused, Degraded → False/RolloutAborted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.plan import Plan, new_condition, remove_condition, set_condition
from loopline.deploy.progress import calculate_status, replica_failure
from loopline.deploy.progressive_spec import describe_step
from loopline.deploy.rollout_state import Phase, RolloutState
from loopline.deploy.scaling import cleanup_history
from loopline.deploy.spec import DeploymentSpec, StrategyType
from loopline.deploy.status import Condition, ConditionType, DeploymentStatus, Reason
from loopline.deploy.strategies.bluegreen import rollout_blue_green
from loopline.deploy.strategies.canary import rollout_canary


def sync_progressive(plan: Plan, templates: Mapping[str, AnalysisTemplate]) -> DeploymentStatus:
    """Run the strategy and compute the status (with the rollout state and traffic)."""
    if plan.spec.strategy.type is StrategyType.CANARY:
        state, traffic = rollout_canary(plan, templates)
    else:
        state, traffic = rollout_blue_green(plan, templates)
    if state.canary is None:
        cleanup_history(plan)
    status = calculate_status(plan)
    conds = set_condition(list(status.conditions), _progressing(plan, state))
    failure = replica_failure(plan)
    conds = (
        set_condition(conds, failure)
        if failure is not None
        else remove_condition(conds, ConditionType.REPLICA_FAILURE)
    )
    return replace(status, conditions=tuple(conds), rollout=state, traffic=traffic)


def step_summary(spec: DeploymentSpec, state: RolloutState) -> str:
    """``step 2/6 (pause 30s)`` for a canary, ``preview`` / ``promoting`` for blue-green."""
    strategy = spec.strategy
    if strategy.canary is not None:
        steps = strategy.canary.steps
        if state.promote_full or state.step_index >= len(steps):
            return f"step {len(steps)}/{len(steps)} (promoting)"
        step = describe_step(steps[state.step_index])
        return f"step {state.step_index + 1}/{len(steps)} ({step})"
    return ("preview", "promoting", "post-promotion analysis")[min(state.step_index, 2)]


def _progressing(plan: Plan, state: RolloutState) -> Condition:
    rs = plan.new
    name = rs.revision.name if rs is not None else plan.spec.name
    if state.phase is Phase.DEGRADED:
        return new_condition(ConditionType.PROGRESSING, "False", Reason.ROLLOUT_ABORTED,
                             state.message, plan.now)  # fmt: skip
    if state.phase is Phase.PAUSED:
        why = "Deployment is paused." if plan.spec.paused else f"Rollout paused ({state.pause})."
        return new_condition(ConditionType.PROGRESSING, "Unknown", Reason.ROLLOUT_PAUSED, why,
                             plan.now)  # fmt: skip
    if state.phase is Phase.PROGRESSING:
        where = step_summary(plan.spec, state) if state.canary is not None else "scaling"
        return new_condition(ConditionType.PROGRESSING, "True", Reason.REVISION_UPDATED,
                             f"Revision {name!r} is progressing: {where}.", plan.now)  # fmt: skip
    return new_condition(ConditionType.PROGRESSING, "True", Reason.NEW_REVISION_AVAILABLE,
                         f"Revision {name!r} has successfully progressed.", plan.now)  # fmt: skip
