"""Run the model server: N worker processes, each with its own SO_REUSEPORT socket.

The supervisor reserves the port (a bound, non-listening SO_REUSEPORT socket, so port 0
works), loads the models once, forks the workers (they share the model pages), restarts a
worker that dies, and on SIGTERM/SIGINT forwards SIGTERM and waits for the workers' graceful
shutdown within a deadline before killing what is left.

Each worker on SIGTERM: readiness turns false at once; after ``drain_seconds`` (time for a
router to notice) it stops accepting connections, answers the requests in flight (at most
``graceful_timeout`` seconds), flushes its logs and exits 0.

With ``grpc_port`` each worker also serves gRPC (:mod:`loopline.serving.grpc_server`, a
listener thread whose calls are answered on the worker's event loop), on a second port
reserved and shared the same way; on shutdown the gRPC listener stops taking RPCs with the
HTTP one and answers those in flight before the models' batching queues close.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import gc
import logging
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import socket
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from loopline.errors import DependencyMissingError, InvalidInputError, require
from loopline.lifetime import die_with_parent
from loopline.serving.app import ModelServerApp, create_app
from loopline.serving.options import ServedModel, ServerOptions

if TYPE_CHECKING:
    from loopline.serving.grpc_server import GrpcListener

log = logging.getLogger(__name__)

_RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)
_READ_PENDING_S = 2.0  # at most this long to read requests sent before SIGTERM


def _listen_socket(host: str, port: int, *, listen: bool, flag: str = "--port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInputError(
            f"Cannot bind {host}:{port} ({exc.strerror}); choose another {flag} or stop the "
            "process using it."
        ) from exc
    if listen:
        sock.listen(2048)
    return sock


def _make_server_class() -> Any:
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - part of the serve extra
        raise DependencyMissingError(
            "Serving needs uvicorn. Install it with: pip install 'loopline[serve]'"
        ) from exc
    from loopline.serving.connection import sweep  # uvicorn's protocol: imported on first use

    class _Server(uvicorn.Server):
        app_ref: ModelServerApp
        drain_seconds: float = 0.0
        grpc: GrpcListener | None = None
        _draining = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.app_ref.begin_shutdown()
            if self._draining:
                self.force_exit = sig == signal.SIGINT
                return
            self._draining = True
            if self.drain_seconds > 0:
                timer = threading.Timer(self.drain_seconds, self._exit)
                timer.daemon = True
                timer.start()
            else:
                self._exit()

        def _exit(self) -> None:
            self.should_exit = True

        async def on_tick(self, counter: int) -> bool:
            # Ten ticks a second: apply the connections' deadlines (HttpLimits).
            sweep(self.server_state.connections, asyncio.get_running_loop().time())
            return bool(await super().on_tick(counter))

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)  # the models are warm (lifespan) by now
            if self.grpc is not None and not self.should_exit:
                await self.grpc.start()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # gRPC stops taking RPCs now and answers those in flight while HTTP drains; it
            # is done before uvicorn's lifespan shutdown closes the batching queues.
            grpc_stopped = None
            if self.grpc is not None:
                grace = float(self.config.timeout_graceful_shutdown or 0)
                grpc_stopped = asyncio.ensure_future(self.grpc.stop(grace))
            # A connection the kernel already accepted into the backlog, or a request already
            # sent on an accepted connection, is in flight for the client: adopt the backlog,
            # stop listening, and read what was sent before uvicorn closes idle connections.
            loop = asyncio.get_running_loop()
            adopting: list[asyncio.Task[Any]] = []
            for sock in sockets or []:
                adopting += self._adopt_backlog(loop, sock)
            for server in self.servers:
                server.close()  # no new connections from here on
            if adopting:
                await asyncio.gather(*adopting, return_exceptions=True)
            deadline = loop.time() + _READ_PENDING_S
            while loop.time() < deadline and any(
                _has_unread_request(c) for c in list(self.server_state.connections)
            ):
                await asyncio.sleep(0.005)
            if grpc_stopped is not None:
                await grpc_stopped
            await super().shutdown(sockets=sockets)

        def _adopt_backlog(
            self, loop: asyncio.AbstractEventLoop, sock: socket.socket
        ) -> list[asyncio.Task[Any]]:
            def protocol() -> asyncio.Protocol:
                factory: Any = self.config.http_protocol_class
                return factory(  # type: ignore[no-any-return]
                    config=self.config,
                    server_state=self.server_state,
                    app_state=self.lifespan.state,
                    _loop=loop,
                )

            tasks: list[asyncio.Task[Any]] = []
            try:
                sock.setblocking(False)
            except OSError:  # already closed
                return tasks
            while True:  # no await until the backlog is empty: the loop cannot accept meanwhile
                try:
                    conn, _ = sock.accept()
                except OSError:  # EAGAIN: backlog empty (or the socket is gone)
                    return tasks
                conn.setblocking(False)
                tasks.append(loop.create_task(loop.connect_accepted_socket(protocol, conn)))

    return _Server


def _has_unread_request(connection: Any) -> bool:
    """True if an idle connection has bytes in the kernel that uvicorn has not parsed yet."""
    cycle = getattr(connection, "cycle", None)
    if cycle is not None and not cycle.response_complete:
        return False  # busy: uvicorn waits for it anyway
    transport = getattr(connection, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf, True)
    except OSError:
        return False
    return buf[0] > 0


def make_server(
    app: ModelServerApp,
    *,
    graceful_timeout: float = 30.0,
    drain_seconds: float = 0.0,
    grpc: GrpcListener | None = None,
) -> Any:
    """The uvicorn server of one worker running ``app``, with its connection limits
    (``app.options.http``) and graceful shutdown; ``serve(sockets=[...])`` runs it. With
    ``grpc``, that listener starts once the models are warm and stops with the server."""
    import uvicorn

    from loopline.serving.connection import protocol_class

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=protocol_class(app.options.http),
        ws="none",
        lifespan="on",
        access_log=False,
        proxy_headers=False,  # the app reads no client address: skip a middleware per request
        log_level="warning",
        timeout_graceful_shutdown=int(max(1, graceful_timeout)),
        backlog=2048,
    )
    server = _make_server_class()(config)
    server.app_ref = app
    server.drain_seconds = drain_seconds
    server.grpc = grpc
    return server


def serve_worker(
    models: Sequence[ServedModel],
    *,
    host: str,
    port: int,
    options: ServerOptions,
    graceful_timeout: float = 30.0,
    drain_seconds: float = 0.0,
    grpc_port: int | None = None,
) -> None:
    """Run one worker in this process until SIGTERM (blocks); with ``grpc_port``, it serves
    gRPC on that port too."""
    sock = _listen_socket(host, port, listen=True)
    app = create_app(models, options=options)
    grpc = None
    if grpc_port is not None:
        from loopline.serving.grpc_server import GrpcListener

        grpc = GrpcListener(app, host, grpc_port)
    server = make_server(
        app, graceful_timeout=graceful_timeout, drain_seconds=drain_seconds, grpc=grpc
    )
    server.run(sockets=[sock])


class ServerHandle:
    """What :func:`run_server` reports once the port is bound (``grpc_port``: the gRPC port,
    or None when the server does not serve gRPC)."""

    def __init__(self, host: str, port: int, workers: int, grpc_port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.workers = workers
        self.grpc_port = grpc_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def grpc_target(self) -> str | None:
        """``host:port`` of the gRPC listener, as a gRPC channel takes it."""
        if self.grpc_port is None:
            return None
        from loopline.serving.grpc_server import grpc_target

        return grpc_target(self.host, self.grpc_port)


def run_server(
    load_models: Callable[[], Sequence[ServedModel]],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    options: ServerOptions | None = None,
    graceful_timeout: float = 30.0,
    drain_seconds: float = 0.0,
    grpc_port: int | None = None,
    on_started: Callable[[ServerHandle], None] = lambda handle: None,
) -> int:
    """Serve until SIGTERM/SIGINT; return the exit code (0 after a clean shutdown).

    ``grpc_port`` (0: any free port) also serves gRPC from every worker; None: HTTP only.

    Raises:
        InvalidInputError: bad worker count, a port cannot be bound, or the gRPC port is the
            HTTP port.
    """
    if workers < 1:
        raise InvalidInputError(f"--workers is {workers}; use 1 or more worker processes.")
    if grpc_port is not None and grpc_port != 0 and grpc_port == port:
        raise InvalidInputError(
            f"--grpc-port {grpc_port} is the HTTP --port; give gRPC a port of its own."
        )
    if grpc_port is not None:  # here, not in each worker (which would die and be restarted)
        _require_grpc()
    options = options or ServerOptions()
    reserve = _listen_socket(host, port, listen=False)
    port = reserve.getsockname()[1]
    reserved = [reserve]
    try:
        if grpc_port is not None:
            reserved.append(_listen_socket(host, grpc_port, listen=False, flag="--grpc-port"))
            grpc_port = reserved[-1].getsockname()[1]
        models = load_models()
    except BaseException:
        for sock in reserved:
            sock.close()
        raise
    # Move the loaded models (and everything imported) out of the collector's reach: full
    # collections in the workers then scan only request garbage (shorter pauses, fewer
    # copy-on-write page faults after fork).
    gc.collect()
    gc.freeze()
    metrics_dir = Path(tempfile.mkdtemp(prefix="loopline-metrics-")) if workers > 1 else None
    ctx = multiprocessing.get_context("fork")
    stopping = threading.Event()
    supervisor = os.getpid()

    def start(i: int) -> multiprocessing.process.BaseProcess:
        opts = replace(options, worker_id=str(i), metrics_dir=metrics_dir)
        proc = ctx.Process(
            target=_worker_entry,
            args=(
                models, host, port, opts, graceful_timeout, drain_seconds, grpc_port, supervisor
            ),
            name=f"loopline-worker-{i}",
            daemon=False,
        )
        proc.start()
        return proc

    def on_signal(sig: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    procs = [start(i) for i in range(workers)]
    restarts = [0] * workers
    on_started(ServerHandle(host, port, workers, grpc_port))
    code = 0
    try:
        while not stopping.wait(0.2):
            for i, proc in enumerate(procs):
                if proc.is_alive() or stopping.is_set():
                    continue
                delay = _RESTART_BACKOFF_S[min(restarts[i], len(_RESTART_BACKOFF_S) - 1)]
                log.error(
                    "Worker %d exited with code %s; restarting in %.1f s.", i, proc.exitcode, delay
                )
                if stopping.wait(delay):
                    break
                restarts[i] += 1
                procs[i] = start(i)
        code = _stop_workers(procs, graceful_timeout + drain_seconds + 5.0)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for sock in reserved:
            sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def _require_grpc() -> None:
    """Raise DependencyMissingError unless the ``grpc`` extra (grpcio, protobuf) is there."""
    for module in ("grpc", "google.protobuf"):
        try:
            require(module, "grpc", "Serving gRPC (--grpc-port)")
        except ModuleNotFoundError:  # the "google" namespace itself is missing
            raise DependencyMissingError(
                "Serving gRPC (--grpc-port) needs the 'protobuf' package, which is not "
                "installed. Install it with: pip install 'loopline[grpc]'"
            ) from None


def _stop_workers(procs: list[multiprocessing.process.BaseProcess], deadline_s: float) -> int:
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + deadline_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    late = [p for p in procs if p.is_alive()]
    for proc in late:
        log.error(
            "Worker pid %s missed the %.0f s shutdown deadline; killing it.", proc.pid, deadline_s
        )
        proc.kill()
        proc.join(5.0)
    if late:
        return 1
    return 0 if all(p.exitcode == 0 for p in procs) else 1


def _worker_entry(
    models: Sequence[ServedModel],
    host: str,
    port: int,
    options: ServerOptions,
    graceful_timeout: float,
    drain_seconds: float,
    grpc_port: int | None,
    supervisor: int,
) -> None:
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_DFL)
    die_with_parent(supervisor)  # a SIGKILLed supervisor must not leave workers serving
    serve_worker(
        models,
        host=host,
        port=port,
        options=options,
        graceful_timeout=graceful_timeout,
        drain_seconds=drain_seconds,
        grpc_port=grpc_port,
    )


__all__ = ["ServerHandle", "make_server", "run_server", "serve_worker"]
