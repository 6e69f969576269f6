"""AnalysisTemplates of progressive deployments.

Revision ID: 0003
Revises: 0002

Mapped in ``loopline.deploy.template_store``; the template is a JSON document next to its
name, so adding a field needs no migration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_analysis_templates",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deploy_analysis_templates")
