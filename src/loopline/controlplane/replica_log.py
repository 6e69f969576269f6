"""Reading a replica's log file for the API: its last lines, never more than 4 MiB."""

from __future__ import annotations

from pathlib import Path

MAX_LOG_BYTES = 4 * 1024 * 1024


def tail_lines(path: Path, lines: int | None) -> str:
    """The last ``lines`` lines of ``path`` (all of it when None), read from the end and
    never more than :data:`MAX_LOG_BYTES`; undecodable bytes are replaced."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if lines is None:
            f.seek(max(0, size - MAX_LOG_BYTES))
            return f.read().decode(errors="replace")
        if lines <= 0:
            return ""
        block, data, pos = 64 * 1024, b"", size
        while pos > 0 and data.count(b"\n") <= lines and len(data) < MAX_LOG_BYTES:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    text = data.decode(errors="replace")
    kept = text.splitlines(keepends=True)[-lines:]
    return "".join(kept)
