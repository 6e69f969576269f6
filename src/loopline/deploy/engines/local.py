"""The local engine: replicas and routers as detached processes on this machine.

A replica is a model-server process: the engine turns the revision's :class:`Template`
(model, workers, batching, logging) and its own settings (python, prediction-log root,
graceful timeout, drain seconds) into a :class:`~loopline.serving.ServeCommand` and starts
``ServeCommand.process_argv(python)``; tests that need another process (a fake server) pass
``argv``, which maps the replica id and the command to the argv to start.

Each process runs in its own session (``start_new_session``), so it survives the control
plane; stdout and stderr go through a pipe to a detached log-pipe process
(:mod:`~loopline.deploy.engines.process_log`) that writes ``<log_dir>/<replica_id>.log``,
mode 0600, rotated by size and age under the engine's :class:`LogFilePolicy` — also while
the control plane is down. An exit is reported once the log pipe has written what the
process sent (or after ``LOG_DRAIN_SECONDS``). A process is identified by
pid *and* start time (``/proc/<pid>/stat`` field 22), so a reused pid is never mistaken
for a replica, and a restarted control plane re-adopts processes from those two numbers.

A replica starts in its own working directory, ``<work_root>/<replica_id>`` (both mode 0700;
see :mod:`~loopline.deploy.engines.workdir`), not the control plane's: a relative path or a
module in the control plane's directory never reaches it (``python -m`` puts the working
directory first on ``sys.path``). posix_spawn has no ``chdir``, so the replica's argv is run
through a minimal launcher (``python -I -S -c``) that changes directory and ``exec``s it:
same pid, same start time. A replica restarted in place (same id) reuses its directory;
:meth:`LocalEngine.release_replica` removes it once the replica is gone for good, and a
failed start removes the one it made.
"""

from __future__ import annotations

import http.client
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from loopline.artifacts.owner import process_stat
from loopline.deploy.engines.base import DeployEngine, ProcessExit, ProcessHandle
from loopline.deploy.engines.proc import session_cpu_seconds
from loopline.deploy.engines.process_log import LogFilePolicy
from loopline.deploy.engines.workdir import chdir_launcher, make_work_dir, remove_work_dir
from loopline.deploy.spec import Template
from loopline.errors import BackendError, InvalidDefinitionError, InvalidInputError
from loopline.serving import ServeCommand

ReplicaArgv = Callable[[str, ServeCommand], Sequence[str]]
"""``argv(replica_id, command)``: the process to start for a replica (default:
``command.process_argv(python)``, the real model server)."""

LOG_DRAIN_SECONDS = 2.0
"""How long an exit report waits for the log pipe to write the process's last output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just reported free (the usual small race is accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class LocalEngine(DeployEngine):
    """Runs each replica as a model-server process built from a :class:`ServeCommand`.

    Args:
        log_dir: where each process's log file goes (created if missing).
        host: the loopback address replicas bind to and are probed on.
        python: the interpreter that runs loopline's model server (and the routers).
        prediction_log_root: where replicas whose template enables logging write prediction
            logs (shared by all replicas; segment names carry the pid, the layout the model
            and version). None: such a replica fails to start, saying so.
        graceful_timeout: seconds a replica may take to finish in-flight requests after
            SIGTERM (None: the server's default).
        drain_seconds: seconds a replica keeps accepting after SIGTERM while reporting
            not-ready (None: the server's default, 0 — the router already drained it).
        argv: ``argv(replica_id, command)`` → the process to start instead of the model
            server (tests start a fake server with it).
        env: extra environment for the processes (added to this process's environment).
        router_ready_timeout: seconds a new router may take to answer its admin endpoint.
        log_policy: how each process's log file rotates (size, rotated files kept, age).
        work_root: where each replica gets its working directory, ``<work_root>/<replica_id>``
            (default: ``replicas`` beside ``log_dir``).
        log_max_bytes, log_max_age: the prediction-log rotation of a replica whose template
            enables logging but sets no ``logging.maxBytes``/``maxAge`` (the operator's
            ``LOOPLINE_PREDICTION_LOG_*`` settings; None: the server's defaults).
        log_buffer_bytes: the log buffer's byte bound of a replica that logs (None: the
            server's default).
    """

    survives_control_plane: ClassVar[bool] = True
    probes_readiness: ClassVar[bool] = True

    def __init__(
        self,
        *,
        log_dir: Path,
        host: str = "127.0.0.1",
        python: str = sys.executable,
        prediction_log_root: Path | None = None,
        graceful_timeout: float | None = None,
        drain_seconds: float | None = None,
        argv: ReplicaArgv | None = None,
        env: Mapping[str, str] | None = None,
        router_ready_timeout: float = 10.0,
        log_policy: LogFilePolicy | None = None,
        work_root: Path | None = None,
        log_max_bytes: int | None = None,
        log_max_age: float | None = None,
        log_buffer_bytes: int | None = None,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.work_root = self.log_dir.parent / "replicas" if work_root is None else Path(work_root)
        self.host = host
        self.python = python
        self.prediction_log_root = prediction_log_root
        self.graceful_timeout = graceful_timeout
        self.drain_seconds = drain_seconds
        self.argv = argv
        self.env = dict(env or {})
        self.router_ready_timeout = router_ready_timeout
        self.log_policy = LogFilePolicy() if log_policy is None else log_policy
        self.log_max_bytes = log_max_bytes
        self.log_max_age = log_max_age
        self.log_buffer_bytes = log_buffer_bytes
        self._children: dict[int, int | None] = {}  # our children → exit code once reaped
        self._log_pipes: dict[int, int] = {}  # our child → its log pipe (also our child)
        self._ended_pipes: set[int] = set()  # log pipes of exited processes, not reaped yet
        try:  # a bad engine setting fails here, not at the first replica start
            self.serve_command(Template(model="model"), 0)
        except InvalidInputError as exc:
            raise InvalidDefinitionError(f"LocalEngine settings are invalid: {exc}") from None

    def serve_command(self, template: Template, port: int) -> ServeCommand:
        """The model-server command of a replica of ``template`` listening on ``port``.

        Raises:
            InvalidInputError: the template enables logging but the engine has no
                ``prediction_log_root``, or a value is out of the server's range.
        """
        settings: dict[str, Any] = {}
        if template.logging.enabled:
            if self.prediction_log_root is None:
                raise InvalidInputError(
                    f"Template of model {template.model!r} enables prediction logging but "
                    "this LocalEngine has no prediction_log_root; build it with one."
                )
            settings.update(
                log_dir=self.prediction_log_root, log_sample_rate=template.logging.sample_rate
            )
            max_bytes, max_age = template.logging.max_bytes, template.logging.max_age
            for key, value in (  # the template's own bounds first, then the engine's
                ("log_max_bytes", max_bytes if max_bytes is not None else self.log_max_bytes),
                ("log_max_age", max_age if max_age is not None else self.log_max_age),
                ("log_buffer_bytes", self.log_buffer_bytes),
            ):
                if value is not None:
                    settings[key] = value
        if self.graceful_timeout is not None:
            settings["graceful_timeout"] = self.graceful_timeout
        if self.drain_seconds is not None:
            settings["drain_seconds"] = self.drain_seconds
        return ServeCommand(
            models=(template.model,),
            host=self.host,
            port=port,
            workers=template.workers,
            batching=template.batching.enabled,
            max_batch_size=template.batching.max_batch_size,
            max_latency_ms=template.batching.max_latency_ms,
            **settings,
        )

    # ---- launching ---------------------------------------------------------------------------

    def _spawn(
        self, argv: list[str], log_name: str, port: int, cwd: Path | None = None
    ) -> ProcessHandle:
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = self.log_dir / f"{log_name}.log"
        env = {**os.environ, **self.env}
        self._reap_log_pipes()
        try:  # the first line is written here, so it is there when the start returns
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.fchmod(log_fd, 0o600)  # a file left by an older engine may be wider
                os.write(log_fd, f"{log_name}: {shlex.join(argv)}\n".encode())
            finally:
                os.close(log_fd)
        except OSError as exc:
            raise BackendError(f"could not open log file {str(log_path)!r}: {exc}") from exc
        # posix_spawn with setsid (not subprocess.Popen): the process is detached from our
        # session, and no Popen object warns or reaps behind our back when this engine goes
        # away with replicas still running (a control-plane crash must leave them serving).
        # Both pipe ends are close-on-exec: each child gets only the end it is given.
        read_end, write_end = os.pipe()
        try:
            pipe_argv = self.log_policy.pipe_argv(self.python, log_path)
            try:
                log_pipe = os.posix_spawnp(
                    pipe_argv[0],
                    pipe_argv,
                    env,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, read_end, 0),
                        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                    ],
                    setsid=True,
                )
            except OSError as exc:
                raise BackendError(f"could not run {self.python!r}: {exc}") from exc
            started = argv if cwd is None else [*chdir_launcher(self.python), str(cwd), *argv]
            try:
                pid = os.posix_spawnp(
                    started[0],
                    started,
                    env,
                    file_actions=[
                        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                        (os.POSIX_SPAWN_DUP2, write_end, 1),
                        (os.POSIX_SPAWN_DUP2, write_end, 2),
                    ],
                    setsid=True,
                )
            except OSError as exc:
                self._children[log_pipe] = None  # it ends at once: the pipe is closed below
                self._ended_pipes.add(log_pipe)
                raise BackendError(f"could not run {argv[0]!r}: {exc}") from exc
        finally:
            os.close(read_end)
            os.close(write_end)
        self._children[log_pipe] = None
        self._log_pipes[pid] = log_pipe
        info = process_stat(pid)
        if info is None:  # pragma: no cover - our own child stays in /proc until reaped
            raise BackendError(f"process {pid} vanished right after it was started")
        self._children[pid] = None
        return ProcessHandle(pid=pid, process_start=info[0], port=port, log_path=str(log_path))

    def _reap_log_pipes(self) -> None:
        """Reap the log pipes whose process has exited and that have ended since."""
        for log_pipe in list(self._ended_pipes):
            if self._reap(log_pipe) is not None:
                self._children.pop(log_pipe, None)
                self._ended_pipes.discard(log_pipe)

    def _drain_log(self, pid: int) -> None:
        """After our child ``pid`` exited: wait (≤ ``LOG_DRAIN_SECONDS``) for its log pipe to
        write the last output and end, and reap it; one that has not ended yet (a worker of
        the process still holds the pipe) is reaped later."""
        log_pipe = self._log_pipes.pop(pid, None)
        if log_pipe is None:
            return
        deadline = time.monotonic() + LOG_DRAIN_SECONDS
        delay = 0.005
        while self._reap(log_pipe) is None and process_stat(log_pipe) is not None:
            if time.monotonic() >= deadline:
                self._ended_pipes.add(log_pipe)
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        self._children.pop(log_pipe, None)  # ended (reaped here, or by someone else)

    def start_replica(self, replica_id: str, template: Template) -> ProcessHandle:
        port = free_port(self.host)
        try:
            command = self.serve_command(template, port)
        except InvalidInputError as exc:
            raise BackendError(f"cannot start replica {replica_id!r}: {exc}") from exc
        if self.argv is None:
            argv = command.process_argv(self.python)
        else:
            argv = list(self.argv(replica_id, command))
        if not argv:
            raise BackendError(f"cannot start replica {replica_id!r}: the argv hook gave []")
        workdir, created = make_work_dir(self.work_root, replica_id)
        try:
            return self._spawn(argv, replica_id, port, cwd=workdir)
        except BackendError:
            if created:  # nothing ran in it
                shutil.rmtree(workdir, ignore_errors=True)
            raise

    def release_replica(self, replica_id: str) -> None:
        """Remove the replica's working directory and everything in it."""
        remove_work_dir(self.work_root, replica_id)

    def start_router(
        self, deployment: str, port: int, admin_port: int, workers: int = 1,
        preview_port: int = 0, *, admin_secret_file: Path,
    ) -> ProcessHandle:  # fmt: skip
        if not admin_port:
            raise InvalidDefinitionError("start_router needs an explicit admin port (not 0).")
        port = port or free_port(self.host)
        argv = [
            self.python, "-m", "loopline.deploy.router", "--name", deployment,
            "--host", self.host, "--port", str(port), "--admin-port", str(admin_port),
            "--workers", str(workers), "--preview-port", str(preview_port),
            "--admin-secret-file", str(admin_secret_file),
        ]  # fmt: skip
        handle = self._spawn(argv, f"router-{deployment}", port)
        deadline = time.monotonic() + self.router_ready_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if self.poll(handle) is not None:
                raise BackendError(
                    f"Router of deployment {deployment!r} exited at start (port {port} taken?); "
                    f"see {handle.log_path}."
                )
            if _http_status("127.0.0.1", admin_port, "/healthz", 0.5) == 200:
                return handle
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        self.stop(handle, grace=1.0)
        raise BackendError(
            f"Router of deployment {deployment!r} did not answer on admin port {admin_port} "
            f"within {self.router_ready_timeout} s; see {handle.log_path}."
        )

    # ---- watching ----------------------------------------------------------------------------

    def _reap(self, pid: int) -> int | None:
        """Exit code of our child ``pid`` if it has ended (reaping it), else None."""
        if pid not in self._children:
            return None
        code = self._children[pid]
        if code is not None:
            return code
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        self._children[pid] = code
        self._drain_log(pid)
        return code

    def poll(self, handle: ProcessHandle) -> ProcessExit | None:
        code = self._reap(handle.pid)
        if code is not None:
            return ProcessExit(code=code)
        info = process_stat(handle.pid)
        if info is None or info[0] != handle.process_start:
            return ProcessExit(code=None)
        if info[1] in ("Z", "X"):
            if handle.pid not in self._children:
                return ProcessExit(code=None)  # adopted: a zombie is gone; its code is not ours
            # Our child died between the two looks, and its exit code can be reaped now (under
            # load that window is wide enough to lose the code of a clean exit) — or only its
            # main thread has ended and the others are still exiting: the thread-group leader
            # shows "Z" until the last one has, and waitpid has nothing yet. Still running.
            code = self._reap(handle.pid)
            return None if code is None else ProcessExit(code=code)
        return None

    def probe_ready(self, handle: ProcessHandle, timeout: float) -> bool:
        if self.poll(handle) is not None:
            return False
        return _http_status(self.host, handle.port, "/v2/health/ready", timeout) == 200

    def cpu_seconds(self, pids: Sequence[int]) -> dict[int, float]:
        # Every replica is the leader of its own session (posix_spawn with setsid).
        return session_cpu_seconds(pids)

    def stop(self, handle: ProcessHandle, grace: float) -> ProcessExit:
        gone = self.poll(handle)
        if gone is not None:
            self._children.pop(handle.pid, None)
            return gone
        try:
            os.kill(handle.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        delay = 0.01
        while time.monotonic() < deadline:
            gone = self.poll(handle)
            if gone is not None:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        else:
            try:
                os.killpg(handle.pid, signal.SIGKILL)  # the whole session: workers too
            except (ProcessLookupError, PermissionError):
                pass
            for _ in range(100):  # SIGKILL is not instant: wait (≤ 5 s) for it to land
                gone = self.poll(handle)
                if gone is not None:
                    break
                time.sleep(0.05)
            else:
                gone = ProcessExit(code=None)
        self._children.pop(handle.pid, None)
        return gone


def _http_status(host: str, port: int, path: str, timeout: float) -> int | None:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
