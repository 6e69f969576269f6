"""Finding the control plane, and starting it when none runs (the CLI's job, like kubectl's
server discovery plus ``minikube start``).

Order: an explicit URL (``LOOPLINE_CONTROLPLANE_URL``) wins; else ``endpoint.json`` under
the home, if its process (pid *and* start time) is alive and ``/healthz`` answers; else a new
control plane is started detached (its own session, output to ``controlplane.log``) and
waited for, with a deadline.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from loopline.controlplane.files import ControlPlaneFiles, Endpoint, process_alive
from loopline.errors import BackendError, StepTimeoutError


@dataclass(frozen=True, slots=True)
class Located:
    """A reachable control plane; ``started`` if this call started it (then ``pid`` is set)."""

    url: str
    started: bool = False
    pid: int | None = None


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True if ``url`` answers ``GET /healthz`` with 200."""
    try:
        return httpx.get(f"{url.rstrip('/')}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def locate(files: ControlPlaneFiles) -> Endpoint | None:
    """The running control plane recorded under the home, if alive and healthy."""
    endpoint = files.live_endpoint()
    if endpoint is None or not healthy(endpoint.url):
        return None
    return endpoint


def start_detached(
    files: ControlPlaneFiles,
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    deadline: float = 60.0,
    notify: Callable[[str], None] | None = None,
) -> Located:
    """Start ``command`` (a control plane) in its own session and wait until it serves.

    If another control plane wins a race to start, that one is returned instead.

    Raises:
        BackendError: the process exited before serving (the message quotes its log).
        StepTimeoutError: it did not serve within ``deadline`` seconds.
    """
    log_fd, log_pipe = files.open_log_pipe(command[0])
    try:
        proc = subprocess.Popen(
            list(command),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(log_fd)
    until = time.monotonic() + deadline
    delay = 0.05
    while time.monotonic() < until:
        endpoint = files.read_endpoint()
        if endpoint is not None and endpoint.pid == proc.pid and healthy(endpoint.url):
            if notify is not None:
                notify(f"started the control plane at {endpoint.url} (pid {proc.pid})")
            return Located(url=endpoint.url, started=True, pid=proc.pid)
        code = proc.poll()
        if code is not None:
            other = locate(files)
            if other is not None:  # lost a start race: use the winner
                return Located(url=other.url)
            _wait_for_log(log_pipe)
            raise BackendError(
                f"The control plane exited with code {code} before serving. Last lines of "
                f"{files.log_path}:\n{_log_tail(files)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    if process_alive(proc.pid, None):
        proc.terminate()
    raise StepTimeoutError(
        f"The control plane did not start serving within {deadline:g} s; see {files.log_path}."
    )


def _wait_for_log(log_pipe: int, timeout: float = 2.0) -> None:
    """Wait (≤ ``timeout`` s) for the log pipe of an exited control plane to write its last
    output and end, reaping it."""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            if os.waitpid(log_pipe, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.01)


def _log_tail(files: ControlPlaneFiles, lines: int = 15) -> str:
    try:
        return "\n".join(files.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
