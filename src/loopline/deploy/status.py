"""Deployment status and conditions, with the Kubernetes reason strings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from loopline.deploy.autoscaler_state import AutoscalerStatus
from loopline.deploy.rollout_state import RolloutState
from loopline.deploy.traffic import Traffic
from loopline.types import JsonDict


class ConditionType(enum.Enum):
    """The three deployment conditions of ``apps/v1``."""

    PROGRESSING = "Progressing"
    AVAILABLE = "Available"
    REPLICA_FAILURE = "ReplicaFailure"


class Reason:
    """Condition reasons (``deployment/util``); ReplicaSet is spelled Revision here."""

    NEW_REVISION_CREATED = "NewRevisionCreated"  # k8s NewReplicaSetCreated
    FOUND_NEW_REVISION = "FoundNewRevision"  # k8s FoundNewReplicaSet
    REVISION_UPDATED = "RevisionUpdated"  # k8s ReplicaSetUpdated
    NEW_REVISION_AVAILABLE = "NewRevisionAvailable"  # k8s NewReplicaSetAvailable
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
    MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
    FAILED_CREATE = "FailedCreate"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    DEPLOYMENT_PAUSED = "DeploymentPaused"
    DEPLOYMENT_RESUMED = "DeploymentResumed"
    ROLLOUT_PAUSED = "RolloutPaused"  # Argo Rollouts' reasons for Canary/BlueGreen
    ROLLOUT_ABORTED = "RolloutAborted"


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition; times are seconds since the epoch."""

    type: ConditionType
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    last_update_time: float
    last_transition_time: float

    def to_dict(self) -> JsonDict:
        return {
            "type": self.type.value,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastUpdateTime": self.last_update_time,
            "lastTransitionTime": self.last_transition_time,
        }


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """What the controller last observed (``apps/v1`` DeploymentStatus, plus ``revision``)."""

    observed_generation: int = 0
    replicas: int = 0
    updated_replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    unavailable_replicas: int = 0
    conditions: tuple[Condition, ...] = ()
    revision: int = 0  # number of the revision the spec currently points at
    traffic: Traffic = field(default_factory=Traffic)
    """Where the router sends requests (weights, header routes, mirror, preview)."""
    rollout: RolloutState | None = None
    """Canary/BlueGreen: stable and canary revisions, step, pause, abort, analysis runs."""
    autoscaler: AutoscalerStatus | None = None
    """With ``spec.autoscaling``: the last decision (desired replicas, the HPA's state)."""

    def condition(self, kind: ConditionType) -> Condition | None:
        """The condition of that type, if present."""
        for c in self.conditions:
            if c.type is kind:
                return c
        return None

    def to_dict(self) -> JsonDict:
        return {
            "observedGeneration": self.observed_generation,
            "replicas": self.replicas,
            "updatedReplicas": self.updated_replicas,
            "readyReplicas": self.ready_replicas,
            "availableReplicas": self.available_replicas,
            "unavailableReplicas": self.unavailable_replicas,
            "revision": self.revision,
            "conditions": [c.to_dict() for c in self.conditions],
            "traffic": self.traffic.to_dict(),
            "rollout": None if self.rollout is None else self.rollout.to_dict(),
            "autoscaler": None if self.autoscaler is None else self.autoscaler.to_dict(),
        }
