"""Deployment state of the control plane: deployments, revisions, replicas.

Revision ID: 0002
Revises: 0001

The tables are mapped in ``loopline.deploy.sql_state``; ``tests/deploy`` checks that the
mapping matches what this migration creates, on SQLite and PostgreSQL. Entities are JSON
documents next to their keys, so adding a field to one needs no migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_deployments",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("router", sa.JSON(), nullable=True),
    )
    op.create_table(
        "deploy_revisions",
        sa.Column("deployment", sa.String(128), primary_key=True),
        sa.Column("hash", sa.String(32), primary_key=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_table(
        "deploy_replicas",
        sa.Column("deployment", sa.String(128), primary_key=True),
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    for table in ("deploy_replicas", "deploy_revisions", "deploy_deployments"):
        op.drop_table(table)
