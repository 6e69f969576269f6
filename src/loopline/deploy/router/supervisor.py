"""A multi-worker router: N worker processes share the stable port (``SO_REUSEPORT``).

The supervisor serves the public admin API and fans every call out to the workers' own
(loopback) admin ports: ``PUT /backends`` goes to all of them, ``POST /drain`` waits until
every worker has drained, ``GET /backends`` sums counters, ``GET /stats`` and
``GET /metrics`` add up the workers' figures (:mod:`loopline.deploy.router.report`). It
keeps the last route table and re-pushes it to a worker it had to restart. Weights stay
exact overall: every worker runs the same smooth weighted round robin over its share of the
traffic (mirror shares too). The preview port is shared like the main one.

The supervisor's admin API asks for the same secret as a single router's (it checks it, and
presents it to the workers, which are started with the same secret file and limits), and is
held to the same limits (:func:`~loopline.deploy.router.admin.admin_endpoint`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from loopline.deploy.router.admin import Text, admin_endpoint
from loopline.deploy.router.limits import RouterLimits
from loopline.deploy.router.report import (
    merge_snapshots,
    merge_stats,
    render_metrics,
    window_seconds,
)

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Supervisor:
    """Starts, watches and fans out to the worker processes."""

    def __init__(self, name: str, host: str, port: int, admin_port: int, workers: int,
                 preview_port: int = 0, *, secret: str, secret_file: str,
                 limit_argv: list[str] | None = None,
                 limits: RouterLimits | None = None) -> None:  # fmt: skip
        self.name, self.host, self.port, self.admin_port = name, host, port, admin_port
        self.limits = RouterLimits() if limits is None else limits
        self.preview_port = preview_port
        self.secret, self.secret_file = secret, secret_file
        self.limit_argv = limit_argv or []
        self.ports = [_free_port() for _ in range(workers)]
        self.procs: list[asyncio.subprocess.Process | None] = [None] * workers
        self.last_backends: dict[str, Any] | None = None
        self.client = httpx.AsyncClient(
            timeout=10.0, headers={"authorization": f"Bearer {secret}"}
        )
        # A restarted worker reads the current backend set from here before it listens,
        # so it never answers 503 while the rest of the router serves.
        self._dir = tempfile.TemporaryDirectory(prefix="loopline-router-")
        self.backends_file = Path(self._dir.name) / "backends.json"

    async def _spawn(self, i: int) -> None:
        self.procs[i] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loopline.deploy.router", "--name", self.name,
            "--host", self.host, "--port", str(self.port),
            "--admin-port", str(self.ports[i]), "--reuse-port", "--parent", str(os.getpid()),
            "--preview-port", str(self.preview_port), "--admin-secret-file", self.secret_file,
            *self.limit_argv,
            *(["--backends-file", str(self.backends_file)] if self.last_backends else []),
        )  # fmt: skip
        for _ in range(100):  # ≤ 10 s for the worker's admin API to answer
            try:
                await self.client.get(f"http://127.0.0.1:{self.ports[i]}/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)

    async def _call(self, i: int, method: str, path: str, body: object = None,
                    timeout: float = 10.0) -> Any:  # fmt: skip
        r = await self.client.request(
            method, f"http://127.0.0.1:{self.ports[i]}{path}", json=body, timeout=timeout
        )
        return r.status_code, r.json()

    async def _fan_out(self, method: str, path: str, body: object = None,
                       timeout: float = 10.0) -> list[tuple[int, Any]]:  # fmt: skip
        return list(await asyncio.gather(
            *(self._call(i, method, path, body, timeout) for i in range(len(self.ports)))
        ))  # fmt: skip

    async def route(
        self, method: str, path: str, body: bytes, query: dict[str, str] | None = None
    ) -> tuple[int, object]:
        query = query or {}
        if (method, path) == ("GET", "/healthz"):
            return 200, {"ok": all(p is not None and p.returncode is None for p in self.procs)}
        data = json.loads(body) if body else None
        if (method, path) == ("PUT", "/backends"):
            results = await self._fan_out("PUT", "/backends", data)
            if all(s == 200 for s, _ in results):
                self.last_backends = data
                tmp = self.backends_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(data))
                tmp.replace(self.backends_file)  # atomic: a starting worker never reads half
            return results[0]
        if (method, path) == ("POST", "/drain"):
            timeout = float((data or {}).get("timeout", 30))
            results = await self._fan_out("POST", "/drain", data, timeout=timeout + 5)
            if any(s != 200 for s, _ in results):
                return next((s, b) for s, b in results if s != 200)
            return 200, {
                "drained": all(b["drained"] for _, b in results),
                "inFlight": sum(b["inFlight"] for _, b in results),
            }
        if (method, path) == ("GET", "/backends"):
            results = await self._fan_out("GET", "/backends")
            merged = results[0][1]
            for _, other in results[1:]:
                for key, value in other["stats"].items():
                    merged["stats"][key] += value
                for mine, theirs in zip(merged["backends"], other["backends"], strict=False):
                    mine["outstanding"] += theirs["outstanding"]
            merged["workers"] = len(results)
            return 200, merged
        if (method, path) == ("GET", "/stats"):
            try:
                window = window_seconds(query.get("window"))
            except ValueError as exc:
                return 400, {"error": str(exc)}
            results = await self._fan_out("GET", f"/stats?window={window}")
            return 200, merge_stats([b for _, b in results])
        if (method, path) == ("GET", "/metrics"):
            results = await self._fan_out("GET", "/metrics?format=json")
            merged = merge_snapshots([b for _, b in results])
            return 200, merged if query.get("format") == "json" else Text(render_metrics(merged))
        return 404, {"error": f"No admin route {method} {path}."}

    async def answer(self, method: str, path: str, query: dict[str, str],
                     body: bytes) -> tuple[int, object]:  # fmt: skip
        """One admin request (already read and authorized), answered 502 if a worker fails."""
        try:
            return await self.route(method, path, body, query)
        except (ValueError, httpx.HTTPError) as exc:
            return 502, {"error": f"Router worker call failed: {exc!r}"}

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(*(self._spawn(i) for i in range(len(self.ports))))  # in parallel
        handle = admin_endpoint(self.answer, self.secret, self.limits)
        server = await asyncio.start_server(handle, "127.0.0.1", self.admin_port)
        while not stop.is_set():  # supervise: restart a worker that died
            for i, proc in enumerate(self.procs):
                if proc is not None and proc.returncode is not None:
                    log.warning("Router worker %d exited (%s); restarting.", i, proc.returncode)
                    await self._spawn(i)
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
        server.close()
        for proc in self.procs:
            if proc is not None and proc.returncode is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
        await self.client.aclose()
        self._dir.cleanup()


def run_supervisor(
    name: str, host: str, port: int, admin_port: int, workers: int, preview_port: int = 0,
    *, secret: str, secret_file: str, limit_argv: list[str] | None = None,
    limits: RouterLimits | None = None,
) -> None:  # fmt: skip
    """Blocking entry point of a multi-worker router (workers get ``secret_file`` and the
    ``limit_argv`` flags; the supervisor's admin API is held to ``limits``)."""
    supervisor = Supervisor(name, host, port, admin_port, workers, preview_port, secret=secret,
                            secret_file=secret_file, limit_argv=limit_argv,
                            limits=limits)  # fmt: skip
    asyncio.run(supervisor.run())
