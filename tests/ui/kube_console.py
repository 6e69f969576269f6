"""The console on an in-process Kubernetes control plane: the real KubernetesControlPlane
against the fake API server (loopline.testing.kube, over HTTP on 127.0.0.1) with the console
mounted, and the fake cluster's Deployment controller (the fake runs none). Shared by
tests/ui/test_console_kubernetes.py and the browser test in tests/e2e."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient
from tests.deploy.engines.kubernetes.kube_helpers import register_taxi
from tests.ui.conftest import LOCAL, TOKEN

from loopline.controlplane.api import create_app
from loopline.controlplane.events import EventLog
from loopline.controlplane.kubernetes import KubernetesControlPlane
from loopline.controlplane.pinning import ModelPinner
from loopline.deploy.engines.kubernetes import GatewayRef
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.deploy.template_store import InMemoryAnalysisTemplateStore
from loopline.platform import Platform
from loopline.settings import Settings
from loopline.testing.kube import FakeApiServer
from loopline.testing.kube_controller import DeploymentControllerSim
from loopline.ui import create_console
from loopline.ui.session import COOKIE, SessionKeys

STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def document(model: str, name: str = "taxi") -> dict[str, Any]:
    return {"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"model": model, "replicas": 4,
                     "strategy": {"type": "Canary", "canary": {"steps": STEPS}}}}  # fmt: skip


@dataclass
class KubeConsole:
    """The Kubernetes control plane with its console, and the fake cluster's controller."""

    service: KubernetesControlPlane
    kubelet: DeploymentControllerSim
    app: Any

    def settle(self, rounds: int = 4) -> None:
        """The cluster's Deployment controller and the control plane's loop, in turns."""
        for _ in range(rounds):
            self.kubelet.sync()
            self.service.sync_once()
        self.kubelet.sync()

    def client(self, *, signed_in: bool = False) -> TestClient:
        c = TestClient(self.app, base_url=LOCAL, client=("127.0.0.1", 40000),
                       follow_redirects=False)  # fmt: skip
        if signed_in:
            c.cookies.set(COOKIE, SessionKeys(TOKEN).new_cookie(), domain="127.0.0.1")
        return c

    def canary_at_first_pause(self) -> None:
        """``taxi`` serving taxi/1, then applied with taxi/2: held at step 2/4 (pause)."""
        self.service.apply(document("taxi/1"))
        self.settle()
        self.service.apply(document("taxi/2"))
        self.settle()
        rollout = self.service.get_deployment("taxi")["status"]["rollout"]
        assert rollout is not None and rollout["stepIndex"] == 1, rollout


def kube_console(
    tmp_path: Path, gateway: GatewayRef | None
) -> Generator[KubeConsole, None, None]:
    """The console over a KubernetesControlPlane on a fresh fake API server (needs the k8s
    extra: lightkube); ``gateway`` None splits a canary by replicas."""
    from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster

    with FakeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        db_url, root = f"sqlite:///{tmp_path}/metadata.db", str(tmp_path / "artifacts")
        register_taxi(db_url, root)
        settings = Settings.from_env({"LOOPLINE_DB_URL": db_url, "LOOPLINE_ARTIFACT_ROOT": root,
                                      "LOOPLINE_HOME": str(tmp_path / "home")})  # fmt: skip
        with LightkubeCluster.from_kubeconfig(kubeconfig) as cluster, Platform(settings) as p:
            service = KubernetesControlPlane(
                deployer=KubernetesDeployer(cluster, "default"), image="loopline:test",
                gateway=gateway, pinner=ModelPinner(registry=p.registry, metadata=p.metadata),
                events=EventLog(clock=time.time), store=InMemoryDeploymentStateStore(),
                templates=InMemoryAnalysisTemplateStore(),
            )  # fmt: skip
            app = create_app(service, token=TOKEN, console=create_console(service, token=TOKEN))
            yield KubeConsole(service, DeploymentControllerSim(server.store), app)
