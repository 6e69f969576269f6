"""The conformance suite on every SQL backend: SQLite file, in-memory SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopline.metadata import InMemoryMetadataStore, MetadataStore, open_store
from loopline.testing.metadata import MetadataStoreContract


class TestSqliteFileStore(MetadataStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, sqlite_url: str) -> Iterator[MetadataStore]:
        store = open_store(sqlite_url)
        yield store
        store.close()


class TestInMemoryStore(MetadataStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        store = InMemoryMetadataStore()
        yield store
        store.close()


@pytest.mark.postgres
class TestPostgresStore(MetadataStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, postgres_url: str) -> Iterator[MetadataStore]:
        store = open_store(postgres_url)
        yield store
        store.close()
