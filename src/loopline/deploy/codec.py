"""JSON forms of the deploy entities, for stores and APIs (``to_json`` / ``from_json``)."""

from __future__ import annotations

from typing import Any

from loopline.deploy.autoscaler_state import AutoscalerStatus
from loopline.deploy.deployment import RouterProcess
from loopline.deploy.replica import ExitInfo, Replica, ReplicaPhase
from loopline.deploy.revision import Revision
from loopline.deploy.rollout_state import RolloutState
from loopline.deploy.spec import Template
from loopline.deploy.status import Condition, ConditionType, DeploymentStatus
from loopline.deploy.traffic import Traffic
from loopline.types import JsonDict


def revision_to_json(r: Revision) -> JsonDict:
    return {
        "deployment": r.deployment, "hash": r.hash, "number": r.number,
        "template": r.template.to_dict(), "createdAt": r.created_at, "replicas": r.replicas,
        "desiredReplicas": r.desired_replicas, "maxReplicas": r.max_replicas,
        "history": list(r.history),
    }  # fmt: skip


def revision_from_json(d: Any) -> Revision:
    return Revision(
        deployment=d["deployment"], hash=d["hash"], number=d["number"],
        template=Template.from_dict(d["template"]), created_at=d["createdAt"],
        replicas=d["replicas"], desired_replicas=d["desiredReplicas"],
        max_replicas=d["maxReplicas"], history=tuple(d["history"]),
    )  # fmt: skip


def replica_to_json(r: Replica) -> JsonDict:
    exit_: JsonDict | None = None
    if r.last_exit is not None:
        e = r.last_exit
        exit_ = {"at": e.at, "code": e.code, "message": e.message, "startFailed": e.start_failed}
    return {
        "id": r.id, "deployment": r.deployment, "revision": r.revision, "phase": r.phase.value,
        "createdAt": r.created_at, "port": r.port, "pid": r.pid,
        "processStart": r.process_start, "startedAt": r.started_at, "ready": r.ready,
        "readySince": r.ready_since, "restarts": r.restarts, "crashStreak": r.crash_streak,
        "probeFailures": r.probe_failures, "lastExit": exit_, "logPath": r.log_path,
    }  # fmt: skip


def replica_from_json(d: Any) -> Replica:
    e = d.get("lastExit")
    return Replica(
        id=d["id"], deployment=d["deployment"], revision=d["revision"],
        phase=ReplicaPhase(d["phase"]), created_at=d["createdAt"], port=d["port"],
        pid=d["pid"], process_start=d["processStart"], started_at=d["startedAt"],
        ready=d["ready"], ready_since=d["readySince"], restarts=d["restarts"],
        crash_streak=d["crashStreak"], probe_failures=d.get("probeFailures", 0),
        last_exit=None if e is None else ExitInfo(e["at"], e["code"], e["message"],
                                                  e["startFailed"]),
        log_path=d["logPath"],
    )  # fmt: skip


def status_to_json(s: DeploymentStatus) -> JsonDict:
    return s.to_dict()


def status_from_json(d: Any) -> DeploymentStatus:
    return DeploymentStatus(
        observed_generation=d["observedGeneration"], replicas=d["replicas"],
        updated_replicas=d["updatedReplicas"], ready_replicas=d["readyReplicas"],
        available_replicas=d["availableReplicas"],
        unavailable_replicas=d["unavailableReplicas"], revision=d.get("revision", 0),
        conditions=tuple(
            Condition(ConditionType(c["type"]), c["status"], c["reason"], c["message"],
                      c["lastUpdateTime"], c["lastTransitionTime"])
            for c in d["conditions"]
        ),
        traffic=Traffic.from_dict(d.get("traffic")),
        rollout=None if d.get("rollout") is None else RolloutState.from_dict(d["rollout"]),
        autoscaler=None if d.get("autoscaler") is None
        else AutoscalerStatus.from_dict(d["autoscaler"]),
    )  # fmt: skip


def router_to_json(r: RouterProcess | None) -> JsonDict | None:
    if r is None:
        return None
    return {"pid": r.pid, "processStart": r.process_start, "port": r.port,
            "adminPort": r.admin_port, "previewPort": r.preview_port}  # fmt: skip


def router_from_json(d: Any) -> RouterProcess | None:
    if d is None:
        return None
    return RouterProcess(d["pid"], d["processStart"], d["port"], d["adminPort"],
                         d.get("previewPort", 0))  # fmt: skip
