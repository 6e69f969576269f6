"""A triggered pipeline run as a child process: ``python -m loopline.cli run FILE --json``.

The child runs in its own session (``posix_spawn`` with ``setsid``), so it survives the
control plane; its stdout (the run's JSON summary) goes to a result file and its stderr to a
log file. Its identity — pid, process start time, host — and an environment marker
(``LOOPLINE_TRIGGER_RUN=<trigger>/<run id>``) are recorded, so a restarted control plane finds
it again (by identity, or by the marker when it stopped between the spawn and the record)
instead of starting it a second time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from loopline.artifacts.owner import Owner, process_stat
from loopline.errors import BackendError
from loopline.types import Json, JsonDict

MARKER_ENV = "LOOPLINE_TRIGGER_RUN"


@dataclass(frozen=True, slots=True)
class Exited:
    """The process is gone; ``code`` is its exit status when it was our child."""

    code: int | None


def run_argv(python: str, pipeline: str, params: Mapping[str, Json]) -> list[str]:
    """The command line of one triggered run (values as JSON, which ``--param`` reads as
    YAML: ``42`` stays an int, ``"2026-01-01"`` stays a string)."""
    argv = [python, "-m", "loopline.cli", "run", pipeline, "--json"]
    for key, value in params.items():
        argv += ["--param", f"{key}={json.dumps(value)}"]
    return argv


class ProcessLauncher:
    """Starts, watches and stops triggered runs' processes.

    Args:
        log_dir: where each run's ``<trigger>-<id>.log`` and ``.json`` go.
        env: added to this process's environment for the child (the platform's settings).
        python: the interpreter (default: this one).
    """

    def __init__(
        self, log_dir: Path, env: Mapping[str, str] | None = None, python: str = sys.executable
    ) -> None:
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.python = python
        self._children: dict[int, int | None] = {}  # our own children: pid -> exit code

    def start(self, marker: str, pipeline: str, params: Mapping[str, Json]) -> JsonDict:
        """Spawn the run; returns its process record (``pid``, ``start_ticks``, ``host``,
        ``log``, ``result``, ``marker``, ``argv``).

        Raises:
            BackendError: the files cannot be opened or the process cannot start.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = marker.replace("/", "-")
        log_path, result_path = self.log_dir / f"{base}.log", self.log_dir / f"{base}.json"
        argv = run_argv(self.python, pipeline, params)
        env = {**os.environ, **self.env, MARKER_ENV: marker}
        try:
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            out_fd = os.open(result_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise BackendError(f"Could not open the run's files in {self.log_dir}: {exc}") from exc
        try:
            os.write(log_fd, f"{marker}: {' '.join(argv)}\n".encode())
            pid = os.posix_spawnp(
                argv[0],
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                ],
                setsid=True,
            )
        except OSError as exc:
            raise BackendError(f"Could not start {argv[0]!r}: {exc}") from exc
        finally:
            os.close(log_fd)
            os.close(out_fd)
        self._children[pid] = None
        stat = process_stat(pid)
        return {
            "pid": pid,
            "start_ticks": None if stat is None else stat[0],
            "host": socket.gethostname(),
            "log": str(log_path),
            "result": str(result_path),
            "marker": marker,
            "argv": list[Json](argv),
        }

    def poll(self, process: Mapping[str, Json]) -> Exited | None:
        """None while the process runs; :class:`Exited` once it is gone."""
        pid = process.get("pid")
        if not isinstance(pid, int):
            return Exited(None)
        if pid in self._children:
            if self._children[pid] is None:
                with contextlib.suppress(ChildProcessError):
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done == 0:
                        return None
                    self._children[pid] = os.waitstatus_to_exitcode(status)
            return Exited(self._children[pid])
        if _owner(process).is_dead():
            return Exited(None)
        return None

    def stop(self, process: Mapping[str, Json]) -> None:
        """SIGKILL the run's process group (a timed-out run), if it is still ours to kill."""
        pid = process.get("pid")
        if isinstance(pid, int) and self.poll(process) is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def forget(self, process: Mapping[str, Json]) -> None:
        """Drop the bookkeeping of a finished child."""
        pid = process.get("pid")
        if isinstance(pid, int):
            self._children.pop(pid, None)


def find_marked(marker: str) -> int | None:
    """The pid of a live process whose environment carries ``marker`` (Linux ``/proc``)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        if needle in entries:
            stat = process_stat(pid)
            if stat is not None and stat[1] != "Z":
                return pid
    return None


def read_result(process: Mapping[str, Json]) -> JsonDict | None:
    """The run's JSON summary (``loopline run --json``), or None if it wrote none."""
    path = process.get("result")
    if not isinstance(path, str):
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def log_tail(process: Mapping[str, Json], lines: int = 5) -> str:
    """The last lines of the run's log, for a failure message."""
    path = process.get("log")
    if not isinstance(path, str):
        return ""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def _owner(process: Mapping[str, Json]) -> Owner:
    pid, ticks = process.get("pid"), process.get("start_ticks")
    return Owner(
        host=str(process.get("host") or socket.gethostname()),
        pid=pid if isinstance(pid, int) else -1,
        start_ticks=ticks if isinstance(ticks, int) else None,
        created=0.0,
    )
