"""The control plane as its own process: token and endpoint files, SIGTERM and ``kill -9``
leave replicas and routers serving, and a restart re-adopts them and finishes the rollout."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.controlplane.live import (
    deployment,
    infer_body,
    kill_all_processes,
    platform_settings,
    register_models,
)
from tests.controlplane.load import LoadGenerator

from loopline.controlplane.build import open_state_store
from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.files import ControlPlaneFiles, Endpoint
from loopline.platform import Platform
from loopline.settings import Settings


class Daemon:
    """Starts ``loopline controlplane`` processes for one home and cleans up after them."""

    def __init__(self, base: Path) -> None:
        self.settings: Settings = platform_settings(base)
        self.files = ControlPlaneFiles(self.settings.home)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
        self.env.update(
            LOOPLINE_DB_URL=self.settings.db_url,
            LOOPLINE_ARTIFACT_ROOT=self.settings.artifact_root,
            LOOPLINE_HOME=str(self.settings.home),
        )
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Endpoint:
        log = open(self.settings.home.parent / "cp.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopline.cli", "controlplane"],
            env=self.env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            endpoint = self.files.read_endpoint()
            if endpoint is not None and endpoint.pid == proc.pid:
                return endpoint
            if proc.poll() is not None:
                raise AssertionError(f"control plane exited with {proc.returncode}")
            time.sleep(0.05)
        raise AssertionError("control plane did not write endpoint.json within 60 s")

    def client(self, endpoint: Endpoint) -> ControlPlaneClient:
        return ControlPlaneClient(endpoint.url, token=self.files.read_token(), timeout=60)

    def cleanup(self) -> None:
        endpoint = self.files.live_endpoint()
        if endpoint is not None:
            with self.client(endpoint) as c:
                for d in c.list_deployments():
                    c.delete(d.metadata.name, timeout=60)
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        with Platform(self.settings) as platform:
            kill_all_processes(open_state_store(platform))


@pytest.fixture
def daemon(tmp_path: Path, bc_bundles: list[Path]) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    with Platform(d.settings) as platform:
        register_models(platform, bc_bundles)
    try:
        yield d
    finally:
        d.cleanup()


def wait_rollout(client: ControlPlaneClient, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (status := client.rollout_status(name)).done:
        assert not status.failed, status.message
        assert time.monotonic() < deadline, f"rollout not done in {timeout} s: {status}"
        time.sleep(0.2)


def test_token_endpoint_and_auth_of_a_real_control_plane(daemon: Daemon) -> None:
    endpoint = daemon.start()
    assert stat.S_IMODE(daemon.files.token_path.stat().st_mode) == 0o600
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert endpoint.is_alive()
    r = httpx.post(endpoint.url + "/v1/deployments", json=deployment("x", "bc/1", 1))
    assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
    assert httpx.get(endpoint.url + "/openapi.json").json()["info"]["title"]
    second = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "controlplane"],
        env=daemon.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 1
    assert "Another control plane is already running" in second.stderr
    daemon.procs[0].send_signal(signal.SIGTERM)
    assert daemon.procs[0].wait(30) == 0
    assert daemon.files.read_endpoint() is None


@pytest.mark.slow
def test_control_plane_kill_and_sigterm_leave_serving_and_restarts_carry_on(
    daemon: Daemon,
) -> None:
    first = daemon.start()
    with daemon.client(first) as c:
        c.apply(deployment("crash", "bc/1", 1))
        wait_rollout(c, "crash")
        router = c.get_deployment("crash").status.router
        assert router is not None
        url = router.url + "/v2/models/bc/infer"
        with LoadGenerator(url, infer_body()) as load:
            c.set_model("crash", "bc/2")
            deadline = time.monotonic() + 30
            while not (starting := [r for r in c.replicas("crash") if r.model == "bc/2"]):
                assert time.monotonic() < deadline, "no bc/2 replica was started"
                time.sleep(0.05)
            # Mid-rollout: the bc/2 replica is starting, bc/1 still serves.
            os.kill(first.pid, signal.SIGKILL)
            daemon.procs[0].wait(10)
            served_before = load.report.ok
            time.sleep(1.5)
            assert load.report.ok > served_before  # the router and replica keep serving
            second = daemon.start()
            with daemon.client(second) as c2:
                wait_rollout(c2, "crash")
                after = c2.get_deployment("crash")
                deadline = time.monotonic() + 60
                while len(replicas := c2.replicas("crash")) > 1:  # the bc/1 one drains
                    assert time.monotonic() < deadline, replicas
                    time.sleep(0.2)
            time.sleep(0.5)
    print(f"kill -9 control plane mid-rollout: {load.report}")
    assert load.report.failed == 0, load.report.errors
    assert load.report.versions["1"] > 0 and load.report.versions["2"] > 0
    # re-adopted, not restarted
    assert after.status.router is not None and after.status.router.pid == router.pid
    # the replica started before the crash was re-adopted, not started a second time
    assert [(r.model, r.pid) for r in replicas] == [("bc/2", starting[0].pid)]

    # SIGTERM: a clean exit that leaves the replica and the router serving ...
    os.kill(second.pid, signal.SIGTERM)
    assert daemon.procs[1].wait(30) == 0
    assert daemon.files.read_endpoint() is None
    assert httpx.post(url, json=infer_body(), timeout=10).json()["model_version"] == "2"
    # ... which the next start re-adopts as they are.
    third = daemon.start()
    with daemon.client(third) as c3:
        time.sleep(1.5)  # a few syncs
        again = c3.get_deployment("crash").status.router
        assert again is not None and again.pid == router.pid
        assert [(r.pid, r.ready) for r in c3.replicas("crash")] == [
            (starting[0].pid, True)
        ]
