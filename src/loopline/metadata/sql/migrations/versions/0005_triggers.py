"""Triggers of the continuous-training loop and their runs.

Revision ID: 0005
Revises: 0004

Mapped in ``loopline.triggers.sql_store``. ``trigger_run_keys`` holds every de-duplication
key a run consumed (primary key: trigger and key), so an event is never launched twice even
across restarts. Specs, causes and details are JSON documents, so adding a field needs no
migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
    )
    op.create_table(
        "trigger_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("trigger", sa.String(128), nullable=False, index=True),
        sa.Column("model", sa.String(128), nullable=False, index=True),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "trigger_run_keys",
        sa.Column("trigger", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("trigger_run_keys", "trigger_runs", "triggers"):
        op.drop_table(table)
