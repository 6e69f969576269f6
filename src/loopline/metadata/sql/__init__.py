"""The SQL backend of the metadata store (SQLite and PostgreSQL via SQLAlchemy 2 + Alembic).

Key contracts:
- ``SqlMetadataStore(engine)`` implements ``MetadataStore``; one session per public call;
  ORM rows (``schema.py``) never leave this package.
- ``create_engines(url)`` sets SQLite to WAL, ``BEGIN IMMEDIATE`` for writes, foreign keys on.
- ``sql.migrate.upgrade(url, engines)`` runs the Alembic migrations in
  ``migrations/versions`` (``0001``, ``0002``, …) under a lock; every migration runs on
  SQLite (batch mode) and PostgreSQL. (Not imported here: Alembic loads only when opening.)
"""

from loopline.metadata.sql.engine import KNOWN_SCHEMES, Engines, create_engines, parse_url
from loopline.metadata.sql.store import SqlMetadataStore

__all__ = [
    "KNOWN_SCHEMES",
    "Engines",
    "SqlMetadataStore",
    "create_engines",
    "parse_url",
]
