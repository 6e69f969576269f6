"""Active health checks: every backend's readiness path, every ``interval`` seconds.

A backend is out after ``unhealthy_after`` consecutive failed checks and back after one
success. Checks only mark backends; :class:`~loopline.deploy.router.balancer.Balancer`
decides what an unhealthy backend means (Envoy's panic mode when all are).
"""

from __future__ import annotations

import asyncio

from loopline.deploy.router.balancer import BackendState, Balancer


async def health_loop(balancer: Balancer, path: bytes, interval: float,
                      unhealthy_after: int) -> None:  # fmt: skip
    """Check every backend of ``balancer`` forever (a task the router cancels)."""
    while True:
        await asyncio.sleep(interval)
        backends = list(balancer.backends.values())
        results = await asyncio.gather(*(check(b, path) for b in backends))
        for b, ok in zip(backends, results, strict=True):
            b.failures = 0 if ok else b.failures + 1
            if ok:
                b.healthy = True
            elif b.failures >= unhealthy_after:
                b.healthy = False


async def check(b: BackendState, path: bytes) -> bool:
    """One ``GET path`` answered 200 within a second. Whatever the backend sends, this
    returns (a status line over the reader's 64 KiB limit is a failed check, not an error
    that would end the health loop)."""
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(b.host, b.port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        w.write(b"GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n"
                % (path, b.host.encode()))  # fmt: skip
        line = await asyncio.wait_for(r.readline(), 1.0)
        return line[9:12] == b"200"
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        return False  # ValueError: StreamReader.readline past its limit
    finally:
        w.close()
