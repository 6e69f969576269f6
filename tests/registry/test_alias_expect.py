"""Alias compare-and-set: a move with ``expect`` happens only if the alias is where the caller
thinks it is; of concurrent movers expecting the same version, exactly one wins."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.registry.conftest import _postgres_database

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.errors import ConflictError, InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact, ArtifactState, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.registry import ALIAS_MOVE_TYPE, ModelRegistry


@pytest.fixture
def models(registry: ModelRegistry, make_model: Callable[[], Artifact]) -> list[Artifact]:
    made = [make_model() for _ in range(4)]
    for model in made:
        registry.register("taxi", model.id, who="ci", why="nightly")
    return made


def test_a_move_expecting_the_current_version_happens(
    registry: ModelRegistry, models: list[Artifact]
) -> None:
    registry.set_alias("taxi", "champion", 2, who="ana", why="first")
    move = registry.set_alias("taxi", "champion", 3, who="ana", why="better", expect=2)
    assert (move.from_version, move.to_version) == (2, 3)
    assert registry.resolve("taxi@champion").version == 3


def test_a_move_expecting_another_version_fails_naming_the_current_holder(
    registry: ModelRegistry, models: list[Artifact]
) -> None:
    registry.set_alias("taxi", "champion", 3, who="ana", why="first")
    with pytest.raises(
        ConflictError,
        match=r"^Alias taxi@champion is at version 3, not 2 as expected; re-read and retry\.$",
    ):
        registry.set_alias("taxi", "champion", 4, who="bot", why="retrained", expect=2)
    assert registry.resolve("taxi@champion").version == 3
    assert [m.to_version for m in registry.alias_history("taxi", "champion")] == [3]


def test_expect_zero_means_the_alias_must_not_be_set_yet(
    registry: ModelRegistry, models: list[Artifact]
) -> None:
    move = registry.set_alias("taxi", "challenger", 1, who="bot", why="first", expect=0)
    assert move.from_version is None
    with pytest.raises(ConflictError, match=r"is at version 1, not unset as expected"):
        registry.set_alias("taxi", "challenger", 2, who="bot", why="again", expect=0)


def test_expecting_a_version_of_an_unset_alias_is_a_conflict(
    registry: ModelRegistry, models: list[Artifact]
) -> None:
    with pytest.raises(ConflictError, match=r"taxi@champion is not set, not at version 2 as"):
        registry.set_alias("taxi", "champion", 3, who="bot", why="x", expect=2)
    with pytest.raises(ConflictError, match=r"taxi@champion is not set, not at version 2 as"):
        registry.unset_alias("taxi", "champion", who="bot", why="x", expect=2)


def test_unset_and_undo_take_expect_too(registry: ModelRegistry, models: list[Artifact]) -> None:
    registry.set_alias("taxi", "champion", 1, who="ana", why="first")
    registry.set_alias("taxi", "champion", 2, who="ana", why="second")
    with pytest.raises(ConflictError, match=r"is at version 2, not 1 as expected"):
        registry.undo("taxi", "champion", who="ana", why="flaky", expect=1)
    undo = registry.undo("taxi", "champion", who="ana", why="flaky", expect=2)
    assert (undo.from_version, undo.to_version) == (2, 1)
    with pytest.raises(ConflictError, match=r"is at version 1, not 2 as expected"):
        registry.unset_alias("taxi", "champion", who="ana", why="retire", expect=2)
    gone = registry.unset_alias("taxi", "champion", who="ana", why="retire", expect=1)
    assert gone.to_version is None
    with pytest.raises(NotFoundError, match=r"nothing to unset"):
        registry.unset_alias("taxi", "champion", who="ana", why="again", expect=0)


@pytest.mark.parametrize("bad", [-1, True, "2", 1.5])
def test_expect_must_be_a_version_or_zero(
    registry: ModelRegistry, models: list[Artifact], bad: object
) -> None:
    with pytest.raises(InvalidInputError, match=r"Expected version .* of alias taxi@champion"):
        registry.set_alias("taxi", "champion", 1, who="a", why="b", expect=bad)  # type: ignore[arg-type]


def test_the_store_checks_and_writes_in_one_transaction(
    metadata: MetadataStore, registry: ModelRegistry, models: list[Artifact]
) -> None:
    # Below the registry's early check: the store itself refuses a stale expectation.
    metadata.set_model_alias("taxi", "champion", 1, execution_id=None)
    with pytest.raises(ConflictError, match=r"is at version 1, not 3 as expected"):
        metadata.set_model_alias("taxi", "champion", 2, execution_id=None, expect=3)
    assert metadata.set_model_alias("taxi", "champion", 2, execution_id=None, expect=1)
    assert [a.version for a in metadata.list_model_aliases("taxi")] == [2]


# ---- races: separate store objects (separate connections) in threads ------------------------


@pytest.fixture(params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite-file":
            yield f"sqlite:///{tmp_path}/race.db"
        else:
            yield stack.enter_context(_postgres_database())


def _race(n: int, move: Callable[[int], object]) -> tuple[list[int], list[BaseException]]:
    """Run ``move(i)`` for i in 1..n at the same instant; the winners' i and the errors."""
    barrier = threading.Barrier(n)
    won: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def contender(i: int) -> None:
        barrier.wait()
        try:
            move(i)
        except BaseException as exc:  # collected and asserted below
            with lock:
                errors.append(exc)
        else:
            with lock:
                won.append(i)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(1, n + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return won, errors


def test_of_concurrent_compare_and_set_moves_exactly_one_wins(
    store_url: str, tmp_path: Path
) -> None:
    contenders = 4
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    stores = [open_store(store_url) for _ in range(contenders + 1)]
    try:
        setup = ModelRegistry(stores[0], artifacts)
        for _ in range(contenders + 1):
            uri = artifacts.allocate("Model", "race")
            with artifacts.staging() as staged:
                (staged / "m.bin").write_bytes(uri.encode())
                digest = artifacts.publish(staged, uri)
            model = stores[0].put_artifact(
                "Model", uri, digest=digest, state=ArtifactState.LIVE
            )
            setup.register("taxi", model.id, who="ci", why="race")
        setup.set_alias("taxi", "champion", 1, who="ci", why="start")
        registries = [ModelRegistry(s, artifacts) for s in stores[1:]]
        for _round in range(3):
            at = setup.resolve("taxi@champion").version
            targets = [v for v in range(1, contenders + 2) if v != at]

            def move(i: int, at: int = at, targets: list[int] = targets) -> object:
                # Every contender moves champion to its own version, expecting the same one.
                return registries[i - 1].set_alias(
                    "taxi", "champion", targets[i - 1], who=f"bot-{i}", why="race", expect=at
                )

            won, errors = _race(contenders, move)
            assert len(won) == 1, (won, errors)
            assert len(errors) == contenders - 1
            holder = targets[won[0] - 1]
            assert setup.resolve("taxi@champion").version == holder
            for exc in errors:
                assert isinstance(exc, ConflictError), exc
                # Losers that got past the early check fail in the store; either way the
                # message names the version the winner put there.
                assert f"is at version {holder}, not {at} as expected" in str(exc)
        # Only the winning moves are in the history; a loser that reached the store is
        # recorded as a FAILED AliasMove (audited, never effective).
        history = setup.alias_history("taxi", "champion")
        assert len(history) == 1 + 3
        executions = stores[0].list_executions(type_name=ALIAS_MOVE_TYPE)
        assert all(
            e.state in (ExecutionState.COMPLETE, ExecutionState.FAILED) for e in executions
        )
    finally:
        for store in stores:
            store.close()


def test_concurrent_first_sets_with_expect_zero_create_the_alias_once(
    store_url: str, tmp_path: Path
) -> None:
    stores = [open_store(store_url) for _ in range(4)]
    try:
        model = stores[0].put_artifact("Model", "mem://m", digest="sha256:0")
        for _ in range(3):
            stores[0].create_model_version("taxi", model.id)

        def move(i: int) -> object:
            return stores[i].set_model_alias("taxi", "challenger", i, execution_id=None, expect=0)

        won, errors = _race(3, move)
        assert len(won) == 1 and len(errors) == 2, (won, errors)
        assert all(isinstance(e, ConflictError) for e in errors), errors
        assert [a.version for a in stores[0].list_model_aliases("taxi")] == won
    finally:
        for store in stores:
            store.close()
