"""A loopline Deployment spec as Kubernetes objects: plain dicts, no client import.

:func:`render_manifests` is pure (no I/O, no clock): the same spec and options give the same
objects, in this order — Deployments, Services, the HorizontalPodAutoscaler, the
PodDisruptionBudget, the HTTPRoute — with the warnings the CLI prints (what could not be
mapped exactly). :func:`render` returns the objects alone.

- ``RollingUpdate`` → one Deployment ``NAME`` with ``RollingUpdate`` and the spec's
  ``maxSurge``/``maxUnavailable``; ``Recreate`` → ``Recreate``. One Service ``NAME``.
- ``Canary`` and ``BlueGreen`` → Deployments ``NAME-stable`` and ``NAME-canary`` and their
  Services, plus an HTTPRoute ``NAME`` when a Gateway is given, else a Service ``NAME``
  (:mod:`~loopline.deploy.engines.kubernetes.traffic` says how traffic splits).
- ``spec.autoscaling`` → an HPA on ``NAME`` (``NAME-stable`` for progressive deployments);
  the Deployment it scales then has no ``spec.replicas`` so that re-applying the manifest
  never fights the autoscaler.
- A PodDisruptionBudget ``NAME`` over every pod of the deployment with ``minAvailable``
  one less than the replicas (``minReplicas`` when autoscaled), when that is at least one:
  evictions go one pod at a time, and a single replica never blocks a node drain.
- Labels: ``app.kubernetes.io/{name,instance,component,part-of,managed-by}`` on everything,
  plus the spec's own labels; selectors use ``name`` and ``instance`` (and
  ``loopline.dev/track`` for the two tracks), a subset of the pod labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from loopline.deploy.engines.kubernetes.autoscaler import horizontal_pod_autoscaler
from loopline.deploy.engines.kubernetes.pod import (
    PORT_NAME,
    STORES_SECRET,
    ModelSource,
    Resources,
    pod_annotations,
    pod_template,
)
from loopline.deploy.engines.kubernetes.traffic import (
    GatewayRef,
    RolloutPosition,
    Split,
    canary_split,
    granularity,
    http_route,
    unrendered_steps,
)
from loopline.deploy.spec import DeploymentSpec, StrategyType, template_hash
from loopline.errors import InvalidDefinitionError
from loopline.types import JsonDict

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
TRACK_LABEL = "loopline.dev/track"
APP_NAME = "loopline-model-server"
SERVICE_PORT = 80
"""The Services' port when the spec sets no ``spec.port``."""
MAX_NAME = 63 - len("-canary")
"""Deployment names must leave room for the ``-stable``/``-canary`` suffix in a label."""


@dataclass(frozen=True, slots=True)
class Manifests:
    """Rendered objects, in apply order, and what could not be mapped exactly."""

    objects: tuple[JsonDict, ...]
    warnings: tuple[str, ...] = field(default=())


def render(
    spec: DeploymentSpec,
    *,
    image: str,
    namespace: str = "default",
    gateway: GatewayRef | None = None,
    model: ModelSource | None = None,
    position: RolloutPosition | None = None,
    resources: Resources | None = None,
    stores_secret: str = STORES_SECRET,
) -> list[JsonDict]:
    """The Kubernetes objects of ``spec`` (see :func:`render_manifests`)."""
    return list(render_manifests(
        spec, image=image, namespace=namespace, gateway=gateway, model=model,
        position=position, resources=resources, stores_secret=stores_secret,
    ).objects)  # fmt: skip


def render_manifests(
    spec: DeploymentSpec,
    *,
    image: str,
    namespace: str = "default",
    gateway: GatewayRef | None = None,
    model: ModelSource | None = None,
    position: RolloutPosition | None = None,
    resources: Resources | None = None,
    stores_secret: str = STORES_SECRET,
) -> Manifests:
    """Render ``spec`` for the ``namespace`` of a cluster.

    Args:
        spec: the deployment.
        image: the loopline image the pods run (``loopline build``).
        namespace: where the objects go.
        gateway: the Gateway API Gateway an HTTPRoute attaches to, for exact canary weights.
        model: what the pods serve (default: ``spec.model`` from the registry).
        position: a canary or blue-green rollout under way (None: at rest, the stable
            track serves ``model`` and the canary track is scaled to zero).
        resources: the server container's resources (default :class:`Resources`).
        stores_secret: the Secret holding ``LOOPLINE_DB_URL``/``LOOPLINE_ARTIFACT_ROOT``
            for registry models.

    Raises:
        InvalidDefinitionError: the name cannot name Kubernetes objects, the image is
            empty, or the position does not fit the strategy; the message says which.
    """
    _check_name(spec.name)
    if not image or image != image.strip():
        raise InvalidDefinitionError(
            f"Image {image!r} is not an image reference; pass one such as "
            "registry.example.com/loopline:1.0 (loopline build prints it)."
        )
    source = ModelSource(spec.model) if model is None else model
    r = _Renderer(spec, image, namespace, resources or Resources(), stores_secret)
    warnings: list[str] = []
    if not source.pinned:
        warnings.append(
            f"Model {source.reference!r} is not pinned to a version: a pod started after the "
            "alias moves would serve another version than its siblings. Pin it (loopline "
            "render --pin, or spec.model NAME/VERSION)."
        )
    if spec.template.logging.enabled:
        warnings.append(
            "Prediction logs go to an emptyDir in each pod and are lost with it; mount a "
            "shared volume at /var/lib/loopline/predictions for the monitor to read them."
        )
    if spec.strategy.progressive:
        objects = r.progressive(source, gateway, position, warnings)
    else:
        if position is not None:
            raise InvalidDefinitionError(
                f"Deployment {spec.name!r} uses {spec.strategy.type.value}; a rollout position "
                "applies only to Canary and BlueGreen strategies."
            )
        if gateway is not None:
            warnings.append(
                f"Gateway {gateway.name!r} is not used: {spec.strategy.type.value} has no "
                "traffic split; expose Service/" + spec.name + " through your own route."
            )
        objects = r.single(source)
    objects += r.autoscaler(warnings)
    objects += r.disruption_budget()
    if spec.strategy.progressive and gateway is not None:
        objects.append(r.route)
    return Manifests(tuple(objects), tuple(warnings))


def _check_name(name: str) -> None:
    if len(name) > MAX_NAME or not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):
        raise InvalidDefinitionError(
            f"Deployment name {name!r} cannot name Kubernetes objects: use at most {MAX_NAME} "
            "lower-case letters, digits and '-', starting with a letter and ending with a "
            "letter or digit (a DNS-1035 label, as Service names must be)."
        )


class _Renderer:
    """Builds the objects of one spec; the methods are called once each, in order."""

    def __init__(self, spec: DeploymentSpec, image: str, namespace: str, resources: Resources,
                 stores_secret: str) -> None:  # fmt: skip
        self.spec = spec
        self.image = image
        self.namespace = namespace
        self.resources = resources
        self.stores_secret = stores_secret
        self.port = spec.port or SERVICE_PORT
        self.scaled = spec.name  # the Deployment the HPA scales
        self.route: JsonDict = {}

    # ---- labels and metadata -----------------------------------------------------------------

    def selector(self, track: str | None = None) -> JsonDict:
        out: JsonDict = {NAME_LABEL: APP_NAME, INSTANCE_LABEL: self.spec.name}
        return out if track is None else {**out, TRACK_LABEL: track}

    def labels(self, track: str | None = None) -> JsonDict:
        return {
            **dict(self.spec.labels),
            **self.selector(track),
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": "loopline",
            "app.kubernetes.io/managed-by": "loopline",
        }

    def metadata(self, name: str, track: str | None = None) -> JsonDict:
        return {"name": name, "namespace": self.namespace, "labels": self.labels(track)}

    # ---- objects -----------------------------------------------------------------------------

    def deployment(self, name: str, source: ModelSource, replicas: int | None,
                   track: str | None = None) -> JsonDict:  # fmt: skip
        spec = self.spec
        template = replace(spec.template, model=source.reference)
        annotations = pod_annotations(source, template_hash(template))
        if spec.strategy.type is StrategyType.RECREATE:
            strategy: JsonDict = {"type": "Recreate"}
        else:
            strategy = {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": spec.strategy.max_surge,
                "maxUnavailable": spec.strategy.max_unavailable}}  # fmt: skip
        body: JsonDict = {
            "selector": {"matchLabels": self.selector(track)},
            "template": pod_template(
                spec, source, image=self.image, labels=self.labels(track),
                annotations=annotations, resources=self.resources,
                stores_secret=self.stores_secret,
            ),
            "strategy": strategy,
            "minReadySeconds": spec.min_ready_seconds,
            "progressDeadlineSeconds": spec.progress_deadline_seconds,
            "revisionHistoryLimit": spec.revision_history_limit,
        }
        if replicas is not None:
            body = {"replicas": replicas, **body}
        if spec.paused:
            body["paused"] = True
        meta = self.metadata(name, track)
        meta["annotations"] = {**dict(spec.annotations), **annotations}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": body}

    def service(self, name: str, selector: JsonDict, track: str | None = None) -> JsonDict:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(name, track),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [
                    {"name": PORT_NAME, "port": self.port, "targetPort": PORT_NAME,
                     "protocol": "TCP"}
                ],
            },
        }

    def single(self, source: ModelSource) -> list[JsonDict]:
        replicas = None if self.spec.autoscaling is not None else self.spec.replicas
        return [self.deployment(self.spec.name, source, replicas),
                self.service(self.spec.name, self.selector())]  # fmt: skip

    def progressive(
        self, source: ModelSource, gateway: GatewayRef | None,
        position: RolloutPosition | None, warnings: list[str],
    ) -> list[JsonDict]:  # fmt: skip
        spec, name = self.spec, self.spec.name
        autoscaled = spec.autoscaling is not None
        stable_source = source if position is None else position.stable
        canary = spec.strategy.canary
        if canary is not None:
            split = canary_split(canary, spec.replicas, position, gateway=gateway is not None,
                                 autoscaled=autoscaled)  # fmt: skip
            if gateway is None:
                warnings += [w for w in (granularity(canary, spec.replicas),
                                         unrendered_steps(canary)) if w]  # fmt: skip
        else:  # blue-green: the preview runs beside the active stack, without traffic
            blue_green = spec.strategy.blue_green
            assert blue_green is not None
            preview = blue_green.preview_replica_count or spec.replicas
            split = Split(0, 0, (), None if autoscaled else spec.replicas,
                          0 if position is None else preview)  # fmt: skip
        self.scaled = f"{name}-stable"
        objects = [
            self.deployment(f"{name}-stable", stable_source, split.stable_replicas, "stable"),
            self.deployment(f"{name}-canary", source, split.canary_replicas, "canary"),
            self.service(f"{name}-stable", self.selector("stable"), "stable"),
            self.service(f"{name}-canary", self.selector("canary"), "canary"),
        ]
        if gateway is not None:
            self.route = http_route(name=name, namespace=self.namespace, labels=self.labels(),
                                    gateway=gateway, port=self.port, split=split)  # fmt: skip
        else:  # canary: both tracks by replica ratio; blue-green: the active track only
            selector = self.selector() if canary is not None else self.selector("stable")
            objects.append(self.service(name, selector))
        return objects

    def autoscaler(self, warnings: list[str]) -> list[JsonDict]:
        if self.spec.autoscaling is None:
            return []
        hpa, notes = horizontal_pod_autoscaler(
            self.spec.autoscaling, name=self.spec.name, namespace=self.namespace,
            target=self.scaled, labels=self.labels(),
        )  # fmt: skip
        warnings += notes
        return [hpa]

    def disruption_budget(self) -> list[JsonDict]:
        autoscaling = self.spec.autoscaling
        floor = self.spec.replicas if autoscaling is None else max(1, autoscaling.min_replicas)
        if floor < 2:
            return []
        return [{
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": self.metadata(self.spec.name),
            "spec": {"minAvailable": floor - 1, "selector": {"matchLabels": self.selector()}},
        }]  # fmt: skip
