"""Indexes for the console's keyset pages: newest first by type, after an id.

Revision ID: 0007
Revises: 0006

``(type_name, id)`` on contexts, artifacts and executions lets "the 50 runs below id N"
(``WHERE type_name = 'run' AND id < N ORDER BY id DESC LIMIT 51``) read 51 index entries
instead of scanning and sorting every row of the type; the existing
``(type_name, state, id)`` indexes serve this order only when the state is also given.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_contexts_type_id", "contexts"),
    ("ix_artifacts_type_id", "artifacts"),
    ("ix_executions_type_id", "executions"),
)


def upgrade() -> None:
    for name, table in INDEXES:
        op.create_index(name, table, ["type_name", "id"])


def downgrade() -> None:
    for name, table in INDEXES:
        op.drop_index(name, table_name=table)
