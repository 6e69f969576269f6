"""Model pinning: a revision serves exactly one registered model version and digest.

A spec names a model as the user wrote it (``taxi@champion``). When the control plane stores
the spec it resolves that reference through the registry and writes the *pinned* reference
(``taxi/3``) into the template, so the template hash, and with it the revision, changes
exactly when the model the alias points at changes. Each pin is recorded in the metadata
store as a ``DeploymentModelPin`` execution reading the model artifact (lineage from a
deployment revision to the model, its run and its data), associated with the context
``Deployment/<name>``; the record keeps the user's reference, the version and the digest.
Replicas run ``loopline serve taxi/3``, which refuses bytes whose digest differs from the
registry's record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from loopline.deploy.spec import DeploymentSpec, template_hash
from loopline.errors import InvalidDefinitionError, NotFoundError
from loopline.metadata.entities import Event, EventType, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.registry.registry import ModelRegistry
from loopline.types import JsonDict, ModelRef

PIN_EXECUTION_TYPE = "DeploymentModelPin"
DEPLOYMENT_CONTEXT_TYPE = "Deployment"


@dataclass(frozen=True, slots=True)
class ModelPin:
    """What one revision's template was resolved from and to."""

    ref: str  # as the user wrote it: taxi@champion
    model: str  # registered model name
    version: int
    digest: str | None
    artifact_id: int
    cause: str = ""  # the command that asked for it (kubectl's change-cause)

    @property
    def pinned_ref(self) -> str:
        return f"{self.model}/{self.version}"

    def to_dict(self) -> JsonDict:
        return {
            "ref": self.ref,
            "model": self.model,
            "version": self.version,
            "digest": self.digest,
            "artifactId": self.artifact_id,
            "cause": self.cause,
        }


@dataclass(frozen=True, slots=True)
class PinnedSpec:
    """A spec whose template names ``model/version``, and the pin that produced it."""

    spec: DeploymentSpec
    pin: ModelPin


class ModelPinner:
    """Resolves spec model references and records pins in the metadata store.

    Args:
        registry: resolves ``name@alias`` / ``name/version`` / ``name``.
        metadata: where pins are recorded (the registry's own store).
    """

    def __init__(self, *, registry: ModelRegistry, metadata: MetadataStore) -> None:
        self.registry = registry
        self.metadata = metadata
        self._cache: dict[str, dict[str, ModelPin]] = {}
        self._lock = threading.Lock()

    def pin(self, spec: DeploymentSpec, cause: str = "") -> PinnedSpec:
        """Resolve ``spec.model`` now and return the spec with the pinned reference.

        Raises:
            InvalidDefinitionError: the reference names no registered model, version or alias
                (the message names ``spec.model`` and lists what exists).
        """
        ref = spec.template.model
        try:
            resolved = self.registry.resolve(ModelRef.parse(ref))
        except NotFoundError as exc:
            raise InvalidDefinitionError(
                f"Deployment field spec.model = {ref!r} cannot be resolved: {exc}",
                field="spec.model",
            ) from exc
        if resolved.artifact.state.value != "live":
            raise InvalidDefinitionError(
                f"Deployment field spec.model = {ref!r} resolves to {resolved.name}/"
                f"{resolved.version}, whose artifact is {resolved.artifact.state.value}; "
                "only live models can be deployed. Point the reference at another version.",
                field="spec.model",
            )
        pin = ModelPin(
            ref=ref,
            model=resolved.name,
            version=resolved.version,
            digest=resolved.artifact.digest,
            artifact_id=resolved.artifact.id,
            cause=cause,
        )
        template = replace(spec.template, model=pin.pinned_ref)
        return PinnedSpec(spec=replace(spec, template=template), pin=pin)

    def record(self, deployment: str, spec: DeploymentSpec, pin: ModelPin) -> None:
        """Record ``pin`` for the revision of ``spec``'s template, unless the same is recorded.

        A later record for the same template (the same version reached through another
        reference) replaces the earlier one when read back.
        """
        digest = template_hash(spec.template)
        known = self.pins(deployment).get(digest)
        if known is not None and known.ref == pin.ref:
            return
        context = self.metadata.ensure_context(DEPLOYMENT_CONTEXT_TYPE, deployment)
        execution = self.metadata.put_execution(
            PIN_EXECUTION_TYPE,
            name=f"{deployment}-{digest}",
            state=ExecutionState.COMPLETE,
            properties={"deployment": deployment, "template_hash": digest, **pin.to_dict()},
        )
        self.metadata.put_events([Event(pin.artifact_id, execution.id, EventType.INPUT, "model")])
        self.metadata.associate(context.id, [execution.id])
        with self._lock:
            self._cache.setdefault(deployment, {})[digest] = pin

    def pins(self, deployment: str) -> dict[str, ModelPin]:
        """Template hash → pin, for every revision ever pinned for ``deployment``."""
        with self._lock:
            cached = self._cache.get(deployment)
            if cached is not None:
                return dict(cached)
        found: dict[str, ModelPin] = {}
        context = self.metadata.find_context(DEPLOYMENT_CONTEXT_TYPE, deployment)
        if context is not None:
            for ex in self.metadata.list_executions(
                type_name=PIN_EXECUTION_TYPE, context_id=context.id, newest_first=False
            ):
                p = ex.properties
                try:
                    found[str(p["template_hash"])] = ModelPin(
                        ref=str(p["ref"]),
                        model=str(p["model"]),
                        version=int(p["version"]),  # type: ignore[arg-type]
                        digest=None if p.get("digest") is None else str(p["digest"]),
                        artifact_id=int(p["artifactId"]),  # type: ignore[arg-type]
                        cause=str(p.get("cause") or ""),
                    )
                except (KeyError, TypeError, ValueError):
                    continue  # a record this version cannot read; the revision shows unpinned
        with self._lock:
            self._cache[deployment] = found
        return dict(found)

    def forget(self, deployment: str) -> None:
        """Drop the cache of a deleted deployment (its records stay, as history)."""
        with self._lock:
            self._cache.pop(deployment, None)
