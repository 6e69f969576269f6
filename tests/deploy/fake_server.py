"""A tiny, fast model-server stand-in for deploy tests and the router benchmark.

Answers ``GET /v2/health/ready`` (200 once ready) and ``POST /v2/models/m/infer`` (a
fixed JSON with this server's id). SIGTERM: stop accepting, finish in-flight, exit 0.

    python fake_server.py --port P [--id X] [--fail-start] [--crash-after S]
                          [--ready-delay S] [--latency-ms MS] [--split-ms MS] [--chunked]
                          [--echo [--disagree-every N]] [--gate PATH]

``--split-ms`` writes an inference answer's head and body apart (MS between them);
``--chunked`` sends it with chunked transfer encoding instead of a Content-Length.
``--echo`` makes a "model" of the request instead: V2 ``infer`` answers outputs ``label``
(each input value as an integer) and ``score`` (value / 4), ``/invocations`` and KServe
V1 ``:predict`` answer ``{"predictions": [labels]}`` for ``instances``; with
``--disagree-every N`` the label of every value divisible by N is off by one (a canary that
disagrees with the stable model on a known share of inputs). ``--gate PATH``: inferences
wait until PATH exists (a reply held back for as long as a test wants).
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
    p.add_argument("--echo", action="store_true", help="answer from the request's values")
    p.add_argument("--disagree-every", type=int, default=0)
    p.add_argument("--gate", default="", help="inferences wait until this file exists")
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
                payload = await r.readexactly(length) if length else b""
                if head.startswith(b"GET /v2/health/ready"):
                    w.write(ready if loop.time() >= ready_at and not stop.is_set() else unready)
                elif args.echo and _is_inference(head):
                    in_flight += 1
                    await _gate(args.gate)
                    if args.latency_ms:
                        await asyncio.sleep(args.latency_ms / 1000)
                    w.write(_echo(head, payload, args.id, args.disagree_every))
                    in_flight -= 1
                elif b"/infer " in head[:80]:
                    in_flight += 1
                    await _gate(args.gate)
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


def _is_inference(head: bytes) -> bool:
    line = head[: head.find(b"\r\n")]
    return line.startswith(b"POST ") and (
        b"/infer " in line or b"/invocations " in line or b":predict " in line
    )


async def _gate(path: str) -> None:
    while path and not os.path.exists(path):
        await asyncio.sleep(0.01)


def _echo(head: bytes, payload: bytes, server_id: str, disagree_every: int) -> bytes:
    """The answer of a model that predicts each input value (off by one every N)."""
    request = json.loads(payload)

    def label(v: float) -> int:
        n = int(v)
        return n + 1 if disagree_every and n % disagree_every == 0 else n

    if b"/infer " in head[: head.find(b"\r\n")]:
        values = request["inputs"][0]["data"]
        n = len(values)
        labels, scores = [label(v) for v in values], [v / 4 for v in values]
        answer: dict[str, object] = {"model_name": "m", "id": server_id, "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [n], "data": labels},
            {"name": "score", "datatype": "FP64", "shape": [n], "data": scores},
        ]}  # fmt: skip
    else:
        answer = {"predictions": [label(v) for v in request["instances"]], "id": server_id}
    body = json.dumps(answer).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        % len(body)
        + body
    )


if __name__ == "__main__":
    main()
