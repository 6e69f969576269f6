"""Kubernetes-style model deployments: desired state → revisions → replicas, behind a router.

Key contracts:

- :class:`DeploymentSpec` (``apiVersion: loopline/v1``, ``kind: Deployment``) is validated
  when built; errors name the field path and value. :func:`template_hash` names revisions.
- :func:`reconcile` is a pure function ``(deployment, revisions, replicas, now) → actions``
  that copies the Kubernetes Deployment controller (fenceposts, one step per sync,
  availability = ready for minReadySeconds, proportional scaling, progress deadline,
  history clean-up) plus replica healing with kubelet-style crash back-off.
- :class:`DeploymentManager` is the thin sync loop: observe processes through a
  :class:`DeployEngine`, reconcile, apply, push ready backends to the :class:`Routing`.
  All state lives in a :class:`DeploymentStateStore` (in memory, or
  :class:`SqlDeploymentStateStore` in the metadata database); a new manager on the same store
  re-adopts running replicas (pid + start time) and finishes rollouts in progress.
- :class:`LocalEngine` runs replicas and routers as detached processes (own session, one
  log file each); :class:`LocalRouting` drives one router process per deployment.
- The router (``python -m loopline.deploy.router``) balances over ready replicas with exact
  per-revision weights, drains before stops and retries a failed inference once.
- Fakes and conformance suites: ``loopline.testing.deploy``.
"""

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
from loopline.deploy.replica import ExitInfo, Replica, ReplicaPhase
from loopline.deploy.revision import Revision
from loopline.deploy.route_table import Backend, RouteTable, route_table
from loopline.deploy.routing import Routing
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
from loopline.deploy.traffic import HeaderMatch, HeaderRoute, Mirror, Traffic
from loopline.deploy.undo import UndoResult, undo

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
    "DeploymentSpec",
    "DeploymentStateStore",
    "DeploymentStatus",
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
    "SqlDeploymentStateStore",
    "StartReplica",
    "StopReplica",
    "Strategy",
    "StrategyType",
    "Template",
    "Traffic",
    "UndoResult",
    "UpdateStatus",
    "max_surge",
    "max_unavailable",
    "reconcile",
    "resolve_fenceposts",
    "route_table",
    "template_hash",
    "undo",
]
