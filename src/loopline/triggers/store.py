"""Where Triggers and their runs live: the contract, and an in-memory implementation.

:class:`TriggerStore` keeps applied Triggers (with a generation and their source's cursor)
and every :class:`~loopline.triggers.run.TriggerRun`. Two guarantees make "never launched
twice" hold across restarts: :meth:`TriggerStore.create_run` reserves the run's keys and
checks that its model has no run in flight in one atomic step, and
:meth:`TriggerStore.update_run` is a compare-and-set on the run's state.

:class:`InMemoryTriggerStore` (tests, embedded use) and
:class:`~loopline.triggers.sql_store.SqlTriggerStore` (the metadata database) both pass
``tests/triggers/test_store.py``.
"""

from __future__ import annotations

import abc
import builtins
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from loopline.errors import ConflictError, NotFoundError
from loopline.triggers.run import ACTIVE_STATES, RunChange, RunState, TriggerRun, check_transition
from loopline.triggers.spec import TriggerSpec
from loopline.types import Json


@dataclass(frozen=True, slots=True)
class StoredTrigger:
    """A Trigger with its generation (bumped on every change), creation time and the cursor
    of its event source (None until the source was first observed)."""

    spec: TriggerSpec
    generation: int
    created_at: float
    cursor: Json = None


class TriggerStore(abc.ABC):
    """Triggers by name and their runs. Each call is atomic."""

    @abc.abstractmethod
    def apply(self, spec: TriggerSpec, now: float) -> tuple[StoredTrigger, str]:
        """Create or replace; returns the stored trigger and ``created``, ``configured`` or
        ``unchanged``. A change of ``spec.on`` resets the cursor."""

    @abc.abstractmethod
    def get(self, name: str) -> StoredTrigger:
        """The trigger. Raises NotFoundError naming the known ones."""

    @abc.abstractmethod
    def list(self) -> list[StoredTrigger]:
        """Every trigger, by name."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Forget the trigger (its runs stay, as history). Raises NotFoundError."""

    @abc.abstractmethod
    def set_cursor(self, name: str, cursor: Json) -> None:
        """Record how far the trigger's source has been read. Raises NotFoundError."""

    @abc.abstractmethod
    def create_run(
        self,
        *,
        trigger: str,
        model: str,
        keys: Sequence[str],
        params: Mapping[str, Json],
        cause: Mapping[str, Json],
        detail: Mapping[str, Json],
        now: float,
    ) -> TriggerRun:
        """A new ``pending`` run whose key is ``keys[0]``.

        Raises:
            ConflictError: one of ``keys`` was consumed by an earlier run of ``trigger``, or
                ``model`` has a run in flight (the message names that run).
        """

    @abc.abstractmethod
    def update_run(
        self, run_id: int, expect: RunState, change: RunChange, now: float
    ) -> TriggerRun:
        """Apply ``change`` if the run is still in state ``expect``.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is in another state, or the transition is not allowed.
        """

    @abc.abstractmethod
    def get_run(self, run_id: int) -> TriggerRun:
        """One run. Raises NotFoundError."""

    @abc.abstractmethod
    def list_runs(
        self, *, trigger: str | None = None, active: bool = False, limit: int | None = None
    ) -> builtins.list[TriggerRun]:
        """Runs, newest first; of one trigger, only those in flight, at most ``limit``."""

    @abc.abstractmethod
    def used_keys(self, trigger: str) -> dict[str, int]:
        """Every key an earlier run of ``trigger`` consumed → that run's id."""


def missing_trigger(name: str, known: list[str]) -> NotFoundError:
    return NotFoundError(
        f"Trigger {name!r} does not exist; known triggers: {known}. Apply it with "
        "loopline apply -f FILE."
    )


def missing_run(run_id: int) -> NotFoundError:
    return NotFoundError(
        f"Trigger run {run_id} does not exist; list runs with: loopline triggers history NAME"
    )


def key_taken(trigger: str, key: str, run_id: int) -> ConflictError:
    return ConflictError(f"Trigger {trigger!r}: {key} was already consumed by run {run_id}.")


def model_busy(model: str, run: int) -> ConflictError:
    return ConflictError(
        f"Model {model!r} has trigger run {run} in flight; one run per model at a time."
    )


def changed(run: TriggerRun, change: RunChange, now: float) -> TriggerRun:
    """``run`` with ``change`` applied (the transition checked)."""
    if change.state is not None:
        check_transition(run.id, run.state, change.state)
    return replace(
        run,
        state=change.state if change.state is not None else run.state,
        message=change.message if change.message is not None else run.message,
        execution_id=change.execution_id if change.execution_id is not None else run.execution_id,
        ended_at=change.ended_at if change.ended_at is not None else run.ended_at,
        process={**run.process, **(change.process or {})},
        detail={**run.detail, **(change.detail or {})},
        updated_at=now,
    )


def check_expected(run: TriggerRun, expect: RunState) -> None:
    if run.state != expect:
        raise ConflictError(
            f"Trigger run {run.id} is {run.state.value}, not {expect.value}; someone else "
            "moved it on."
        )


class InMemoryTriggerStore(TriggerStore):
    """A thread-safe dict (state dies with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._triggers: dict[str, StoredTrigger] = {}
        self._runs: dict[int, TriggerRun] = {}
        self._keys: dict[tuple[str, str], int] = {}

    def apply(self, spec: TriggerSpec, now: float) -> tuple[StoredTrigger, str]:
        with self._lock:
            current = self._triggers.get(spec.name)
            if current is None:
                stored, outcome = StoredTrigger(spec, 1, now), "created"
            elif current.spec == spec:
                return current, "unchanged"
            else:
                cursor = current.cursor if current.spec.on == spec.on else None
                stored = StoredTrigger(spec, current.generation + 1, current.created_at, cursor)
                outcome = "configured"
            self._triggers[spec.name] = stored
            return stored, outcome

    def get(self, name: str) -> StoredTrigger:
        with self._lock:
            if name not in self._triggers:
                raise missing_trigger(name, sorted(self._triggers))
            return self._triggers[name]

    def list(self) -> list[StoredTrigger]:
        with self._lock:
            return [self._triggers[k] for k in sorted(self._triggers)]

    def delete(self, name: str) -> None:
        with self._lock:
            if name not in self._triggers:
                raise missing_trigger(name, sorted(self._triggers))
            del self._triggers[name]

    def set_cursor(self, name: str, cursor: Json) -> None:
        with self._lock:
            if name not in self._triggers:
                raise missing_trigger(name, sorted(self._triggers))
            self._triggers[name] = replace(self._triggers[name], cursor=cursor)

    def create_run(
        self,
        *,
        trigger: str,
        model: str,
        keys: Sequence[str],
        params: Mapping[str, Json],
        cause: Mapping[str, Json],
        detail: Mapping[str, Json],
        now: float,
    ) -> TriggerRun:
        with self._lock:
            for key in keys:
                if (trigger, key) in self._keys:
                    raise key_taken(trigger, key, self._keys[(trigger, key)])
            for run in self._runs.values():
                if run.model == model and run.state in ACTIVE_STATES:
                    raise model_busy(model, run.id)
            run_id = max(self._runs, default=0) + 1
            run = TriggerRun(
                id=run_id,
                trigger=trigger,
                model=model,
                key=keys[0],
                keys=tuple(keys),
                state=RunState.PENDING,
                params=dict(params),
                cause=dict(cause),
                created_at=now,
                updated_at=now,
                detail=dict(detail),
            )
            self._runs[run_id] = run
            for key in keys:
                self._keys[(trigger, key)] = run_id
            return run

    def update_run(
        self, run_id: int, expect: RunState, change: RunChange, now: float
    ) -> TriggerRun:
        with self._lock:
            if run_id not in self._runs:
                raise missing_run(run_id)
            run = self._runs[run_id]
            check_expected(run, expect)
            self._runs[run_id] = new = changed(run, change, now)
            return new

    def get_run(self, run_id: int) -> TriggerRun:
        with self._lock:
            if run_id not in self._runs:
                raise missing_run(run_id)
            return self._runs[run_id]

    def list_runs(
        self, *, trigger: str | None = None, active: bool = False, limit: int | None = None
    ) -> builtins.list[TriggerRun]:
        with self._lock:
            runs = [
                r
                for r in sorted(self._runs.values(), key=lambda r: -r.id)
                if (trigger is None or r.trigger == trigger)
                and (not active or r.state in ACTIVE_STATES)
            ]
        return runs if limit is None else runs[:limit]

    def used_keys(self, trigger: str) -> dict[str, int]:
        with self._lock:
            return {k: run for (t, k), run in self._keys.items() if t == trigger}
