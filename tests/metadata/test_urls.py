"""open_store: backend by scheme, clear errors for unknown schemes and missing drivers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loopline.errors import BackendError, ConfigurationError, DependencyMissingError
from loopline.metadata import SqlMetadataStore, open_store
from loopline.metadata.sql import parse_url


def test_unknown_scheme_lists_the_known_schemes() -> None:
    with pytest.raises(ConfigurationError, match=r"unsupported scheme 'mysql'.*sqlite, postgresql"):
        open_store("mysql://user@host/db")


def test_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="is not a valid database URL"):
        open_store("not a url")


def test_missing_psycopg_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the module unimportable, as if not installed.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(DependencyMissingError, match=r"pip install 'loopline\[postgres\]'"):
        open_store("postgresql://postgres@127.0.0.1:5432/db")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h/db",
        "postgresql+psycopg://u@h/db",
        "postgres://u@h/db",
    ],
)
def test_postgres_urls_use_psycopg_3(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"


def test_other_postgres_drivers_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="'postgresql\\+psycopg2'"):
        parse_url("postgresql+psycopg2://u@h/db")


def test_sqlite_url_creates_parent_directories(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'metadata.db'}")
    assert isinstance(store, SqlMetadataStore)
    store.close()
    assert (tmp_path / "a" / "b" / "metadata.db").is_file()


def test_unreachable_postgres_is_a_backend_error() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(BackendError, match="Could not open the metadata store at postgresql"):
        open_store("postgresql://postgres@127.0.0.1:1/loopline")


def test_in_memory_stores_are_independent() -> None:
    first, second = open_store("sqlite://"), open_store("sqlite://")
    first.put_artifact("Examples", "u")
    assert second.list_artifacts() == []
    first.close()
    second.close()
