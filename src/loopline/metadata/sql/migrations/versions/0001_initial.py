"""Initial metadata schema: artifacts, executions, events, contexts, metrics, model versions.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types: a migration never imports the live schema.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("digest", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("properties", Json, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_index("ix_artifacts_type_state_id", "artifacts", ["type_name", "state", "id"])

    op.create_table(
        "executions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.String(255), nullable=True),
        sa.Column("properties", Json, nullable=False),
        sa.Column("log_uri", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("ended_at", nullable=True),
    )
    op.create_index("ix_executions_cache_key", "executions", ["cache_key"])
    op.create_index("ix_executions_type_state_id", "executions", ["type_name", "state", "id"])

    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "artifact_id",
            Id,
            sa.ForeignKey("artifacts.id", name="fk_events_artifact"),
            nullable=False,
        ),
        sa.Column(
            "execution_id",
            Id,
            sa.ForeignKey("executions.id", name="fk_events_execution"),
            nullable=False,
        ),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("port", sa.String(255), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint(
            "artifact_id", "execution_id", "type", "port", "idx", name="uq_events_edge"
        ),
    )
    op.create_index("ix_events_artifact_id", "events", ["artifact_id", "type", "execution_id"])
    op.create_index("ix_events_execution_id", "events", ["execution_id", "type", "artifact_id"])

    op.create_table(
        "contexts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("type_name", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("properties", Json, nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("type_name", "name", name="uq_contexts_type_name"),
    )

    op.create_table(
        "attributions",
        sa.Column(
            "context_id",
            Id,
            sa.ForeignKey("contexts.id", name="fk_attributions_context"),
            primary_key=True,
        ),
        sa.Column(
            "artifact_id",
            Id,
            sa.ForeignKey("artifacts.id", name="fk_attributions_artifact"),
            primary_key=True,
        ),
    )
    op.create_index("ix_attributions_artifact_id", "attributions", ["artifact_id"])

    op.create_table(
        "associations",
        sa.Column(
            "context_id",
            Id,
            sa.ForeignKey("contexts.id", name="fk_associations_context"),
            primary_key=True,
        ),
        sa.Column(
            "execution_id",
            Id,
            sa.ForeignKey("executions.id", name="fk_associations_execution"),
            primary_key=True,
        ),
    )
    op.create_index("ix_associations_execution_id", "associations", ["execution_id"])

    op.create_table(
        "metrics",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id",
            Id,
            sa.ForeignKey("executions.id", name="fk_metrics_execution"),
            nullable=False,
        ),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        _ts("timestamp"),
    )
    op.create_index("ix_metrics_execution_key", "metrics", ["execution_id", "key", "step"])

    op.create_table(
        "model_versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "artifact_id",
            Id,
            sa.ForeignKey("artifacts.id", name="fk_model_versions_artifact"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    op.create_index("ix_model_versions_artifact_id", "model_versions", ["artifact_id"])

    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "execution_id",
            Id,
            sa.ForeignKey("executions.id", name="fk_model_aliases_execution"),
            nullable=True,
        ),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            name="fk_model_aliases_version",
        ),
    )


def downgrade() -> None:
    for table in (
        "model_aliases",
        "model_versions",
        "metrics",
        "associations",
        "attributions",
        "contexts",
        "events",
        "executions",
        "artifacts",
    ):
        op.drop_table(table)
