"""Open a metadata store by URL: the scheme chooses the backend.

``sqlite:///path/metadata.db`` (a file; parent directories are created), ``sqlite://`` (in
memory, one per call), ``postgresql://user@host:5432/db`` (psycopg 3; ``postgresql+psycopg://``
is accepted too). Opening upgrades the schema to the newest revision.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from loopline.errors import BackendError
from loopline.metadata.sql.engine import create_engines, is_memory_sqlite, parse_url
from loopline.metadata.sql.store import SqlMetadataStore
from loopline.metadata.store import MetadataStore


def open_store(url: str) -> MetadataStore:
    """Open (and migrate to head) the metadata store at ``url``.

    Example:
        >>> store = open_store("sqlite:///var/loopline/metadata.db")

    Raises:
        ConfigurationError: the scheme is unknown (the message lists ``sqlite``,
            ``postgresql``) or the URL is malformed.
        DependencyMissingError: a PostgreSQL URL without psycopg
            (``pip install 'loopline[postgres]'``).
        BackendError: the database is unreachable, or its schema is newer than this code.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and not is_memory_sqlite(parsed):
        path = Path(str(parsed.database)).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
    from loopline.metadata.sql.migrate import upgrade  # Alembic loads only when opening

    engines = create_engines(parsed)
    try:
        upgrade(parsed, engines)
    except SQLAlchemyError as exc:
        engines.dispose()
        raise BackendError(
            f"Could not open the metadata store at {parsed.render_as_string(hide_password=True)}: "
            f"{exc.__class__.__name__}: {exc.orig if isinstance(exc, DBAPIError) else exc}. "
            "Check that the database server is running and the URL is right."
        ) from exc
    except BaseException:
        engines.dispose()
        raise
    return SqlMetadataStore(engines.write)
