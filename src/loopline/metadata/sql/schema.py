"""The tables of the metadata store (SQLAlchemy 2 declarative). Tables only: no queries here.

Every timestamp is timezone-aware UTC (``UtcDateTime``); properties are JSON objects (JSONB on
PostgreSQL). Changing a table means adding an Alembic migration under ``migrations/versions``
that runs on SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class JsonDocument(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL.

    A decorator rather than ``JSON().with_variant(JSONB(), "postgresql")`` so that the
    PostgreSQL dialect (and asyncio, which it drags in) is imported only when PostgreSQL is
    used: every ``loopline`` command on SQLite starts faster.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


JsonType = JsonDocument()


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers return datetimes
            raise TypeError(f"Expected a datetime from the database, got {value!r}.")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the metadata tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class ArtifactRow(Base):
    __tablename__ = "artifacts"
    __table_args__ = (
        Index("ix_artifacts_type_state_id", "type_name", "state", "id"),
        Index("ix_artifacts_type_id", "type_name", "id"),  # keyset pages by type (0007)
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    type_name: Mapped[str] = mapped_column(String(255))
    uri: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(255))
    digest: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    properties: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ExecutionRow(Base):
    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_type_state_id", "type_name", "state", "id"),
        Index("ix_executions_type_id", "type_name", "id"),  # keyset pages by type (0007)
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    type_name: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    cache_key: Mapped[str | None] = mapped_column(String(255), index=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JsonType)
    log_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        # Leading artifact_id: the artifact-side index of lineage walks (and no duplicate edges).
        UniqueConstraint(
            "artifact_id", "execution_id", "type", "port", "idx", name="uq_events_edge"
        ),
        Index("ix_events_execution_id", "execution_id", "type", "artifact_id"),
        Index("ix_events_artifact_id", "artifact_id", "type", "execution_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", name="fk_events_artifact"))
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("executions.id", name="fk_events_execution")
    )
    type: Mapped[str] = mapped_column(String(16))
    port: Mapped[str] = mapped_column(String(255))
    idx: Mapped[int] = mapped_column("idx", Integer)
    created_at: Mapped[datetime]


class ContextRow(Base):
    __tablename__ = "contexts"
    __table_args__ = (
        UniqueConstraint("type_name", "name", name="uq_contexts_type_name"),
        Index("ix_contexts_type_id", "type_name", "id"),  # runs newest first (0007)
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    type_name: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime]


class AttributionRow(Base):
    """Artifact ∈ context."""

    __tablename__ = "attributions"
    __table_args__ = (Index("ix_attributions_artifact_id", "artifact_id"),)

    context_id: Mapped[int] = mapped_column(
        ForeignKey("contexts.id", name="fk_attributions_context"), primary_key=True
    )
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", name="fk_attributions_artifact"), primary_key=True
    )


class AssociationRow(Base):
    """Execution ∈ context."""

    __tablename__ = "associations"
    __table_args__ = (Index("ix_associations_execution_id", "execution_id"),)

    context_id: Mapped[int] = mapped_column(
        ForeignKey("contexts.id", name="fk_associations_context"), primary_key=True
    )
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("executions.id", name="fk_associations_execution"), primary_key=True
    )


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_execution_key", "execution_id", "key", "step"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    execution_id: Mapped[int] = mapped_column(
        ForeignKey("executions.id", name="fk_metrics_execution")
    )
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[datetime]


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", name="fk_model_versions_artifact"), index=True
    )
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (
        ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            name="fk_model_aliases_version",
        ),
    )

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    execution_id: Mapped[int | None] = mapped_column(
        ForeignKey("executions.id", name="fk_model_aliases_execution")
    )
    updated_at: Mapped[datetime]
