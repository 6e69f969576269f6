"""Fixtures for artifact store tests: one store per backend, isolated per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.testing.artifacts import register_object_dir_fs


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
