"""What happened: MLMD-style artifacts, executions, events and contexts, with lineage queries.

Key contracts:
- ``MetadataStore`` (``store.py``) is the only interface other packages use; every method is
  one transaction and returns frozen entities (``entities.py``).
- The SQL backend (``sql/``) is the only code that touches SQLAlchemy; migrations are Alembic.
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
from loopline.metadata.store import MetadataStore

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
    "LineageGraph",
    "MetadataStore",
    "Metric",
    "ModelAlias",
    "ModelVersion",
]
