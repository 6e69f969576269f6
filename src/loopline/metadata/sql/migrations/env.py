"""Alembic environment of the metadata store, driven from code (see ``sql/migrate.py``).

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``;
there is no ``alembic.ini``. SQLite runs with ``render_as_batch`` so ALTERs become table
rebuilds. Offline (``--sql``) mode is not supported.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from loopline.metadata.sql.schema import Base


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "loopline's metadata migrations run through loopline.metadata.sql.migrate, which "
            "passes a connection; there is no alembic.ini to run them from the command line."
        )
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("Offline (SQL script) migrations are not supported for loopline.")
run_migrations_online()
