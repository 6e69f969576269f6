"""The controllers' lease: which control plane runs the controllers of this database.

Revision ID: 0006
Revises: 0005

Mapped in ``loopline.deploy.sql_lease``. One row per lease (``controllers`` is the one the
control plane takes), seeded free, so taking or renewing it is one conditional ``UPDATE``
on every database (no insert race).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    leases = op.create_table(
        "controller_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("renewed_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.bulk_insert(
        leases,
        [{"name": "controllers", "holder": "", "description": "", "acquired_at": 0.0,
          "renewed_at": 0.0, "expires_at": 0.0}],
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("controller_leases")
