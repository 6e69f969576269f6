"""``InMemoryMetadataStore``: the SQL store on in-memory SQLite, so the fake cannot drift.

Dagster's trick: the "fake" for tests is the real SQL code on ``sqlite://``. One shared
connection (``StaticPool``) makes it visible from every thread; calls are serialised.
"""

from __future__ import annotations

from loopline.metadata.sql.engine import create_engines, parse_url
from loopline.metadata.sql.store import SqlMetadataStore


class InMemoryMetadataStore(SqlMetadataStore):
    """A fresh, empty, fully migrated metadata store that lives as long as the object."""

    def __init__(self) -> None:
        from loopline.metadata.sql.migrate import upgrade  # Alembic loads only when opening

        url = parse_url("sqlite://")
        engines = create_engines(url)
        upgrade(url, engines)
        super().__init__(engines.write)

    def __repr__(self) -> str:
        return "InMemoryMetadataStore()"
