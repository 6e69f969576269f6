"""Container images that serve a model version: which image, by digest, serves ``taxi/3``.

``loopline build --model taxi@champion`` bakes the version the reference points at into an
image and records it here: a LIVE ``ContainerImage`` artifact (URI ``oci://<reference>``,
digest = the registry's manifest digest when pushed, else the local image id) written by a
COMPLETE ``ImageBuild`` execution that read the model artifact (port ``model``), both in the
model's context. So "which images serve v3?" and "which model does this digest serve?" are
lineage queries, and retention keeps them (they belong to no pipeline run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from loopline.errors import InvalidInputError
from loopline.metadata.entities import Artifact, ArtifactState, ExecutionState
from loopline.registry.entities import MODEL_CONTEXT_TYPE
from loopline.registry.registry import ModelRegistry
from loopline.types import ArtifactId, ModelRef

IMAGE_ARTIFACT_TYPE = "ContainerImage"
IMAGE_BUILD_TYPE = "ImageBuild"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ModelImage:
    """One image recorded as serving ``model``/``version``.

    Attributes:
        reference: how to pull it: ``host/repo@sha256:…`` when pushed, else its local tag.
        digest: the manifest digest in the registry when pushed, else the local image id.
        pushed: ``digest`` is a registry manifest digest (``reference`` pulls exactly it).
    """

    model: str
    version: int
    reference: str
    digest: str
    pushed: bool
    artifact_id: ArtifactId
    recorded_at: datetime

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> ModelImage:
        props = artifact.properties
        version = props.get("version")
        return cls(
            model=str(props.get("model")),
            version=version if isinstance(version, int) else 0,
            reference=artifact.uri.removeprefix("oci://"),
            digest=artifact.digest or "",
            pushed=props.get("pushed") is True,
            artifact_id=artifact.id,
            recorded_at=artifact.created_at,
        )


def record_image(
    registry: ModelRegistry,
    ref: ModelRef | str,
    *,
    reference: str,
    digest: str,
    pushed: bool,
    who: str,
    why: str,
) -> ModelImage:
    """Record that the image ``reference`` (``digest``) serves the version ``ref`` names now.

    Raises:
        InvalidInputError: ``digest`` is not ``sha256:`` + 64 hex digits, or ``reference``
            is empty.
        NotFoundError: ``ref`` names no registered version.
    """
    if not _DIGEST.fullmatch(digest):
        raise InvalidInputError(
            f"Image digest {digest!r} is not sha256: followed by 64 lowercase hex digits."
        )
    if not reference.strip():
        raise InvalidInputError("Image reference is empty; pass the image's name or name@digest.")
    resolved = registry.resolve(ref)
    metadata = registry.metadata
    context = metadata.ensure_context(MODEL_CONTEXT_TYPE, resolved.name)
    image = metadata.put_artifact(
        IMAGE_ARTIFACT_TYPE,
        f"oci://{reference}",
        name=f"{resolved.name}/{resolved.version}",
        digest=digest,
        properties={
            "model": resolved.name,
            "version": resolved.version,
            "model_digest": resolved.artifact.digest,
            "pushed": pushed,
        },
        state=ArtifactState.LIVE,
    )
    metadata.put_execution(
        IMAGE_BUILD_TYPE,
        name=f"{resolved.name}/{resolved.version}",
        state=ExecutionState.COMPLETE,
        properties={
            "model": resolved.name,
            "version": resolved.version,
            "image": reference,
            "who": who,
            "why": why,
        },
        inputs=[("model", resolved.artifact.id)],
        outputs=[("image", image.id)],
        contexts=[context.id],
    )
    return ModelImage.from_artifact(metadata.get_artifact(image.id))


def model_images(
    registry: ModelRegistry, name: str, version: int | None = None
) -> list[ModelImage]:
    """The images recorded for model ``name`` (only ``version`` when given), newest first."""
    context = registry.metadata.find_context(MODEL_CONTEXT_TYPE, name)
    if context is None:
        return []
    found = registry.metadata.list_artifacts(type_name=IMAGE_ARTIFACT_TYPE, context_id=context.id)
    images = [ModelImage.from_artifact(a) for a in found]
    return [i for i in images if version is None or i.version == version]
