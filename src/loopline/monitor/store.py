"""MonitorStore: applied monitors, and each one's cursor, open-window state, windows and alerts.

One :meth:`MonitorStore.commit` writes, atomically, everything a tick learned: the log segments
it consumed (and the ones that disappeared), the runner's state (open windows, rule states),
the windows it closed and the alert events they caused. ``expected_revision`` makes two
runners of one monitor conflict instead of double-counting.

Alert events are an outbox: committed with their window, then recorded in the metadata store
by the runner, then marked with the artifact id (:meth:`mark_recorded`). Window results are
kept up to ``keep_windows`` per monitor (oldest dropped).

:class:`InMemoryMonitorStore` (tests, embedded use) and
:class:`~loopline.monitor.sql_store.SqlMonitorStore` both pass
``loopline.testing.monitor.MonitorStoreContract``.
"""

from __future__ import annotations

import abc
import builtins
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from loopline.errors import ConflictError, NotFoundError
from loopline.monitor.rules import AlertEvent
from loopline.monitor.spec import MonitorSpec
from loopline.monitor.window_result import WindowResult
from loopline.types import ArtifactId, JsonDict


@dataclass(frozen=True, slots=True)
class StoredMonitor:
    """An applied monitor with its generation (bumped on every change) and creation time."""

    spec: MonitorSpec
    generation: int
    created_at: float


@dataclass(frozen=True, slots=True)
class MonitorState:
    """What a runner needs to resume: ``revision`` 0 means nothing was committed yet."""

    revision: int = 0
    state: JsonDict = field(default_factory=dict)
    blob: bytes | None = None  # Arrow IPC of rows the runner keeps (labels still to join)
    consumed: frozenset[str] = frozenset()  # segment paths relative to the log root
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """One tick's writes."""

    state: JsonDict
    blob: bytes | None = None
    consumed: frozenset[str] = frozenset()  # newly consumed segments
    forgotten: frozenset[str] = frozenset()  # consumed segments that no longer exist
    windows: tuple[WindowResult, ...] = ()
    alerts: tuple[AlertEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert event in the outbox; ``artifact_id`` once recorded in the metadata store."""

    id: int
    event: AlertEvent
    artifact_id: ArtifactId | None
    created_at: float


class MonitorStore(abc.ABC):
    """Monitors by name, and their progress. Each call is atomic."""

    @abc.abstractmethod
    def apply(self, spec: MonitorSpec, now: float) -> tuple[StoredMonitor, str]:
        """Create or replace; returns the stored monitor and ``created``, ``configured`` or
        ``unchanged``."""

    @abc.abstractmethod
    def get(self, name: str) -> StoredMonitor:
        """The monitor. Raises NotFoundError naming the known ones."""

    @abc.abstractmethod
    def list(self) -> list[StoredMonitor]:
        """Every monitor, by name."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Forget the monitor and all its progress (not its Alert artifacts). NotFoundError."""

    @abc.abstractmethod
    def load_state(self, name: str) -> MonitorState:
        """The last committed state (revision 0 when none). NotFoundError for no monitor."""

    @abc.abstractmethod
    def commit(
        self, name: str, expected_revision: int, commit: Commit, now: float, *, keep_windows: int
    ) -> int:
        """Write ``commit`` in one transaction; returns the new revision.

        Raises:
            ConflictError: the state's revision is not ``expected_revision`` (another runner
                committed first); nothing is written.
            NotFoundError: no such monitor.
        """

    @abc.abstractmethod
    def windows(
        self, name: str, *, version: str | None = None, limit: int | None = None
    ) -> builtins.list[WindowResult]:
        """Window results, oldest first; with ``limit``, the newest ``limit`` of them."""

    @abc.abstractmethod
    def alerts(self, name: str, *, pending: bool = False) -> builtins.list[StoredAlert]:
        """Alert events, oldest first; ``pending``: only those not yet recorded."""

    @abc.abstractmethod
    def mark_recorded(self, name: str, alert_id: int, artifact_id: ArtifactId) -> None:
        """Note that outbox entry ``alert_id`` is recorded as artifact ``artifact_id``."""


def missing(name: str, known: Sequence[str]) -> NotFoundError:
    return NotFoundError(
        f"Monitor {name!r} does not exist; known monitors: {sorted(known)}. Apply it with "
        "loopline apply -f FILE."
    )


def conflict(name: str, expected: int, actual: int) -> ConflictError:
    return ConflictError(
        f"Monitor {name!r} state is at revision {actual}, not {expected}: another runner "
        "committed first. Run one runner per monitor; this tick's reads are discarded."
    )


class InMemoryMonitorStore(MonitorStore):
    """Thread-safe dicts (state dies with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, StoredMonitor] = {}
        self._states: dict[str, MonitorState] = {}
        self._windows: dict[str, list[WindowResult]] = {}
        self._alerts: dict[str, list[StoredAlert]] = {}
        self._keys: set[str] = set()
        self._alert_ids = 0

    def _check(self, name: str) -> None:
        if name not in self._specs:
            raise missing(name, list(self._specs))

    def apply(self, spec: MonitorSpec, now: float) -> tuple[StoredMonitor, str]:
        with self._lock:
            current = self._specs.get(spec.name)
            if current is None:
                stored, outcome = StoredMonitor(spec, 1, now), "created"
            elif current.spec == spec:
                return current, "unchanged"
            else:
                stored = StoredMonitor(spec, current.generation + 1, current.created_at)
                outcome = "configured"
            self._specs[spec.name] = stored
            return stored, outcome

    def get(self, name: str) -> StoredMonitor:
        with self._lock:
            self._check(name)
            return self._specs[name]

    def list(self) -> list[StoredMonitor]:
        with self._lock:
            return [self._specs[k] for k in sorted(self._specs)]

    def delete(self, name: str) -> None:
        with self._lock:
            self._check(name)
            del self._specs[name]
            self._states.pop(name, None)
            self._windows.pop(name, None)
            for a in self._alerts.pop(name, []):
                self._keys.discard(a.event.key)

    def load_state(self, name: str) -> MonitorState:
        with self._lock:
            self._check(name)
            return self._states.get(name, MonitorState())

    def commit(
        self, name: str, expected_revision: int, commit: Commit, now: float, *, keep_windows: int
    ) -> int:
        with self._lock:
            self._check(name)
            old = self._states.get(name, MonitorState())
            if old.revision != expected_revision:
                raise conflict(name, expected_revision, old.revision)
            consumed = (old.consumed - commit.forgotten) | commit.consumed
            new = MonitorState(old.revision + 1, dict(commit.state), commit.blob, consumed, now)
            self._states[name] = new
            kept = [*self._windows.get(name, []), *commit.windows]
            self._windows[name] = kept[-keep_windows:] if keep_windows > 0 else []
            for event in commit.alerts:
                if event.key in self._keys:
                    continue
                self._keys.add(event.key)
                self._alert_ids += 1
                self._alerts.setdefault(name, []).append(
                    StoredAlert(self._alert_ids, event, None, now)
                )
            return new.revision

    def windows(
        self, name: str, *, version: str | None = None, limit: int | None = None
    ) -> builtins.list[WindowResult]:
        with self._lock:
            self._check(name)
            found = [w for w in self._windows.get(name, []) if version in (None, w.version)]
            return found[-limit:] if limit is not None else found

    def alerts(self, name: str, *, pending: bool = False) -> builtins.list[StoredAlert]:
        with self._lock:
            self._check(name)
            found = self._alerts.get(name, [])
            return [a for a in found if not pending or a.artifact_id is None]

    def mark_recorded(self, name: str, alert_id: int, artifact_id: ArtifactId) -> None:
        with self._lock:
            self._check(name)
            found = self._alerts.get(name, [])
            for i, a in enumerate(found):
                if a.id == alert_id:
                    found[i] = StoredAlert(a.id, a.event, artifact_id, a.created_at)
                    return
            raise NotFoundError(f"Monitor {name!r} has no alert {alert_id}.")
