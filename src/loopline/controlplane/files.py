"""The control plane's files under ``$LOOPLINE_HOME/controlplane/``: token, endpoint, lock, log.

- ``token``: the bearer token every mutating request carries; created once, mode 0600.
- ``endpoint.json``: ``{"url", "pid", "process_start", "started_at"}`` of the running control
  plane, written atomically once it accepts connections and removed when it stops cleanly.
- ``lock``: held (``flock``) by the running control plane, so two never share one home.
- ``controlplane.log``: where a control plane started by the CLI writes its output, through
  a detached log pipe (:meth:`ControlPlaneFiles.open_log_pipe`): mode 0600, rotated by size
  and age like the replicas' logs (``controlplane.log.1`` …).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loopline.artifacts.owner import process_start_ticks
from loopline.deploy.engines.process_log import LogFilePolicy
from loopline.errors import BackendError, ConfigurationError, ConflictError

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a running control plane listens, and which process it is."""

    url: str
    pid: int
    process_start: int | None  # clock ticks since boot; None where /proc is unavailable
    started_at: float

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "pid": self.pid,
            "process_start": self.process_start,
            "started_at": self.started_at,
        }

    def is_alive(self) -> bool:
        """True if the recorded process still runs (and is the same process, not a reused pid)."""
        return process_alive(self.pid, self.process_start)


def process_alive(pid: int, process_start: int | None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when known, started at ``process_start``."""
    if pid <= 0:
        return False
    ticks = process_start_ticks(pid)  # None: gone, or a zombie that will never serve again
    if ticks is None:
        return False
    return process_start is None or ticks == process_start


class ControlPlaneFiles:
    """Paths and atomic reads/writes of the control plane's files under ``home``.

    Args:
        home: ``$LOOPLINE_HOME``; the files live in ``home / "controlplane"``.
        log_policy: how ``controlplane.log`` rotates.
    """

    def __init__(self, home: Path, log_policy: LogFilePolicy | None = None) -> None:
        self.home = home
        self.dir = home / "controlplane"
        self.log_policy = LogFilePolicy() if log_policy is None else log_policy

    @property
    def token_path(self) -> Path:
        return self.dir / "token"

    @property
    def endpoint_path(self) -> Path:
        return self.dir / "endpoint.json"

    @property
    def lock_path(self) -> Path:
        return self.dir / "lock"

    @property
    def log_path(self) -> Path:
        return self.dir / "controlplane.log"

    def ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def open_log_pipe(self, python: str) -> tuple[int, int]:
        """Start the detached log pipe that writes ``controlplane.log`` (0600, rotated under
        ``log_policy``) with the interpreter ``python``; return the pipe's write end, for the
        control plane's stdout and stderr (the caller closes it once the child has it), and
        the log pipe's pid. The log pipe ends when every holder of the write end has exited.

        Raises:
            BackendError: the log file cannot be created or the log pipe cannot start.
        """
        self.ensure_dir()
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.fchmod(fd, 0o600)  # a log left by an older control plane may be wider
            finally:
                os.close(fd)
        except OSError as exc:
            raise BackendError(f"Could not create {str(self.log_path)!r}: {exc}") from exc
        read_end, write_end = os.pipe()
        argv = self.log_policy.pipe_argv(python, self.log_path)
        try:
            pid = os.posix_spawnp(
                argv[0],
                argv,
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read_end, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                ],
                setsid=True,
            )
        except OSError as exc:
            os.close(write_end)
            raise BackendError(
                f"Could not start the log pipe of {str(self.log_path)!r} with {python!r}: {exc}"
            ) from exc
        finally:
            os.close(read_end)
        return write_end, pid

    # ---- token ---------------------------------------------------------------------------------

    def ensure_token(self) -> str:
        """Return the token, creating it (mode 0600, never readable by others) if missing.

        Raises:
            ConfigurationError: the token file exists but others may read it, or it is empty.
        """
        self.ensure_dir()
        try:
            fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.read_token()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        return token

    def install_token(self, token: str) -> None:
        """Make ``token`` the token (a given one, e.g. from a Kubernetes Secret): written to
        the token file, mode 0600, replacing what was there.

        Raises:
            ConfigurationError: ``token`` is empty or spans lines.
        """
        if not token.strip() or "\n" in token.strip():
            raise ConfigurationError(
                "LOOPLINE_CONTROLPLANE_TOKEN must be one non-empty line; put the token alone "
                "in the Secret (kubectl create secret generic … --from-literal=token=…)."
            )
        self.ensure_dir()
        temporary = self.token_path.with_name(f".token.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token.strip() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.token_path)

    def read_token(self) -> str:
        """The token. Raises ConfigurationError if missing, empty or readable by others."""
        path = self.token_path
        try:
            mode = path.stat().st_mode
            text = path.read_text().strip()
        except FileNotFoundError:
            raise ConfigurationError(
                f"No control-plane token at {str(path)!r}; start the control plane "
                "(loopline controlplane) to create one."
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"The control-plane token {str(path)!r} is accessible to other users (mode "
                f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}"
            )
        if not text:
            raise ConfigurationError(
                f"The control-plane token {str(path)!r} is empty; delete it and restart the "
                "control plane to create a new one."
            )
        return text

    # ---- endpoint ------------------------------------------------------------------------------

    def write_endpoint(self, endpoint: Endpoint) -> None:
        """Write ``endpoint.json`` atomically (temporary file, fsync, rename)."""
        self.ensure_dir()
        tmp = self.endpoint_path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(endpoint.to_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.endpoint_path)

    def read_endpoint(self) -> Endpoint | None:
        """The recorded endpoint, or None if there is none or it is unreadable."""
        try:
            data = json.loads(self.endpoint_path.read_text())
            start = data.get("process_start")
            return Endpoint(
                url=str(data["url"]),
                pid=int(data["pid"]),
                process_start=None if start is None else int(start),
                started_at=float(data.get("started_at", 0.0)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def live_endpoint(self) -> Endpoint | None:
        """The recorded endpoint if its process still runs, else None (stale or missing)."""
        endpoint = self.read_endpoint()
        if endpoint is None or not endpoint.is_alive():
            return None
        return endpoint

    def remove_endpoint(self, pid: int) -> None:
        """Remove ``endpoint.json`` if it still names ``pid`` (never another process's)."""
        endpoint = self.read_endpoint()
        if endpoint is not None and endpoint.pid == pid:
            with contextlib.suppress(FileNotFoundError):
                self.endpoint_path.unlink()

    # ---- single instance -----------------------------------------------------------------------

    def acquire_lock(self) -> IO[str]:
        """Take the instance lock for the life of the returned file object.

        Raises:
            ConflictError: another control plane holds it (the message names its endpoint).
        """
        self.ensure_dir()
        f = open(self.lock_path, "a+")  # held open for the process's life
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            endpoint = self.read_endpoint()
            where = f" at {endpoint.url} (pid {endpoint.pid})" if endpoint else ""
            raise ConflictError(
                f"Another control plane is already running for {str(self.home)!r}{where}; "
                "use it, or stop it before starting a new one."
            ) from None
        return f


def own_endpoint(url: str) -> Endpoint:
    """The endpoint record of the current process."""
    pid = os.getpid()
    return Endpoint(
        url=url, pid=pid, process_start=process_start_ticks(pid), started_at=time.time()
    )
