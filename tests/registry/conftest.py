"""A registry over the real SQL metadata store (in-memory SQLite, a SQLite file and, when
``LOOPLINE_TEST_DATABASE_URL`` is set, PostgreSQL) and a real local artifact store; helpers
that record LIVE Model and ModelBlessing artifacts."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.metadata.entities import Artifact, ArtifactState
from loopline.metadata.memory import InMemoryMetadataStore
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.registry.registry import ModelRegistry
from loopline.types import Json

MakeArtifact = Callable[..., Artifact]
PG_ENV = "LOOPLINE_TEST_DATABASE_URL"


@contextlib.contextmanager
def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards; yields its URL."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (start one with scripts/postgres.sh).")
    base = make_url(url).set(drivername="postgresql+psycopg")
    name = f"loopline_reg_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    params=["sqlite-memory", "sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def metadata(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite-memory":
            store: MetadataStore = InMemoryMetadataStore()
        elif request.param == "sqlite-file":
            store = open_store(f"sqlite:///{tmp_path}/metadata.db")
        else:
            store = open_store(stack.enter_context(_postgres_database()))
        try:
            yield store
        finally:
            store.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def registry(metadata: MetadataStore, artifacts: FsspecArtifactStore) -> ModelRegistry:
    return ModelRegistry(metadata, artifacts)


@pytest.fixture
def make_artifact(metadata: MetadataStore, artifacts: FsspecArtifactStore) -> MakeArtifact:
    """Publish bytes and record the artifact, LIVE with its digest unless told otherwise."""

    def make(
        type_name: str = "Model",
        *,
        state: ArtifactState = ArtifactState.LIVE,
        digest: bool = True,
        payload: bytes = b"model bytes",
        properties: dict[str, Json] | None = None,
    ) -> Artifact:
        uri = artifacts.allocate(type_name, "test")
        with artifacts.staging() as staged:
            (staged / "model.bin").write_bytes(payload)
            content_digest = artifacts.publish(staged, uri)
        return metadata.put_artifact(
            type_name,
            uri,
            digest=content_digest if digest else None,
            state=state,
            properties=properties,
        )

    return make


@pytest.fixture
def make_model(make_artifact: MakeArtifact) -> Callable[[], Artifact]:
    return lambda: make_artifact("Model")


@pytest.fixture
def make_blessing(make_artifact: MakeArtifact) -> Callable[[Artifact], Artifact]:
    return lambda model: make_artifact(
        "ModelBlessing", properties={"blessed": 1, "current_model_id": model.id}
    )
