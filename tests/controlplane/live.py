"""A live local cluster for the reliability tests: the real control plane (API + sync loop
in this process) driving real ``loopline serve`` replicas and real routers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from sklearn.datasets import load_breast_cancer
from tests.controlplane.conftest import TOKEN, publish_bundle, register_bc

from loopline.controlplane.api import create_app
from loopline.controlplane.build import build_controlplane
from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.service import ControlPlane
from loopline.controlplane.wire_codec import to_json
from loopline.deploy import LocalEngine
from loopline.deploy.state import DeploymentStateStore
from loopline.platform import Platform
from loopline.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def infer_body() -> dict[str, Any]:
    x = load_breast_cancer(return_X_y=True)[0][:2]
    return {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP64",
                        "data": np.asarray(x).ravel().tolist()}]}  # fmt: skip


def deployment(name: str, model: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"model": model, "replicas": replicas, **spec},
    }


def platform_settings(base: Path) -> Settings:
    return Settings.from_env(
        {
            "LOOPLINE_DB_URL": f"sqlite:///{base}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(base / "artifacts"),
            "LOOPLINE_HOME": str(base / "home"),
        }
    )


def register_models(platform: Platform, bundles: list[Path], extra: Sequence[Path] = ()) -> None:
    """bc versions 1 and 2 (champion → 1), version 3 whose bytes were damaged after
    registration (its replicas exit at start: the digest no longer matches), then one
    version per ``extra`` bundle (4, 5, …)."""
    registry = register_bc(platform.metadata, platform.artifacts, bundles)
    art = publish_bundle(platform.metadata, platform.artifacts, bundles[0])
    registry.register("bc", art, who="test", why="broken on purpose")
    with platform.artifacts.open_local(platform.metadata.get_artifact(art).uri) as local:
        with open(Path(local) / "MANIFEST.damaged", "w") as f:
            f.write("bytes that were not registered\n")
    for bundle in extra:
        art = publish_bundle(platform.metadata, platform.artifacts, bundle)
        registry.register("bc", art, who="test", why=f"bad on purpose: {bundle.name}")


@dataclass
class LiveCluster:
    client: ControlPlaneClient
    service: ControlPlane
    platform: Platform

    def wait_rollout(self, name: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            status = to_json(self.client.rollout_status(name))
            if status["done"]:
                return status
            if status["failed"]:
                raise AssertionError(f"rollout of {name} failed: {status['message']}")
            if time.monotonic() > deadline:
                raise AssertionError(f"rollout of {name} not done in {timeout} s: {status}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def wait_for(self, what: str, check: Any, timeout: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def router_url(self, name: str) -> str:
        d = self.wait_for(
            f"the router of {name}",
            lambda: (r := self.client.get_deployment(name).status.router) and r.url,
        )
        return f"{d}/v2/models/bc/infer"


def kill_all_processes(store: DeploymentStateStore) -> None:
    """Last-resort cleanup: SIGKILL every replica and router the store still knows."""
    for d in store.list_deployments():
        pids = [r.pid for r in store.list_replicas(d.name) if r.pid]
        if d.router is not None:
            pids.append(d.router.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def live_cluster(
    base: Path,
    bundles: list[Path],
    *,
    extra: Sequence[Path] = (),
    autoscale_period: float = 15.0,
) -> Iterator[LiveCluster]:
    """The control plane as ``loopline controlplane`` builds it (state in the metadata
    database), with its API on a loopback port of this process. ``extra`` bundles are
    registered as ``bc/4``, ``bc/5``, …; replicas can import this repository's ``tests``
    package (python-flavor test models load from it, as a project's own classes would)."""
    platform = Platform(platform_settings(base))
    register_models(platform, bundles, extra)
    service = build_controlplane(
        platform,
        drain_timeout=10.0,
        stop_grace=5.0,
        graceful_timeout=10.0,
        autoscale_period=autoscale_period,
    )
    engine = service.manager.engine
    if isinstance(engine, LocalEngine):
        path = os.environ.get("PYTHONPATH")
        engine.env["PYTHONPATH"] = str(REPO) if not path else f"{REPO}{os.pathsep}{path}"
        # The operator trusts the python-flavor test model's loader (docs/security.md).
        engine.env["LOOPLINE_TRUSTED_LOADERS"] = "tests.controlplane.brittle:Brittle"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(service, token=TOKEN), log_level="warning", lifespan="off")
    )
    api = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    stop = threading.Event()
    loop = threading.Thread(target=service.run, args=(stop, 0.2))
    api.start()
    loop.start()
    client = ControlPlaneClient(f"http://127.0.0.1:{port}", token=TOKEN, timeout=60.0)
    try:
        while not server.started:
            time.sleep(0.01)
        yield LiveCluster(client, service, platform)
    finally:
        try:
            for d in client.list_deployments():
                client.delete(d.metadata.name, timeout=60)
        finally:
            stop.set()
            loop.join(30)
            server.should_exit = True
            api.join(15)
            sock.close()
            client.close()
            kill_all_processes(service.store)
            service.manager.close(timeout=10)
            platform.close()
