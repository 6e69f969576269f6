"""The router's Python cost per request, without sockets: both protocols driven in-process.

    .venv/bin/python benchmarks/router/hotpath.py [--requests 200000] [--repeat 7]
        [--cases plain weighted mirror header new-answers new-heads]
    PYTHONPATH=OTHER/src .venv/bin/python benchmarks/router/hotpath.py   # another tree

A :class:`ClientProtocol` and one pooled :class:`UpstreamProtocol` per backend get fake
transports (a write is a no-op); each request is one ``data_received`` on the client side
(a plain V2 request, 147 bytes) and one on the upstream side (a plain 200 answer), so what
is timed is exactly the Python the router runs per request: framing, routing, metrics,
completion. Mirrored copies go to a fake mirror connection answered at once. Figures are
µs per request (``process_time``), the best of ``--repeat`` runs (the least disturbed by
other processes). Works against the router before the route table existed too (``plain``
and ``weighted`` only), to compare two trees on the same machine.

Every request and answer of ``plain`` … ``header`` has the same head, as with wrk and the
fake backends. ``new-answers`` is ``plain`` with a different ``x-request-id`` header in every
answer (as real replicas send: uvicorn's request id, a ``date``), ``new-heads`` with one in
every request too: heads that never repeat, so the router can never frame them by a head it
remembers.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from loopline.deploy.router.proxy import Router

BODY = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
REQUEST = (
    b"POST /v2/models/m/infer HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
ANSWER_BODY = (
    b'{"model_name":"m","id":"b0","outputs":[{"name":"y","datatype":"INT64","shape":[1],'
    b'"data":[1]}]}'
)
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(ANSWER_BODY), ANSWER_BODY)  # fmt: skip
# the mirror's answer: the same prediction from another replica (its id differs)
MIRROR_ANSWER = ANSWER.replace(b'"id":"b0"', b'"id":"b1"')


class FakeTransport(asyncio.Transport):
    def __init__(self, on_write: Any = None) -> None:
        super().__init__()
        self.on_write = on_write

    def write(self, data: Any) -> None:
        if self.on_write is not None:
            self.on_write()

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def numbered(message: bytes, n: int) -> list[bytes]:
    """``n`` copies of ``message``, each with its own ``x-request-id`` header."""
    line = message.find(b"\r\n") + 2
    return [message[:line] + b"x-request-id: %032x\r\n" % i + message[line:] for i in range(n)]


def table(case: str, ports: tuple[int, int]) -> dict[str, Any]:
    plain = case in ("plain", "new-answers", "new-heads")
    revs = ("r", "r") if plain else ("r1", "r2")
    backends = [
        {"id": f"b{i}", "host": "127.0.0.1", "port": p, "revision": r}
        for i, (p, r) in enumerate(zip(ports, revs, strict=True))
    ]
    doc: dict[str, Any] = {
        "backends": backends,
        "weights": None if plain else {"r1": 80, "r2": 20},
    }
    if case == "mirror":
        doc["mirror"] = {"revision": "r2", "percent": 20}
    if case == "header":
        doc["headerRoutes"] = [{"name": "qa", "revision": "r2", "match": [
            {"headerName": "x-env", "headerValue": {"exact": "qa"}}]}]  # fmt: skip
    return doc


def build(case: str) -> tuple[Any, list[Any]]:
    """A router with a client connection and one pooled connection per backend."""
    from loopline.deploy.router.upstream import UpstreamProtocol

    router = Router("bench")
    doc = table(case, (9001, 9002))
    if hasattr(router, "set_routes"):
        from loopline.deploy.router.wire import table_from_json

        router.set_routes(table_from_json(doc))
    else:  # the router before route tables
        router.set_backends(doc["backends"], doc["weights"])
    ups = []
    for b in router.balancer.backends.values():
        for _ in range(2):
            up = UpstreamProtocol(router, b)
            up.connection_made(FakeTransport())
            b.pool.append(up)
            ups.append(up)
        if case == "mirror":
            from loopline.deploy.router.mirror import MirrorProtocol

            mp = MirrorProtocol(router.mirroring, b)
            # the copy is answered as soon as it is written
            mp.connection_made(FakeTransport(on_write=lambda mp=mp: mp.data_received(MIRROR_ANSWER)))
            b.mirror_pool.append(mp)
    client = router.protocol()
    client.connection_made(FakeTransport())
    return router, [client, ups]


def run(case: str, n: int) -> float:
    _, (client, _) = build(case)
    feed = client.data_received
    requests = numbered(REQUEST, n) if case == "new-heads" else [REQUEST] * n
    answers = numbered(ANSWER, n) if case in ("new-answers", "new-heads") else [ANSWER] * n
    t0 = time.process_time()
    for request, answer in zip(requests, answers, strict=True):
        feed(request)
        client.upstream.data_received(answer)  # the connection the request went out on
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--cases", nargs="+",
        default=["plain", "weighted", "mirror", "header", "new-answers", "new-heads"],
    )  # fmt: skip
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # some paths look the loop up; nothing is scheduled on it
    for case in args.cases:
        if case in ("mirror", "header") and not hasattr(Router, "set_routes"):
            continue
        best = min(run(case, args.requests) for _ in range(args.repeat))
        print(f"{case:9} {best:6.2f} µs/request")


if __name__ == "__main__":
    main()
