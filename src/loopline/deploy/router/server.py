"""Run a router: the proxy on its stable port, the admin API on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
from pathlib import Path

from loopline.deploy.router.admin import admin_handler
from loopline.deploy.router.limits import RouterLimits
from loopline.deploy.router.proxy import Router
from loopline.deploy.router.wire import table_from_json

log = logging.getLogger(__name__)


def _listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # several worker processes, one port: the kernel spreads connections
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(
    router: Router,
    *,
    host: str,
    port: int,
    admin_port: int,
    admin_secret: str,
    stop: asyncio.Event,
    shutdown_grace: float = 10.0,
    reuse_port: bool = False,
    preview_port: int = 0,
) -> None:
    """Serve until ``stop`` is set, then stop accepting and let requests finish (≤ grace).

    ``preview_port`` > 0 also listens there; requests on it go only to the preview revision.
    Admin changes need ``admin_secret`` (see :mod:`loopline.deploy.router.admin`).
    """
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(router.protocol, sock=_listen(host, port, reuse_port))]
    if preview_port:
        servers.append(await loop.create_server(
            router.preview_protocol, sock=_listen(host, preview_port, reuse_port)
        ))  # fmt: skip
    admin = admin_handler(router, admin_secret)
    servers.append(await asyncio.start_server(admin, sock=_listen("127.0.0.1", admin_port)))
    router.start_background_tasks()
    log.info(
        "Router %r serving on %s:%d (preview %s, admin 127.0.0.1:%d).",
        router.name, host, port, preview_port or "none", admin_port,
    )  # fmt: skip
    await stop.wait()
    for server in servers:
        server.close()
    deadline = asyncio.get_running_loop().time() + shutdown_grace
    while asyncio.get_running_loop().time() < deadline and router.in_flight():
        await asyncio.sleep(0.05)
    await router.shutdown()


def run(
    name: str,
    host: str,
    port: int,
    admin_port: int,
    admin_secret: str,
    reuse_port: bool = False,
    backends_file: str | None = None,
    preview_port: int = 0,
    limits: RouterLimits | None = None,
) -> None:
    """Blocking entry point; SIGTERM/SIGINT stop the router gracefully.

    ``backends_file`` (the admin ``PUT /backends`` JSON) seeds the route table before the
    router listens (used by the multi-worker supervisor when it restarts a worker).
    """
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        router = Router(name, limits=limits)
        if backends_file is not None:
            router.set_routes(table_from_json(json.loads(Path(backends_file).read_text())))
        await serve(
            router, host=host, port=port, admin_port=admin_port, admin_secret=admin_secret,
            stop=stop,
            reuse_port=reuse_port, preview_port=preview_port,
        )  # fmt: skip

    asyncio.run(main())
