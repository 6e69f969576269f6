"""Where triggers' events come from: the clock, span files, Alert artifacts, registry moves.

:func:`observe` reads one trigger's source from its cursor (``now`` is a parameter) and
returns the events and how far it read. On the first observation (cursor None) a source only
sets its baseline, so applying a Trigger never fires on the past: the spans already on disk,
the alerts and registry moves already recorded, and cron ticks before now are not events.

- ``schedule``: cron ticks after the cursor up to ``now`` (several missed ticks — the control
  plane was down — become one event, the latest);
- ``newSpan``: each span above the baseline (level-triggered: de-duplication, not the cursor,
  says which spans were trained);
- ``alert``/``decay``: firing, published (LIVE) ``Alert`` artifacts newer than the cursor (an
  artifact id) that match the trigger (``loopline.triggers.spec.AlertSource.matches``);
- ``registry``: ``ModelRegistration`` / ``AliasMove`` executions of the model newer than the
  cursor (an execution id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact, ArtifactState, Execution
from loopline.metadata.store import MetadataStore
from loopline.registry import ALIAS_MOVE_TYPE, MODEL_CONTEXT_TYPE, REGISTRATION_TYPE
from loopline.triggers.decide import Cause, TriggerEvent
from loopline.triggers.spec import (
    ALERT_FIELDS,
    AlertSource,
    NewSpan,
    RegistryEventKind,
    RegistrySource,
    Schedule,
    TriggerSpec,
)
from loopline.types import Json

DATA_SPAN_TYPE = "DataSpan"
SCHEDULE_TICK_TYPE = "ScheduleTick"


@dataclass(frozen=True, slots=True)
class Observation:
    """The events a source offers and the position it read to (the next cursor if every
    event is consumed)."""

    events: tuple[TriggerEvent, ...]
    scanned_to: float


def observe(trigger: TriggerSpec, cursor: Json, metadata: MetadataStore, now: float) -> Observation:
    """Read ``trigger``'s source after ``cursor``."""
    on = trigger.on
    position = None if cursor is None or isinstance(cursor, bool) else cursor
    if position is not None and not isinstance(position, int | float):
        position = None  # a cursor this version cannot read: start again from a baseline
    if isinstance(on, Schedule):
        return _schedule(trigger, on, position, now)
    if isinstance(on, NewSpan):
        return _spans(on, position)
    if isinstance(on, AlertSource):
        return _alerts(trigger, on, position, metadata)
    return _registry(on, position, metadata)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _schedule(trigger: TriggerSpec, on: Schedule, cursor: float | None, now: float) -> Observation:
    if cursor is None:
        return Observation((), now)
    from croniter import croniter

    ticks = croniter(on.cron, datetime.fromtimestamp(cursor, UTC))
    latest: float | None = None
    missed = 0
    while True:
        tick = float(ticks.get_next(float))
        if tick > now:
            break
        if latest is not None:
            missed += 1
        latest = tick
        if missed > 100_000:  # a cursor years old: the latest tick is all that matters
            break
    if latest is None:
        return Observation((), cursor)
    summary = f"cron tick {iso(latest)} ({on.cron})"
    if missed:
        summary += f", {missed} earlier tick(s) missed"
    event = TriggerEvent(
        key=f"schedule:{iso(latest)}",
        position=latest,
        summary=summary,
        variables={"tick": iso(latest)},
        cause=Cause(
            SCHEDULE_TICK_TYPE,
            uri=f"trigger://{trigger.name}/ticks/{iso(latest)}",
            properties={"trigger": trigger.name, "cron": on.cron, "tick": iso(latest)},
        ),
    )
    return Observation((event,), latest)


def _spans(on: NewSpan, cursor: float | None) -> Observation:
    from loopline.components import discover

    try:
        spans = discover(on.input_dir, on.pattern)
    except (NotFoundError, InvalidInputError):
        spans = []
    if cursor is None:
        return Observation((), max((s.span for s in spans), default=-1))
    events = tuple(
        TriggerEvent(
            key=f"span:{s.span}",
            position=s.span,
            summary=f"span {s.span} arrived",
            variables={"span": s.span},
            cause=Cause(
                DATA_SPAN_TYPE,
                uri=str(on.input_dir),
                properties={
                    "input_dir": on.input_dir,
                    "pattern": on.pattern,
                    "span": s.span,
                    "version": s.version,
                    "files": list(s.files),
                },
            ),
            level=True,
        )
        for s in spans
        if s.span > cursor
    )
    return Observation(events, cursor)


def _newer_artifacts(metadata: MetadataStore, type_name: str, after: float) -> list[Artifact]:
    """Artifacts of ``type_name`` with an id above ``after``, oldest first."""
    limit = 64
    while True:
        found = metadata.list_artifacts(type_name=type_name, limit=limit, newest_first=True)
        newer = [a for a in found if a.id > after]
        if len(found) < limit or len(newer) < len(found):
            return sorted(newer, key=lambda a: a.id)
        limit *= 4


def _alerts(
    trigger: TriggerSpec, on: AlertSource, cursor: float | None, metadata: MetadataStore
) -> Observation:
    from loopline.monitor import ALERT_TYPE  # here: the monitor's imports cost ~1.5 s

    if cursor is None:
        newest = metadata.list_artifacts(type_name=ALERT_TYPE, limit=1, newest_first=True)
        return Observation((), newest[0].id if newest else 0)
    found = _newer_artifacts(metadata, ALERT_TYPE, cursor)
    # An alert is recorded PENDING and published LIVE with its MonitorWindow execution: the
    # cursor stops before the oldest one still pending, so it is read again once published.
    pending = [a.id for a in found if a.state is ArtifactState.PENDING]
    scanned = max((a.id for a in found), default=cursor)
    if pending:
        scanned = max(cursor, min(pending) - 1)
    events = []
    for a in found:
        if a.state is not ArtifactState.LIVE or not on.matches(a.properties, trigger.model):
            continue
        p = a.properties
        alert: dict[str, Json] = {f: p.get(f) for f in ALERT_FIELDS if f != "id"}
        alert["id"] = a.id
        events.append(
            TriggerEvent(
                key=f"alert:{a.id}",
                position=a.id,
                summary=f"alert {a.id} ({p.get('rule')} on {p.get('metric')} = "
                f"{_short(p.get('value'))}, {p.get('model')} version {p.get('version')}) fired",
                variables={"alert": alert},
                cause=Cause(ALERT_TYPE, artifact_id=a.id),
            )
        )
    return Observation(tuple(events), scanned)


def _registry(on: RegistrySource, cursor: float | None, metadata: MetadataStore) -> Observation:
    context = metadata.find_context(MODEL_CONTEXT_TYPE, on.model)
    moves = on.event is RegistryEventKind.ALIAS_MOVED
    found: list[Execution] = []
    if context is not None:
        found = metadata.list_executions(
            type_name=ALIAS_MOVE_TYPE if moves else REGISTRATION_TYPE,
            context_id=context.id,
            newest_first=True,
        )
    if cursor is None:
        return Observation((), found[0].id if found else 0)
    events = []
    newer = sorted((e for e in found if e.id > cursor), key=lambda e: e.id)
    for e in newer:
        p = e.properties
        if moves and (
            p.get("alias") != on.alias or p.get("action") == "unset" or e.state.value != "complete"
        ):
            continue
        version = p.get("to_version") if moves else p.get("version")
        if not isinstance(version, int):
            continue
        artifact = metadata.get_model_version(on.model, version).artifact_id
        what = (
            f"{on.model}@{on.alias} moved to version {version}"
            if moves
            else (f"{on.model} version {version} registered")
        )
        events.append(
            TriggerEvent(
                key=f"registry:{e.id}",
                position=e.id,
                summary=what,
                variables={
                    "event": {
                        "kind": on.event.value,
                        "model": on.model,
                        "version": version,
                        "alias": on.alias,
                        "execution": e.id,
                    }
                },
                cause=Cause("Model", artifact_id=artifact),
                origin=str(p.get("who") or ""),
            )
        )
    return Observation(tuple(events), max((e.id for e in newer), default=cursor))


def _short(value: Json) -> str:
    """An alert's value as people read it: 4 significant digits for a float."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
