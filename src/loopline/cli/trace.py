"""Traces for ``loopline lineage``: from one served prediction, or one alias move, to why.

A :class:`ModelTrace` gathers what the metadata store knows about one registered model
version: the pipeline execution that produced its ``Model`` artifact (with its run and
pipeline contexts, code fingerprint and parameters), the data spans upstream of it, and,
forward, the alias moves to and from the version, the ``Alert`` artifacts that monitors
recorded about it and the ``TriggerRun`` executions that read it (the run that trained it
reads it as ``candidate``) or its alerts (``cause``). A :class:`PredictionTrace` is the
logged request plus the trace of the version that answered it; a :class:`PromotionTrace`
is one alias move, its evidence and what each piece of evidence came from (an alert, a
trigger run's outcome, a blessing).

Everything is read through public APIs (``MetadataStore.lineage``, the registry, the
prediction log search), so the trace is exactly what lineage says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata import (
    Artifact,
    Context,
    Direction,
    EventType,
    Execution,
    LineageGraph,
    MetadataStore,
    ModelVersion,
)
from loopline.registry import AliasMove, ModelRegistry
from loopline.types import Json

if TYPE_CHECKING:
    from loopline.serving import LoggedRequest

# The type names of the loop's records (loopline.monitor.ALERT_TYPE and
# loopline.triggers.TRIGGER_RUN_TYPE, pinned equal to theirs by tests/cli/test_lineage.py):
# importing those packages for two strings would add ~2 s (loopline.triggers pulls in the
# deploy package) to every `loopline lineage`.
ALERT_TYPE = "Alert"
TRIGGER_RUN_TYPE = "TriggerRun"

UPSTREAM_HOPS = 10  # Model ← Trainer ← … ← ExampleGen ← raw spans in a TFX-shaped pipeline
# Model → MonitorWindow → Alert → TriggerRun; Model → TriggerRun (candidate or cause).
FORWARD_HOPS = 3
EVIDENCE_HOPS = 4  # outcome ← TriggerRun ← Alert ← MonitorWindow ← the watched model


@dataclass(frozen=True, slots=True)
class TriggerLink:
    """A ``TriggerRun`` execution linked to a model version: ``role`` is ``candidate`` (the
    run trained this version) or ``cause`` (the version, or one of its alerts, started it)."""

    execution: Execution
    role: str
    via: int  # the artifact the run read: the model or one of its alerts


@dataclass(frozen=True, slots=True)
class ModelTrace:
    version: ModelVersion
    model: Artifact
    producers: tuple[Execution, ...]  # the run that made it first; cached re-runs after
    contexts: tuple[Context, ...]  # of the first producer: pipeline, run
    data: tuple[Artifact, ...]  # upstream artifacts that carry a span
    upstream: LineageGraph
    aliases: tuple[str, ...]  # pointing at this version now
    moves: tuple[AliasMove, ...]  # to or from this version, newest first
    alerts: tuple[Artifact, ...]
    triggers: tuple[TriggerLink, ...]


@dataclass(frozen=True, slots=True)
class PredictionTrace:
    request: LoggedRequest
    log_directory: Path
    model: ModelTrace


@dataclass(frozen=True, slots=True)
class PromotionTrace:
    move: AliasMove
    number: int  # 1 = the alias's first recorded move
    evidence: tuple[tuple[Artifact, LineageGraph], ...]
    model: ModelTrace | None  # the version the alias moved to (None: the alias was removed)


def trace_model(
    metadata: MetadataStore, registry: ModelRegistry, name: str, version: int, *, hops: int
) -> ModelTrace:
    """Everything recorded about ``name`` version ``version``, ``hops`` deep upstream."""
    mv = metadata.get_model_version(name, version)
    model = metadata.get_artifact(mv.artifact_id)
    upstream = metadata.lineage(artifact_id=model.id, direction=Direction.UPSTREAM, hops=hops)
    executions = {e.id: e for e in upstream.executions}
    producers = sorted(
        (
            executions[ev.execution_id]
            for ev in upstream.events
            if ev.type is EventType.OUTPUT and ev.artifact_id == model.id
        ),
        key=lambda e: ("cached_from" in e.properties, e.id),
    )
    contexts = tuple(metadata.contexts_of_execution(producers[0].id)) if producers else ()
    data = tuple(
        a
        for a in upstream.artifacts
        if a.id != model.id and ("span" in a.properties or "spans" in a.properties)
    )
    forward = metadata.lineage(
        artifact_id=model.id, direction=Direction.DOWNSTREAM, hops=FORWARD_HOPS
    )
    runs = {e.id: e for e in forward.executions}
    alerts = tuple(a for a in forward.artifacts if a.type_name == ALERT_TYPE)
    alert_ids = {a.id for a in alerts}
    links: dict[tuple[int, str], TriggerLink] = {}
    for ev in forward.events:
        run = runs.get(ev.execution_id)
        if run is None or run.type_name != TRIGGER_RUN_TYPE or ev.type is not EventType.INPUT:
            continue
        if ev.artifact_id == model.id or ev.artifact_id in alert_ids:
            role = "candidate" if ev.port == "candidate" else "cause"
            links.setdefault((run.id, role), TriggerLink(run, role, ev.artifact_id))
    aliases = tuple(
        sorted(a.alias for a in metadata.list_model_aliases(name) if a.version == version)
    )
    moves = tuple(
        m for m in registry.alias_history(name) if version in (m.from_version, m.to_version)
    )
    return ModelTrace(
        version=mv,
        model=model,
        producers=tuple(producers),
        contexts=contexts,
        data=data,
        upstream=upstream,
        aliases=aliases,
        moves=moves,
        alerts=alerts,
        triggers=tuple(links[k] for k in sorted(links)),
    )


def trace_prediction(
    metadata: MetadataStore,
    registry: ModelRegistry,
    log_directory: Path,
    request_id: str,
    *,
    hops: int = UPSTREAM_HOPS,
) -> PredictionTrace:
    """The logged request ``request_id`` and the trace of the model version that answered.

    Raises:
        NotFoundError: the request is not in the logs (the message names the directory
            searched), or the model version that answered is not registered here.
    """
    from loopline.serving import find_request  # Polars loads only for a prediction trace

    request = find_request(log_directory, request_id)
    try:
        version = int(request.version)
    except ValueError:
        version = 0
    if version < 1:
        raise NotFoundError(
            f"Request {request_id!r} was answered by model {request.model!r} version "
            f"{request.version!r}, which is not a registry version (a model served from a "
            "directory, not from the registry); its lineage is not recorded here."
        )
    try:
        model = trace_model(metadata, registry, request.model, version, hops=hops)
    except NotFoundError as exc:
        raise NotFoundError(
            f"Request {request_id!r} was answered by {request.model}/{version}, which this "
            f"metadata store does not know ({exc}) Point LOOPLINE_DB_URL at the store of the "
            "deployment that served it."
        ) from exc
    return PredictionTrace(request=request, log_directory=log_directory, model=model)


def trace_promotion(
    metadata: MetadataStore,
    registry: ModelRegistry,
    name: str,
    alias: str,
    number: int | None,
    *,
    hops: int = UPSTREAM_HOPS,
) -> PromotionTrace:
    """Move ``number`` (1 = first; None = latest) of ``name@alias``, its evidence and what
    the evidence came from.

    Raises:
        NotFoundError: unknown model, or no such move (the message gives how many there are).
    """
    history = list(reversed(registry.alias_history(name, alias)))  # oldest first
    if not history:
        raise NotFoundError(
            f"{name}@{alias} was never moved; `loopline models get {name}` lists its aliases."
        )
    if number is None:
        number = len(history)
    if not 1 <= number <= len(history):
        raise NotFoundError(
            f"{name}@{alias} has {len(history)} recorded move{'s' if len(history) != 1 else ''} "
            f"(1 … {len(history)}), not {number}; use promotion/{name}/{alias} for the latest."
        )
    move = history[number - 1]
    evidence = tuple(
        (
            artifact,
            metadata.lineage(
                artifact_id=artifact.id, direction=Direction.UPSTREAM, hops=EVIDENCE_HOPS
            ),
        )
        for artifact in metadata.get_artifacts(list(move.evidence))
    )
    model = (
        trace_model(metadata, registry, name, move.to_version, hops=hops)
        if move.to_version is not None
        else None
    )
    return PromotionTrace(move=move, number=number, evidence=evidence, model=model)


def parse_promotion(ref: str) -> tuple[str, str, int | None]:
    """``promotion/<model>/<alias>[/<n>]`` → (model, alias, n or None)."""
    parts = ref.split("/")
    if len(parts) in (3, 4) and parts[0] == "promotion" and all(parts[1:3]):
        if len(parts) == 3:
            return parts[1], parts[2], None
        if parts[3].isdigit() and int(parts[3]) >= 1:
            return parts[1], parts[2], int(parts[3])
    raise InvalidInputError(
        f"Promotion reference {ref!r} is not understood; use promotion/<model>/<alias> (its "
        "latest move) or promotion/<model>/<alias>/<n> (its n-th move, 1 = first)."
    )


# ---- JSON ----------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def artifact_json(a: Artifact) -> dict[str, Json]:
    return {
        "id": a.id,
        "type": a.type_name,
        "name": a.name,
        "uri": a.uri,
        "state": a.state.value,
        "digest": a.digest,
        "properties": dict(a.properties),
        "created_at": _time(a.created_at),
    }


def execution_json(e: Execution) -> dict[str, Json]:
    return {
        "id": e.id,
        "type": e.type_name,
        "name": e.name,
        "state": e.state.value,
        "properties": dict(e.properties),
        "started_at": _time(e.started_at),
        "ended_at": _time(e.ended_at),
    }


def graph_json(graph: LineageGraph) -> dict[str, Json]:
    return {
        "artifacts": [
            {"id": a.id, "type": a.type_name, "name": a.name, "state": a.state.value,
             "digest": a.digest}
            for a in graph.artifacts
        ],
        "executions": [
            {"id": e.id, "type": e.type_name, "name": e.name, "state": e.state.value}
            for e in graph.executions
        ],
        "events": [
            {"artifact_id": ev.artifact_id, "execution_id": ev.execution_id,
             "type": ev.type.value, "port": ev.port}
            for ev in graph.events
        ],
        "hops": dict(graph.hops),
    }


def move_json(m: AliasMove) -> dict[str, Json]:
    return {
        "execution_id": m.execution_id,
        "model": m.model,
        "alias": m.alias,
        "action": m.action.value,
        "from_version": m.from_version,
        "to_version": m.to_version,
        "who": m.who,
        "why": m.why,
        "evidence": list(m.evidence),
        "at": _time(m.at),
    }


def model_json(t: ModelTrace) -> dict[str, Json]:
    producer = t.producers[0] if t.producers else None
    props: Mapping[str, Any] = producer.properties if producer is not None else {}
    return {
        "model": t.version.name,
        "version": t.version.version,
        "artifact": artifact_json(t.model),
        "produced_by": [execution_json(e) for e in t.producers],
        "pipeline_run": next((c.name for c in t.contexts if c.type_name == "run"), None),
        "pipeline": next((c.name for c in t.contexts if c.type_name == "pipeline"), None),
        "code_fingerprint": props.get("code_fingerprint"),
        "parameters": props.get("parameters"),
        "data": [artifact_json(a) for a in t.data],
        "aliases": list(t.aliases),
        "alias_moves": [move_json(m) for m in t.moves],
        "alerts": [artifact_json(a) for a in t.alerts],
        "trigger_runs": [
            {"role": link.role, "via_artifact": link.via, **execution_json(link.execution)}
            for link in t.triggers
        ],
        "upstream": graph_json(t.upstream),
    }


def prediction_json(t: PredictionTrace) -> dict[str, Json]:
    r = t.request
    return {
        "prediction": {
            "request_id": r.request_id,
            "model": r.model,
            "version": r.version,
            "ts": _time(r.ts),
            "rows": r.rows,
            "outputs": [_plain(o) for o in r.outputs],
            "labels": [_plain(v) for v in r.labels],
            "segments": [str(s) for s in r.segments],
        },
        "model_version": model_json(t.model),
    }


def promotion_json(t: PromotionTrace) -> dict[str, Json]:
    return {
        "promotion": {**move_json(t.move), "number": t.number},
        "evidence": [
            {"artifact": artifact_json(a), "upstream": graph_json(g)} for a, g in t.evidence
        ],
        "model_version": None if t.model is None else model_json(t.model),
    }


def _plain(value: Any) -> Json:
    """A logged value as JSON (Polars gives lists, dicts, numbers, strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
