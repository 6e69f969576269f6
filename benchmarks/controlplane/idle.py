"""Control-plane cost of idle deployments: CPU share and per-tick latency of the sync loop.

N deployments × R replicas, every replica a real process (``tests/deploy/fake_server.py``,
the light model-server stand-in, started by ``LocalEngine``) with a real router per
deployment (``LocalRouting``), state in a SQLite file (the metadata database). Once every
deployment is available, the control plane's tick (``ControlPlane.sync_once``, the tick its
``run`` loop repeats) runs every ``--interval`` seconds for ``--duration`` seconds, in this
process; the result is this process's CPU time / wall time and the tick latency p50/p99.
The replicas and routers are other processes: their CPU is not counted.

    .venv/bin/python benchmarks/controlplane/idle.py --duration 60

Runs against whatever ``loopline`` it imports, so the same script measures an older tree:

    git worktree add /tmp/loopline-before 2d98009
    PYTHONPATH=/tmp/loopline-before/src .venv/bin/python benchmarks/controlplane/idle.py

Bounded: set-up gives up after ``--setup-timeout`` s, and every replica and router it
started is killed on the way out (also on errors and Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import loopline
from loopline.artifacts.fs import FsspecArtifactStore
from loopline.controlplane.events import EventLog
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.service import ControlPlane
from loopline.deploy import (
    DeploymentManager,
    DeploymentSpec,
    LocalEngine,
    LocalRouting,
    SqlDeploymentStateStore,
    Template,
)
from loopline.metadata import open_store
from loopline.registry.registry import ModelRegistry

FAKE_SERVER = Path(__file__).resolve().parents[2] / "tests" / "deploy" / "fake_server.py"


def replica_engine(log_dir: Path) -> LocalEngine:
    """A LocalEngine whose replicas are fake servers, through whichever launch hook this
    version of loopline has (an ``argv`` function, or an older argv template)."""
    if "argv" in inspect.signature(LocalEngine).parameters:

        def argv(replica_id: str, command: Any) -> list[str]:
            return [sys.executable, str(FAKE_SERVER), "--port", str(command.port),
                    "--id", replica_id]  # fmt: skip

        return LocalEngine(log_dir=log_dir, argv=argv)  # type: ignore[call-arg]
    template = (sys.executable, str(FAKE_SERVER), "--port", "{port}", "--id", "{replica_id}")
    return LocalEngine(command=template, log_dir=log_dir)  # type: ignore[call-arg]


def kill_everything(store: SqlDeploymentStateStore) -> int:
    """SIGKILL the session of every replica and router the store knows; how many."""
    killed = 0
    for d in store.list_deployments():
        pids = [r.pid for r in store.list_replicas(d.name) if r.pid]
        if d.router is not None:
            pids.append(d.router.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed += 1
    return killed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deployments", type=int, default=50)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=5.0, help="idle seconds before measuring")
    p.add_argument("--interval", type=float, default=0.25, help="seconds between ticks")
    p.add_argument("--setup-timeout", type=float, default=300.0)
    p.add_argument("--ready-probe-period", type=float, default=None,
                   help="DeploymentManager(ready_probe_period=...) (versions that have it)")
    p.add_argument("--label", default="", help="a name for this run in the output")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="loopline-idle-"))
    meta = open_store(f"sqlite:///{tmp / 'metadata.db'}")
    store = SqlDeploymentStateStore.from_metadata(meta)
    engine = replica_engine(tmp / "logs")
    extra = {} if args.ready_probe_period is None else {"ready_probe_period": args.ready_probe_period}
    manager = DeploymentManager(store=store, engine=engine, routing=LocalRouting(engine), **extra)
    registry = ModelRegistry(meta, FsspecArtifactStore(str(tmp / "artifacts")))
    service = ControlPlane(manager=manager, pinner=ModelPinner(registry=registry, metadata=meta),
                           events=EventLog(clock=time.time))  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        names = [f"d{i:03d}" for i in range(args.deployments)]
        for name in names:
            manager.apply(DeploymentSpec(name=name, template=Template(model="m/1"),
                                         replicas=args.replicas))  # fmt: skip
        t0 = time.monotonic()
        while True:  # the control plane's loop brings every deployment up
            service.sync_once()
            up = sum(d.status.available_replicas == args.replicas
                     for d in store.list_deployments())  # fmt: skip
            if up == len(names):
                break
            if time.monotonic() - t0 > args.setup_timeout or stop.is_set():
                raise SystemExit(f"set-up: only {up}/{len(names)} deployments came up")
            stop.wait(args.interval)
        setup_s = time.monotonic() - t0
        ticks: list[float] = []
        cpu0 = wall0 = 0.0
        events0 = 0
        start = time.monotonic()
        measuring = False
        while not stop.is_set():
            now = time.monotonic()
            if not measuring and now - start >= args.warmup:
                measuring, cpu0, wall0 = True, time.process_time(), now
                events0 = sum(len(service.events.list(n)) for n in names)
            if measuring and now - wall0 >= args.duration:
                break
            began = time.perf_counter()
            service.sync_once()
            if measuring:
                ticks.append(time.perf_counter() - began)
            stop.wait(args.interval)
        wall = time.monotonic() - wall0
        cpu = time.process_time() - cpu0
        replicas_ready = sum(d.status.ready_replicas for d in store.list_deployments())
        # Idle means the controller did nothing: every action of a sync becomes an event.
        events = sum(len(service.events.list(n)) for n in names) - events0
        result = {
            "label": args.label,
            "loopline": str(Path(loopline.__file__).resolve().parents[1]),
            "deployments": args.deployments,
            "replicas": args.replicas,
            "ready_replicas": replicas_ready,
            "interval_s": args.interval,
        "ready_probe_period_s": getattr(getattr(manager, "observer", None), "ready_probe_period",
                                        None),
            "setup_s": round(setup_s, 1),
            "measured_s": round(wall, 1),
            "ticks": len(ticks),
        "events_while_measuring": events,
            "cpu_fraction_of_a_core": round(cpu / wall, 4),
            "tick_p50_ms": round(1000 * statistics.median(ticks), 2),
            "tick_p99_ms": round(1000 * percentile(ticks, 0.99), 2),
            "tick_max_ms": round(1000 * max(ticks), 2),
        }
        print(json.dumps(result))
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        killed = kill_everything(store)
        print(f"cleaned up {killed} processes; logs in {tmp / 'logs'}", file=sys.stderr)
        meta.close()


if __name__ == "__main__":
    main()
