"""A tiny, fast model-server stand-in for deploy tests and the router benchmark.

Answers ``GET /v2/health/ready`` (200 once ready) and ``POST /v2/models/m/infer`` (echoes
a JSON with this server's id). SIGTERM: stop accepting, finish in-flight, exit 0.

    python fake_server.py --port P [--id X] [--fail-start] [--crash-after S]
                          [--ready-delay S] [--latency-ms MS] [--split-ms MS] [--chunked]

``--split-ms`` writes an inference answer's head and body apart (MS between them);
``--chunked`` sends it with chunked transfer encoding instead of a Content-Length.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--id", default=str(os.getpid()))
    p.add_argument("--fail-start", action="store_true", help="exit 1 before listening")
    p.add_argument("--crash-after", type=float, default=0.0, help="exit 3 after S seconds")
    p.add_argument("--ready-delay", type=float, default=0.0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--split-ms", type=float, default=0.0)
    p.add_argument("--chunked", action="store_true")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--model", default="m", help="a model ending in '/bad' fails to load")
    args, _ = p.parse_known_args()
    if args.fail_start or args.model.endswith("/bad"):
        print("model failed to load", file=sys.stderr)
        sys.exit(1)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve(args))


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    ready_at = loop.time() + args.ready_delay
    in_flight = 0
    body = json.dumps({"model_name": "m", "id": args.id, "outputs": [{"data": [1]}]}).encode()
    ok = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        % len(body)
        + body
    )
    if args.chunked:
        half = len(body) // 2
        ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        ok += b"transfer-encoding: chunked\r\n\r\n"
        ok += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            half,
            body[:half],
            len(body) - half,
            body[half:],
        )
    split = ok.index(b"\r\n\r\n") + 4
    ready = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    unready = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
    missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal in_flight
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await r.readexactly(length)
                if head.startswith(b"GET /v2/health/ready"):
                    w.write(ready if loop.time() >= ready_at and not stop.is_set() else unready)
                elif b"/infer " in head[:80]:
                    in_flight += 1
                    if args.latency_ms:
                        await asyncio.sleep(args.latency_ms / 1000)
                    if args.split_ms:
                        w.write(ok[:split])
                        await w.drain()
                        await asyncio.sleep(args.split_ms / 1000)
                        w.write(ok[split:])
                    else:
                        w.write(ok)
                    in_flight -= 1
                else:
                    w.write(missing)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(handle, args.host, args.port, backlog=1024)
    if args.crash_after:
        loop.call_later(args.crash_after, os._exit, 3)
    await stop.wait()
    server.close()
    deadline = loop.time() + 10
    while in_flight and loop.time() < deadline:
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    main()
