"""``FsspecArtifactStore`` passes the artifact store contract on every code path."""

from __future__ import annotations

import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.testing.artifacts import ArtifactStoreContract, fsspec_child_setup


class TestLocalDirectoryStore(ArtifactStoreContract):
    __test__ = True

    @pytest.fixture
    def artifact_store(self, local_store: FsspecArtifactStore) -> FsspecArtifactStore:
        return local_store

    @pytest.fixture
    def artifact_store_child_setup(self, artifact_store: FsspecArtifactStore) -> str:
        return fsspec_child_setup(artifact_store)


class TestMemoryStore(ArtifactStoreContract):
    """fsspec's ``memory://``: the remote (marker-based) code path, in one process."""

    __test__ = True

    @pytest.fixture
    def artifact_store(self, memory_store: FsspecArtifactStore) -> FsspecArtifactStore:
        return memory_store


class TestObjectDirStore(ArtifactStoreContract):
    """The remote code path over a directory several processes share."""

    __test__ = True

    @pytest.fixture
    def artifact_store(self, objdir_store: FsspecArtifactStore) -> FsspecArtifactStore:
        return objdir_store

    @pytest.fixture
    def artifact_store_child_setup(self, artifact_store: FsspecArtifactStore) -> str:
        return fsspec_child_setup(artifact_store)
