"""A deployment on the Kubernetes engine in the API's wire shapes (``w.Deployment``,
``w.RolloutStatus``), read from the cluster's objects: the spec from ``loopline.dev/spec``,
replica counts, revision and conditions from the Deployment serving stable traffic (``NAME``
or ``NAME-stable``), traffic from the HTTPRoute's weights or the two tracks' replicas, the
autoscaler from the HorizontalPodAutoscaler's status."""

from __future__ import annotations

from loopline.deploy.analysis import AnalysisPhase, AnalysisRun
from loopline.deploy.engines.kubernetes.cluster import ObjectRef
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.deploy.engines.kubernetes.fields import as_int as _int
from loopline.deploy.engines.kubernetes.fields import as_list as _list
from loopline.deploy.engines.kubernetes.fields import as_map as _map
from loopline.deploy.engines.kubernetes.pod import MODEL_ANNOTATION, MODEL_DIGEST_ANNOTATION
from loopline.deploy.engines.kubernetes.rollouts import (
    POD_TEMPLATE_HASH,
    REVISION_ANNOTATION,
    CanaryProgress,
    Revision,
    RolloutStatus,
    deployment_status,
)
from loopline.errors import NotFoundError
from loopline.types import Json, JsonDict

TEMPLATE_HASH_ANNOTATION = "loopline.dev/template-hash"


def deployment_view(deployer: KubernetesDeployer, name: str, progress: CanaryProgress | None,
                    analysis: AnalysisRun | None = None) -> JsonDict:  # fmt: skip
    """``get deployment NAME -o yaml`` of a deployment on the cluster (``analysis``: the run
    of the analysis step the canary is at, or was last)."""
    primary = deployer.primary(name)
    meta, status = _map(primary.get("metadata")), _map(primary.get("status"))
    notes = _map(meta.get("annotations"))
    spec = deployer.spec(name)
    model = str(notes.get(MODEL_ANNOTATION) or "")
    doc: JsonDict = spec.to_dict() if spec is not None else {
        "apiVersion": "loopline/v1", "kind": "Deployment", "spec": {"model": model}}  # fmt: skip
    wanted = _int(_map(primary.get("spec")).get("replicas"))
    ready = _int(status.get("readyReplicas"))
    available = _int(status.get("availableReplicas"))
    state = deployment_status(primary)
    template_notes = _map(_map(_map(_map(primary.get("spec")).get("template")).get("metadata"))
                          .get("annotations"))  # fmt: skip
    digest = notes.get(MODEL_DIGEST_ANNOTATION)
    doc["metadata"] = {"name": name, "generation": _int(meta.get("generation")),
                       "creationTimestamp": meta.get("creationTimestamp")}  # fmt: skip
    doc["status"] = {
        "observedGeneration": _int(status.get("observedGeneration")),
        "replicas": _int(status.get("replicas")),
        "updatedReplicas": _int(status.get("updatedReplicas")),
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": max(0, wanted - available),
        "revision": _int(notes.get(REVISION_ANNOTATION)),
        "conditions": [_condition(c) for c in _list(status.get("conditions"))],
        "traffic": _traffic(deployer, name),
        "rollout": None if progress is None else {
            "stepIndex": progress.step_index, "pauseStartedAt": progress.pause_started,
            "aborted": progress.aborted, "waiting": progress.waiting,
            "canaryModel": _canary_model(deployer, name),
            "analysis": None if analysis is None else analysis.to_json()},
        "autoscaler": _autoscaler(deployer, name),
        "model": {"ref": spec.model if spec is not None else model, "pinned": model,
                  **({"digest": digest} if isinstance(digest, str) else {})},
        "templateHash": str(template_notes.get(TEMPLATE_HASH_ANNOTATION) or ""),
        "phase": _phase(state, progress, _map(primary.get("spec")).get("paused") is True
                        or _held(name, progress, analysis)),
        "router": None,
    }
    return doc


def revision_views(history: list[Revision]) -> list[JsonDict]:
    """``GET …/revisions`` (``w.Revision``) from the ReplicaSets of the stable Deployment: the
    hash is the ``pod-template-hash``, the cause ``kubernetes.io/change-cause``; the newest is
    current."""
    newest = max((r.number for r in history), default=0)
    out: list[JsonDict] = []
    for r in history:
        meta = _map(r.template.get("metadata"))
        notes, labels = _map(meta.get("annotations")), _map(meta.get("labels"))
        digest = notes.get(MODEL_DIGEST_ANNOTATION)
        out.append({
            "number": r.number, "hash": str(labels.get(POD_TEMPLATE_HASH) or ""),
            "name": r.replica_set, "model": r.model or "", "ref": r.model or "",
            "digest": digest if isinstance(digest, str) else None,
            "cause": r.change_cause or "", "replicas": r.replicas, "history": [],
            "createdAt": None, "current": r.number == newest,
        })  # fmt: skip
    return out


def rollout_view(primary: JsonDict, status: RolloutStatus) -> JsonDict:
    """``GET …/rollout`` (``w.RolloutStatus``) from the engine's status and the Deployment."""
    meta = _map(primary.get("metadata"))
    return {
        "done": status.done,
        "failed": status.failed,
        "paused": _map(primary.get("spec")).get("paused") is True,
        "message": status.message,
        "generation": _int(meta.get("generation")),
        "observedGeneration": _int(_map(primary.get("status")).get("observedGeneration")),
        "revision": _int(_map(meta.get("annotations")).get(REVISION_ANNOTATION)),
    }


def _held(name: str, progress: CanaryProgress | None, analysis: AnalysisRun | None) -> bool:
    """Waiting at a pause step, for a ready preview's promotion, or on an inconclusive analysis
    of the step the canary is at (Argo Rollouts' pause conditions; phase Paused, as locally)."""
    if progress is None or progress.aborted:
        return False
    inconclusive = analysis is not None and analysis.phase is AnalysisPhase.INCONCLUSIVE
    return progress.paused or (inconclusive and analysis is not None and
                               analysis.name == f"{name}-step-{progress.step_index}")  # fmt: skip


def _phase(state: RolloutStatus, progress: CanaryProgress | None, paused: bool) -> str:
    if state.failed or (progress is not None and progress.aborted):
        return "Degraded"
    if paused:
        return "Paused"
    return "Healthy" if state.done and progress is None else "Progressing"


def _traffic(deployer: KubernetesDeployer, name: str) -> JsonDict:
    """The route's weights by Service, or (no route) each track's desired replicas."""
    try:
        route = deployer.cluster.get(ObjectRef("gateway.networking.k8s.io/v1", "HTTPRoute",
                                               name, deployer.namespace))  # fmt: skip
    except NotFoundError:
        route = None
    if route is not None:
        rules = _list(_map(route.get("spec")).get("rules"))
        refs = _list(_map(rules[-1]).get("backendRefs")) if rules else []
        return {"weights": {str(_map(r).get("name")): _int(_map(r).get("weight"), 1)
                            for r in refs}}  # fmt: skip
    replicas: dict[str, Json] = {}
    for track in ("stable", "canary"):
        try:
            replicas[f"{name}-{track}"] = deployer.cluster.get_scale(
                ObjectRef("apps/v1", "Deployment", f"{name}-{track}", deployer.namespace))
        except NotFoundError:
            continue
    return {"replicas": replicas} if replicas else {}


def _canary_model(deployer: KubernetesDeployer, name: str) -> Json:
    canary = deployer.cluster.get(ObjectRef("apps/v1", "Deployment", f"{name}-canary",
                                            deployer.namespace))  # fmt: skip
    return _map(_map(canary.get("metadata")).get("annotations")).get(MODEL_ANNOTATION)


def _autoscaler(deployer: KubernetesDeployer, name: str) -> JsonDict | None:
    try:
        hpa = deployer.cluster.get(ObjectRef("autoscaling/v2", "HorizontalPodAutoscaler", name,
                                             deployer.namespace))  # fmt: skip
    except NotFoundError:
        return None
    spec, status = _map(hpa.get("spec")), _map(hpa.get("status"))
    return {"minReplicas": spec.get("minReplicas"), "maxReplicas": spec.get("maxReplicas"),
            "currentReplicas": status.get("currentReplicas"),
            "desiredReplicas": status.get("desiredReplicas"),
            "decidedBy": "HorizontalPodAutoscaler"}  # fmt: skip


def _condition(value: Json) -> JsonDict:
    c = _map(value)
    return {key: c.get(key) if key.startswith("last") else str(c.get(key) or "")
            for key in ("type", "status", "reason", "message", "lastUpdateTime",
                        "lastTransitionTime")}  # fmt: skip
