"""Alias moves: recorded with who, why and evidence; undoable; visible in lineage."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact, Direction, EventType, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.registry import (
    ALIAS_MOVE_TYPE,
    MODEL_CONTEXT_TYPE,
    AliasAction,
    ModelRegistry,
    ModelSummary,
)


@pytest.fixture
def models(registry: ModelRegistry, make_model: Callable[[], Artifact]) -> list[Artifact]:
    made = [make_model() for _ in range(3)]
    for model in made:
        registry.register("taxi", model.id, who="ci", why="nightly")
    return made


def test_alias_move_is_an_execution_with_model_and_evidence_inputs(
    registry: ModelRegistry,
    metadata: MetadataStore,
    models: list[Artifact],
    make_blessing: Callable[[Artifact], Artifact],
) -> None:
    blessing = make_blessing(models[1])
    move = registry.set_alias(
        "taxi", "champion", 2, who="ana", why="beats v1 on AUC", evidence=[blessing.id]
    )
    assert (move.action, move.from_version, move.to_version) == (AliasAction.SET, None, 2)
    assert (move.who, move.why, move.evidence) == ("ana", "beats v1 on AUC", (blessing.id,))

    execution = metadata.get_execution(move.execution_id)
    assert execution.type_name == ALIAS_MOVE_TYPE
    assert execution.state is ExecutionState.COMPLETE
    assert dict(execution.properties) == {
        "model": "taxi",
        "alias": "champion",
        "action": "set",
        "from_version": None,
        "to_version": 2,
        "who": "ana",
        "why": "beats v1 on AUC",
    }
    edges = {
        (e.port, e.artifact_id, e.type)
        for e in metadata.get_events(execution_ids=[move.execution_id])
    }
    assert edges == {
        ("model", models[1].id, EventType.INPUT),
        ("evidence", blessing.id, EventType.INPUT),
    }
    (context,) = metadata.contexts_of_execution(move.execution_id)
    assert (context.type_name, context.name) == (MODEL_CONTEXT_TYPE, "taxi")

    downstream = metadata.lineage(artifact_id=blessing.id, direction=Direction.DOWNSTREAM, hops=1)
    assert move.execution_id in {e.id for e in downstream.executions}
    (alias_row,) = metadata.list_model_aliases("taxi")
    assert (alias_row.version, alias_row.execution_id) == (2, move.execution_id)


def test_history_is_newest_first_with_who_why_and_evidence(
    registry: ModelRegistry, models: list[Artifact], make_blessing: Callable[[Artifact], Artifact]
) -> None:
    b1, b3 = make_blessing(models[0]), make_blessing(models[2])
    registry.set_alias("taxi", "champion", 1, who="ana", why="first", evidence=[b1.id])
    registry.set_alias("taxi", "challenger", 2, who="bo", why="try it")
    registry.set_alias("taxi", "champion", 3, who="cy", why="better", evidence=[b3.id, b1.id])
    history = registry.alias_history("taxi", "champion")
    assert [(m.who, m.from_version, m.to_version) for m in history] == [
        ("cy", 1, 3),
        ("ana", None, 1),
    ]
    assert history[0].evidence == (b3.id, b1.id)
    assert history[0].at >= history[1].at
    everything = registry.alias_history("taxi")
    assert [(m.alias, m.who) for m in everything] == [
        ("champion", "cy"),
        ("challenger", "bo"),
        ("champion", "ana"),
    ]
    assert registry.alias_history("taxi", "never-set") == []


def test_unset_removes_the_alias_and_is_recorded(
    registry: ModelRegistry, metadata: MetadataStore, models: list[Artifact]
) -> None:
    registry.set_alias("taxi", "champion", 2, who="ana", why="good")
    move = registry.unset_alias("taxi", "champion", who="bo", why="incident 42")
    assert (move.action, move.from_version, move.to_version) == (AliasAction.UNSET, 2, None)
    assert registry.get_model("taxi").aliases == {}
    (edge,) = metadata.get_events(execution_ids=[move.execution_id])
    assert (edge.port, edge.artifact_id) == ("model", models[1].id)
    with pytest.raises(
        NotFoundError, match="has no alias 'champion', so there is nothing to unset"
    ):
        registry.unset_alias("taxi", "champion", who="bo", why="again")


def test_undo_moves_back_and_undo_of_undo_redoes(
    registry: ModelRegistry, models: list[Artifact]
) -> None:
    registry.set_alias("taxi", "champion", 1, who="ana", why="first")
    moved = registry.set_alias("taxi", "champion", 3, who="ana", why="newer")
    undo = registry.undo("taxi", "champion", who="bo", why="v3 regressed")
    assert (undo.action, undo.from_version, undo.to_version) == (AliasAction.UNDO, 3, 1)
    assert undo.undoes == moved.execution_id
    assert registry.resolve("taxi@champion").version == 1
    redo = registry.undo("taxi", "champion", who="bo", why="false alarm")
    assert (redo.from_version, redo.to_version, redo.undoes) == (1, 3, undo.execution_id)
    assert registry.resolve("taxi@champion").version == 3
    assert [m.action for m in registry.alias_history("taxi", "champion")] == [
        AliasAction.UNDO,
        AliasAction.UNDO,
        AliasAction.SET,
        AliasAction.SET,
    ]


def test_undo_of_the_first_set_removes_the_alias(
    registry: ModelRegistry, models: list[Artifact]
) -> None:
    registry.set_alias("taxi", "champion", 2, who="ana", why="first")
    undo = registry.undo("taxi", "champion", who="bo", why="too early")
    assert (undo.from_version, undo.to_version) == (2, None)
    with pytest.raises(NotFoundError, match="has no alias 'champion'"):
        registry.resolve("taxi@champion")
    redo = registry.undo("taxi", "champion", who="bo", why="it was fine")
    assert redo.to_version == 2
    assert registry.resolve("taxi@champion").version == 2


def test_undo_of_an_unset_restores_the_alias(
    registry: ModelRegistry, models: list[Artifact]
) -> None:
    registry.set_alias("taxi", "champion", 3, who="ana", why="best")
    registry.unset_alias("taxi", "champion", who="bo", why="incident")
    registry.undo("taxi", "champion", who="bo", why="resolved")
    assert registry.resolve("taxi@champion").version == 3


def test_undo_without_history_is_refused(registry: ModelRegistry, models: list[Artifact]) -> None:
    with pytest.raises(NotFoundError, match=r"Alias taxi@champion has never been moved"):
        registry.undo("taxi", "champion", who="bo", why="oops")


def test_set_alias_refuses_bad_requests(
    registry: ModelRegistry, metadata: MetadataStore, models: list[Artifact]
) -> None:
    with pytest.raises(
        NotFoundError, match=r"Model 'taxi' has no version 7\. Known versions: 1, 2, 3\."
    ):
        registry.set_alias("taxi", "champion", 7, who="ana", why="x")
    with pytest.raises(InvalidInputError, match="Alias 'latest' is reserved"):
        registry.set_alias("taxi", "latest", 1, who="ana", why="x")
    with pytest.raises(InvalidInputError, match="Alias name 'champ ion' is not valid"):
        registry.set_alias("taxi", "champ ion", 1, who="ana", why="x")
    with pytest.raises(InvalidInputError, match="Model version 0 is not valid"):
        registry.set_alias("taxi", "champion", 0, who="ana", why="x")
    with pytest.raises(NotFoundError, match=r"Evidence artifact\(s\) 9999 do not exist"):
        registry.set_alias("taxi", "champion", 1, who="ana", why="x", evidence=[9999])
    with pytest.raises(InvalidInputError, match="Registry changes need 'why'"):
        registry.set_alias("taxi", "champion", 1, who="ana", why="")
    with pytest.raises(NotFoundError, match="Model 'fraud' is not registered"):
        registry.set_alias("fraud", "champion", 1, who="ana", why="x")
    assert registry.alias_history("taxi") == []
    assert metadata.list_model_aliases("taxi") == []
    assert metadata.list_executions(type_name=ALIAS_MOVE_TYPE) == []


def test_moves_that_failed_are_not_history(
    registry: ModelRegistry, metadata: MetadataStore, models: list[Artifact]
) -> None:
    registry.set_alias("taxi", "champion", 1, who="ana", why="ok")
    failed = metadata.put_execution(
        ALIAS_MOVE_TYPE,
        state=ExecutionState.FAILED,
        properties={"model": "taxi", "alias": "champion", "action": "set", "who": "x", "why": "y"},
    )
    context = metadata.find_context(MODEL_CONTEXT_TYPE, "taxi")
    assert context is not None
    metadata.associate(context.id, [failed.id])
    assert [m.who for m in registry.alias_history("taxi", "champion")] == ["ana"]


def test_list_and_get_models(
    registry: ModelRegistry, models: list[Artifact], make_model: Callable[[], Artifact]
) -> None:
    registry.register("fraud", make_model().id, who="ci", why="first")
    registry.set_alias("taxi", "champion", 2, who="ana", why="good")
    registry.set_alias("taxi", "challenger", 3, who="ana", why="maybe")
    assert registry.list_models() == [
        ModelSummary(name="fraud", latest_version=1, version_count=1, aliases={}),
        ModelSummary(
            name="taxi",
            latest_version=3,
            version_count=3,
            aliases={"challenger": 3, "champion": 2},
        ),
    ]
    taxi = registry.get_model("taxi")
    assert [v.artifact_id for v in taxi.versions] == [m.id for m in models]
    assert taxi.latest_version == 3
    assert taxi.aliases == {"challenger": 3, "champion": 2}
    with pytest.raises(NotFoundError, match="Model 'nope' is not registered"):
        registry.get_model("nope")
