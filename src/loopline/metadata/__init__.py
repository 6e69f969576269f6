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
- Retention (``retention.py``, ``collection.py``): ``plan_gc`` decides what old runs lose,
  keeping the protected closure; ``collect`` carries a plan out crash-safely (``loopline gc``).
- Imports only ``loopline.errors`` and ``loopline.types``.
"""

from typing import TYPE_CHECKING

from loopline.metadata.collection import collect
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
from loopline.metadata.retention import (
    Collection,
    CollectionResult,
    GcPlan,
    RetentionGraph,
    RetentionPolicy,
    plan_gc,
)
from loopline.metadata.steps import PlannedOutput, StepOutput, StepRecord, StepStart
from loopline.metadata.store import MetadataStore

if TYPE_CHECKING:
    from loopline.metadata.memory import InMemoryMetadataStore
    from loopline.metadata.sql.store import SqlMetadataStore
    from loopline.metadata.urls import open_store

# The SQL backend (SQLAlchemy, and Alembic when a store is opened) is imported on first use,
# so code that only needs the entities — every pipeline step, the CLI's start-up — does not
# pay for it.
_LAZY = {
    "InMemoryMetadataStore": "loopline.metadata.memory",
    "SqlMetadataStore": "loopline.metadata.sql.store",
    "open_store": "loopline.metadata.urls",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.metadata' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "TERMINAL_STATES",
    "Artifact",
    "ArtifactState",
    "Collection",
    "CollectionResult",
    "Context",
    "Direction",
    "Event",
    "EventType",
    "Execution",
    "ExecutionState",
    "GcPlan",
    "InMemoryMetadataStore",
    "LineageGraph",
    "MetadataStore",
    "Metric",
    "ModelAlias",
    "ModelVersion",
    "PlannedOutput",
    "RetentionGraph",
    "RetentionPolicy",
    "SqlMetadataStore",
    "StepOutput",
    "StepRecord",
    "StepStart",
    "collect",
    "open_store",
    "plan_gc",
]
