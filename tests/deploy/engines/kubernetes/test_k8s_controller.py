"""The Kubernetes engine's rollout controller on a fake clock, against the fake API server:
timed pauses end without anyone watching, analysis steps run their Prometheus metrics
(Successful → next step, Failed → abort, a local-only provider → wait for promote), one broken
deployment never stops the others; and the in-process KubernetesControlPlane's operations
(apply outcomes, scale, autoscaling, abort/retry, delete), the control plane's configuration
(LOOPLINE_ENGINE, the in-cluster service account, a given token) and /healthz for probes."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.deploy.engines.kubernetes.kube_helpers import FakePrometheus, register_taxi

from loopline.deploy import DeploymentSpec
from loopline.deploy.analysis import AnalysisTemplate
from loopline.deploy.engines.kubernetes import GatewayRef
from loopline.deploy.engines.kubernetes.analysis import StepAnalysis, stored_run
from loopline.deploy.engines.kubernetes.cluster import ObjectRef
from loopline.deploy.engines.kubernetes.controller import RolloutController, deployment_names
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.errors import ConfigurationError, ConflictError, NotFoundError
from loopline.settings import Settings
from loopline.testing.kube import FakeApiServer
from loopline.testing.kube_controller import DeploymentControllerSim

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")

from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster

IMAGE = "registry.example.com/loopline:1.0"
NS = "default"
GATEWAY = GatewayRef("public")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spec(model: str, steps: list[dict[str, Any]], name: str = "taxi") -> DeploymentSpec:
    return DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"model": model, "replicas": 4,
                 "strategy": {"type": "Canary", "canary": {"steps": steps}}},
    })  # fmt: skip


def template(name: str, provider: dict[str, Any]) -> AnalysisTemplate:
    return AnalysisTemplate.from_dict({
        "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": name},
        "spec": {"metrics": [{"name": "error-rate", "provider": provider,
                              "successCondition": "result < 0.05",
                              "failureCondition": "result >= 0.05"}]},
    })  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as s:
        yield s


@pytest.fixture
def deployer(server: FakeApiServer, tmp_path: Path) -> Iterator[KubernetesDeployer]:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    with LightkubeCluster.from_kubeconfig(kubeconfig) as cluster:
        yield KubernetesDeployer(cluster, NS)


def annotations(d: KubernetesDeployer, name: str) -> dict[str, Any]:
    notes: dict[str, Any] = d.cluster.get(ObjectRef("apps/v1", "Deployment", name, NS))[
        "metadata"]["annotations"]  # type: ignore[index, call-overload, assignment]
    return notes


def weights(d: KubernetesDeployer) -> list[int]:
    route = d.cluster.get(ObjectRef("gateway.networking.k8s.io/v1", "HTTPRoute", "taxi", NS))
    return [b["weight"] for b in route["spec"]["rules"][-1]["backendRefs"]]  # type: ignore[index, call-overload, union-attr]


def start_rollout(server: FakeApiServer, d: KubernetesDeployer,
                  steps: list[dict[str, Any]]) -> DeploymentControllerSim:  # fmt: skip
    kubelet = DeploymentControllerSim(server.store)
    d.apply(spec("taxi/1", steps), image=IMAGE, gateway=GATEWAY)
    kubelet.sync()
    assert d.apply(spec("taxi/2", steps), image=IMAGE, gateway=GATEWAY).rollout
    kubelet.sync()
    return kubelet


# ---- the loop on a fake clock ---------------------------------------------------------------


def test_a_timed_pause_ends_on_the_controllers_clock_with_nobody_watching(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    clock = Clock()
    kubelet = start_rollout(server, deployer, [{"setWeight": 25}, {"pause": {"duration": "60s"}},
                                               {"setWeight": 50}])  # fmt: skip
    controller = RolloutController(deployer, clock)
    (tick,) = controller.sync_all()
    assert tick.name == "taxi" and tick.progress is not None and tick.progress.step_index == 1
    assert weights(deployer) == [75, 25]
    assert controller.sync_all()[0].progress.pause_started == 1000  # type: ignore[union-attr]
    clock.now = 1059
    assert controller.sync_all()[0].progress.step_index == 1  # type: ignore[union-attr]
    clock.now = 1060
    assert controller.sync_all()[0].progress.step_index == 2  # type: ignore[union-attr]
    kubelet.sync()
    promoting = controller.sync_all()[0].progress  # setWeight 50, the last step: promotion
    assert promoting is not None and "promoting" in promoting.waiting
    kubelet.sync()
    assert controller.sync_all()[0].progress is None  # at rest
    assert annotations(deployer, "taxi-stable")["loopline.dev/model"] == "taxi/2"
    assert weights(deployer) == [100, 0]


def test_one_broken_deployment_is_reported_and_the_others_still_move(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    start_rollout(server, deployer, [{"setWeight": 25}, {"pause": {}}])
    deployer.apply(spec("taxi/1", [{"setWeight": 25}], name="fare"), image=IMAGE)
    deployer.cluster.patch(ObjectRef("apps/v1", "Deployment", "fare-canary", NS),
                           {"metadata": {"annotations": {"loopline.dev/spec": "{not json"}}})
    assert deployment_names(deployer) == ["fare", "taxi"]
    ticks = {t.name: t for t in RolloutController(deployer, Clock()).sync_all()}
    assert ticks["fare"].progress is None
    assert "its loopline.dev/spec annotation is not a loopline Deployment spec" in str(
        ticks["fare"].error) and "apply the spec of 'fare' again" in str(ticks["fare"].error)
    assert ticks["taxi"].error is None and weights(deployer) == [75, 25]


def test_a_successful_prometheus_analysis_completes_its_step(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    with FakePrometheus() as prometheus:
        prometheus.value = 0.01
        errors = template("errors", {"prometheus": {"address": prometheus.url,
                                                    "query": "sum(rate(errors[1m]))"}})
        kubelet = start_rollout(server, deployer, [
            {"setWeight": 25}, {"analysis": {"templates": [{"templateName": "errors"}]}},
            {"setWeight": 50}, {"pause": {}}])  # fmt: skip
        analysis = StepAnalysis({"errors": errors}.__getitem__)
        controller = RolloutController(deployer, Clock(), analysis)
        controller.sync_all()  # setWeight 25
        tick = controller.sync_all()[0]  # the analysis: measured, Successful, step done
        assert tick.analysis is not None and "Successful" in tick.analysis.message
        assert prometheus.queries == ["sum(rate(errors[1m]))"]
        assert tick.progress is not None and tick.progress.step_index == 2
        run = stored_run(deployer, "taxi")
        assert run is not None and run.phase.value == "Successful"
        assert run.canary == "taxi/2" and run.stable == "taxi/1"
        kubelet.sync()
        controller.sync_all()
        assert weights(deployer) == [50, 50]


def test_a_failed_prometheus_analysis_aborts_the_rollout(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    with FakePrometheus() as prometheus:
        prometheus.value = 0.2
        errors = template("errors", {"prometheus": {"address": prometheus.url, "query": "e"}})
        start_rollout(server, deployer, [
            {"setWeight": 25}, {"analysis": {"templates": [{"templateName": "errors"}]}}])
        analysis = StepAnalysis({"errors": errors}.__getitem__)
        controller = RolloutController(deployer, Clock(), analysis)
        controller.sync_all()
        tick = controller.sync_all()[0]
        assert tick.analysis is not None and "Failed" in tick.analysis.message
        assert "aborted" in tick.analysis.message
    assert weights(deployer) == [100, 0]
    assert annotations(deployer, "taxi-canary")["loopline.dev/aborted"] == "true"
    status = deployer.status("taxi", now=2000, move=False)
    assert status.failed and "aborted" in status.message


def test_an_inconclusive_analysis_holds_the_canary_in_phase_paused_as_locally(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    from loopline.controlplane.kubernetes_views import deployment_view

    with FakePrometheus() as prometheus:
        prometheus.value = 0.1  # neither result < 0.05 nor result >= 0.5: inconclusive
        errors = AnalysisTemplate.from_dict({
            "apiVersion": "loopline/v1", "kind": "AnalysisTemplate",
            "metadata": {"name": "errors"},
            "spec": {"metrics": [{"name": "error-rate", "successCondition": "result < 0.05",
                                  "failureCondition": "result >= 0.5", "provider": {
                                      "prometheus": {"address": prometheus.url, "query": "e"}}}]},
        })  # fmt: skip
        start_rollout(server, deployer, [
            {"setWeight": 25}, {"analysis": {"templates": [{"templateName": "errors"}]}}])
        clock = Clock()
        analysis = StepAnalysis({"errors": errors}.__getitem__)
        controller = RolloutController(deployer, clock, analysis)
        controller.sync_all()
        tick = controller.sync_all()[0]
        assert tick.analysis is not None and "Inconclusive" in tick.analysis.message
    progress = deployer.peek("taxi", now=clock.now)
    view = deployment_view(deployer, "taxi", progress, stored_run(deployer, "taxi"))
    assert view["status"]["phase"] == "Paused"


def test_an_analysis_on_a_local_only_provider_waits_for_promote_and_says_why(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    router = template("router-errors", {"router": {"metric": "errorRate"}})
    start_rollout(server, deployer, [
        {"setWeight": 25}, {"analysis": {"templates": [{"templateName": "router-errors"}]}}])
    controller = RolloutController(deployer, Clock(),
                                   StepAnalysis({"router-errors": router}.__getitem__))
    controller.sync_all()
    tick = controller.sync_all()[0]
    assert tick.analysis is not None and tick.analysis.run is None
    assert "only prometheus metrics run on the Kubernetes engine" in tick.analysis.message
    assert tick.progress is not None and tick.progress.step_index == 1
    assert "waits for rollout promote" in tick.progress.waiting
    promoted = deployer.promote("taxi", now=1)  # the last step: promotion
    assert promoted is not None and "promoting" in promoted.waiting


def test_an_analysis_naming_an_unknown_template_waits_and_names_it(
    server: FakeApiServer, deployer: KubernetesDeployer
) -> None:
    start_rollout(server, deployer, [{"analysis": {"templates": [{"templateName": "nope"}]}}])

    def templates(name: str) -> AnalysisTemplate:
        raise NotFoundError(f"AnalysisTemplate {name!r} does not exist.")

    tick = RolloutController(deployer, Clock(), StepAnalysis(templates)).sync_all()[0]
    assert tick.analysis is not None and "'nope' does not exist" in tick.analysis.message


# ---- the control plane's operations, in process ---------------------------------------------


@pytest.fixture
def controlplane(deployer: KubernetesDeployer, tmp_path: Path) -> Iterator[Any]:
    from loopline.controlplane.events import EventLog
    from loopline.controlplane.kubernetes import KubernetesControlPlane
    from loopline.controlplane.pinning import ModelPinner
    from loopline.deploy.state import InMemoryDeploymentStateStore
    from loopline.deploy.template_store import InMemoryAnalysisTemplateStore
    from loopline.platform import Platform

    db_url, root = f"sqlite:///{tmp_path}/metadata.db", str(tmp_path / "artifacts")
    register_taxi(db_url, root)
    settings = Settings.from_env({"LOOPLINE_DB_URL": db_url, "LOOPLINE_ARTIFACT_ROOT": root,
                                  "LOOPLINE_HOME": str(tmp_path / "home")})  # fmt: skip
    with Platform(settings) as platform:
        yield KubernetesControlPlane(
            deployer=deployer, image=IMAGE, gateway=GATEWAY,
            pinner=ModelPinner(registry=platform.registry, metadata=platform.metadata),
            events=EventLog(clock=time.time), store=InMemoryDeploymentStateStore(),
            templates=InMemoryAnalysisTemplateStore(),
        )  # fmt: skip


def document(model: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
            "spec": {"model": model, "replicas": 2, **extra}}  # fmt: skip


def test_the_control_plane_applies_pinned_specs_and_reports_what_changed(
    controlplane: Any, deployer: KubernetesDeployer
) -> None:
    from loopline.errors import AlreadyExistsError, InvalidDefinitionError

    view, outcome = controlplane.apply(document("taxi"))
    assert outcome == "created"
    assert view["spec"]["model"] == "taxi" and view["status"]["model"]["pinned"] == "taxi/2"
    assert annotations(deployer, "taxi")["loopline.dev/model"] == "taxi/2"
    assert annotations(deployer, "taxi")["loopline.dev/model-digest"].startswith("sha256:")
    assert controlplane.apply(document("taxi"))[1] == "unchanged"
    with pytest.raises(AlreadyExistsError, match="'taxi' already exists on the cluster"):
        controlplane.apply(document("taxi"), create_only=True)
    with pytest.raises(InvalidDefinitionError, match="spec.model = 'fare' cannot be resolved"):
        controlplane.apply({**document("fare"), "metadata": {"name": "fare"}})
    assert controlplane.set_model("taxi", "taxi/1")["status"]["model"]["pinned"] == "taxi/1"
    assert [d["metadata"]["name"] for d in controlplane.list_deployments()] == ["taxi"]
    assert controlplane.rollout_status("taxi")["done"] is False  # no kubelet synced it yet


def test_the_control_plane_scales_autoscales_and_deletes_on_the_cluster(
    controlplane: Any, deployer: KubernetesDeployer
) -> None:
    controlplane.apply(document("taxi/1"))
    assert controlplane.scale("taxi", 3)["spec"]["replicas"] == 3
    assert deployer.cluster.get_scale(ObjectRef("apps/v1", "Deployment", "taxi", NS)) == 3
    paused = controlplane.set_paused("taxi", True)
    assert paused["spec"]["paused"] is True and paused["status"]["phase"] == "Paused"
    assert controlplane.set_paused("taxi", False)["spec"]["paused"] is False
    controlplane.set_model("taxi", "taxi/2")  # re-applies the stored spec: the scale stays
    assert deployer.cluster.get_scale(ObjectRef("apps/v1", "Deployment", "taxi", NS)) == 3
    view = controlplane.set_autoscaling("taxi", {"minReplicas": 2, "maxReplicas": 5})
    assert view["status"]["autoscaler"]["maxReplicas"] == 5
    assert view["status"]["autoscaler"]["decidedBy"] == "HorizontalPodAutoscaler"
    view = controlplane.set_autoscaling("taxi", None)
    assert view["status"]["autoscaler"] is None
    with pytest.raises(NotFoundError, match="kubectl logs"):
        controlplane.replica_log("taxi-1")
    controlplane.delete("taxi")
    with pytest.raises(NotFoundError, match="'taxi' is not on the cluster"):
        controlplane.get_deployment("taxi")
    with pytest.raises(NotFoundError, match="nothing to delete"):
        controlplane.delete("taxi")


def test_abort_and_retry_through_the_control_plane(
    server: FakeApiServer, controlplane: Any, deployer: KubernetesDeployer
) -> None:
    steps = {"strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 50},
                                                                 {"pause": {}}]}}}
    controlplane.apply(document("taxi/1", **steps))
    DeploymentControllerSim(server.store).sync()
    with pytest.raises(ConflictError, match="no aborted rollout to retry"):
        controlplane.retry("taxi")
    controlplane.apply(document("taxi/2", **steps))
    controlplane.sync_once()
    view = controlplane.abort("taxi")
    assert view["status"]["phase"] == "Degraded" and view["status"]["rollout"]["aborted"]
    assert controlplane.rollout_status("taxi")["failed"]
    view = controlplane.retry("taxi")
    assert not view["status"]["rollout"]["aborted"]
    assert view["status"]["rollout"]["canaryModel"] == "taxi/2"


# ---- configuration ---------------------------------------------------------------------------


def test_the_engine_setting_is_checked_and_the_in_cluster_flag_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LOOPLINE_ENGINE='k8s' is not an engine; "
                       "set it to local or kubernetes"):  # fmt: skip
        Settings.from_env({"LOOPLINE_ENGINE": "k8s"}, cwd=tmp_path)
    settings = Settings.from_env({"LOOPLINE_ENGINE": "kubernetes",
                                  "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, cwd=tmp_path)
    assert settings.engine == "kubernetes" and settings.in_cluster
    assert not Settings.from_env({}, cwd=tmp_path).in_cluster


def test_in_cluster_the_service_account_is_used_and_its_absence_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import subprocess

    from loopline.platform import Platform

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: it makes the service account's CA certificate")
    account = tmp_path / "serviceaccount"
    account.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=kube", "-keyout", str(tmp_path / "ca.key"),
                    "-out", str(account / "ca.crt")], check=True, capture_output=True)  # fmt: skip
    (account / "token").write_text("service-account-token")
    (account / "namespace").write_text("ml")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with LightkubeCluster.in_cluster(account) as cluster:
        assert cluster.namespace == "ml"
        assert str(cluster._config.cluster.server) == "https://10.96.0.1:443"
    settings = Settings.from_env({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, cwd=tmp_path)
    with pytest.raises(ConfigurationError, match="in-cluster service account at "
                       "'/var/run/secrets/kubernetes.io/serviceaccount'"):  # fmt: skip
        Platform(settings).kubernetes_cluster()


def test_a_given_token_is_installed_with_mode_0600(tmp_path: Path) -> None:
    from loopline.controlplane.files import ControlPlaneFiles

    files = ControlPlaneFiles(tmp_path / "home")
    files.ensure_token()
    files.install_token("from-the-secret\n")
    assert files.ensure_token() == "from-the-secret"
    assert stat.S_IMODE(os.stat(files.token_path).st_mode) == 0o600
    with pytest.raises(ConfigurationError, match="LOOPLINE_CONTROLPLANE_TOKEN must be one"):
        files.install_token("  ")


def test_healthz_answers_probes_from_other_hosts_without_a_token(controlplane: Any) -> None:
    from starlette.testclient import TestClient

    from loopline.controlplane.api import create_app

    app = create_app(controlplane, token="secret-token")
    client = TestClient(app, client=("10.1.2.3", 5000))
    health = client.get("/healthz", headers={"Host": "localhost"})
    assert health.status_code == 200 and json.loads(health.text)["status"] == "ok"
    assert client.get("/v1/deployments", headers={"Host": "localhost"}).status_code == 401
    assert client.get("/healthz", headers={"Host": "attacker.example"}).status_code == 421
