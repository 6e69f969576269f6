"""The pod template of a rendered Deployment: one ``loopline serve`` container.

How the model reaches the pod (:class:`ModelSource`):

- **From the registry** (the default): the container runs ``loopline serve REF`` and loads
  the model the way a local replica does, through the stores named by ``LOOPLINE_DB_URL``
  and ``LOOPLINE_ARTIFACT_ROOT``; both come from a Secret (``envFrom``, default name
  ``loopline-stores``) so a database password never appears in a manifest. The server checks
  the bytes against the registry's digest. Pin the reference (``taxi/3``, not
  ``taxi@champion``) so that a pod restarted after an alias move serves what its siblings do.
- **Baked into the image** (``in_image=True``): ``loopline serve /models/taxi
  --expected-digest sha256:…``; no stores are needed, and the digest is required.

Either way the digest (when known) is the ``loopline.dev/model-digest`` annotation of the
Deployment and its pods. The container is non-root (uid/gid 65532), has a read-only root
file system (``/tmp`` is an ``emptyDir``), drops every capability, and is probed on
``/v2/health/live`` (startup, liveness) and ``/v2/health/ready`` (readiness). After SIGTERM
the server reports not-ready for :data:`DRAIN_SECONDS` while still answering, so endpoints
are removed before it stops accepting (zero dropped requests); the grace period covers the
drain plus the server's graceful timeout.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from loopline.deploy.spec import DeploymentSpec
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.serving import ServeCommand
from loopline.types import Json, JsonDict, ModelRef

CONTAINER_NAME = "server"
CONTAINER_PORT = 8080
PORT_NAME = "http"
RUN_AS = 65532
"""The non-root uid and gid the server runs as (the distroless ``nonroot`` user)."""
DRAIN_SECONDS = 5.0
"""Seconds a terminating pod stays not-ready but answering, while endpoints catch up."""
GRACEFUL_SECONDS = 30.0
"""Seconds in-flight requests may take to finish after the drain."""
PREDICTIONS_DIR = "/var/lib/loopline/predictions"
STORES_SECRET = "loopline-stores"
MODEL_ANNOTATION = "loopline.dev/model"
MODEL_DIGEST_ANNOTATION = "loopline.dev/model-digest"
TEMPLATE_HASH_ANNOTATION = "loopline.dev/template-hash"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ModelSource:
    """What one track's pods serve and where they get it.

    Attributes:
        reference: a registry reference (``taxi/3``, ``taxi@champion``) or, with
            ``in_image``, the absolute directory of the model inside the image.
        digest: the model's ``sha256:…`` tree digest (required with ``in_image``).
        in_image: the model is baked into the image at ``reference``.
        image: this track's image, when it differs from the deployment's (a baked model).
    """

    reference: str
    digest: str | None = None
    in_image: bool = False
    image: str | None = None

    def __post_init__(self) -> None:
        if self.digest is not None and not _DIGEST.fullmatch(self.digest):
            raise InvalidDefinitionError(
                f"Model digest {self.digest!r} is not a digest; write sha256: followed by 64 "
                "lowercase hex digits, as the registry records it."
            )
        if self.in_image:
            if not self.reference.startswith("/"):
                raise InvalidDefinitionError(
                    f"Model directory {self.reference!r} inside the image must be an absolute "
                    "path such as /models/taxi."
                )
            if self.digest is None:
                raise InvalidDefinitionError(
                    f"The model baked at {self.reference!r} needs its digest (sha256:…) so the "
                    "server can check it; pin the model through the registry."
                )
        else:
            try:
                ModelRef.parse(self.reference)
            except InvalidInputError as exc:
                raise InvalidDefinitionError(f"Model reference: {exc}") from None

    @property
    def pinned(self) -> bool:
        """The pods of this source all serve the same bytes, whenever they start."""
        if self.in_image:
            return True
        return ModelRef.parse(self.reference).version is not None


@dataclass(frozen=True, slots=True)
class Resources:
    """The server container's resources. CPU is requested per worker (one core each, the
    unit the autoscaler's Utilization target is a percent of); no CPU limit, so a busy pod
    is not throttled below its request's share; memory is requested and capped."""

    cpu_per_worker: str = "1"
    memory_per_worker: str = "512Mi"
    memory_limit_per_worker: str = "1Gi"

    def for_workers(self, workers: int) -> JsonDict:
        return {
            "requests": {
                "cpu": _times(self.cpu_per_worker, workers),
                "memory": _times(self.memory_per_worker, workers),
            },
            "limits": {"memory": _times(self.memory_limit_per_worker, workers)},
        }


_SIMPLE_QUANTITY = re.compile(r"(\d+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?")


def _times(quantity: str, n: int) -> str:
    """``n`` × a whole-number quantity with an optional suffix (``"512Mi"`` × 2 = ``"1024Mi"``)."""
    match = _SIMPLE_QUANTITY.fullmatch(quantity)
    if match is None:
        raise InvalidDefinitionError(
            f"Resource quantity {quantity!r} is not a whole number with an optional unit "
            "(such as '1', '500m', '512Mi'); write it in that form."
        )
    return f"{int(match.group(1)) * n}{match.group(2) or ''}"


def server_command(spec: DeploymentSpec, model: ModelSource) -> ServeCommand:
    """The ``loopline serve`` command a pod of ``spec`` runs for ``model``."""
    template = spec.template
    log: dict[str, object] = {}
    if template.logging.enabled:
        log = {"log_dir": Path(PREDICTIONS_DIR), "log_sample_rate": template.logging.sample_rate}
        if template.logging.max_bytes is not None:
            log["log_max_bytes"] = template.logging.max_bytes
        if template.logging.max_age is not None:
            log["log_max_age"] = template.logging.max_age
    try:
        return ServeCommand(
            models=(model.reference,),
            host="0.0.0.0",  # every interface of the pod; the Service fronts it
            port=CONTAINER_PORT,
            workers=template.workers,
            batching=template.batching.enabled,
            max_batch_size=template.batching.max_batch_size,
            max_latency_ms=template.batching.max_latency_ms,
            graceful_timeout=GRACEFUL_SECONDS,
            drain_seconds=DRAIN_SECONDS,
            expected_digest=model.digest if model.in_image else None,
            **log,  # type: ignore[arg-type]  # keys and types are ServeCommand's
        )
    except InvalidInputError as exc:
        raise InvalidDefinitionError(f"Deployment {spec.name!r} cannot be served: {exc}") from None


def pod_annotations(model: ModelSource, template_hash: str) -> JsonDict:
    """The model (and its digest when known) and the template hash, as annotations."""
    out: JsonDict = {MODEL_ANNOTATION: model.reference, TEMPLATE_HASH_ANNOTATION: template_hash}
    if model.digest is not None:
        out[MODEL_DIGEST_ANNOTATION] = model.digest
    return out


def pod_template(
    spec: DeploymentSpec,
    model: ModelSource,
    *,
    image: str,
    labels: JsonDict,
    annotations: JsonDict,
    resources: Resources,
    stores_secret: str,
) -> JsonDict:
    """The ``spec.template`` of a Deployment whose pods serve ``model``."""
    command = server_command(spec, model)
    # Startup: as long as the rollout's progress deadline allows (a model may load slowly).
    startup_failures = max(1, math.ceil(spec.progress_deadline_seconds / 5))
    mounts: list[Json] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[Json] = [{"name": "tmp", "emptyDir": {}}]
    if spec.template.logging.enabled:
        mounts.append({"name": "predictions", "mountPath": PREDICTIONS_DIR})
        volumes.append({"name": "predictions", "emptyDir": {}})
    args: list[Json] = [*command.to_argv()]
    container: JsonDict = {
        "name": CONTAINER_NAME,
        "image": model.image or image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["loopline", "serve"],
        "args": args,
        "ports": [{"name": PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": [{"name": "LOOPLINE_HOME", "value": "/tmp/loopline"}],
        "startupProbe": _probe(LIVE_PATH, period=5, timeout=1, failures=startup_failures),
        "livenessProbe": _probe(LIVE_PATH, period=10, timeout=5, failures=3),
        "readinessProbe": _probe(READY_PATH, period=5, timeout=2, failures=2),
        "resources": resources.for_workers(spec.template.workers),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    }
    if not model.in_image:
        container["envFrom"] = [{"secretRef": {"name": stores_secret}}]
    return {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": math.ceil(DRAIN_SECONDS + GRACEFUL_SECONDS) + 5,
            "securityContext": pod_security(),
            "containers": [container],
            "volumes": volumes,
        },
    }


def container_security() -> JsonDict:
    """A container's security context: no privilege escalation, a read-only root file system,
    non-root, no capabilities (a fresh dict: manifests are edited after rendering)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security() -> JsonDict:
    """A pod's security context: the non-root ``RUN_AS`` user and group, the default seccomp
    profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _probe(path: str, *, period: int, timeout: int, failures: int) -> JsonDict:
    return {
        "httpGet": {"path": path, "port": PORT_NAME, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }
