"""The model server's Python cost per request, without sockets: the real worker stack in-process.

    .venv/bin/python benchmarks/serving/hotpath.py BUNDLE [--conc 64] [--waves 400] [--repeat 5]
        [--no-batching] [--profile out.pstats] [--body payload.json]

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
stage (module of the function doing the work).
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
                body: bytes, profile: str | None) -> dict[str, Any]:
    model = load_model(bundle)
    name = bundle.name.removeprefix("loopline_")
    served = ServedModel(name=str(name), version="1", model=model, batching=batching,
                         default=True)
    from loopline.serving import create_app

    app = create_app([served], options=ServerOptions())
    server = make_server(app)
    config = server.config
    if not config.loaded:
        config.load()
    await app.startup()
    loop = asyncio.get_running_loop()
    state = server.server_state
    done = 0
    all_done = asyncio.Event()
    answers: list[bytes] = []

    def on_write(data: Any) -> None:
        nonlocal done
        b = bytes(data)
        if b.startswith(b"HTTP/1.1"):
            done += 1
            if done == conc:
                all_done.set()
            if len(answers) < 2:
                answers.append(b)

    protocols = []
    for _ in range(conc):
        p = config.http_protocol_class(config=config, server_state=state, app_state={},
                                       _loop=loop)
        p.connection_made(FakeTransport(on_write))
        protocols.append(p)
    msg = request(body, f"/v2/models/{served.name}/infer")

    async def one_run(n_waves: int) -> float:
        nonlocal done
        gc.collect()
        t0 = time.process_time()
        for _ in range(n_waves):
            done = 0
            all_done.clear()
            for p in protocols:
                p.data_received(msg)
            await all_done.wait()
        return (time.process_time() - t0) / (n_waves * conc) * 1e6

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
    for p in protocols:
        p.transport.close()
    await app.shutdown()
    return {
        "model": served.name,
        "batching": batching,
        "conc": conc,
        "waves": waves,
        "us_per_request_runs": [round(r, 1) for r in runs],
        "us_per_request_best": round(min(runs), 1),
        "answer": answers[0][-160:].decode(errors="replace") if answers else None,
        "profile": prof_file,
    }


STAGES = [  # (stage, substrings of "file:function"), first match wins
    ("sklearn predict", ("sklearn/",)),
    ("numpy", ("numpy/",)),
    ("batcher", ("serving/batcher.py",)),
    ("loopline model call (bundle)", ("bundle/",)),
    ("decode/encode V2 (protocols)", ("serving/protocols.py",)),
    ("metrics", ("serving/metrics.py",)),
    ("prediction log", ("prediction_log.py",)),
    ("app routing + _infer", ("serving/app.py",)),
    ("body read + respond (http.py)", ("serving/http.py",)),
    ("limited protocol (connection.py)", ("serving/connection.py",)),
    ("uvicorn httptools protocol + ASGI glue", ("uvicorn/",)),
    ("asyncio/uvloop scheduling", ("asyncio/", "uvloop", "<built-in method _asyncio", "{method 'run")),
]


def stages(profile: str, requests: int) -> list[tuple[str, float]]:
    """Self time per stage, µs per request, from cProfile stats (builtins are charged to the
    stage of their caller when they have a single caller stage)."""
    st = pstats.Stats(profile)
    totals: dict[str, float] = {}

    def stage_of(key: tuple[str, int, str]) -> str | None:
        label = f"{key[0]}:{key[2]}"
        for name, subs in STAGES:
            if any(s in label for s in subs):
                return name
        return None

    for key, (_cc, _nc, tt, _ct, callers) in st.stats.items():  # type: ignore[attr-defined]
        name = stage_of(key)
        if name is None and key[0] == "~":  # a builtin: charge it to its callers' stages
            total_ct = sum(v[3] if len(v) > 3 else 0 for v in callers.values()) or 1.0
            for ck, cv in callers.items():
                cn = stage_of(ck) or "other"
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
    a = ap.parse_args()
    body_file = a.body or (a.bundle.parent / "payload" / "loopline_1.json")
    body = body_file.read_bytes()
    uvloop.install()
    res = asyncio.run(drive(a.bundle, a.conc, a.waves, a.repeat, not a.no_batching, body,
                            a.profile))
    print(json.dumps(res))
    if a.profile and a.stages:
        for name, us in stages(a.profile, a.waves * a.conc):
            print(f"  {name:42s} {us:7.1f} µs/request (profiled, inflated by cProfile)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
