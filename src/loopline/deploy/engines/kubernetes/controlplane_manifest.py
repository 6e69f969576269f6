"""The control plane in-cluster, as one manifest: ``loopline render --target kubernetes
--controller``.

:func:`controlplane_manifests` draws, as plain dicts (no client import):

- an optional ``Namespace``;
- a ``ServiceAccount`` and a ``Role`` + ``RoleBinding`` with what the Kubernetes engine uses
  and nothing more (:data:`RULES`): the verbs of
  :class:`~loopline.deploy.engines.kubernetes.cluster.Cluster` (get, list, watch; create and
  patch for server-side apply and merge patches; delete) on the kinds
  :func:`~.render.render` draws, get/patch on ``deployments/scale``, read-only ReplicaSets
  (history, undo), pods, ``pods/log`` and events. No ``update`` (the engine never PUTs), no
  Secrets, nothing cluster-wide: the Role is namespaced, so the control plane manages the
  deployments of its own namespace only;
- the control plane ``Deployment``: ``loopline controlplane --engine kubernetes`` on port
  8080 of all interfaces, loopline's image, non-root (uid/gid 65532), read-only root file
  system with ``emptyDir`` volumes for ``/tmp`` and ``LOOPLINE_HOME``, no privilege
  escalation, every capability dropped, ``RuntimeDefault`` seccomp, startup/liveness/readiness
  probes on ``/healthz`` (``Host: localhost``, so no token is needed), requests and limits.
  The database URL, the artifact root and the API token come from Secrets the operator
  creates (``secretKeyRef``), never inline: :data:`STORES_SECRET` (``LOOPLINE_DB_URL``,
  ``LOOPLINE_ARTIFACT_ROOT``, the same Secret the model servers read) and
  :data:`TOKEN_SECRET` (``token``);
- a ``ClusterIP`` ``Service`` on port 80, whose names are the control plane's allowed
  ``Host`` names (``LOOPLINE_CONTROLPLANE_HOSTS``).

docs/kubernetes.md ("The control plane in-cluster") gives the commands.
"""

from __future__ import annotations

from loopline.deploy.engines.kubernetes.pod import STORES_SECRET, container_security, pod_security
from loopline.types import Json, JsonDict

NAME = "loopline-controlplane"
TOKEN_SECRET = "loopline-controlplane-token"
"""The Secret holding the control plane's API token (key ``token``)."""
PORT = 8080
HOME = "/var/lib/loopline"
HEALTH_PATH = "/healthz"
_VERBS: list[Json] = ["get", "list", "watch", "create", "patch", "delete"]
_READ: list[Json] = ["get", "list", "watch"]
RULES: tuple[JsonDict, ...] = (
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": _VERBS},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": _READ},
    {"apiGroups": [""], "resources": ["services"], "verbs": _VERBS},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _VERBS},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _VERBS},
    {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": _VERBS},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": _READ},
)
"""The Role's rules: the least the Kubernetes engine needs (module docstring)."""


def controlplane_manifests(
    *,
    image: str,
    namespace: str,
    create_namespace: bool = False,
    gateway: str | None = None,
    stores_secret: str = STORES_SECRET,
    token_secret: str = TOKEN_SECRET,
) -> list[JsonDict]:
    """The objects that run the control plane in ``namespace`` (module docstring), in the
    order ``kubectl apply`` needs them. ``gateway`` (``[NS/]NAME[#LISTENER]``) is the Gateway
    canaries get exact weights on (None: replica ratios)."""
    labels: JsonDict = {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/component": "controlplane",
        "app.kubernetes.io/part-of": "loopline",
        "app.kubernetes.io/managed-by": "loopline",
    }
    meta: JsonDict = {"name": NAME, "namespace": namespace, "labels": labels}
    objects: list[JsonDict] = []
    if create_namespace:
        objects.append({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": namespace, "labels": dict(labels)}})  # fmt: skip
    objects += [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta),
         "automountServiceAccountToken": True},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta),
         "rules": [dict(r) for r in RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": dict(meta),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]},
        _deployment(meta, labels, image=image, namespace=namespace, gateway=gateway,
                    stores_secret=stores_secret, token_secret=token_secret),
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta),
         "spec": {"type": "ClusterIP", "selector": _selector(labels),
                  "ports": [{"name": "http", "port": 80, "targetPort": "http",
                             "protocol": "TCP"}]}},
    ]  # fmt: skip
    return objects


def service_hosts(namespace: str) -> list[str]:
    """The names the Service is reached by inside the cluster (the allowed ``Host`` names)."""
    return [NAME, f"{NAME}.{namespace}", f"{NAME}.{namespace}.svc",
            f"{NAME}.{namespace}.svc.cluster.local"]  # fmt: skip


def _selector(labels: JsonDict) -> JsonDict:
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/component")}


def _deployment(
    meta: JsonDict, labels: JsonDict, *, image: str, namespace: str, gateway: str | None,
    stores_secret: str, token_secret: str,
) -> JsonDict:  # fmt: skip
    def secret(env: str, name: str, key: str, optional: bool = False) -> JsonDict:
        ref: JsonDict = {"name": name, "key": key}
        if optional:
            ref["optional"] = True
        return {"name": env, "valueFrom": {"secretKeyRef": ref}}

    env: list[Json] = [
        {"name": "LOOPLINE_ENGINE", "value": "kubernetes"},
        {"name": "LOOPLINE_HOME", "value": HOME},
        {"name": "LOOPLINE_KUBERNETES_IMAGE", "value": image},
        {"name": "LOOPLINE_KUBERNETES_NAMESPACE", "value": namespace},
        {"name": "LOOPLINE_CONTROLPLANE_HOSTS", "value": ",".join(service_hosts(namespace))},
        secret("LOOPLINE_DB_URL", stores_secret, "LOOPLINE_DB_URL"),
        secret("LOOPLINE_ARTIFACT_ROOT", stores_secret, "LOOPLINE_ARTIFACT_ROOT", optional=True),
        secret("LOOPLINE_CONTROLPLANE_TOKEN", token_secret, "token"),
    ]
    if gateway:
        env.append({"name": "LOOPLINE_KUBERNETES_GATEWAY", "value": gateway})

    def probe(period: int, failures: int) -> JsonDict:
        return {"httpGet": {"path": HEALTH_PATH, "port": "http", "scheme": "HTTP",
                            "httpHeaders": [{"name": "Host", "value": "localhost"}]},
                "periodSeconds": period, "timeoutSeconds": 5,
                "failureThreshold": failures}  # fmt: skip

    container: JsonDict = {
        "name": "controlplane",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["loopline", "controlplane"],
        "args": ["--engine", "kubernetes", "--host", "0.0.0.0", "--port", str(PORT)],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "startupProbe": probe(2, 60),  # migrations on a first start may take a while
        "livenessProbe": probe(10, 3),
        "readinessProbe": probe(5, 2),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                      "limits": {"memory": "1Gi"}},
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                         {"name": "home", "mountPath": HOME}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": dict(meta),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": _selector(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": NAME,
                    "automountServiceAccountToken": True,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}},
                                {"name": "home", "emptyDir": {}}],
                },
            },
        },
    }
