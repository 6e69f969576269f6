"""Process logs: a detached log-pipe process writes a process's output to a rotated 0600 file.

A replica's or router's stdout and stderr are the write end of a pipe; the reader is this
module run as its own small process (``python -I process_log.py --max-bytes … PATH``, in its
own session). It appends what it reads to ``PATH`` and rotates it the way ``logrotate`` and
``RotatingFileHandler`` do: ``PATH`` → ``PATH.1`` → … → ``PATH.<backups>``, the oldest
dropped. The live file is rotated before it would pass ``max_bytes``, and once it has been
written to for ``max_age`` seconds; rotated files not written to for ``max_age`` are deleted.
So a process's log takes at most ``(backups + 1) × max_bytes`` on disk and keeps nothing
much older than ``2 × max_age``.

Why a process and not the control plane: replicas outlive the control plane, and a file a
process writes itself cannot be rotated under it. The log pipe is detached like the process
it serves, so rotation goes on while the control plane is down or restarting; it exits when
the last holder of the pipe's write end (the process and its workers) has exited, after
writing everything that was sent. It never blocks the writer for long: a write that fails
(disk full) drops that chunk and the next write tries again.

Every file is created with mode 0600 (an existing file is narrowed to it): logs may quote
requests. The script imports only the standard library and :mod:`loopline.errors`, so it
starts in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loopline.errors import InvalidDefinitionError

__all__ = [
    "SCRIPT",
    "LogFilePolicy",
    "RotatingLogFile",
    "expired",
    "pump",
    "rotated_path",
    "rotation_due",
]

SCRIPT = Path(__file__)
"""This file: run it with ``python -I`` (see :meth:`LogFilePolicy.pipe_argv`)."""

_CHUNK = 1 << 16
_TICK_SECONDS = 60.0  # how often an idle log pipe checks the age bounds


@dataclass(frozen=True, slots=True)
class LogFilePolicy:
    """How a process log rotates.

    Attributes:
        max_bytes: the live file is rotated before it would pass this size.
        backups: rotated files kept (``<name>.log.1`` newest … ``<name>.log.<backups>``).
        max_age: seconds; the live file is rotated once it has been written to this long,
            and rotated files last written this long ago are deleted.
    """

    max_bytes: int = 10 << 20  # 10 MiB
    backups: int = 5
    max_age: float = 7 * 86_400.0  # 7 days

    def __post_init__(self) -> None:
        for name in ("max_bytes", "backups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidDefinitionError(
                    f"Process log {name} {value!r} must be an integer ≥ 1."
                )
        age = self.max_age
        if isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age) \
                or age <= 0:  # fmt: skip
            raise InvalidDefinitionError(
                f"Process log max_age {age!r} must be a finite number of seconds > 0."
            )

    def pipe_argv(self, python: str, path: Path) -> list[str]:
        """The argv of a log-pipe process writing ``path`` under this policy."""
        return [
            python, "-I", str(SCRIPT), "--max-bytes", str(self.max_bytes),
            "--backups", str(self.backups), "--max-age", repr(float(self.max_age)),
            str(path.absolute()),
        ]  # fmt: skip


def rotation_due(policy: LogFilePolicy, size: int, incoming: int, since: float, now: float) -> bool:
    """Whether the live file (``size`` bytes, written to since ``since``) must be rotated
    before ``incoming`` more bytes are appended at ``now``. An empty file never is."""
    if size <= 0:
        return False
    return size + incoming > policy.max_bytes or now - since >= policy.max_age


def expired(policy: LogFilePolicy, mtime: float, now: float) -> bool:
    """Whether a rotated file last written at ``mtime`` is old enough to delete at ``now``."""
    return now - mtime >= policy.max_age


def rotated_path(path: Path, n: int) -> Path:
    """The ``n``-th rotated file of ``path`` (1 = the newest)."""
    return path.with_name(f"{path.name}.{n}")


class RotatingLogFile:
    """Appends to ``path`` under ``policy``; every decision takes ``now`` (seconds since the
    epoch) from the caller. Another writer that rotates the same path is noticed (the live
    file's inode changed) and followed."""

    def __init__(self, path: Path, policy: LogFilePolicy, now: float) -> None:
        self.path = path
        self.policy = policy
        self.dropped_bytes = 0
        self._fd = -1
        self._since = now
        self._open(now)

    def _open(self, now: float) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._since = now

    def _live(self, now: float) -> int:
        """The live file's size, reopening it first if it was rotated or deleted under us."""
        if self._fd < 0:
            self._open(now)
        try:
            moved = os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            moved = True
        if moved:
            self._open(now)
        return os.fstat(self._fd).st_size

    def write(self, data: bytes, now: float) -> None:
        """Append ``data``, rotating first when due; a chunk larger than ``max_bytes`` is
        split. On an OS error (disk full) the rest of ``data`` is dropped and counted."""
        step = self.policy.max_bytes
        done = 0
        try:
            while done < len(data):
                piece = data[done : done + step]
                if rotation_due(self.policy, self._live(now), len(piece), self._since, now):
                    self.rotate(now)
                view = memoryview(piece)
                while view:
                    view = view[os.write(self._fd, view) :]
                done += len(piece)
        except OSError:
            self.dropped_bytes += len(data) - done

    def tick(self, now: float) -> None:
        """The age bounds: rotate the live file when due, delete expired rotated files."""
        try:
            if rotation_due(self.policy, self._live(now), 0, self._since, now):
                self.rotate(now)
            self._delete_expired(now)
        except OSError:
            pass  # the next tick tries again

    def rotate(self, now: float) -> None:
        """Shift ``path`` → ``path.1`` → … (the last one deleted) and start a new live file."""
        policy = self.policy
        with contextlib.suppress(FileNotFoundError):
            os.unlink(rotated_path(self.path, policy.backups))
        for n in range(policy.backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(rotated_path(self.path, n), rotated_path(self.path, n + 1))
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, rotated_path(self.path, 1))
        self._open(now)
        self._delete_expired(now)

    def _delete_expired(self, now: float) -> None:
        for n in range(1, self.policy.backups + 1):
            old = rotated_path(self.path, n)
            try:
                if expired(self.policy, old.stat().st_mtime, now):
                    old.unlink()
            except FileNotFoundError:
                continue

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def pump(source: int, log: RotatingLogFile, tick_seconds: float = _TICK_SECONDS) -> None:
    """Copy ``source`` into ``log`` until end of file, checking the age bounds when idle."""
    next_tick = time.time() + tick_seconds
    while True:
        ready, _, _ = select.select([source], [], [], max(0.0, next_tick - time.time()))
        now = time.time()
        if ready:
            data = os.read(source, _CHUNK)
            if not data:
                return
            log.write(data, now)
        if now >= next_tick:
            log.tick(now)
            next_tick = now + tick_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write stdin to a rotated 0600 log file.")
    default = LogFilePolicy()
    parser.add_argument("--max-bytes", type=int, default=default.max_bytes)
    parser.add_argument("--backups", type=int, default=default.backups)
    parser.add_argument("--max-age", type=float, default=default.max_age)
    parser.add_argument("--tick-seconds", type=float, default=_TICK_SECONDS)
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        policy = LogFilePolicy(args.max_bytes, args.backups, args.max_age)
    except InvalidDefinitionError as exc:
        parser.error(str(exc))
    for sig in (signal.SIGINT, signal.SIGHUP):  # only the end of the pipe ends the log
        signal.signal(sig, signal.SIG_IGN)
    log = RotatingLogFile(args.path, policy, time.time())
    try:
        pump(sys.stdin.fileno(), log, args.tick_seconds)
    finally:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
