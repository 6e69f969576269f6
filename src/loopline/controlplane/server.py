"""Running the control plane: one process with the REST API and the sync loop.

:func:`run_controlplane` takes the instance lock, creates the token on first start, binds
the socket, starts the sync loop on a thread, writes ``endpoint.json`` once it accepts
connections and serves until SIGTERM/SIGINT. Shutdown stops the loop and the API but leaves
every replica and router running (they live in their own sessions), so the next start
re-adopts them. The API's connections have the model server's limits (:data:`HTTP_LIMITS`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from loopline.controlplane.access import HOSTS_SETTING, normalise_hosts
from loopline.controlplane.api import create_app
from loopline.controlplane.files import ControlPlaneFiles, own_endpoint
from loopline.controlplane.service import ControlPlane
from loopline.errors import ConfigurationError, StepTimeoutError, require
from loopline.serving import HttpLimits

log = logging.getLogger(__name__)

#: The API's connection limits (the model server's machinery, :mod:`loopline.serving.connection`):
#: heads ≤ 16 KiB (431), URLs ≤ 8 KiB (414), 10 s to send a head and 30 s a body (408), idle
#: keep-alive connections closed after 15 s, at most 256 connections (503), 8 pipelined
#: requests. Bodies are capped at 1 MiB by the handlers (413, :mod:`.bodies`).
#: Seconds the API waits for open requests and streams on shutdown before closing them.
GRACEFUL_SHUTDOWN_S = 3

HTTP_LIMITS = HttpLimits(
    max_header_bytes=16 * 1024,
    max_url_bytes=8 * 1024,
    head_timeout=10.0,
    body_timeout=30.0,
    idle_timeout=15.0,
    max_connections=256,
    max_pipelined=8,
)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: any free port).

    Raises:
        ConfigurationError: the address cannot be bound (in use, not local, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"The control plane cannot listen on {host}:{port}: {exc.strerror}. Pick another "
            "--port (0 picks a free one) or stop what uses it."
        ) from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def run_controlplane(
    service: ControlPlane,
    files: ControlPlaneFiles,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sync_interval: float = 0.25,
    shutdown_timeout: float = 15.0,
    on_started: Callable[[str], None] | None = None,
    allowed_hosts: Iterable[str] = (),
    console: Callable[[ControlPlane, str], Any] | None = None,
) -> None:
    """Serve the API and run the sync loop until SIGTERM or SIGINT.

    Args:
        service: the control plane's operations.
        files: where the token, endpoint record and lock live.
        host: interface to bind (loopback by default).
        port: TCP port (0: any free port; the URL is written to ``endpoint.json``).
        sync_interval: seconds between syncs of every deployment.
        shutdown_timeout: seconds to wait for the loop and in-flight replica stops on exit.
        on_started: called with the URL once the API accepts connections.
        allowed_hosts: ``Host`` names served besides the loopback ones
            (``LOOPLINE_CONTROLPLANE_HOSTS``); a specific bound address is added to them.
        console: makes the web console's ASGI app from the service and the token
            (:func:`loopline.ui.create_console`), served at ``/ui``; None: no console.

    Raises:
        ConflictError: another control plane runs for the same home.
        ConfigurationError: the address cannot be bound, or an allowed host is not a name.
    """
    hosts = list(allowed_hosts)
    if host not in ("0.0.0.0", "::"):
        hosts.append(host)
    try:
        hosts = sorted(normalise_hosts(hosts))
    except ValueError as exc:
        raise ConfigurationError(
            f"{HOSTS_SETTING}: {exc}; list host names or addresses, separated by commas."
        ) from None
    require("uvicorn", "serve", "The control plane")
    lock = files.acquire_lock()
    try:
        token = files.ensure_token()
        sock = bind_socket(host, port)
        bound = sock.getsockname()[1]
        url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        if ":" in url_host:
            url_host = f"[{url_host}]"
        url = f"http://{url_host}:{bound}"
        ui = None if console is None else console(service, token)
        app = create_app(service, token=token, allowed_hosts=hosts, console=ui)
        server = make_api_server(app)
        stop = threading.Event()
        loop = threading.Thread(
            target=service.run, args=(stop, sync_interval), name="controlplane-sync", daemon=True
        )
        loop.start()
        announcer = threading.Thread(
            target=_announce, args=(server, files, url, on_started), daemon=True
        )
        announcer.start()

        # uvicorn handles SIGTERM/SIGINT while serving, then restores the previous handlers
        # and re-raises the signal; with these handlers the re-raise only asks for the exit
        # already under way, so the clean-up below runs and the process exits 0.
        def request_exit(signum: int, frame: object) -> None:
            server.should_exit = True

        previous = {
            sig: signal.signal(sig, request_exit) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            server.run(sockets=[sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            stop.set()
            files.remove_endpoint(os.getpid())
            loop.join(timeout=shutdown_timeout)
            try:
                service.close(timeout=shutdown_timeout)
            except TimeoutError:
                log.warning(
                    "Replica stops still in flight at shutdown; the next start resumes them."
                )
            sock.close()
    finally:
        lock.close()


def make_api_server(app: Any, limits: HttpLimits = HTTP_LIMITS) -> Any:
    """The uvicorn server of the API ``app`` with the connection ``limits`` (deadlines applied
    ten times a second); ``serve(sockets=[...])`` or ``run(sockets=[...])`` runs it.

    Raises:
        DependencyMissingError: uvicorn is not installed (the ``serve`` extra).
    """
    require("uvicorn", "serve", "The control plane")
    import uvicorn

    from loopline.serving.connection import protocol_class, sweep  # uvicorn's protocol

    class _LimitedServer(uvicorn.Server):
        async def on_tick(self, counter: int) -> bool:
            sweep(self.server_state.connections, asyncio.get_running_loop().time())
            return bool(await super().on_tick(counter))

    config = uvicorn.Config(
        app,
        http=protocol_class(limits),
        ws="none",
        log_level="warning",
        access_log=False,
        lifespan="off",
        # A console tab's live stream (SSE) never ends by itself: without a bound, shutdown
        # waited for every open tab to go away. API calls in flight get these seconds too; a
        # cut delete or rollout carries on at the next start (its state is stored).
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return _LimitedServer(config)


def _announce(
    server: object, files: ControlPlaneFiles, url: str, on_started: Callable[[str], None] | None
) -> None:
    deadline = time.monotonic() + 60.0
    delay = 0.01
    while not getattr(server, "started", False):
        if time.monotonic() > deadline or getattr(server, "should_exit", False):
            log.error("%s", StepTimeoutError("The API server did not start within 60 s."))
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    files.write_endpoint(own_endpoint(url))
    if on_started is not None:
        on_started(url)
