"""The JSON shapes the API returns for deployments, revisions, replicas, events and
AnalysisTemplates, and the check of a deployment name taken from a URL. Their timestamps are
RFC 3339 strings (:mod:`loopline.controlplane.timestamps`)."""

from __future__ import annotations

from loopline.controlplane.events import DeploymentEvent
from loopline.controlplane.pinning import ModelPin
from loopline.controlplane.timestamps import shown
from loopline.deploy.deployment import Deployment
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.spec import template_hash
from loopline.deploy.status import ConditionType, Reason
from loopline.deploy.template_store import StoredTemplate
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.types import JsonDict, check_name


def deployment_view(d: Deployment, pins: dict[str, ModelPin], host: str) -> JsonDict:
    """A deployment as ``get deployment -o yaml`` shows it.

    ``spec.model`` is the reference as the user wrote it (``taxi@champion``);
    ``status.model`` is what it was pinned to (version and digest).
    """
    doc = d.spec.to_dict()
    current_hash = template_hash(d.spec.template)
    pin = pins.get(current_hash)
    spec = doc["spec"]
    if pin is not None and isinstance(spec, dict):
        spec["model"] = pin.ref
    status = d.status.to_dict()
    status["model"] = (
        pin.to_dict() | {"pinned": pin.pinned_ref}
        if pin is not None
        else {"ref": d.spec.model, "pinned": d.spec.model}
    )
    status["templateHash"] = current_hash
    status["phase"] = phase(d)
    status["router"] = (
        None
        if d.router is None
        else {
            "port": d.router.port,
            "url": f"http://{host}:{d.router.port}",
            # blue-green: the preview revision alone (docs/progressive-delivery.md)
            "previewUrl": f"http://{host}:{d.router.preview_port}"
            if d.router.preview_port
            else None,
            "pid": d.router.pid,
        }
    )
    doc["metadata"] = {
        "name": d.name,
        "generation": d.generation,
        "creationTimestamp": d.created_at,
    }
    doc["status"] = status
    result: JsonDict = shown(doc)
    return result


def phase(d: Deployment) -> str:
    """Argo Rollouts' phase for every strategy: Healthy, Progressing, Paused or Degraded."""
    s = d.status
    if s.rollout is not None and d.spec.strategy.progressive:
        return s.rollout.phase.value
    progressing = s.condition(ConditionType.PROGRESSING)
    if progressing is not None and progressing.reason == Reason.PROGRESS_DEADLINE_EXCEEDED:
        return "Degraded"
    if d.spec.paused:
        return "Paused"
    n = d.spec.replicas
    done = (
        s.observed_generation >= d.generation
        and s.updated_replicas == n
        and s.replicas == n
        and s.available_replicas == n
    )
    return "Healthy" if done else "Progressing"


def revision_view(r: Revision, pins: dict[str, ModelPin], current_hash: str) -> JsonDict:
    """One revision with its pinned model."""
    pin = pins.get(r.hash)
    doc: JsonDict = {
        "number": r.number,
        "hash": r.hash,
        "name": r.name,
        "model": r.template.model,
        "ref": pin.ref if pin is not None else r.template.model,
        "digest": pin.digest if pin is not None else None,
        "cause": pin.cause if pin is not None else "",
        "replicas": r.replicas,
        "history": list(r.history),
        "createdAt": r.created_at,
        "current": r.hash == current_hash,
    }
    result: JsonDict = shown(doc)
    return result


def replica_view(rep: Replica, revisions: dict[str, Revision]) -> JsonDict:
    """One replica slot and its process."""
    rev = revisions.get(rep.revision)
    last = rep.last_exit
    doc: JsonDict = {
        "id": rep.id,
        "deployment": rep.deployment,
        "revision": rep.revision,
        "revisionNumber": rev.number if rev is not None else None,
        "model": rev.template.model if rev is not None else None,
        "phase": rep.phase.value,
        "ready": rep.ready,
        "port": rep.port,
        "pid": rep.pid,
        "restarts": rep.restarts,
        "createdAt": rep.created_at,
        "startedAt": rep.started_at,
        "readySince": rep.ready_since,
        "lastExit": None
        if last is None
        else {"at": last.at, "code": last.code, "message": last.message},
        "logPath": rep.log_path,
    }
    result: JsonDict = shown(doc)
    return result


def event_view(e: DeploymentEvent) -> JsonDict:
    """One event of a deployment."""
    result: JsonDict = shown(e.to_dict())
    return result


#: Fields the server fills in; an applied object may carry them (the output of
#: ``get -o yaml``, edited) and they are ignored, as Kubernetes ignores status on update.
SERVER_FIELDS = ("generation", "creationTimestamp")


def strip_server_fields(doc: object) -> object:
    """``doc`` without ``status`` and the server-filled ``metadata`` fields (a copy)."""
    if not isinstance(doc, dict):
        return doc
    clean = {k: v for k, v in doc.items() if k != "status"}
    meta = clean.get("metadata")
    if isinstance(meta, dict):
        clean["metadata"] = {k: v for k, v in meta.items() if k not in SERVER_FIELDS}
    return clean


def check_spec_name(name: str) -> str:
    """Validate a deployment name from a URL path."""
    try:
        return check_name("Deployment", name)
    except InvalidInputError as exc:
        raise InvalidDefinitionError(str(exc)) from exc


def template_view(stored: StoredTemplate) -> JsonDict:
    """An AnalysisTemplate as the API shows it: its document, with the store's generation and
    creation time in ``metadata``."""
    doc = stored.template.to_dict()
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        meta["generation"] = stored.generation
        meta["creationTimestamp"] = stored.created_at
    result: JsonDict = shown(doc)
    return result
