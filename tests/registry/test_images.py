"""Images recorded as serving a model version: by digest, with lineage from the model."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact, EventType
from loopline.registry import IMAGE_BUILD_TYPE, ModelRegistry, model_images, record_image

DIGEST = "sha256:" + "12" * 32


def test_an_image_is_recorded_for_the_version_an_alias_points_at(
    registry: ModelRegistry, make_model: Callable[[], Artifact]
) -> None:
    first = registry.register("taxi", make_model().id, who="ci", why="v1")
    second = registry.register("taxi", make_model().id, who="ci", why="v2")
    registry.set_alias("taxi", "champion", second.version, who="ana", why="better")
    ref = f"127.0.0.1:5000/ml/loopline@{DIGEST}"
    image = record_image(registry, "taxi@champion", reference=ref, digest=DIGEST, pushed=True,
                         who="ci", why="loopline build")  # fmt: skip
    assert (image.model, image.version, image.reference, image.digest, image.pushed) == (
        "taxi", 2, ref, DIGEST, True)
    assert model_images(registry, "taxi") == [image]
    assert model_images(registry, "taxi", 2) == [image]
    assert model_images(registry, "taxi", first.version) == []
    assert model_images(registry, "unknown") == []
    # Lineage: an ImageBuild execution read the model and wrote the image.
    events = registry.metadata.get_events(artifact_ids=[image.artifact_id])
    assert [e.type for e in events] == [EventType.OUTPUT]
    build = registry.metadata.get_execution(events[0].execution_id)
    assert build.type_name == IMAGE_BUILD_TYPE
    inputs = [e for e in registry.metadata.get_events(execution_ids=[build.id])
              if e.type == EventType.INPUT]  # fmt: skip
    resolved = registry.resolve("taxi/2")
    assert [(e.port, e.artifact_id) for e in inputs] == [("model", resolved.artifact.id)]


def test_a_malformed_digest_or_an_unknown_model_is_refused(
    registry: ModelRegistry, make_model: Callable[[], Artifact]
) -> None:
    registry.register("taxi", make_model().id, who="ci", why="v1")
    with pytest.raises(InvalidInputError, match="Image digest 'latest' is not sha256"):
        record_image(registry, "taxi/1", reference="x", digest="latest", pushed=False,
                     who="ci", why="t")  # fmt: skip
    with pytest.raises(NotFoundError):
        record_image(registry, "nope/1", reference="x", digest=DIGEST, pushed=False,
                     who="ci", why="t")  # fmt: skip
