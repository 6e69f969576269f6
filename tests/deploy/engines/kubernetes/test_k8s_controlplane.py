"""The control plane driving the Kubernetes engine, end to end: a real ``loopline controlplane
--engine kubernetes`` process on 127.0.0.1, pointed at the fake API server with a kubeconfig,
applies a canary through its API, moves it on by itself (weights, a timed pause), waits for
``rollout promote`` at an untimed pause, and promotes it; ``loopline rollout status --engine
kubernetes`` and the API read the same state from the cluster. The fake has no kubelet: the
test plays the Deployment controller (:class:`DeploymentControllerSim`) as the other
Kubernetes-engine tests do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.deploy.engines.kubernetes.kube_helpers import register_taxi

from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.files import ControlPlaneFiles, Endpoint
from loopline.testing.kube import FakeApiServer
from loopline.testing.kube_controller import DeploymentControllerSim
from loopline.testing.kube_store import KINDS, KubeStore

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")

TOKEN = "k8s-controlplane-test-token"
IMAGE = "registry.example.com/ml/loopline:1.0"
CANARY = {"type": "Canary", "canary": {"steps": [
    {"setWeight": 25}, {"pause": {"duration": "1s"}}, {"setWeight": 50}, {"pause": {}},
]}}  # fmt: skip


def deployment(model: str) -> dict[str, Any]:
    return {"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
            "spec": {"model": model, "replicas": 4, "strategy": CANARY}}  # fmt: skip


def get(store: KubeStore, name: str, kind: str = "Deployment") -> Any:
    return store.get(next(k for k in KINDS if k.kind == kind), "default", name)


def wait_until(what: str, predicate: Any, tick: Any, timeout: float = 60.0) -> None:
    """Run ``tick`` (the Deployment controller's sync) and poll until ``predicate``."""
    deadline = time.monotonic() + timeout
    while True:
        tick()
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Endpoint, dict[str, str]]]:
    with FakeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        db_url, root = f"sqlite:///{tmp_path}/metadata.db", str(tmp_path / "artifacts")
        register_taxi(db_url, root)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LOOPLINE_", "KUBERNETES_"))}  # fmt: skip
        env.update(LOOPLINE_DB_URL=db_url, LOOPLINE_ARTIFACT_ROOT=root,
                   LOOPLINE_HOME=str(tmp_path / "home"), KUBECONFIG=str(kubeconfig),
                   LOOPLINE_KUBERNETES_IMAGE=IMAGE, LOOPLINE_KUBERNETES_GATEWAY="public",
                   LOOPLINE_CONTROLPLANE_TOKEN=TOKEN)  # fmt: skip
        files = ControlPlaneFiles(tmp_path / "home")
        with open(tmp_path / "cp.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "loopline.cli", "controlplane", "--engine", "kubernetes",
                 "--sync-interval", "0.1"],
                env=env, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            endpoint = files.read_endpoint()
            while endpoint is None or endpoint.pid != proc.pid:
                if proc.poll() is not None:
                    raise AssertionError(f"control plane exited with {proc.returncode}: "
                                         f"{(tmp_path / 'cp.log').read_text()}")  # fmt: skip
                if time.monotonic() > deadline:
                    raise AssertionError("control plane did not write endpoint.json in 60 s")
                time.sleep(0.05)
                endpoint = files.read_endpoint()
            yield server, endpoint, env
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def test_the_control_plane_drives_a_canary_on_the_cluster_to_promotion(
    control_plane: tuple[FakeApiServer, Endpoint, dict[str, str]],
) -> None:
    from loopline.cli.main import cli as main

    server, endpoint, env = control_plane
    store = server.store
    kubelet = DeploymentControllerSim(store).sync

    def weights() -> list[int]:
        rules = get(store, "taxi", "HTTPRoute")["spec"]["rules"]
        return [b["weight"] for b in rules[-1]["backendRefs"]]

    def model(name: str) -> str:
        return str(get(store, name)["metadata"]["annotations"]["loopline.dev/model"])

    with ControlPlaneClient(endpoint.url, token=TOKEN, timeout=60) as client:
        assert client.health().controllers == "active"
        first = client.apply(deployment("taxi/1"))
        assert first.outcome == "created"
        kubelet()
        assert model("taxi-stable") == "taxi/1" and weights() == [100, 0]
        second = client.apply(deployment("taxi/2"))
        assert second.outcome == "configured"
        assert model("taxi-canary") == "taxi/2"
        # The control plane's loop moves the rollout with nobody watching: setWeight 25, the
        # 1 s pause, setWeight 50, then holds at the untimed pause.
        wait_until("the canary to hold at the untimed pause with half the traffic",
                   lambda: weights() == [50, 50] and get(store, "taxi-canary")["metadata"][
                       "annotations"]["loopline.dev/canary-step"] == "3", kubelet)  # fmt: skip
        view = client.get_deployment("taxi")
        assert view.status.rollout is not None and view.status.rollout["stepIndex"] == 3
        assert "rollout promote" in client.rollout_status("taxi").message
        assert not client.rollout_status("taxi").done
        client.promote("taxi")
        wait_until("the promotion to finish",
                   lambda: model("taxi-stable") == "taxi/2" and weights() == [100, 0]
                   and get(store, "taxi-canary")["spec"]["replicas"] == 0, kubelet)  # fmt: skip
        wait_until("the API to report the rollout done",
                   lambda: client.rollout_status("taxi").done, kubelet)  # fmt: skip
        view = client.get_deployment("taxi")
        assert view.status.phase == "Healthy" and view.status.model.pinned == "taxi/2"
        assert [d.metadata.name for d in client.list_deployments()] == ["taxi"]
        revisions = client.revisions("taxi")  # taxi-stable's ReplicaSets
        assert [(r.number, r.model, r.current) for r in revisions] == [
            (1, "taxi/1", False), (2, "taxi/2", True)]  # fmt: skip
    # The CLI reads the same state: straight from the cluster, and through the control plane.
    kube_env = {"KUBECONFIG": env["KUBECONFIG"], "KUBERNETES_SERVICE_HOST": ""}
    result = CliRunner().invoke(main, ["rollout", "status", "deployment/taxi", "--engine",
                                       "kubernetes", "--timeout", "30s"], env=kube_env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stable track" in result.output and "successfully rolled out" in result.output
    api_env = {"LOOPLINE_CONTROLPLANE_URL": endpoint.url, "LOOPLINE_HOME": env["LOOPLINE_HOME"]}
    result = CliRunner().invoke(main, ["rollout", "status", "deployment/taxi", "--timeout",
                                       "30s"], env=api_env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "successfully rolled out" in result.output
