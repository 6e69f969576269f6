"""A fake-clock simulator for :func:`loopline.triggers.decide`: events arrive, runs take a
fixed time, the state follows the decisions — no processes, no stores, no wall clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopline.triggers import Cause, Defer, Launch, Skip, TriggerEvent, TriggerSpec, TriggerState
from loopline.triggers import decide as decide_fn


@dataclass
class SimRun:
    id: int
    started: float
    ends: float
    params: dict[str, Any]
    keys: tuple[str, ...]


@dataclass
class TriggerSimulator:
    trigger: TriggerSpec
    run_seconds: float = 60.0
    now: float = 0.0
    runs: list[SimRun] = field(default_factory=list)
    offered: list[TriggerEvent] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)
    others: dict[str, int] = field(default_factory=dict)  # other triggers' runs in flight
    origins: frozenset[str] = frozenset()
    last_ended: float | None = None
    skipped: list[tuple[float, str]] = field(default_factory=list)
    deferred: list[tuple[float, str]] = field(default_factory=list)

    def span(self, n: int) -> None:
        self.offered.append(
            TriggerEvent(
                key=f"span:{n}",
                position=n,
                summary=f"span {n} arrived",
                variables={"span": n},
                cause=Cause("DataSpan"),
                level=True,
            )
        )

    def alert(self, artifact_id: int, metric: str = "trip_miles") -> None:
        self.offered.append(
            TriggerEvent(
                key=f"alert:{artifact_id}",
                position=artifact_id,
                summary=f"alert {artifact_id} fired",
                variables={"alert": {"id": artifact_id, "metric": metric}},
                cause=Cause("Alert", artifact_id=artifact_id),
            )
        )

    def event(self, event: TriggerEvent) -> None:
        self.offered.append(event)

    def active(self) -> dict[str, int]:
        running = [r.id for r in self.runs if r.ends > self.now]
        return {**self.others, **({self.trigger.model: running[-1]} if running else {})}

    def step(self) -> list[Launch | Skip | Defer]:
        state = TriggerState(
            done=dict(self.done),
            active=self.active(),
            last_ended_at=self.last_ended,
            own_origins=self.origins,
        )
        actions = decide_fn(self.trigger, state, self.offered, self.now)
        consumed: set[str] = set()
        for action in actions:
            if isinstance(action, Launch):
                run = SimRun(
                    len(self.runs) + 1,
                    self.now,
                    self.now + self.run_seconds,
                    dict(action.params),
                    action.keys,
                )
                self.runs.append(run)
                for key in action.keys:
                    self.done[key] = run.id
                consumed.update(action.keys)
            elif isinstance(action, Skip):
                self.skipped.append((self.now, action.reason))
                consumed.add(action.event.key)
            else:
                self.deferred.append((self.now, action.reason))
        # level events (files) stay offered; edge events leave once consumed
        self.offered = [e for e in self.offered if e.level or e.key not in consumed]
        return actions

    def advance(self, seconds: float, tick: float = 1.0) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += tick
            for run in self.runs:
                if run.ends <= self.now and (self.last_ended is None or run.ends > self.last_ended):
                    self.last_ended = run.ends
            self.step()
