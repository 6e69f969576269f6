"""Which process owns a running execution: pid plus the kernel's process start time.

A pid alone can be reused after a crash; (pid, start time) cannot, so recovery never
mistakes an unrelated process for a live runner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from loopline.types import Json


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``), or None if the
    process does not exist. On systems without ``/proc`` returns 0 for a live pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return _alive_without_proc(pid)
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[19])  # field 22 overall: starttime


def _alive_without_proc(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0


@dataclass(frozen=True, slots=True)
class Owner:
    """A process identity that survives pid reuse."""

    pid: int
    start: int

    @classmethod
    def current(cls) -> Owner:
        """The identity of this process."""
        pid = os.getpid()
        return cls(pid, process_start_time(pid) or 0)

    def is_alive(self) -> bool:
        """True if the same process (same pid and start time) still runs."""
        start = process_start_time(self.pid)
        return start is not None and start == self.start

    def to_json(self) -> dict[str, Json]:
        return {"pid": self.pid, "start": self.start}

    @classmethod
    def from_json(cls, value: object) -> Owner | None:
        """Parse what :meth:`to_json` wrote; None if it is not such a value."""
        if isinstance(value, dict) and isinstance(value.get("pid"), int):
            start = value.get("start")
            return cls(value["pid"], start if isinstance(start, int) else 0)
        return None
