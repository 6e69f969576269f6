"""Resolving ``name@alias``, ``name/version`` and ``name`` to a model artifact."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact
from loopline.registry import ModelRegistry
from loopline.types import ModelRef


@pytest.fixture
def three_versions(registry: ModelRegistry, make_model: Callable[[], Artifact]) -> list[Artifact]:
    models = [make_model() for _ in range(3)]
    for model in models:
        registry.register("taxi", model.id, who="ci", why="nightly")
    registry.set_alias("taxi", "challenger", 2, who="ana", why="promising")
    return models


def test_resolves_every_form(registry: ModelRegistry, three_versions: list[Artifact]) -> None:
    by_alias = registry.resolve("taxi@challenger")
    assert (by_alias.version, by_alias.alias, by_alias.artifact.id) == (
        2,
        "challenger",
        three_versions[1].id,
    )
    by_version = registry.resolve("taxi/1")
    assert (by_version.version, by_version.alias) == (1, None)
    assert by_version.artifact.id == three_versions[0].id
    latest = registry.resolve("taxi")
    assert (latest.version, latest.artifact.id) == (3, three_versions[2].id)
    assert registry.resolve(ModelRef(name="taxi", version=2)).artifact.id == three_versions[1].id
    assert registry.resolve("taxi@latest").version == 3


def test_latest_follows_new_registrations(
    registry: ModelRegistry, three_versions: list[Artifact], make_model: Callable[[], Artifact]
) -> None:
    registry.register("taxi", make_model().id, who="ci", why="nightly")
    assert registry.resolve("taxi").version == 4
    assert registry.resolve("taxi@challenger").version == 2


def test_unknown_alias_names_the_known_ones_and_the_fix(
    registry: ModelRegistry, three_versions: list[Artifact]
) -> None:
    with pytest.raises(NotFoundError) as info:
        registry.resolve("taxi@champion")
    assert str(info.value) == (
        "Model 'taxi' has no alias 'champion'. Known aliases: challenger. "
        "Set one with: loopline models alias set taxi champion VERSION"
    )


def test_unknown_version_lists_known_versions(
    registry: ModelRegistry, three_versions: list[Artifact]
) -> None:
    with pytest.raises(
        NotFoundError, match=r"Model 'taxi' has no version 9\. Known versions: 1, 2, 3\."
    ):
        registry.resolve("taxi/9")


def test_unknown_model_lists_known_models(
    registry: ModelRegistry, three_versions: list[Artifact]
) -> None:
    with pytest.raises(
        NotFoundError, match=r"Model 'fraud' is not registered\. Known models: taxi\."
    ):
        registry.resolve("fraud")


def test_malformed_references_are_refused(
    registry: ModelRegistry, three_versions: list[Artifact]
) -> None:
    with pytest.raises(InvalidInputError, match="has version 'x'"):
        registry.resolve("taxi/x")
    with pytest.raises(InvalidInputError, match="is neither a ModelRef nor a string"):
        registry.resolve(3)  # type: ignore[arg-type]
