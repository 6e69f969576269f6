"""A stand-in for kube-controller-manager's Deployment controller, for the fake API server.

The fake API server runs no controllers, as kube-apiserver alone runs none. Tests that need a
Deployment to roll out call :meth:`DeploymentControllerSim.sync`, which does in one step what
the controller converges to: a ReplicaSet per pod template (``NAME-HASH``, owned by the
Deployment, ``deployment.kubernetes.io/revision`` one above the highest, reused and
renumbered when an old template comes back, ``kubernetes.io/change-cause`` copied), the new
ReplicaSet at ``spec.replicas`` and the old ones at zero, and the Deployment's status
(``observedGeneration``, replica counts, ``Available``/``Progressing`` conditions). A paused
Deployment gets no new ReplicaSet. Pods whose image is in ``failing_images`` never become
ready, and their Deployment reports ``ProgressDeadlineExceeded`` at once (the sync has no
clock).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable

from loopline.testing.kube_store import KINDS, Kind, KubeStore
from loopline.types import Json, JsonDict

MANAGER = "kube-controller-manager"
_DEPLOYMENT = next(k for k in KINDS if k.kind == "Deployment")
_REPLICA_SET = next(k for k in KINDS if k.kind == "ReplicaSet")


class DeploymentControllerSim:
    """See the module docstring."""

    def __init__(self, store: KubeStore, *, failing_images: Iterable[str] = ()) -> None:
        self.store = store
        self.failing_images = set(failing_images)

    def sync(self) -> None:
        deployments, _ = self.store.list_objects(_DEPLOYMENT, "")
        for deployment in deployments:
            self._sync_one(deployment)

    def _sync_one(self, deployment: JsonDict) -> None:
        meta, spec = _map(deployment["metadata"]), _map(deployment["spec"])
        name, namespace = str(meta["name"]), str(meta["namespace"])
        template = _map(spec.get("template"))
        wanted = spec.get("replicas", 1)
        wanted = wanted if isinstance(wanted, int) else 1
        replica_sets = [rs for rs in self.store.list_objects(_REPLICA_SET, namespace)[0]
                        if any(_map(o).get("uid") == meta["uid"]
                               for o in _list(_map(rs["metadata"]).get("ownerReferences")))]
        numbers = [_revision(rs) for rs in replica_sets]
        current = next((rs for rs in replica_sets if _template(rs) == template), None)
        if current is None and not spec.get("paused"):
            digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
            pod_meta = _map(template.get("metadata"))
            labels = {**_map(pod_meta.get("labels")), "pod-template-hash": digest}
            selector = _map(spec.get("selector"))
            current = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": f"{name}-{digest}", "namespace": namespace, "labels": labels,
                "annotations": {}, "ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "Deployment", "name": name, "uid": meta["uid"], "controller": True}]},
                "spec": {"replicas": 0, "selector": {"matchLabels": {
                    **_map(selector.get("matchLabels")), "pod-template-hash": digest}},
                    "template": {**template, "metadata": {**pod_meta, "labels": labels}}}}
            replica_sets.append(current)
        if current is not None:
            notes = _map(_map(current["metadata"]).get("annotations"))
            if _revision(current) != max(numbers, default=0) or not notes:
                notes["deployment.kubernetes.io/revision"] = str(max(numbers, default=0) + 1)
            cause = _map(meta.get("annotations")).get("kubernetes.io/change-cause")
            if isinstance(cause, str):
                notes["kubernetes.io/change-cause"] = cause
            _map(current["metadata"])["annotations"] = notes
        ready_total = updated = total = 0
        for rs in replica_sets:
            is_current = rs is current
            count = wanted if is_current else 0
            body = copy.deepcopy(rs)
            _map(body["spec"])["replicas"] = count
            for field in ("resourceVersion", "managedFields", "uid", "creationTimestamp",
                          "generation"):  # fmt: skip
                _map(body["metadata"]).pop(field, None)
            body.pop("status", None)
            rs_name = str(_map(body["metadata"])["name"])
            self.store.apply(_REPLICA_SET, namespace, rs_name, body, MANAGER, force=True)
            image_ok = not (set(_images(_map(_map(body["spec"])["template"])))
                            & self.failing_images)  # fmt: skip
            ready = count if image_ok else 0
            self._status(_REPLICA_SET, namespace, rs_name, {
                "replicas": count, "readyReplicas": ready, "availableReplicas": ready,
                "observedGeneration": 1})  # fmt: skip
            total += count
            ready_total += ready
            updated += count if is_current else 0
        failing = bool(set(_images(template)) & self.failing_images)
        progressing: JsonDict = ({"type": "Progressing", "status": "False",
                                  "reason": "ProgressDeadlineExceeded"} if failing else
                                 {"type": "Progressing", "status": "True",
                                  "reason": "NewReplicaSetAvailable"})  # fmt: skip
        self._status(_DEPLOYMENT, namespace, name, {
            "observedGeneration": meta.get("generation", 1),
            "replicas": total, "updatedReplicas": updated, "readyReplicas": ready_total,
            "availableReplicas": ready_total,
            "conditions": [{"type": "Available", "status": "True" if ready_total >= wanted
                            else "False"}, progressing],
        })  # fmt: skip

    def _status(self, kind: Kind, namespace: str, name: str, status: JsonDict) -> None:
        current = self.store.get(kind, namespace, name)
        self.store.replace(kind, namespace, name, {**current, "status": status}, MANAGER,
                           sub="status")  # fmt: skip


def _map(value: Json) -> dict[str, Json]:
    return value if isinstance(value, dict) else {}


def _list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def _revision(rs: JsonDict) -> int:
    value = _map(_map(rs["metadata"]).get("annotations")).get("deployment.kubernetes.io/revision")
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _template(rs: JsonDict) -> JsonDict:
    template = copy.deepcopy(_map(_map(rs["spec"]).get("template")))
    labels = _map(_map(template.get("metadata")).get("labels"))
    labels.pop("pod-template-hash", None)
    return template


def _images(template: JsonDict) -> list[str]:
    pod = _map(template.get("spec"))
    return [str(_map(c).get("image")) for c in _list(pod.get("containers"))]
