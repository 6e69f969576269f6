"""The pure decision: given what happened, does a trigger start a run now?

:func:`decide` takes the trigger, its state (the keys earlier runs consumed, the models with a
run in flight, when its last run ended), the events its source observed and ``now``; it
returns one action per event — no I/O, no clock — so a fake-clock simulator drives it in tests
(``tests/triggers/test_decide.py``):

- **de-duplication**: an event whose key an earlier run consumed is skipped ("span 42 already
  trained by run 7"); keys are the span, the alert's artifact id, the registry execution, the
  cron tick;
- **one run per model at a time**: while any run for the model is in flight, every new event
  is deferred (it comes back on the next observation);
- **cooldown**: no run until ``cooldown`` after the trigger's last run ended; level events
  (a span that exists) wait for the end of the cooldown, edge events (an alert, a registry
  move, a cron tick) are suppressed;
- **coalescing**: the events that may fire together start one run, whose parameters are
  rendered from the newest event (plus ``spans``/``alerts``: every coalesced one);
- **no self-triggering**: a registry event caused by this trigger's own runs is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loopline.errors import InvalidInputError
from loopline.triggers.spec import OnKind, TriggerSpec
from loopline.triggers.template import render
from loopline.types import ArtifactId, Json, JsonDict


@dataclass(frozen=True, slots=True)
class Cause:
    """What a run's lineage starts from: an existing artifact (an Alert, a model version's
    Model) or one to record when the run starts (a data span, a cron tick)."""

    type_name: str
    artifact_id: ArtifactId | None = None
    uri: str = "trigger://"
    properties: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """Something a trigger's source observed.

    Args:
        key: the de-duplication key (``span:42``, ``alert:17``).
        position: where it sits in its source (a span, an artifact or execution id, a tick's
            epoch seconds); events are handled oldest first.
        summary: a sentence for the history ("span 42 arrived").
        variables: what the parameter template may use (``span``, ``alert``, …).
        cause: the lineage input of the run it starts.
        level: True when the event persists (a span's files): deferred rather than suppressed.
        origin: who caused it (a registry move's ``who``), for the self-trigger guard.
    """

    key: str
    position: float
    summary: str
    variables: Mapping[str, Json]
    cause: Cause
    level: bool = False
    origin: str = ""


@dataclass(frozen=True, slots=True)
class TriggerState:
    """What :func:`decide` needs to know about earlier runs."""

    done: Mapping[str, int] = field(default_factory=dict)  # key -> run id that consumed it
    active: Mapping[str, int] = field(default_factory=dict)  # model -> run id in flight
    last_ended_at: float | None = None
    own_origins: frozenset[str] = frozenset()  # prefixes of the `who` of its own moves


@dataclass(frozen=True, slots=True)
class Launch:
    """Start one run for ``events`` (the newest first) with the rendered ``params``."""

    events: tuple[TriggerEvent, ...]
    params: Mapping[str, Json]
    keys: tuple[str, ...]
    reason: str

    @property
    def event(self) -> TriggerEvent:
        return self.events[0]


@dataclass(frozen=True, slots=True)
class Skip:
    """The event is consumed without a run."""

    event: TriggerEvent
    reason: str


@dataclass(frozen=True, slots=True)
class Defer:
    """Not now; the source offers the event again (no earlier than ``until`` when known)."""

    event: TriggerEvent
    reason: str
    until: float | None = None


Action = Launch | Skip | Defer


def decide(
    trigger: TriggerSpec, state: TriggerState, events: Sequence[TriggerEvent], now: float
) -> list[Action]:
    """The actions for ``events`` at ``now`` (see the module docstring for the rules)."""
    actions: list[Action] = []
    fresh: list[TriggerEvent] = []
    for event in sorted(events, key=lambda e: e.position):
        if event.key in state.done:
            actions.append(
                Skip(
                    event,
                    f"{_what(event)} already {_done_word(trigger)} by run {state.done[event.key]}",
                )
            )
        elif event.origin and any(event.origin.startswith(o) for o in state.own_origins):
            actions.append(Skip(event, f"{event.summary}: caused by this trigger's own run"))
        else:
            fresh.append(event)
    if not fresh:
        return actions
    busy = state.active.get(trigger.model)
    if busy is not None:
        reason = f"run {busy} for model {trigger.model!r} is in flight (one run per model)"
        return actions + [Defer(e, reason) for e in fresh]
    if state.last_ended_at is not None and now < state.last_ended_at + trigger.cooldown:
        until = state.last_ended_at + trigger.cooldown
        reason = f"in cooldown until {_iso(until)} (the last run ended {_iso(state.last_ended_at)})"
        level = [e for e in fresh if e.level]
        fresh = [e for e in fresh if not e.level]
        actions += [Defer(e, reason, until) for e in level]
        return actions + [Skip(e, f"{e.summary}: suppressed, {reason}") for e in fresh]
    newest_first = tuple(reversed(fresh))
    variables = _variables(trigger, newest_first, now)
    try:
        params = {k: render(v, variables) for k, v in trigger.run.params.items()}
    except InvalidInputError as exc:
        return actions + [
            Skip(e, f"{e.summary}: the parameters cannot be rendered: {exc}") for e in fresh
        ]
    keys = tuple(dict.fromkeys(e.key for e in newest_first))
    reason = newest_first[0].summary
    if len(newest_first) > 1:
        reason += f" (with {len(newest_first) - 1} earlier event(s))"
    return [*actions, Launch(newest_first, params, keys, reason)]


def consumed_up_to(scanned_to: float, actions: Sequence[Action]) -> float:
    """The source position a trigger's cursor may move to: everything scanned, except that a
    deferred event must be offered again."""
    deferred = [a.event.position for a in actions if isinstance(a, Defer)]
    return min([scanned_to, *(p - 1 for p in deferred)])


def _variables(
    trigger: TriggerSpec, events: tuple[TriggerEvent, ...], now: float
) -> dict[str, Json]:
    """The template's variables: the newest event's, the common ones, and the lists over
    every coalesced event."""
    when = datetime.fromtimestamp(now, UTC)
    out: dict[str, Json] = {
        "trigger": trigger.name,
        "model": trigger.model,
        "time": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "date": when.date().isoformat(),
    }
    out.update(events[0].variables)
    if trigger.kind is OnKind.NEW_SPAN:
        spans = sorted({_int(e.variables.get("span")) for e in events})
        out["spans"] = list[Json](spans)
        out["first_span"] = spans[0]
    if trigger.kind in (OnKind.ALERT, OnKind.DECAY):
        out["alerts"] = list[Json](sorted(_int(_alert(e).get("id")) for e in events))
    return out


def _alert(event: TriggerEvent) -> JsonDict:
    alert = event.variables.get("alert")
    return alert if isinstance(alert, dict) else {}


def _int(value: Json) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _what(event: TriggerEvent) -> str:
    kind, _, rest = event.key.partition(":")
    return f"{kind} {rest}" if rest else event.key


def _done_word(trigger: TriggerSpec) -> str:
    return "trained" if trigger.kind is OnKind.NEW_SPAN else "handled"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
