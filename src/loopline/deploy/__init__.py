"""Kubernetes-style model deployments: desired state → revisions → replicas, behind a router.

Key contracts:

- :class:`DeploymentSpec` (``apiVersion: loopline/v1``, ``kind: Deployment``) is validated
  when built; errors name the field path and value. :func:`template_hash` names revisions.
- :func:`reconcile` is a pure function ``(deployment, revisions, replicas, now) → actions``
  that copies the Kubernetes Deployment controller (fenceposts, one step per sync,
  availability = ready for minReadySeconds, proportional scaling, progress deadline,
  history clean-up) plus replica healing with kubelet-style crash back-off.
- :class:`DeploymentManager` runs the one sync loop (``run``; the control plane plugs in
  :class:`SyncHooks`): each tick reads every :class:`DeploymentSnapshot` in one transaction,
  observes processes through a :class:`DeployEngine`, reconciles, pushes the route table to
  the :class:`Routing` and commits each deployment's changes as one batch of writes
  (:class:`PutRevision`, :class:`PutReplica`, :class:`SetStatus`, …). All state lives in a
  :class:`DeploymentStateStore` (in memory, or :class:`SqlDeploymentStateStore` in the
  metadata database); a new manager on the same store re-adopts running replicas (pid + start
  time) and finishes rollouts in progress. Replica phases change only through
  :func:`transition`.
- :class:`LocalEngine` runs replicas and routers as detached processes (own session, one
  log file each); :class:`LocalRouting` drives one router process per deployment.
- The router (``python -m loopline.deploy.router``) balances over ready replicas with exact
  per-revision weights, drains before stops and retries a failed inference once.
- Fakes and conformance suites: ``loopline.testing.deploy``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.deploy.actions import (
        Action,
        CreateRevision,
        DeleteRevision,
        RecordRevisionNumber,
        RestartReplica,
        ScaleRevision,
        StartReplica,
        StopReplica,
        UpdateStatus,
    )
    from loopline.deploy.backoff import BackoffPolicy
    from loopline.deploy.controller import reconcile
    from loopline.deploy.deployment import Deployment, RouterProcess
    from loopline.deploy.engines.base import DeployEngine, ProcessExit, ProcessHandle
    from loopline.deploy.engines.local import LocalEngine
    from loopline.deploy.fenceposts import max_surge, max_unavailable, resolve_fenceposts
    from loopline.deploy.local_routing import LocalRouting
    from loopline.deploy.manager import DeploymentManager
    from loopline.deploy.replica import ExitInfo, Replica, ReplicaPhase, transition
    from loopline.deploy.revision import Revision
    from loopline.deploy.route_table import Backend, RouteTable, route_table
    from loopline.deploy.routing import Routing
    from loopline.deploy.snapshot import DeploymentSnapshot
    from loopline.deploy.spec import (
        Batching,
        DeploymentSpec,
        Logging,
        Strategy,
        StrategyType,
        Template,
        template_hash,
    )
    from loopline.deploy.sql_state import SqlDeploymentStateStore
    from loopline.deploy.state import DeploymentStateStore, InMemoryDeploymentStateStore
    from loopline.deploy.status import Condition, ConditionType, DeploymentStatus, Reason
    from loopline.deploy.sync import SyncHooks, SyncResult
    from loopline.deploy.traffic import HeaderMatch, HeaderRoute, Mirror, Traffic
    from loopline.deploy.undo import UndoResult, undo
    from loopline.deploy.writes import (
        DropReplica,
        DropRevision,
        PutReplica,
        PutRevision,
        SetRouter,
        SetStatus,
        Write,
    )

# Imported on first use: every ``loopline.deploy.*`` import runs this file first (the router
# process, the triggers' and monitors' spec readers), and none of them should pay for the
# manager, the engines and the analysis providers to do so.
_EXPORTS = {
    "Action": "loopline.deploy.actions",
    "Backend": "loopline.deploy.route_table",
    "BackoffPolicy": "loopline.deploy.backoff",
    "Batching": "loopline.deploy.spec",
    "Condition": "loopline.deploy.status",
    "ConditionType": "loopline.deploy.status",
    "CreateRevision": "loopline.deploy.actions",
    "DeleteRevision": "loopline.deploy.actions",
    "DeployEngine": "loopline.deploy.engines.base",
    "Deployment": "loopline.deploy.deployment",
    "DeploymentManager": "loopline.deploy.manager",
    "DeploymentSnapshot": "loopline.deploy.snapshot",
    "DeploymentSpec": "loopline.deploy.spec",
    "DeploymentStateStore": "loopline.deploy.state",
    "DeploymentStatus": "loopline.deploy.status",
    "DropReplica": "loopline.deploy.writes",
    "DropRevision": "loopline.deploy.writes",
    "ExitInfo": "loopline.deploy.replica",
    "HeaderMatch": "loopline.deploy.traffic",
    "HeaderRoute": "loopline.deploy.traffic",
    "InMemoryDeploymentStateStore": "loopline.deploy.state",
    "LocalEngine": "loopline.deploy.engines.local",
    "LocalRouting": "loopline.deploy.local_routing",
    "Logging": "loopline.deploy.spec",
    "Mirror": "loopline.deploy.traffic",
    "ProcessExit": "loopline.deploy.engines.base",
    "ProcessHandle": "loopline.deploy.engines.base",
    "PutReplica": "loopline.deploy.writes",
    "PutRevision": "loopline.deploy.writes",
    "Reason": "loopline.deploy.status",
    "RecordRevisionNumber": "loopline.deploy.actions",
    "Replica": "loopline.deploy.replica",
    "ReplicaPhase": "loopline.deploy.replica",
    "RestartReplica": "loopline.deploy.actions",
    "Revision": "loopline.deploy.revision",
    "RouteTable": "loopline.deploy.route_table",
    "RouterProcess": "loopline.deploy.deployment",
    "Routing": "loopline.deploy.routing",
    "ScaleRevision": "loopline.deploy.actions",
    "SetRouter": "loopline.deploy.writes",
    "SetStatus": "loopline.deploy.writes",
    "SqlDeploymentStateStore": "loopline.deploy.sql_state",
    "StartReplica": "loopline.deploy.actions",
    "StopReplica": "loopline.deploy.actions",
    "Strategy": "loopline.deploy.spec",
    "StrategyType": "loopline.deploy.spec",
    "SyncHooks": "loopline.deploy.sync",
    "SyncResult": "loopline.deploy.sync",
    "Template": "loopline.deploy.spec",
    "Traffic": "loopline.deploy.traffic",
    "UndoResult": "loopline.deploy.undo",
    "UpdateStatus": "loopline.deploy.actions",
    "Write": "loopline.deploy.writes",
    "max_surge": "loopline.deploy.fenceposts",
    "max_unavailable": "loopline.deploy.fenceposts",
    "reconcile": "loopline.deploy.controller",
    "resolve_fenceposts": "loopline.deploy.fenceposts",
    "route_table": "loopline.deploy.route_table",
    "template_hash": "loopline.deploy.spec",
    "transition": "loopline.deploy.replica",
    "undo": "loopline.deploy.undo",
}

__all__ = [
    "Action",
    "Backend",
    "BackoffPolicy",
    "Batching",
    "Condition",
    "ConditionType",
    "CreateRevision",
    "DeleteRevision",
    "DeployEngine",
    "Deployment",
    "DeploymentManager",
    "DeploymentSnapshot",
    "DeploymentSpec",
    "DeploymentStateStore",
    "DeploymentStatus",
    "DropReplica",
    "DropRevision",
    "ExitInfo",
    "HeaderMatch",
    "HeaderRoute",
    "InMemoryDeploymentStateStore",
    "LocalEngine",
    "LocalRouting",
    "Logging",
    "Mirror",
    "ProcessExit",
    "ProcessHandle",
    "PutReplica",
    "PutRevision",
    "Reason",
    "RecordRevisionNumber",
    "Replica",
    "ReplicaPhase",
    "RestartReplica",
    "Revision",
    "RouteTable",
    "RouterProcess",
    "Routing",
    "ScaleRevision",
    "SetRouter",
    "SetStatus",
    "SqlDeploymentStateStore",
    "StartReplica",
    "StopReplica",
    "Strategy",
    "StrategyType",
    "SyncHooks",
    "SyncResult",
    "Template",
    "Traffic",
    "UndoResult",
    "UpdateStatus",
    "Write",
    "max_surge",
    "max_unavailable",
    "reconcile",
    "resolve_fenceposts",
    "route_table",
    "template_hash",
    "transition",
    "undo",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.deploy' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
