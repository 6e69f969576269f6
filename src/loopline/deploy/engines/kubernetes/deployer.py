"""The Kubernetes engine: a Deployment spec applied to a cluster and its rollout verbs.

:class:`KubernetesDeployer` works on the objects :func:`render_manifests` draws, through a
:class:`~loopline.deploy.engines.kubernetes.cluster.Cluster`:

- ``apply``: server-side apply of every object (field manager ``loopline``, forced). For a
  canary or blue-green deployment whose stable track serves another model than the spec, a
  rollout starts: the stable track keeps its model, the canary track gets the spec's, at step
  0 (a rollout under way keeps its step; an aborted one starts over). ``NAME-canary`` carries
  the spec (``loopline.dev/spec``) and the step (``loopline.dev/canary-step``).
- ``status``: kubectl's rollout status of ``NAME`` (``NAME-stable`` when progressive); during
  a canary, the step and what it waits for.
- ``step``: one decision of :func:`~.rollouts.next_canary_step` applied — HTTPRoute weights
  (merge patch of ``spec.rules``; without a Gateway, the replica ratio of the two tracks) and
  replicas, with field manager ``loopline-rollout``. ``rollout status`` calls it while it
  watches, so the canary moves while someone waits for it.
- ``promote`` (``--full``: every step), ``abort`` (all traffic to stable, canary to zero).
  When the last step is done, promotion copies the canary's pod template to ``NAME-stable``;
  once that rolled out, traffic returns to the stable track and the canary scales to zero.
  Blue-green's promotion sends all traffic to the preview first (the switch), then does the same.
- ``history``/``undo`` from ReplicaSets; ``pause``/``resume`` = ``spec.paused``; ``scale``
  through ``/scale``; ``autoscale`` applies or deletes the HorizontalPodAutoscaler. Scale and
  pause are written to the stored spec too, so the view reports them and nothing the engine
  renders from that spec (the next step, a retry) undoes them; an ``apply`` of a file sets
  its replicas again, as ``kubectl apply`` does, and a pause outlives an apply that does not
  pause (the stored spec then says paused, as the cluster does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from loopline.deploy.autoscaling import Autoscaling
from loopline.deploy.engines.kubernetes.autoscaler import horizontal_pod_autoscaler
from loopline.deploy.engines.kubernetes.cluster import Cluster, ObjectRef
from loopline.deploy.engines.kubernetes.pod import (
    MODEL_ANNOTATION,
    MODEL_DIGEST_ANNOTATION,
    ModelSource,
)
from loopline.deploy.engines.kubernetes.render import TRACK_LABEL, render_manifests
from loopline.deploy.engines.kubernetes.rollouts import (
    CanaryProgress,
    Revision,
    RolloutStatus,
    deployment_status,
    merge_diff,
    next_canary_step,
    revisions,
    template_without_hash,
    undo_target,
)
from loopline.deploy.engines.kubernetes.traffic import (
    GatewayRef,
    RolloutPosition,
    Split,
    canary_split,
    http_route,
)
from loopline.deploy.spec import DeploymentSpec
from loopline.errors import InvalidDefinitionError, InvalidInputError, LooplineError, NotFoundError
from loopline.types import Json, JsonDict

SPEC_ANNOTATION = "loopline.dev/spec"
STEP_ANNOTATION = "loopline.dev/canary-step"
PAUSE_ANNOTATION = "loopline.dev/pause-started"
ABORTED_ANNOTATION = "loopline.dev/aborted"
PROMOTING_ANNOTATION = "loopline.dev/promoting"
_DEPLOYMENT, _ROUTE = ("apps/v1", "Deployment"), ("gateway.networking.k8s.io/v1", "HTTPRoute")


@dataclass(frozen=True, slots=True)
class Applied:
    """What ``apply`` did: each object's reference and outcome (created, configured,
    unchanged), the render warnings, and whether a rollout started."""

    objects: tuple[tuple[ObjectRef, str], ...]
    warnings: tuple[str, ...]
    rollout: bool


class KubernetesDeployer:
    """Deployments of one namespace of a cluster (see the module docstring)."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace

    def _ref(self, name: str, kind: tuple[str, str] = _DEPLOYMENT) -> ObjectRef:
        return ObjectRef(kind[0], kind[1], name, self.namespace)

    def _find(self, ref: ObjectRef) -> JsonDict | None:
        try:
            return self.cluster.get(ref)
        except NotFoundError:
            return None

    # ---- apply -----------------------------------------------------------------------------

    def apply(self, spec: DeploymentSpec, *, image: str, gateway: GatewayRef | None = None,
              model: ModelSource | None = None) -> Applied:  # fmt: skip
        name, position, rollout = spec.name, None, False
        source = model or ModelSource(spec.model)
        if spec.strategy.progressive:
            stable = self._find(self._ref(f"{name}-stable"))
            stable_model = _annotations(stable).get(MODEL_ANNOTATION)
            if stable is not None and stable_model != source.reference:
                canary = self._find(self._ref(f"{name}-canary"))
                notes = _annotations(canary)
                same = notes.get(MODEL_ANNOTATION) == source.reference
                keep = same and not notes.get(ABORTED_ANNOTATION) and not notes.get(
                    PROMOTING_ANNOTATION)  # fmt: skip
                step = int(str(notes.get(STEP_ANNOTATION) or 0)) if keep else 0
                position, rollout = RolloutPosition(_source(stable), step), True
        manifests = render_manifests(spec, image=image, namespace=self.namespace,
                                     gateway=gateway, model=model, position=position)
        outcomes, holder = [], None
        for obj in manifests.objects:
            ref = ObjectRef.of(obj)
            if ref.kind == "Deployment" and ref.name in (name, f"{name}-canary"):
                extra = {SPEC_ANNOTATION: _dump(spec)}
                if ref.name != name:
                    extra[STEP_ANNOTATION] = str(position.step_index if position else 0)
                meta = obj["metadata"]
                assert isinstance(meta, dict) and isinstance(meta["annotations"], dict)
                meta["annotations"] = {**meta["annotations"], **extra}
            before = self._find(ref)
            after = self.cluster.apply(obj)
            if SPEC_ANNOTATION in _annotations(obj):
                holder = (ref, after)
            outcomes.append((ref, "created" if before is None else "unchanged"
                             if _version(before) == _version(after) else "configured"))
        live_paused = holder is not None and _spec(holder[1]).get("paused") is True
        if holder is not None and live_paused != spec.paused:
            # a rollout pause outlives an apply that does not pause (as after kubectl rollout
            # pause and kubectl apply): the stored spec says what the cluster does
            self.cluster.patch(holder[0], {"metadata": {"annotations": {
                SPEC_ANNOTATION: _dump(replace(spec, paused=live_paused))}}})  # fmt: skip
        if rollout:  # a retried rollout forgets its abort and its pause
            self.cluster.patch(self._ref(f"{name}-canary"), {"metadata": {"annotations": {
                ABORTED_ANNOTATION: None, PAUSE_ANNOTATION: None, PROMOTING_ANNOTATION: None}}})
        return Applied(tuple(outcomes), manifests.warnings, rollout)

    # ---- reads -----------------------------------------------------------------------------

    def progressive(self, name: str) -> bool:
        """Whether ``name`` is a canary or blue-green deployment (two tracks).

        Raises NotFoundError when it is not on the cluster."""
        return self._layout(name) is not None

    def spec(self, name: str) -> DeploymentSpec | None:
        """The spec ``apply`` applied last (the ``loopline.dev/spec`` annotation of ``NAME``,
        or of ``NAME-canary``); None for a Deployment applied without it.

        Raises NotFoundError when the deployment is not on the cluster."""
        layout = self._layout(name)
        if layout is not None:
            return layout
        text = _annotations(self.cluster.get(self._ref(name))).get(SPEC_ANNOTATION)
        return None if text is None else _stored_spec(name, name, text)

    def progress(self, name: str) -> CanaryProgress | None:
        """Where the progressive rollout of ``name`` is, without moving it (None: at rest or
        not progressive)."""
        if self._layout(name) is None:
            return None
        stable = self.cluster.get(self._ref(f"{name}-stable"))
        notes = _annotations(self.cluster.get(self._ref(f"{name}-canary")))
        if notes.get(PROMOTING_ANNOTATION):
            return CanaryProgress(waiting=f"promoting: {name}-stable rolls out the new model")
        if notes.get(MODEL_ANNOTATION) == _annotations(stable).get(MODEL_ANNOTATION):
            return None
        return CanaryProgress(int(str(notes.get(STEP_ANNOTATION) or 0)),
                              _float(notes.get(PAUSE_ANNOTATION)),
                              bool(notes.get(ABORTED_ANNOTATION)))  # fmt: skip

    def peek(self, name: str, *, now: float) -> CanaryProgress | None:
        """What :meth:`step` would decide now, and what the rollout waits for, without doing
        it (None: no rollout under way)."""
        spec = self._layout(name)
        progress = self.progress(name)
        if spec is None or progress is None or progress.aborted or progress.waiting:
            return progress
        canary = self.cluster.get(self._ref(f"{name}-canary"))
        ready = deployment_status(canary).done
        if _spec(canary).get("paused"):
            return replace(progress, waiting=f"deployment {name!r} is paused; resume it")
        strategy = spec.strategy.canary
        if strategy is None:  # blue-green: paused while a ready preview waits for promote
            auto = spec.strategy.blue_green is not None and (
                spec.strategy.blue_green.auto_promotion_enabled)  # fmt: skip
            return replace(progress, waiting="preview ready; run loopline rollout promote to "
                           "switch" if ready else "waiting for the preview to be ready",
                           paused=ready and not auto)  # fmt: skip
        new = next_canary_step(strategy, progress, now=now, canary_ready=ready)
        return new if new.waiting else replace(progress, waiting="moving on to the next step")

    def aborted(self, name: str) -> bool:
        """Whether the rollout of ``name`` was aborted (and not applied again since)."""
        progress = self.progress(name)
        return progress is not None and progress.aborted

    def primary(self, name: str) -> JsonDict:
        """The Deployment that serves ``name``'s stable traffic: ``NAME`` or ``NAME-stable``."""
        return self.cluster.get(self._ref(self._target(name)))

    def delete(self, name: str) -> list[ObjectRef]:
        """Delete every object ``apply`` made for ``name``; returns those that were there.

        Raises NotFoundError when none was."""
        gone = []
        for kind, names in ((_DEPLOYMENT, (name, f"{name}-stable", f"{name}-canary")),
                            (("v1", "Service"), (name, f"{name}-stable", f"{name}-canary")),
                            (("autoscaling/v2", "HorizontalPodAutoscaler"), (name,)),
                            (("policy/v1", "PodDisruptionBudget"), (name,)),
                            (_ROUTE, (name,))):  # fmt: skip
            for n in names:
                try:
                    self.cluster.delete(self._ref(n, kind))
                except NotFoundError:
                    continue
                gone.append(self._ref(n, kind))
        if not gone:
            raise NotFoundError(f"Deployment {name!r} is not on the cluster in namespace "
                                f"{self.namespace!r}; nothing to delete.")  # fmt: skip
        return gone

    # ---- status and stepping ---------------------------------------------------------------

    def status(self, name: str, *, now: float, move: bool = True) -> RolloutStatus:
        """The rollout status, after one :meth:`step` of a progressive rollout (``move``
        False: without moving it, as :meth:`peek` sees it — a controller moves it)."""
        layout = self._layout(name)
        if layout is None:
            return deployment_status(self.cluster.get(self._ref(name)))
        progress = self.step(name, now=now) if move else self.peek(name, now=now)
        canary = self.cluster.get(self._ref(f"{name}-canary"))
        if _annotations(canary).get(ABORTED_ANNOTATION):
            return RolloutStatus(False, True, f"rollout of {name!r} aborted: all traffic is on "
                                 "the stable track; apply the spec again to retry")  # fmt: skip
        if progress is None:
            stable = deployment_status(self.cluster.get(self._ref(f"{name}-stable")))
            return replace(stable, message=f"stable track: {stable.message}")
        steps = len(layout.strategy.canary.steps) if layout.strategy.canary else 0
        where = f"step {progress.step_index} of {steps} done" if steps else "preview running"
        return RolloutStatus(False, False, f"rollout of {name!r}: {where}; {progress.waiting}")

    def step(self, name: str, *, now: float, promote: bool = False,
             full: bool = False) -> CanaryProgress | None:  # fmt: skip
        """Move a progressive rollout one decision on; None when none is under way."""
        spec = self._layout(name)
        if spec is None:
            return None
        stable = self.cluster.get(self._ref(f"{name}-stable"))
        canary = self.cluster.get(self._ref(f"{name}-canary"))
        notes = _annotations(canary)
        if notes.get(PROMOTING_ANNOTATION):
            return self._finish(spec, stable)
        if notes.get(MODEL_ANNOTATION) == _annotations(stable).get(MODEL_ANNOTATION):
            return None  # at rest
        progress = CanaryProgress(int(str(notes.get(STEP_ANNOTATION) or 0)),
                                  _float(notes.get(PAUSE_ANNOTATION)),
                                  bool(notes.get(ABORTED_ANNOTATION)))  # fmt: skip
        if progress.aborted:
            return progress
        ready = deployment_status(canary).done
        if _spec(canary).get("paused") and not (promote or full):
            return replace(progress, waiting=f"deployment {name!r} is paused; resume it")
        strategy = spec.strategy.canary
        if strategy is None:  # blue-green: the preview waits for promote
            if promote or full or (spec.strategy.blue_green and ready and
                                   spec.strategy.blue_green.auto_promotion_enabled):  # fmt: skip
                return self._promote(spec, stable, canary)
            return replace(progress, waiting="preview ready; run loopline rollout promote to "
                           "switch" if ready else "waiting for the preview to be ready",
                           paused=ready)  # fmt: skip
        new = next_canary_step(strategy, progress, now=now, canary_ready=ready, promote=promote,
                               full=full)  # fmt: skip
        if new.step_index >= len(strategy.steps):
            return self._promote(spec, stable, canary)
        if (new.step_index, new.pause_started) != (progress.step_index, progress.pause_started):
            self._traffic(spec, _split(spec, stable, new.step_index, self._route(name)))
            self.cluster.patch(self._ref(f"{name}-canary"), {"metadata": {"annotations": {
                STEP_ANNOTATION: str(new.step_index),
                PAUSE_ANNOTATION: None if new.pause_started is None else str(new.pause_started),
            }}})  # fmt: skip
        return new

    def promote(self, name: str, *, now: float, full: bool = False) -> CanaryProgress | None:
        if self._layout(name) is None:
            raise InvalidInputError(f"Deployment {name!r} is neither Canary nor BlueGreen on "
                                    "the cluster; there is nothing to promote.")  # fmt: skip
        return self.step(name, now=now, promote=True, full=full)

    def abort(self, name: str) -> None:
        spec = self._layout(name)
        if spec is None:
            raise InvalidInputError(f"Deployment {name!r} is neither Canary nor BlueGreen on "
                                    "the cluster; there is no rollout to abort.")  # fmt: skip
        stable = self.cluster.get(self._ref(f"{name}-stable"))
        self._traffic(spec, _split(spec, stable, None, self._route(name)))
        self.cluster.patch(self._ref(f"{name}-canary"),
                           {"metadata": {"annotations": {ABORTED_ANNOTATION: "true"}}})

    def _promote(self, spec: DeploymentSpec, stable: JsonDict, canary: JsonDict) -> CanaryProgress:
        """The last step done (or blue-green's switch): the stable track takes the canary's
        template; traffic stays where it is (blue-green: all on the preview) meanwhile."""
        name = spec.name
        if spec.strategy.blue_green is not None:
            self._traffic(spec, Split(100, 0, (), None, _int(_spec(canary).get("replicas"))))
        template = json.loads(json.dumps(_spec(canary)["template"]))
        template["metadata"]["labels"][TRACK_LABEL] = "stable"
        notes = {k: _annotations(canary).get(k) for k in (MODEL_ANNOTATION,
                                                          MODEL_DIGEST_ANNOTATION)}  # fmt: skip
        self.cluster.patch(self._ref(f"{name}-stable"), {
            "metadata": {"annotations": notes},
            "spec": {"template": merge_diff(_spec(stable)["template"], template)},
        })  # fmt: skip
        self.cluster.patch(self._ref(f"{name}-canary"),
                           {"metadata": {"annotations": {PROMOTING_ANNOTATION: "true"}}})
        return CanaryProgress(waiting=f"promoting: {name}-stable rolls out the new model")

    def _finish(self, spec: DeploymentSpec, stable: JsonDict) -> CanaryProgress | None:
        status = deployment_status(stable)
        if not status.done:
            return CanaryProgress(waiting=f"promoting: {status.message}")
        self._traffic(spec, _split(spec, stable, None, self._route(spec.name)))
        self.cluster.patch(self._ref(f"{spec.name}-canary"), {"metadata": {"annotations": {
            PROMOTING_ANNOTATION: None, STEP_ANNOTATION: "0", PAUSE_ANNOTATION: None}}})
        return None

    def _traffic(self, spec: DeploymentSpec, split: Split) -> None:
        """Weights (route, or blue-green's Service selector) and replicas for ``split``."""
        name = spec.name
        route = self._route(name)
        if route is not None:
            port = route["spec"]["rules"][-1]["backendRefs"][0]["port"]  # type: ignore[index, call-overload]
            rules = http_route(name=name, namespace=self.namespace, labels={},
                               gateway=GatewayRef("unused"), port=int(str(port)),
                               split=split)["spec"]  # fmt: skip
            assert isinstance(rules, dict)
            self.cluster.patch(self._ref(name, _ROUTE), {"spec": {"rules": rules["rules"]}})
        elif spec.strategy.blue_green is not None:
            track = "canary" if split.canary_weight == 100 else "stable"
            self.cluster.patch(self._ref(name, ("v1", "Service")),
                               {"spec": {"selector": {TRACK_LABEL: track}}})
        if split.stable_replicas is not None:
            self.cluster.scale(self._ref(f"{name}-stable"), split.stable_replicas)
        self.cluster.scale(self._ref(f"{name}-canary"), split.canary_replicas)

    def _route(self, name: str) -> JsonDict | None:
        return self._find(self._ref(name, _ROUTE))

    def _layout(self, name: str) -> DeploymentSpec | None:
        """The spec of a progressive deployment (from ``NAME-canary``), None for a plain one.

        Raises NotFoundError when neither exists."""
        canary = self._find(self._ref(f"{name}-canary"))
        if canary is None:
            if self._find(self._ref(name)) is None:
                raise NotFoundError(f"Deployment {name!r} is not on the cluster in namespace "
                                    f"{self.namespace!r}; apply it first.")  # fmt: skip
            return None
        return _stored_spec(name, f"{name}-canary", _annotations(canary).get(SPEC_ANNOTATION))

    # ---- history, undo, pause, scale, autoscale --------------------------------------------

    def _target(self, name: str) -> str:
        return name if self._layout(name) is None else f"{name}-stable"

    def history(self, name: str) -> list[Revision]:
        deployment = self.cluster.get(self._ref(self._target(name)))
        selector = _spec(deployment).get("selector")
        labels = selector.get("matchLabels") if isinstance(selector, dict) else None
        found = self.cluster.list("apps/v1", "ReplicaSet", namespace=self.namespace,
                                  labels={str(k): str(v) for k, v in (labels or {}).items()}
                                  if isinstance(labels, dict) else None)  # fmt: skip
        return revisions(deployment, found.items)

    def undo(self, name: str, to_revision: int = 0) -> bool:
        """Return to a revision's pod template; False when it is the current one already."""
        target = self._target(name)
        deployment = self.cluster.get(self._ref(target))
        goal = template_without_hash(undo_target(name, self.history(name), to_revision).template)
        current = _spec(deployment)["template"]
        if current == goal:
            return False
        self.cluster.patch(self._ref(target), {"spec": {"template": merge_diff(current, goal)}})
        return True

    def set_paused(self, name: str, paused: bool) -> None:
        """``spec.paused`` of ``NAME`` (of both tracks when progressive), and of the stored
        spec, so that the view says so and a re-apply of the stored spec keeps it."""
        layout = self._layout(name)
        stored = layout if layout is not None else self.spec(name)
        holder = name if layout is None else f"{name}-canary"
        names = [name] if layout is None else [f"{name}-stable", f"{name}-canary"]
        for n in names:
            body: JsonDict = {"spec": {"paused": paused or None}}
            if n == holder and stored is not None:
                body["metadata"] = {"annotations": {
                    SPEC_ANNOTATION: _dump(replace(stored, paused=paused))}}  # fmt: skip
            self.cluster.patch(self._ref(n), body)

    def scale(self, name: str, replicas: int) -> int:
        """Set the replicas of ``name`` as ``kubectl scale`` does, and in the stored spec, so
        the rollout loop's next step and a re-apply of the stored spec keep them (applying a
        file that names other replicas sets those, as ``kubectl apply`` does). A canary's
        tracks are both sized for the weight they are at; a blue-green preview sized by
        ``replicas`` follows. Under an HPA the count is set and the HPA decides from there,
        as locally the autoscaler does. Returns the replicas of the Deployment serving stable
        traffic.

        Raises:
            InvalidDefinitionError: the spec with these replicas is not valid (nothing changed).
        """
        layout = self._layout(name)
        stored = layout if layout is not None else self.spec(name)
        if stored is None:  # a Deployment applied without loopline's spec: the object alone
            return self.cluster.scale(self._ref(name), replicas)
        doc = stored.to_dict()
        body = doc["spec"]
        assert isinstance(body, dict)
        new = DeploymentSpec.from_dict({**doc, "spec": {**body, "replicas": replicas}})
        holder = name if layout is None else f"{name}-canary"
        self.cluster.patch(self._ref(holder),
                           {"metadata": {"annotations": {SPEC_ANNOTATION: _dump(new)}}})
        if layout is None or new.autoscaling is not None:
            return self.cluster.scale(self._ref(self._target(name)), replicas)
        stable = self.cluster.get(self._ref(f"{name}-stable"))
        notes = _annotations(self.cluster.get(self._ref(holder)))
        progress = self.progress(name)
        under_way = progress is not None and not progress.aborted
        stable_replicas = replicas
        if new.strategy.canary is not None:
            step = int(str(notes.get(STEP_ANNOTATION) or 0)) if under_way else None
            split = _split(new, stable, step, self._route(name))
            stable_replicas = replicas if split.stable_replicas is None else split.stable_replicas
            self.cluster.scale(self._ref(holder), split.canary_replicas)
        blue_green = new.strategy.blue_green
        if blue_green is not None and under_way and blue_green.preview_replica_count is None:
            self.cluster.scale(self._ref(holder), replicas)
        return self.cluster.scale(self._ref(f"{name}-stable"), stable_replicas)

    def autoscale(self, name: str, block: JsonDict | None) -> JsonDict | None:
        """Apply the HPA of ``block`` (``spec.autoscaling`` form), or delete it (None)."""
        target = self._target(name)
        if block is None:
            self.cluster.delete(self._ref(name, ("autoscaling/v2", "HorizontalPodAutoscaler")))
            return None
        labels = _meta(self.cluster.get(self._ref(target))).get("labels")
        hpa, _ = horizontal_pod_autoscaler(Autoscaling.from_dict(block), name=name,
                                           namespace=self.namespace, target=target,
                                           labels=labels if isinstance(labels, dict) else {})
        return self.cluster.apply(hpa)


def _split(spec: DeploymentSpec, stable: JsonDict, step: int | None,
           route: JsonDict | None) -> Split:  # fmt: skip
    autoscaled = spec.autoscaling is not None
    position = None if step is None else RolloutPosition(_source(stable), step)
    if spec.strategy.canary is not None:
        return canary_split(spec.strategy.canary, spec.replicas, position,
                            gateway=route is not None, autoscaled=autoscaled)  # fmt: skip
    return Split(0, 0, (), None if autoscaled else spec.replicas, 0)


def _dump(spec: DeploymentSpec) -> str:
    """The ``loopline.dev/spec`` annotation of ``spec``."""
    return json.dumps(spec.to_dict(), sort_keys=True)


def _stored_spec(name: str, holder: str, text: Json) -> DeploymentSpec:
    """The spec in the ``loopline.dev/spec`` annotation of Deployment ``holder``.

    Raises:
        InvalidDefinitionError: it is missing or is not a Deployment spec; the message says
            how to repair it (apply the spec again).
    """
    try:
        return DeploymentSpec.from_dict(json.loads(str(text)))
    except (ValueError, TypeError, LooplineError) as exc:
        raise InvalidDefinitionError(
            f"Deployment {holder!r}: its {SPEC_ANNOTATION} annotation is not a loopline "
            f"Deployment spec ({exc}); apply the spec of {name!r} again to repair it."
        ) from None


def _meta(obj: JsonDict | None) -> dict[str, Json]:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def _annotations(obj: JsonDict | None) -> dict[str, Json]:
    notes = _meta(obj).get("annotations")
    return notes if isinstance(notes, dict) else {}


def _spec(obj: JsonDict) -> JsonDict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _version(obj: JsonDict) -> Json:
    return _meta(obj).get("resourceVersion")


def _source(stable: JsonDict) -> ModelSource:
    notes = _annotations(stable)
    reference, digest = str(notes.get(MODEL_ANNOTATION) or ""), notes.get(MODEL_DIGEST_ANNOTATION)
    return ModelSource(reference, digest=digest if isinstance(digest, str) else None,
                       in_image=reference.startswith("/"))  # fmt: skip


def _float(value: Json) -> float | None:
    try:
        return None if value is None else float(str(value))
    except ValueError:
        return None


def _int(value: Json) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
