"""What happened: MLMD-style artifacts, executions, events and contexts, with lineage queries.

Key contracts:
- ``MetadataStore`` (``store.py``) is the only interface other packages use; every method is
  one transaction and returns frozen entities (``entities.py``).
- The SQL backend (``sql/``) is the only code that touches SQLAlchemy; migrations are Alembic.
- ``open_store(url)`` (``urls.py``) picks the backend by scheme (``sqlite``, ``postgresql``)
  and migrates the schema to head; ``InMemoryMetadataStore()`` is the SQL store on
  in-memory SQLite, for tests.
- Conventions: artifact type names are TFX's, capitalised (``Examples``, ``Model``,
  ``ModelBlessing``…); a ModelBlessing has properties ``blessed`` (1/0),
  ``current_model_id`` and ``baseline_model_id``. See docs/metadata.md.
- Imports only ``loopline.errors`` and ``loopline.types``.
"""

from loopline.metadata.entities import (
    TERMINAL_STATES,
    Artifact,
    ArtifactState,
    Context,
    Direction,
    Event,
    EventType,
    Execution,
    ExecutionState,
    LineageGraph,
    Metric,
    ModelAlias,
    ModelVersion,
)
from loopline.metadata.memory import InMemoryMetadataStore
from loopline.metadata.sql.store import SqlMetadataStore
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store

__all__ = [
    "TERMINAL_STATES",
    "Artifact",
    "ArtifactState",
    "Context",
    "Direction",
    "Event",
    "EventType",
    "Execution",
    "ExecutionState",
    "InMemoryMetadataStore",
    "LineageGraph",
    "MetadataStore",
    "Metric",
    "ModelAlias",
    "ModelVersion",
    "SqlMetadataStore",
    "open_store",
]
