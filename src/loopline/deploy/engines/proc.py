"""CPU time of process sessions from Linux ``/proc`` (the local engine's metrics server).

Every replica runs in its own session (``setsid``), so the CPU of a replica and all of its
worker processes is the sum over the processes whose session id is the replica's pid. One
scan of ``/proc`` answers for every replica at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(sessions: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds consumed so far by the live processes of each session.

    Sessions with no live process are absent. Processes that exit between two scans take
    their CPU with them (the caller sees a drop and must not count it as negative use).
    """
    wanted = set(sessions)
    totals: dict[int, float] = {}
    if not wanted:
        return totals
    try:
        entries = os.listdir("/proc")
    except OSError:
        return totals
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) may hold spaces and ')': split after the last ')'.
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) < 13:
            continue
        session = int(fields[3])  # field 6
        if session not in wanted:
            continue
        ticks = int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
        totals[session] = totals.get(session, 0.0) + ticks / _TICKS
    return totals
