"""ModelLineage: where a monitored model version came from, in one line of a status or report.

The walk is the reference's (:mod:`loopline.monitor.reference`) cut short: from the registry's
model artifact up to the execution that produced it, its pipeline ``run`` context, and its
``examples`` input with the data spans ExampleGen recorded on it::

    Model ◄─out── Trainer ──in─► Examples {spans, rows}      Trainer ∈ run context

A model registered by hand (no producing execution) still has a lineage: its version, artifact
and registration time, with ``run`` and ``spans`` empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopline.metadata import Direction, EventType, MetadataStore
from loopline.registry import ModelRegistry
from loopline.types import Json, JsonDict


@dataclass(frozen=True, slots=True)
class ModelLineage:
    """One model version's origin: artifact, pipeline run and the data spans it was trained on."""

    model: str
    version: str
    artifact_id: int
    digest: str | None
    created_at: float  # epoch seconds the model artifact was written
    run: str | None = None  # the pipeline run context's name
    pipeline: str | None = None
    producer: str | None = None  # the producing execution's type (Trainer, …)
    spans: tuple[int, ...] = ()
    rows: int | None = None  # training rows over every split of those spans

    def to_dict(self) -> JsonDict:
        return {
            "model": self.model,
            "version": self.version,
            "artifact_id": self.artifact_id,
            "digest": self.digest,
            "created_at": self.created_at,
            "run": self.run,
            "pipeline": self.pipeline,
            "producer": self.producer,
            "spans": list[Json](self.spans),
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, d: Any) -> ModelLineage:
        return cls(
            model=d["model"],
            version=d["version"],
            artifact_id=d["artifact_id"],
            digest=d["digest"],
            created_at=d["created_at"],
            run=d["run"],
            pipeline=d["pipeline"],
            producer=d["producer"],
            spans=tuple(d["spans"]),
            rows=d["rows"],
        )


def model_lineage(
    metadata: MetadataStore, registry: ModelRegistry, model: str, version: str
) -> ModelLineage:
    """The lineage summary of ``model`` version ``version``.

    Raises:
        NotFoundError: the version is not registered (the message lists the known ones).
    """
    art = registry.resolve(f"{model}/{version}").artifact
    graph = metadata.lineage(artifact_id=art.id, direction=Direction.UPSTREAM, hops=2)
    producers = {
        e.execution_id
        for e in graph.events
        if e.artifact_id == art.id and e.type is EventType.OUTPUT
    }
    found = [x for x in graph.executions if x.id in producers]
    base = ModelLineage(model, version, art.id, art.digest, art.created_at.timestamp())
    if not found:
        return base
    producer = max(found, key=lambda x: x.id)
    runs = [c for c in metadata.contexts_of_execution(producer.id) if c.type_name == "run"]
    run = runs[0] if runs else None
    inputs = {
        e.artifact_id
        for e in graph.events
        if e.execution_id == producer.id and e.type is EventType.INPUT and e.port == "examples"
    }
    examples = [a for a in graph.artifacts if a.id in inputs]
    spans: tuple[int, ...] = ()
    rows: int | None = None
    if examples:
        props = max(examples, key=lambda a: a.id).properties
        raw = props.get("spans")
        if isinstance(raw, list):
            spans = tuple(s for s in raw if isinstance(s, int) and not isinstance(s, bool))
        counts = props.get("rows")
        if isinstance(counts, dict):
            rows = sum(v for v in counts.values() if isinstance(v, int))
    pipeline = run.properties.get("pipeline") if run is not None else None
    return ModelLineage(
        model,
        version,
        art.id,
        art.digest,
        art.created_at.timestamp(),
        run=run.name if run is not None else None,
        pipeline=pipeline if isinstance(pipeline, str) else None,
        producer=producer.type_name,
        spans=spans,
        rows=rows,
    )
