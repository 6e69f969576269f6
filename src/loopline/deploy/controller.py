"""The deployment controller as a pure function: state in, actions out.

:func:`reconcile` copies Kubernetes ``syncDeployment`` (``deployment_controller.go``):
paused conditions, then either proportional scaling (paused or a scaling event) or one
strategy step (RollingUpdate / Recreate), history clean-up once complete, and the rollout
status with its conditions. Replica-level healing (start, stop, restart with back-off)
follows. Nothing here does I/O or reads a clock; the sync loop applies the actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from loopline.deploy.actions import Action, UpdateStatus
from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.deployment import Deployment
from loopline.deploy.healing import heal
from loopline.deploy.plan import Plan
from loopline.deploy.progress import (
    check_paused_conditions,
    deployment_complete,
    sync_deployment_status,
    sync_rollout_status,
)
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.scaling import cleanup_history, is_scaling_event, scale
from loopline.deploy.spec import StrategyType
from loopline.deploy.status import DeploymentStatus
from loopline.deploy.strategies.progressive_sync import sync_progressive
from loopline.deploy.strategies.recreate import rollout_recreate
from loopline.deploy.strategies.rolling import rollout_rolling


def reconcile(
    deployment: Deployment,
    revisions: list[Revision],
    replicas: list[Replica],
    now: float,
    backoff: BackoffPolicy | None = None,
    templates: Mapping[str, AnalysisTemplate] | None = None,
) -> list[Action]:
    """One sync of one deployment.

    Args:
        deployment: the stored spec, generation and last status.
        revisions: every revision of this deployment.
        replicas: every replica slot of this deployment, as last observed.
        now: seconds since the epoch (a fake clock in tests).
        backoff: the crash back-off policy (kubelet defaults when omitted).
        templates: the AnalysisTemplates by name (Canary/BlueGreen analyses); the analysis
            runs themselves are in the status, measured between syncs.

    Returns:
        Actions in the order they must be applied: revision changes, replica changes, then
        at most one ``UpdateStatus`` (omitted when the status did not change).
    """
    plan = Plan.build(deployment, revisions, replicas, now)
    if plan.spec.strategy.progressive:
        status = sync_progressive(plan, templates or {})
    else:
        status = _sync(plan)
    actions = list(plan.actions)
    actions.extend(heal(plan, backoff or BackoffPolicy()))
    # The autoscaler's decision is recorded by the sync loop, not by the controller.
    status = replace(status, autoscaler=deployment.status.autoscaler)
    if status != deployment.status:
        actions.append(UpdateStatus(status))
    return actions


def _sync(plan: Plan) -> DeploymentStatus:
    check_paused_conditions(plan)
    if plan.spec.paused or is_scaling_event(plan):
        plan.sync_revision(create=False)
        scale(plan)
        if plan.spec.paused:
            cleanup_history(plan)
        return sync_deployment_status(plan)
    if plan.spec.strategy.type is StrategyType.RECREATE:
        scaled = rollout_recreate(plan)
    else:
        scaled = rollout_rolling(plan)
    if not scaled and deployment_complete(plan, plan.deployment.status):
        cleanup_history(plan)
    return sync_rollout_status(plan)
