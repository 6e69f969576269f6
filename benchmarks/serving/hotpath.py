"""The model server's Python cost per request, without sockets: the real worker stack in-process.

    .venv/bin/python benchmarks/serving/hotpath.py BUNDLE [--conc 64] [--waves 400] [--repeat 5]
        [--no-batching] [--asgi] [--profile out.pstats] [--stages] [--body payload.json]
        [--stream] [--seed-ms 3] [--inline-below-ms 0]

One worker's stack as ``loopline serve BUNDLE --batching`` builds it (``make_server``: uvicorn's
config with loopline's limited httptools protocol, the ``ModelServerApp`` with its batcher and
metrics) on uvloop, with ``--conc`` connections on fake transports (a write is recorded, not
sent). One *wave* feeds one V2 request to every connection (one ``data_received`` each, as a
closed loop of ``--conc`` clients does), then runs the loop until every connection has its
answer. What is timed (``process_time``) is exactly the Python one request costs: parsing, the
ASGI glue, JSON, the signature check, the batcher, the model call (1/conc of a conc-row
batch), metrics, the response. Missing against a served request: the kernel's share (epoll,
recv, send on loopback) and wrk's. Reports µs per request (best of ``--repeat`` runs);
``--profile`` writes cProfile stats of one extra run, and ``--stages`` prints them grouped by
stage (the function doing the work, see ``STAGES``), scaled to the unprofiled time. ``--asgi``
sends every request through the ASGI app (the protocol built with ``direct=False``), as before
the direct inference path (``loopline.serving.direct``). ``--stream`` replaces the waves by
``--conc`` clients that each send their next request as soon as theirs is answered (as wrk's
connections: requests arrive while a batch runs), ``--waves × --conc`` requests per run;
``--seed-ms`` starts the batcher as if its last 64 batches took that long (in its thread);
``--inline-below-ms`` sets the batcher's threshold (0: every batch in its thread). The output
says where the batcher now runs a ``--conc``-row batch (``runs_inline``) and what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pathlib
import pstats
import sys
import time
from dataclasses import replace
from typing import Any

import uvloop

from loopline.bundle import load_model
from loopline.serving import ServedModel
from loopline.serving.options import ServerOptions
from loopline.serving.runner import make_server

HERE = pathlib.Path(__file__).resolve().parent


class FakeTransport(asyncio.Transport):
    def __init__(self, on_write: Any) -> None:
        super().__init__()
        self.on_write = on_write
        self.closing = False

    def write(self, data: Any) -> None:
        self.on_write(data)

    def writelines(self, chunks: Any) -> None:
        for c in chunks:
            self.on_write(c)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("127.0.0.1", 40000)
        if name == "sockname":
            return ("127.0.0.1", 18000)
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def request(body: bytes, path: str) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:18000\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
    )


async def drive(bundle: pathlib.Path, conc: int, waves: int, repeat: int, batching: bool,
                body: bytes, profile: str | None, asgi: bool = False,
                stream: bool = False, inline_below_ms: float | None = None,
                seed_ms: float | None = None) -> dict[str, Any]:
    model = load_model(bundle)
    name = bundle.name.removeprefix("loopline_")
    served = ServedModel(name=str(name), version="1", model=model, batching=batching,
                         default=True)
    from loopline.serving import create_app

    options = ServerOptions()
    if inline_below_ms is not None:  # 0: every batch in the thread, as a batcher stuck there
        options = replace(options, batching=replace(options.batching,
                                                    inline_below_ms=inline_below_ms))
    app = create_app([served], options=options)
    server = make_server(app)
    config = server.config
    if not config.loaded:
        config.load()
    await app.startup()
    loop = asyncio.get_running_loop()
    state = server.server_state
    done = 0
    target = conc  # answers that end the wave (--stream: the run)
    sent = 0
    all_done = asyncio.Event()
    answers: list[bytes] = []

    def on_write(i: int, data: Any) -> None:
        nonlocal done, sent
        b = bytes(data)
        if b.startswith(b"HTTP/1.1"):
            done += 1
            if done == target:
                all_done.set()
            elif stream and sent < target:  # this client sends its next request at once
                sent += 1
                loop.call_soon(protocols[i].data_received, msg)
            if len(answers) < 2:
                answers.append(b)

    protocols = []
    factory = config.http_protocol_class
    if asgi:
        from loopline.serving.connection import protocol_class

        factory = protocol_class(app.options.http, direct=False)
    for i in range(conc):
        p = factory(config=config, server_state=state, app_state={}, _loop=loop)
        p.connection_made(FakeTransport(lambda data, i=i: on_write(i, data)))
        protocols.append(p)
    msg = request(body, f"/v2/models/{served.name}/infer")

    async def one_run(n_waves: int) -> float:
        nonlocal done, sent, target
        gc.collect()
        t0 = time.process_time()
        if stream:  # every client in a closed loop of its own, as wrk's connections
            done, sent, target = 0, conc, n_waves * conc
            all_done.clear()
            for p in protocols:
                p.data_received(msg)
            await all_done.wait()
            return (time.process_time() - t0) / target * 1e6
        for _ in range(n_waves):
            done = 0
            all_done.clear()
            for p in protocols:
                p.data_received(msg)
            await all_done.wait()
        return (time.process_time() - t0) / (n_waves * conc) * 1e6

    if seed_ms is not None:
        _seed(app, served.name, conc, seed_ms)
    await one_run(max(20, waves // 10))  # warm-up: the batcher's latency model fills
    runs = [await one_run(waves) for _ in range(repeat)]
    prof_file = None
    if profile:
        pr = cProfile.Profile()
        pr.enable()
        await one_run(waves)
        pr.disable()
        pr.dump_stats(profile)
        prof_file = profile
    placement = _placement(app, served.name, conc)
    for p in protocols:
        p.transport.close()
    await app.shutdown()
    return {
        "model": served.name,
        "batching": batching,
        "path": "asgi" if asgi else "direct",
        "conc": conc,
        "waves": waves,
        "us_per_request_runs": [round(r, 1) for r in runs],
        "us_per_request_best": round(min(runs), 1),
        "answer": answers[0][-160:].decode(errors="replace") if answers else None,
        **placement,
        "profile": prof_file,
    }


def _seed(app: Any, name: str, rows: int, ms: float) -> None:
    """Start the batcher where a burst of load leaves it: 64 batches that took ``ms``, in its
    thread (recorded in what each version decides on)."""
    from loopline.serving.routes import v2_entry

    b = v2_entry(app.table, f"/v2/models/{name}/infer")[0].batcher
    for model in (b.latency, getattr(b, "loop_cost", None)):
        for _ in range(64 if model is not None else 0):
            model.record(rows, ms / 1000)


def _placement(app: Any, name: str, rows: int) -> dict[str, Any]:
    """Where the batcher now runs a ``rows``-row batch, and what it measured: the wall time
    seen from the loop (``latency``, what the batcher decided on before) and, where the code
    has it, what a call costs the loop (``loop_cost``: CPU time in the thread)."""
    from loopline.serving.routes import v2_entry

    entry, _ = v2_entry(app.table, f"/v2/models/{name}/infer")
    b = entry.batcher
    if b is None:
        return {}
    limit = b._opts.inline_below_ms
    wall_ms = b.latency.predict(rows) * 1000
    cost = getattr(b, "loop_cost", None)
    out: dict[str, Any] = {"batch_wall_ms": round(wall_ms, 3)}
    if cost is None:  # before: decided on the loop's wall time
        out["runs_inline"] = len(b.latency.samples) >= 4 and wall_ms < limit
    else:
        out["batch_loop_cost_ms"] = round(cost.predict(rows) * 1000, 3)
        out["runs_inline"] = len(cost.samples) >= 4 and cost.predict(rows) * 1000 < limit
    return out


_CALLBACKS = ("on_message_begin", "on_url", "on_header", "on_headers_complete", "on_body",
              "on_message_complete", "data_received")
STAGES: list[tuple[str, list[tuple[str, tuple[str, ...]]]]] = [
    # (stage, [(file substring or "~" for builtins, function names or () for any)]), first wins
    ("benchmark harness (fake transport; excluded)", [("hotpath.py", ())]),
    ("JSON decode (orjson.loads)", [("~", ("<orjson.loads>", "<built-in method orjson.loads>"))]),
    ("JSON encode (orjson.dumps)", [("~", ("<orjson.dumps>", "<built-in method orjson.dumps>"))]),
    ("llhttp parse + parser callbacks", [
        ("~", ("<method 'feed_data' of 'httptools.parser.parser.HttpParser' objects>",
               "<built-in method httptools.parser.parser.parse_url>")),
        ("httptools_impl.py", _CALLBACKS), ("connection.py", _CALLBACKS)]),
    ("ASGI layer: cycle, scope, receive/send messages, app call chain", [
        ("httptools_impl.py", ("__init__", "run_asgi", "send", "receive", "_start_asgi_task")),
        ("serving/app.py", ()), ("serving/http.py", ("read_body", "respond")),
        ("asyncio/locks.py", ())]),
    ("direct path: task start, body wait, response bytes", [
        ("serving/direct.py", ("answer_directly", "_answer", "read")),
        ("connection.py", ("_start_asgi_task",))]),
    ("routing (path → model)", [("serving/routes.py", ()), ("model_table.py", ()),
                                ("serving/direct.py", ("direct_entry",))]),
    ("response complete, keep-alive bookkeeping", [
        ("httptools_impl.py", ("on_response_complete",)),
        ("connection.py", ("on_response_complete",))]),
    ("V2 encode", [("serving/v2.py", ("encode_v2", "_encode_tensor", "_out")),
                   ("serving/protocols.py", ("encode_v2",))]),
    ("V2 decode + signature check", [("serving/v2.py", ()), ("serving/protocols.py", ()),
                                     ("serving/typed_batch.py", ()),
                                     ("serving/binary.py", ()), ("bundle/batch.py", ())]),
    ("batching queue hop", [("serving/batcher.py", ()), ("concurrent/futures", ()),
                            ("threading.py", ()), ("~", ("<method 'put' of '_queue.SimpleQueue' "
                                                         "objects>",))]),
    ("model call", [("bundle/", ()), ("sklearn/", ()), ("numpy/", ())]),
    ("metrics", [("serving/metrics.py", ())]),
    ("request id (uuid4) + prediction log", [("uuid.py", ()), ("prediction_log.py", ()),
                                             ("random.py", ())]),
    ("inference core (status mapping, headers)", [("serving/inference.py", ()),
                                                  ("serving/http.py", ())]),
    ("event loop, tasks, futures", [("asyncio/", ()), ("uvloop", ()), ("~", ())]),
]


def _stage_of(key: tuple[str, int, str]) -> str | None:
    file, _line, func = key
    for name, rules in STAGES:
        for where, funcs in rules:
            if (where == "~" and file == "~") or (where != "~" and where in file):
                if not funcs or func in funcs:
                    return name
    return None


def stages(profile: str, requests: int) -> list[tuple[str, float]]:
    """Self time per stage, µs per request, from cProfile stats. A builtin that no rule names
    is charged to its callers' stages, in proportion to the time each caller spent in it."""
    st = pstats.Stats(profile)
    totals: dict[str, float] = {}
    for key, (_cc, _nc, tt, _ct, callers) in st.stats.items():  # type: ignore[attr-defined]
        name = _stage_of(key)
        if key[0] == "~" and name == "event loop, tasks, futures" and callers:
            total_ct = sum(v[3] if len(v) > 3 else 0 for v in callers.values()) or 1.0
            for ck, cv in callers.items():
                cn = _stage_of(ck) or "other"
                share = (cv[3] if len(cv) > 3 else 0) / total_ct
                totals[cn] = totals.get(cn, 0.0) + tt * share
            continue
        totals[name or "other"] = totals.get(name or "other", 0.0) + tt
    return sorted(((k, v / requests * 1e6) for k, v in totals.items()), key=lambda kv: -kv[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=pathlib.Path)
    ap.add_argument("--conc", type=int, default=64)
    ap.add_argument("--waves", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-batching", action="store_true")
    ap.add_argument("--body", type=pathlib.Path, default=None)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--stages", action="store_true")
    ap.add_argument("--asgi", action="store_true", help="every request through the ASGI app")
    ap.add_argument("--stream", action="store_true",
                    help="each client sends its next request as soon as it is answered (as "
                         "wrk), instead of waves: requests arrive while a batch runs")
    ap.add_argument("--seed-ms", type=float, default=None,
                    help="start the batcher as if its last 64 batches took this long")
    ap.add_argument("--inline-below-ms", type=float, default=None,
                    help="the batcher's inline_below_ms (0: every batch in its thread)")
    a = ap.parse_args()
    body_file = a.body or (a.bundle.parent / "payload" / "loopline_1.json")
    body = body_file.read_bytes()
    uvloop.install()
    res = asyncio.run(drive(a.bundle, a.conc, a.waves, a.repeat, not a.no_batching, body,
                            a.profile, a.asgi, a.stream, a.inline_below_ms, a.seed_ms))
    print(json.dumps(res))
    if a.profile and a.stages:
        rows = stages(a.profile, a.waves * a.conc)
        harness = sum(us for name, us in rows if name.startswith("benchmark harness"))
        total = sum(us for _, us in rows) - harness
        best = res["us_per_request_best"]
        print(f"  {'stage':62s} {'profiled µs':>11s} {'share':>6s} {'≈ µs unprofiled':>15s}")
        for name, us in rows:
            if name.startswith("benchmark harness"):
                continue
            print(f"  {name:62s} {us:11.1f} {us / total:6.1%} {us / total * best:15.1f}")
        print(f"  {'total (harness excluded)':62s} {total:11.1f} {1:6.1%} {best:15.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
