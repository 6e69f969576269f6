"""Which process owns something: host, pid and process start time.

Used for staging directories and uploads in progress (``sweep`` removes them only when the
owner is provably gone) and, by the pipeline runner, for RUNNING executions (recovery fails
them only when their runner is provably gone). The process start time guards against a
reused pid being mistaken for the original owner.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass

from loopline.types import Json


def process_stat(pid: int) -> tuple[int, str] | None:
    """``(start ticks since boot, state letter)`` of ``pid`` from Linux ``/proc``, or None.

    The start time tells a process from a later one that reuses its pid; the state tells a
    zombie (``"Z"``: dead, not yet reaped) from a live process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    return int(fields[19]), fields[0].decode()


def process_start_ticks(pid: int) -> int | None:
    """Start time of live ``pid`` in clock ticks since boot, or None (gone, zombie, unknown)."""
    stat = process_stat(pid)
    return None if stat is None or stat[1] == "Z" else stat[0]


@dataclass(frozen=True, slots=True)
class Owner:
    """The process that created a staging directory or started an upload."""

    host: str
    pid: int
    start_ticks: int | None
    created: float

    @classmethod
    def current(cls) -> Owner:
        """The calling process."""
        pid = os.getpid()
        return cls(
            host=socket.gethostname(),
            pid=pid,
            start_ticks=process_start_ticks(pid),
            created=time.time(),
        )

    def as_dict(self) -> dict[str, Json]:
        """The owner as a JSON object (for metadata properties)."""
        return {
            "host": self.host,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: object) -> Owner | None:
        """Parse :meth:`as_dict` output; None if ``data`` is not such an object."""
        if not isinstance(data, dict):
            return None
        return cls.from_json(json.dumps(data).encode())

    def to_json(self) -> bytes:
        """Serialise for an owner marker file."""
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Owner | None:
        """Parse an owner marker; None if it is unreadable (e.g. cut short by a crash)."""
        try:
            data = json.loads(raw)
            start = data["start_ticks"]
            return cls(
                host=str(data["host"]),
                pid=int(data["pid"]),
                start_ticks=None if start is None else int(start),
                created=float(data["created"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def is_dead(self) -> bool:
        """True only when this owner's process has certainly exited.

        An owner on another host is never declared dead here (its liveness is unknowable);
        callers age such leftovers out instead.
        """
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # the pid exists but belongs to another user
        stat = process_stat(self.pid)
        if stat is not None and stat[1] == "Z":
            return True  # killed, not yet reaped: it will never write again
        if self.start_ticks is None:
            return False
        now_ticks = process_start_ticks(self.pid)
        # A different start time means the pid was reused by an unrelated process.
        return now_ticks is not None and now_ticks != self.start_ticks
