"""Carrying out a retention plan, crash-safe: mark the rows, remove the bytes, delete the rows.

:func:`collect` finishes every collection an earlier crash cut short, then carries out the
new plan. Each collection goes through the same three steps (``MetadataStore``'s
``begin_collection`` → ``delete_bytes(uri)`` for each URI → ``finish_collection``), and every
step can run again: marked artifacts are DELETED from the first step on, so nothing
half-deleted is ever visible as live, and removing bytes that are gone is not an error.

The bytes are removed through a callable (``ArtifactStore.delete`` in ``loopline gc``), so this
module needs no artifact store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from loopline.metadata.retention import Collection, CollectionResult, GcPlan
from loopline.metadata.store import MetadataStore


def finish(
    metadata: MetadataStore, collection: Collection, delete_bytes: Callable[[str], None]
) -> CollectionResult:
    """Steps 2 and 3 of a marked collection: remove its bytes, then delete its rows.

    A failure to remove bytes propagates and leaves the collection pending (the next
    :func:`collect` retries it); its rows stay DELETED meanwhile.
    """
    for uri in collection.uris:
        delete_bytes(uri)
    return metadata.finish_collection(collection.id)


def resume(metadata: MetadataStore, delete_bytes: Callable[[str], None]) -> list[CollectionResult]:
    """Finish every collection left pending by a crash, oldest first."""
    return [finish(metadata, c, delete_bytes) for c in metadata.pending_collections()]


def collect(
    metadata: MetadataStore,
    plan: GcPlan,
    *,
    delete_bytes: Callable[[str], None],
    now: datetime,
) -> list[CollectionResult]:
    """Resume pending collections, then carry out ``plan`` (unless it is empty).

    Raises:
        ConflictError: an execution outside the plan started using one of its artifacts
            since the plan was made; nothing of the plan was done (plan again).
    """
    results = resume(metadata, delete_bytes)
    if not plan.empty:
        collection = metadata.begin_collection(plan, started_at=now)
        results.append(finish(metadata, collection, delete_bytes))
    return results
