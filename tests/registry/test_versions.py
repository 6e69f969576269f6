"""Registering model versions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact, ArtifactState, EventType, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.registry import MODEL_CONTEXT_TYPE, REGISTRATION_TYPE, ModelRegistry

MakeArtifact = Callable[..., Artifact]


def test_versions_increment_from_one(
    registry: ModelRegistry, make_model: Callable[[], Artifact]
) -> None:
    first, second, third = (make_model() for _ in range(3))
    v1 = registry.register("taxi", first.id, description="baseline", who="ci", why="run 1")
    v2 = registry.register("taxi", second.id, who="ci", why="run 2")
    other = registry.register("fraud", third.id, who="ci", why="run 1")
    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    assert (v1.artifact_id, v1.description) == (first.id, "baseline")


def test_registration_is_recorded_with_who_why_and_lineage(
    registry: ModelRegistry, metadata: MetadataStore, make_model: Callable[[], Artifact]
) -> None:
    model = make_model()
    registry.register("taxi", model.id, who="ana", why="first usable model")
    context = metadata.find_context(MODEL_CONTEXT_TYPE, "taxi")
    assert context is not None
    assert [a.id for a in metadata.list_artifacts(context_id=context.id)] == [model.id]
    (record,) = metadata.list_executions(type_name=REGISTRATION_TYPE, context_id=context.id)
    assert record.state is ExecutionState.COMPLETE
    assert record.properties["who"] == "ana"
    assert record.properties["why"] == "first usable model"
    assert record.properties["version"] == 1
    (event,) = metadata.get_events(execution_ids=[record.id])
    assert (event.artifact_id, event.type, event.port) == (model.id, EventType.INPUT, "model")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ({"type_name": "Dataset"}, "is of type 'Dataset', not 'Model'"),
        ({"state": ArtifactState.PENDING}, "is pending, not live"),
        ({"digest": False}, "has no content digest"),
    ],
)
def test_refuses_artifacts_that_are_not_live_digested_models(
    registry: ModelRegistry, make_artifact: MakeArtifact, kind: dict[str, object], message: str
) -> None:
    artifact = make_artifact(**kind)
    with pytest.raises(InvalidInputError, match=rf"Artifact {artifact.id} {message}"):
        registry.register("taxi", artifact.id, who="ci", why="x")
    assert registry.list_models() == []


def test_refuses_a_model_whose_bytes_are_gone(
    registry: ModelRegistry, make_model: Callable[[], Artifact]
) -> None:
    model = make_model()
    registry.artifacts.delete(model.uri)
    with pytest.raises(InvalidInputError, match="has no bytes at"):
        registry.register("taxi", model.id, who="ci", why="x")


def test_refuses_deleted_artifacts(
    registry: ModelRegistry, metadata: MetadataStore, make_model: Callable[[], Artifact]
) -> None:
    model = make_model()
    metadata.update_artifact(model.id, state=ArtifactState.DELETED)
    with pytest.raises(InvalidInputError, match="is deleted, not live"):
        registry.register("taxi", model.id, who="ci", why="x")


def test_unknown_artifact_is_not_found(registry: ModelRegistry) -> None:
    with pytest.raises(NotFoundError, match="999"):
        registry.register("taxi", 999, who="ci", why="x")


@pytest.mark.parametrize(("who", "why"), [("", "reason"), ("ana", "  "), (None, "reason")])
def test_registration_needs_who_and_why(
    registry: ModelRegistry, make_model: Callable[[], Artifact], who: object, why: object
) -> None:
    with pytest.raises(InvalidInputError, match="Registry changes need"):
        registry.register("taxi", make_model().id, who=who, why=why)  # type: ignore[arg-type]


def test_rejects_a_bad_model_name(
    registry: ModelRegistry, make_model: Callable[[], Artifact]
) -> None:
    with pytest.raises(InvalidInputError, match=r"Model name '\.\./taxi' is not valid"):
        registry.register("../taxi", make_model().id, who="ci", why="x")


def test_concurrent_registration_from_threads_yields_unique_contiguous_versions(
    registry: ModelRegistry, make_model: Callable[[], Artifact]
) -> None:
    models = [make_model() for _ in range(24)]
    barrier = threading.Barrier(6)
    got: list[int] = []
    errors: list[BaseException] = []

    def worker(mine: list[Artifact]) -> None:
        try:
            barrier.wait(timeout=30)
            for model in mine:
                got.append(registry.register("taxi", model.id, who="t", why="race").version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(models[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(got) == list(range(1, 25))
    by_version = {v.version: v.artifact_id for v in registry.get_model("taxi").versions}
    assert sorted(by_version.values()) == sorted(m.id for m in models)


def test_concurrent_registration_from_processes_yields_unique_contiguous_versions(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    metadata = open_store(url)
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    ids = []
    for _ in range(12):
        uri = artifacts.allocate("Model", "p")
        with artifacts.staging() as staged:
            (staged / "m").write_bytes(b"m")
            digest = artifacts.publish(staged, uri)
        ids.append(metadata.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE).id)
    root = str(tmp_path / "artifacts")
    script = textwrap.dedent(
        f"""
        import sys
        from loopline.artifacts.fs import FsspecArtifactStore
        from loopline.metadata.urls import open_store
        from loopline.registry import ModelRegistry
        registry = ModelRegistry(open_store({url!r}), FsspecArtifactStore({root!r}))
        for artifact_id in sys.argv[1:]:
            print(registry.register("taxi", int(artifact_id), who="p", why="race").version)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *map(str, ids[i::3])], stdout=subprocess.PIPE, text=True
        )
        for i in range(3)
    ]
    versions = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        versions += [int(line) for line in out.split()]
    assert sorted(versions) == list(range(1, 13))
    assert [v.version for v in metadata.list_model_versions("taxi")] == list(range(1, 13))
    metadata.close()
