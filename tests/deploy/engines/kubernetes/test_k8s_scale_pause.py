"""Scale and pause on the Kubernetes engine stay true: the stored spec (``loopline.dev/spec``)
follows them, so the view reports them and the engine's own renders (the rollout loop's next
step, a retry) never undo them; a canary waiting at a pause step is in phase Paused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from loopline.controlplane.kubernetes_views import deployment_view
from loopline.deploy import DeploymentSpec
from loopline.deploy.engines.kubernetes import GatewayRef
from loopline.deploy.engines.kubernetes.cluster import ObjectRef
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.errors import InvalidDefinitionError
from loopline.testing.kube import FakeApiServer
from loopline.testing.kube_controller import DeploymentControllerSim

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")

from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster

IMAGE = "registry.example.com/loopline:1.0"
NS = "default"
CANARY = {"type": "Canary", "canary": {"steps": [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}},
]}}  # fmt: skip


def spec(model: str = "taxi/1", strategy: dict[str, Any] | None = None, replicas: int = 4,
         **extra: Any) -> DeploymentSpec:  # fmt: skip
    return DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
        "spec": {"model": model, "replicas": replicas,
                 "strategy": strategy or {"type": "RollingUpdate"}, **extra},
    })  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as s:
        yield s


@pytest.fixture
def deployer(server: FakeApiServer, tmp_path: Path) -> Iterator[KubernetesDeployer]:
    with LightkubeCluster.from_kubeconfig(server.write_kubeconfig(tmp_path / "kc")) as cluster:
        yield KubernetesDeployer(cluster, NS)


def replicas(d: KubernetesDeployer, name: str) -> int:
    return d.cluster.get_scale(ObjectRef("apps/v1", "Deployment", name, NS))


def view(d: KubernetesDeployer, now: float = 0) -> dict[str, Any]:
    progress = d.peek("taxi", now=now) if d.progressive("taxi") else None
    return deployment_view(d, "taxi", progress)


# ---- scale --------------------------------------------------------------------------------


def test_scale_is_recorded_in_the_stored_spec_and_the_view(deployer: KubernetesDeployer) -> None:
    deployer.apply(spec(), image=IMAGE)
    assert deployer.scale("taxi", 6) == 6
    stored = deployer.spec("taxi")
    assert stored is not None and stored.replicas == 6
    assert view(deployer)["spec"]["replicas"] == 6
    assert replicas(deployer, "taxi") == 6


def test_applying_a_file_that_names_replicas_sets_them_back_as_kubectl_apply_does(
    deployer: KubernetesDeployer,
) -> None:
    deployer.apply(spec(replicas=4), image=IMAGE)
    deployer.scale("taxi", 6)
    deployer.apply(spec(replicas=4), image=IMAGE)
    assert replicas(deployer, "taxi") == 4
    assert view(deployer)["spec"]["replicas"] == 4


def test_re_applying_the_stored_spec_keeps_a_scale(deployer: KubernetesDeployer) -> None:
    deployer.apply(spec(), image=IMAGE)
    deployer.scale("taxi", 2)
    stored = deployer.spec("taxi")
    assert stored is not None
    deployer.apply(stored, image=IMAGE)  # what retry, set_model and autoscale do
    assert replicas(deployer, "taxi") == 2


def test_the_rollout_loop_never_undoes_a_scale_of_a_canary(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    controller = DeploymentControllerSim(server.store)
    gateway = GatewayRef("public")
    deployer.apply(spec("taxi/1", CANARY), image=IMAGE, gateway=gateway)
    controller.sync()
    deployer.scale("taxi", 8)
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (8, 0)
    deployer.apply(spec("taxi/2", CANARY, replicas=8), image=IMAGE, gateway=gateway)
    controller.sync()
    deployer.step("taxi", now=0)  # setWeight 25 done
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (8, 2)
    deployer.scale("taxi", 12)  # during the rollout: both tracks for the current weight
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (12, 3)
    deployer.promote("taxi", now=1)  # the untimed pause; the next setWeight 50 is readied
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (12, 6)
    assert view(deployer, now=1)["spec"]["replicas"] == 12


def test_scaling_a_canary_without_a_gateway_keeps_the_replica_ratio(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    deployer.apply(spec("taxi/1", CANARY), image=IMAGE)
    deployer.apply(spec("taxi/2", CANARY), image=IMAGE)
    DeploymentControllerSim(server.store).sync()
    deployer.step("taxi", now=0)
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (3, 1)
    deployer.scale("taxi", 8)
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (6, 2)


def test_scaling_a_blue_green_sizes_a_preview_that_follows_the_replicas(
    deployer: KubernetesDeployer,
) -> None:
    blue_green = {"type": "BlueGreen", "blueGreen": {"autoPromotionEnabled": False}}
    deployer.apply(spec("taxi/1", blue_green), image=IMAGE)
    deployer.scale("taxi", 2)
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (2, 0)
    stored = deployer.spec("taxi")
    assert stored is not None
    deployer.apply(replace(stored, template=replace(stored.template, model="taxi/2")),
                   image=IMAGE)  # fmt: skip
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (2, 2)
    deployer.scale("taxi", 3)
    assert (replicas(deployer, "taxi-stable"), replicas(deployer, "taxi-canary")) == (3, 3)


def test_scale_of_an_autoscaled_deployment_is_recorded_and_left_to_the_hpa(
    deployer: KubernetesDeployer,
) -> None:
    deployer.apply(spec(autoscaling={"minReplicas": 2, "maxReplicas": 8}), image=IMAGE)
    assert deployer.scale("taxi", 5) == 5  # as kubectl scale: the HPA decides from here on
    stored = deployer.spec("taxi")
    assert stored is not None and stored.replicas == 5
    deployer.apply(stored, image=IMAGE)  # no spec.replicas rendered: nothing set back
    assert replicas(deployer, "taxi") == 5


# ---- pause --------------------------------------------------------------------------------


def test_pause_and_resume_show_in_the_views_spec(deployer: KubernetesDeployer) -> None:
    deployer.apply(spec(), image=IMAGE)
    deployer.set_paused("taxi", True)
    doc = view(deployer)
    assert doc["spec"]["paused"] is True and doc["status"]["phase"] == "Paused"
    deployer.set_paused("taxi", False)
    assert view(deployer)["spec"]["paused"] is False


def test_pause_of_a_canary_shows_in_the_views_spec(deployer: KubernetesDeployer) -> None:
    deployer.apply(spec("taxi/1", CANARY), image=IMAGE)
    deployer.set_paused("taxi", True)
    assert view(deployer)["spec"]["paused"] is True
    deployer.set_paused("taxi", False)
    assert view(deployer)["spec"]["paused"] is False


def test_a_paused_deployment_stays_paused_through_an_apply_that_does_not_pause_it(
    deployer: KubernetesDeployer,
) -> None:
    deployer.apply(spec(), image=IMAGE)
    deployer.set_paused("taxi", True)
    deployer.apply(spec(), image=IMAGE)  # as kubectl apply after rollout pause: still paused
    assert deployer.primary("taxi")["spec"].get("paused") is True  # type: ignore[union-attr]
    assert view(deployer)["spec"]["paused"] is True


def test_the_stored_pause_of_a_retry_does_not_outlive_resume(deployer: KubernetesDeployer) -> None:
    deployer.apply(spec(), image=IMAGE)
    deployer.set_paused("taxi", True)
    stored = deployer.spec("taxi")
    assert stored is not None and stored.paused
    deployer.apply(stored, image=IMAGE)
    deployer.set_paused("taxi", False)
    assert "paused" not in deployer.primary("taxi")["spec"]  # type: ignore[operator]
    assert view(deployer)["spec"]["paused"] is False


# ---- phase --------------------------------------------------------------------------------


def test_a_canary_held_at_a_pause_step_is_paused_as_on_the_local_engine(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    controller = DeploymentControllerSim(server.store)
    gateway = GatewayRef("public")
    deployer.apply(spec("taxi/1", CANARY), image=IMAGE, gateway=gateway)
    deployer.apply(spec("taxi/2", CANARY), image=IMAGE, gateway=gateway)
    assert view(deployer)["status"]["phase"] == "Progressing"  # setWeight 25: not ready
    controller.sync()
    deployer.step("taxi", now=0)  # setWeight 25 done; at the untimed pause
    deployer.step("taxi", now=1)
    assert view(deployer, now=2)["status"]["phase"] == "Paused"
    deployer.promote("taxi", now=3)
    controller.sync()
    deployer.step("taxi", now=4)  # setWeight 50 done; at the 30 s pause
    deployer.step("taxi", now=5)
    assert view(deployer, now=6)["status"]["phase"] == "Paused"  # a timed pause too (Argo)


def test_a_blue_green_preview_waiting_for_promote_is_paused(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    blue_green = {"type": "BlueGreen", "blueGreen": {"autoPromotionEnabled": False}}
    deployer.apply(spec("taxi/1", blue_green), image=IMAGE)
    deployer.apply(spec("taxi/2", blue_green), image=IMAGE)
    assert view(deployer)["status"]["phase"] == "Progressing"  # the preview is not ready
    DeploymentControllerSim(server.store).sync()
    assert view(deployer)["status"]["phase"] == "Paused"


def test_a_stored_spec_that_is_not_valid_after_a_scale_is_refused_before_any_change(
    deployer: KubernetesDeployer,
) -> None:
    deployer.apply(spec(), image=IMAGE)
    with pytest.raises(InvalidDefinitionError, match="replicas"):
        deployer.scale("taxi", -1)
    assert replicas(deployer, "taxi") == 4
