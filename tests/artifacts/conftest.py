"""Fixtures for artifact store tests: one store per backend, isolated per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.testing.artifacts import register_object_dir_fs
from loopline.testing.s3 import MotoS3Server, moto_missing_reason


@pytest.fixture
def local_store(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def memory_store(tmp_path: Path) -> Iterator[FsspecArtifactStore]:
    root = f"memory:///loopline-test-{uuid.uuid4().hex}"
    yield FsspecArtifactStore(root, local_staging=tmp_path / "staging")
    fs = fsspec.filesystem("memory")
    if fs.exists(root[len("memory://") :]):
        fs.rm(root[len("memory://") :], recursive=True)


@pytest.fixture
def objdir_store(tmp_path: Path) -> FsspecArtifactStore:
    register_object_dir_fs()
    return FsspecArtifactStore(f"objdir://{tmp_path}/bucket", local_staging=tmp_path / "staging")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3Server]:
    """moto's S3 server, one process for the session (each test gets a bucket of its own)."""
    reason = moto_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with MotoS3Server() as server:
        yield server


@pytest.fixture
def s3_env(moto_s3: MotoS3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process (and its children) reach moto through the standard AWS variables."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    env = moto_s3.environ()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def s3_bucket(moto_s3: MotoS3Server, s3_env: dict[str, str]) -> str:
    """A fresh, empty bucket on moto."""
    name = f"loopline-{uuid.uuid4().hex[:16]}"
    moto_s3.create_bucket(name)
    return name


@pytest.fixture
def s3_store(s3_bucket: str, tmp_path: Path) -> FsspecArtifactStore:
    """An artifact store at ``s3://<fresh bucket>/team/artifacts`` on moto."""
    return FsspecArtifactStore(
        f"s3://{s3_bucket}/team/artifacts", local_staging=tmp_path / "staging"
    )
