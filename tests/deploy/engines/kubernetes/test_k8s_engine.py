"""The Kubernetes engine against the fake API server: apply → get → scale → rollout status,
history and undo, canary steps patching HTTPRoute weights, abort, blue-green's switch, and the
CLI's --engine kubernetes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from loopline.deploy import DeploymentSpec
from loopline.deploy.engines.kubernetes import GatewayRef
from loopline.deploy.engines.kubernetes.cluster import EventType, ObjectRef
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.errors import NotFoundError
from loopline.testing.kube import FakeApiServer
from loopline.testing.kube_controller import DeploymentControllerSim

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")

from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster

IMAGE = "registry.example.com/loopline:1.0"
NS = "default"


def spec(model: str = "taxi/1", strategy: dict[str, Any] | None = None,
         replicas: int = 4) -> DeploymentSpec:  # fmt: skip
    return DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
        "spec": {"model": model, "replicas": replicas,
                 "strategy": strategy or {"type": "RollingUpdate"}},
    })  # fmt: skip


CANARY = {"type": "Canary", "canary": {"steps": [
    {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}},
]}}  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as s:
        yield s


@pytest.fixture
def kubeconfig(server: FakeApiServer, tmp_path: Path) -> Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def deployer(kubeconfig: Path) -> Iterator[KubernetesDeployer]:
    with LightkubeCluster.from_kubeconfig(kubeconfig) as cluster:
        yield KubernetesDeployer(cluster, NS)


def ref(name: str, kind: str = "Deployment", api: str = "apps/v1") -> ObjectRef:
    return ObjectRef(api, kind, name, NS)


def weights(d: KubernetesDeployer) -> list[int]:
    route = d.cluster.get(ref("taxi", "HTTPRoute", "gateway.networking.k8s.io/v1"))
    return [b["weight"] for b in route["spec"]["rules"][-1]["backendRefs"]]  # type: ignore[index, call-overload, union-attr]


def model_of(d: KubernetesDeployer, name: str) -> Any:
    return d.cluster.get(ref(name))["metadata"]["annotations"]["loopline.dev/model"]  # type: ignore[index, call-overload]


# ---- the fake API server's own HTTP rules -------------------------------------------------


def _request(server: FakeApiServer, method: str, path: str, body: bytes, content_type: str,
             token: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    req = urllib.request.Request(server.url + path, data=body, method=method, headers={
        "Content-Type": content_type, "Authorization": f"Bearer {token or server.token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_fake_refuses_an_apply_patch_without_a_field_manager_with_422(
    server: FakeApiServer,
) -> None:
    code, body = _request(server, "PATCH", "/api/v1/namespaces/default/configmaps/x",
                          b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
                          "application/apply-patch+yaml")  # fmt: skip
    assert (code, body["reason"]) == (422, "Invalid")
    assert "fieldManager" in body["message"]


def test_the_fake_refuses_json_patches_and_requests_without_the_token(
    server: FakeApiServer,
) -> None:
    code, _ = _request(server, "PATCH", "/api/v1/namespaces/default/configmaps/x", b"[]",
                       "application/json-patch+json")  # fmt: skip
    assert code == 415
    code, _ = _request(server, "GET", "/api/v1/namespaces/default/configmaps", b"",
                       "application/json", token="wrong")  # fmt: skip
    assert code == 401


def test_a_watch_from_a_version_that_left_the_log_is_410_gone(tmp_path: Path) -> None:
    from loopline.errors import ConflictError

    with FakeApiServer(history=3) as server, LightkubeCluster.from_kubeconfig(
        server.write_kubeconfig(tmp_path / "kc")
    ) as cluster:
        for i in range(6):
            cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": f"c{i}", "namespace": NS}})  # fmt: skip
        with pytest.raises(ConflictError, match="too old resource version"):
            list(cluster.watch("v1", "ConfigMap", namespace=NS, resource_version="1", timeout=5))


# ---- apply, scale, status, history, undo ----------------------------------------------------


def test_apply_get_scale_and_rollout_status_of_a_rolling_deployment(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    applied = deployer.apply(spec(), image=IMAGE)
    assert [(r.kind, r.name, o) for r, o in applied.objects] == [
        ("Deployment", "taxi", "created"), ("Service", "taxi", "created"),
        ("PodDisruptionBudget", "taxi", "created")]  # fmt: skip
    assert [(r.kind, o) for r, o in deployer.apply(spec(), image=IMAGE).objects] == [
        ("Deployment", "unchanged"), ("Service", "unchanged"),
        ("PodDisruptionBudget", "unchanged")]  # fmt: skip
    obj = deployer.cluster.get(ref("taxi"))
    assert obj["spec"]["replicas"] == 4  # type: ignore[index, call-overload]
    managers = {e["manager"] for e in obj["metadata"]["managedFields"]}  # type: ignore[index, union-attr, call-overload]
    assert managers == {"loopline"}
    status = deployer.status("taxi", now=0)
    assert not status.done and "spec update to be observed" in status.message
    DeploymentControllerSim(server.store).sync()
    assert deployer.status("taxi", now=0).message == 'deployment "taxi" successfully rolled out'
    assert deployer.scale("taxi", 6) == 6
    assert deployer.cluster.get_scale(ref("taxi")) == 6
    DeploymentControllerSim(server.store).sync()
    assert deployer.status("taxi", now=0).done


def test_a_failing_rollout_reports_its_progress_deadline(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    deployer.apply(spec(), image="broken:1")
    DeploymentControllerSim(server.store, failing_images=["broken:1"]).sync()
    status = deployer.status("taxi", now=0)
    assert status.failed and "exceeded its progress deadline" in status.message


def test_history_lists_the_replica_sets_revisions_and_undo_returns_to_the_previous_model(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    controller = DeploymentControllerSim(server.store)
    deployer.apply(spec("taxi/1"), image=IMAGE)
    controller.sync()
    deployer.apply(spec("taxi/2"), image=IMAGE)
    controller.sync()
    assert [(r.number, r.model) for r in deployer.history("taxi")] == [(1, "taxi/1"),
                                                                       (2, "taxi/2")]
    assert deployer.undo("taxi") is True
    controller.sync()
    assert [(r.number, r.model) for r in deployer.history("taxi")] == [(2, "taxi/2"),
                                                                       (3, "taxi/1")]
    pod = deployer.cluster.get(ref("taxi"))["spec"]["template"]  # type: ignore[index, call-overload]
    assert pod["metadata"]["annotations"]["loopline.dev/model"] == "taxi/1"  # type: ignore[index, call-overload]
    assert "pod-template-hash" not in pod["metadata"]["labels"]  # type: ignore[index, call-overload, operator]
    with pytest.raises(NotFoundError, match="no revision 9; known revisions: \\[2, 3\\]"):
        deployer.undo("taxi", 9)


def test_pause_and_resume_set_spec_paused(deployer: KubernetesDeployer) -> None:
    deployer.apply(spec(), image=IMAGE)
    deployer.set_paused("taxi", True)
    assert deployer.cluster.get(ref("taxi"))["spec"]["paused"] is True  # type: ignore[index, call-overload]
    deployer.set_paused("taxi", False)
    assert "paused" not in deployer.cluster.get(ref("taxi"))["spec"]  # type: ignore[operator]


def test_autoscale_applies_and_deletes_the_hpa(deployer: KubernetesDeployer) -> None:
    deployer.apply(spec(), image=IMAGE)
    hpa = deployer.autoscale("taxi", {"minReplicas": 2, "maxReplicas": 8})
    assert hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == "taxi"  # type: ignore[index, call-overload]
    deployer.autoscale("taxi", None)
    with pytest.raises(NotFoundError):
        deployer.cluster.get(ref("taxi", "HorizontalPodAutoscaler", "autoscaling/v2"))


def test_a_watch_sees_the_engines_deployment_added_modified_and_deleted(
    deployer: KubernetesDeployer,
) -> None:
    since = deployer.cluster.list("apps/v1", "Deployment", namespace=NS).resource_version
    deployer.apply(spec(), image=IMAGE)
    deployer.scale("taxi", 2)
    deployer.cluster.delete(ref("taxi"))
    seen = []
    for event in deployer.cluster.watch("apps/v1", "Deployment", namespace=NS,
                                        resource_version=since, timeout=30):  # fmt: skip
        if not seen or seen[-1] is not event.type:  # scale: the stored spec, then /scale
            seen.append(event.type)
        if event.type is EventType.DELETED:
            break
    assert seen == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]


# ---- canary and blue-green ------------------------------------------------------------------


def test_canary_steps_patch_the_route_weights_with_the_rollout_field_manager(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    controller = DeploymentControllerSim(server.store)
    gateway = GatewayRef("public")
    assert not deployer.apply(spec("taxi/1", CANARY), image=IMAGE, gateway=gateway).rollout
    controller.sync()
    assert weights(deployer) == [100, 0]
    assert deployer.step("taxi", now=0) is None  # at rest
    assert deployer.apply(spec("taxi/2", CANARY), image=IMAGE, gateway=gateway).rollout
    assert model_of(deployer, "taxi-stable") == "taxi/1"
    assert model_of(deployer, "taxi-canary") == "taxi/2"
    assert deployer.cluster.get_scale(ref("taxi-canary")) == 1  # ceil(4 × 25 %)
    waiting = deployer.status("taxi", now=0)
    assert "waiting for the canary's replicas" in waiting.message
    controller.sync()
    progress = deployer.step("taxi", now=10)  # setWeight 25 done
    assert progress is not None and progress.step_index == 1 and weights(deployer) == [75, 25]
    route = deployer.cluster.get(ref("taxi", "HTTPRoute", "gateway.networking.k8s.io/v1"))
    assert any(e["manager"] == "loopline-rollout" for e in route["metadata"]["managedFields"])  # type: ignore[index, union-attr, call-overload]
    paused = deployer.step("taxi", now=20)
    assert paused is not None and "rollout promote" in paused.waiting
    assert deployer.step("taxi", now=1000).step_index == 1  # type: ignore[union-attr]
    assert deployer.promote("taxi", now=30).step_index == 2  # type: ignore[union-attr]
    assert deployer.cluster.get_scale(ref("taxi-canary")) == 2  # ready for setWeight 50
    controller.sync()
    assert deployer.step("taxi", now=40).step_index == 3  # type: ignore[union-attr]
    assert weights(deployer) == [50, 50]
    assert deployer.step("taxi", now=50).pause_started == 50  # type: ignore[union-attr]
    assert deployer.step("taxi", now=79).step_index == 3  # type: ignore[union-attr]
    promoting = deployer.step("taxi", now=80)  # the 30 s pause is over: promotion
    assert promoting is not None and "promoting" in promoting.waiting
    assert model_of(deployer, "taxi-stable") == "taxi/2"
    controller.sync()
    assert deployer.step("taxi", now=90) is None
    assert weights(deployer) == [100, 0]
    assert deployer.cluster.get_scale(ref("taxi-canary")) == 0
    assert deployer.status("taxi", now=100).done
    again = deployer.apply(spec("taxi/2", CANARY), image=IMAGE, gateway=gateway)
    assert not again.rollout
    assert {o for r, o in again.objects if r.kind == "Deployment" and r.name == "taxi-stable"}


def test_a_canary_without_a_gateway_splits_by_replicas(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    deployer.apply(spec("taxi/1", CANARY), image=IMAGE)
    deployer.apply(spec("taxi/2", CANARY), image=IMAGE)
    DeploymentControllerSim(server.store).sync()
    deployer.step("taxi", now=0)
    assert (deployer.cluster.get_scale(ref("taxi-stable")),
            deployer.cluster.get_scale(ref("taxi-canary"))) == (3, 1)  # fmt: skip


def test_abort_sends_all_traffic_to_stable_and_the_status_fails(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    gateway = GatewayRef("public")
    deployer.apply(spec("taxi/1", CANARY), image=IMAGE, gateway=gateway)
    deployer.apply(spec("taxi/2", CANARY), image=IMAGE, gateway=gateway)
    DeploymentControllerSim(server.store).sync()
    deployer.step("taxi", now=0)
    assert weights(deployer) == [75, 25]
    deployer.abort("taxi")
    assert weights(deployer) == [100, 0]
    assert deployer.cluster.get_scale(ref("taxi-canary")) == 0
    status = deployer.status("taxi", now=1)
    assert status.failed and "aborted" in status.message
    retried = deployer.apply(spec("taxi/2", CANARY), image=IMAGE, gateway=gateway)
    assert retried.rollout and not deployer.status("taxi", now=2).failed


def test_blue_green_promote_switches_the_service_to_the_preview_then_back(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    controller = DeploymentControllerSim(server.store)
    blue_green = {"type": "BlueGreen", "blueGreen": {"autoPromotionEnabled": False}}
    deployer.apply(spec("taxi/1", blue_green), image=IMAGE)
    deployer.apply(spec("taxi/2", blue_green), image=IMAGE)
    controller.sync()
    assert deployer.cluster.get_scale(ref("taxi-canary")) == 4
    assert "promote" in deployer.step("taxi", now=0).waiting  # type: ignore[union-attr]
    deployer.promote("taxi", now=1)
    selector = deployer.cluster.get(ref("taxi", "Service", "v1"))["spec"]["selector"]  # type: ignore[index, call-overload]
    assert selector["loopline.dev/track"] == "canary"  # type: ignore[index, call-overload]
    assert model_of(deployer, "taxi-stable") == "taxi/2"
    controller.sync()
    assert deployer.step("taxi", now=2) is None
    selector = deployer.cluster.get(ref("taxi", "Service", "v1"))["spec"]["selector"]  # type: ignore[index, call-overload]
    assert selector["loopline.dev/track"] == "stable"  # type: ignore[index, call-overload]
    assert deployer.cluster.get_scale(ref("taxi-canary")) == 0


# ---- the CLI ------------------------------------------------------------------------------


def test_the_cli_applies_scales_and_reports_status_on_the_kubernetes_engine(
    server: FakeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    from loopline.cli.main import cli as main

    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(spec().to_dict()))
    env = {"KUBECONFIG": str(kubeconfig)}
    runner = CliRunner()
    result = runner.invoke(main, ["apply", "-f", str(path), "--engine", "kubernetes",
                                  "--image", IMAGE], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "deployment/taxi created" in result.output
    result = runner.invoke(main, ["scale", "deployment/taxi", "--replicas", "2", "--engine",
                                  "kubernetes"], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    DeploymentControllerSim(server.store).sync()
    result = runner.invoke(main, ["rollout", "status", "deployment/taxi", "--engine",
                                  "kubernetes", "--timeout", "30s"], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert 'deployment "taxi" successfully rolled out' in result.output
    result = runner.invoke(main, ["rollout", "history", "deployment/taxi", "--engine",
                                  "kubernetes", "-o", "json"], env=env)  # fmt: skip
    assert json.loads(result.output)["items"][0]["model"] == "taxi/1"
    result = runner.invoke(main, ["autoscale", "deployment", "taxi", "--max", "5", "--engine",
                                  "kubernetes"], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output


def test_kubernetes_only_flags_are_refused_on_the_local_engine(tmp_path: Path) -> None:
    from loopline.cli.main import cli as main

    result = CliRunner().invoke(main, ["rollout", "pause", "deployment/taxi", "--namespace",
                                       "ml"])  # fmt: skip
    assert result.exit_code != 0
    assert "--namespace apply to --engine kubernetes only" in result.output
