"""Monitors: applied specs, ingestion cursors, open-window state, window results, alerts.

Revision ID: 0004
Revises: 0003

Mapped in ``loopline.monitor.sql_store``. A monitor's cursor (the log segments it consumed),
its state and the windows it closed are written in one transaction, so a restart neither
loses nor double-counts rows. ``monitor_alerts`` is the outbox of alert events: committed
with the window that caused them, then recorded as ``Alert`` artifacts in the metadata store
(``artifact_id`` set once recorded). Entities are JSON documents next to their keys, so
adding a field needs no migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_specs",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "monitor_state",
        sa.Column("monitor", sa.String(128), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "monitor_segments",
        sa.Column("monitor", sa.String(128), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("window_index", sa.Integer(), nullable=False),
        sa.Column("end_ts", sa.Float(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.UniqueConstraint("monitor", "version", "window_index", name="uq_monitor_windows"),
    )
    op.create_index("ix_monitor_windows_monitor", "monitor_windows", ["monitor", "id"])
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(128), nullable=False),
        sa.Column("key", sa.String(512), nullable=False, unique=True),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_monitor_alerts_monitor", "monitor_alerts", ["monitor", "id"])


def downgrade() -> None:
    for table in (
        "monitor_alerts",
        "monitor_windows",
        "monitor_segments",
        "monitor_state",
        "monitor_specs",
    ):
        op.drop_table(table)
