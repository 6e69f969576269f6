"""The console on a control plane that drives Kubernetes: the real KubernetesControlPlane in
process against the fake API server (loopline.testing.kube, over HTTP on 127.0.0.1), the real
app with the console mounted. The fake runs no controllers: the test plays the Deployment
controller (:class:`DeploymentControllerSim`) and ticks the control plane's loop by hand.
The overview and the deployment page read the cluster through the control plane's operations
(not the local store); what the engine does not have is said, never a 500."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.ui.conftest import csrf_of
from tests.ui.kube_console import KubeConsole, kube_console

from loopline.deploy.engines.kubernetes import GatewayRef

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeConsole]:
    """With a Gateway: the canary's weights are the HTTPRoute's."""
    yield from kube_console(tmp_path, GatewayRef("public"))


@pytest.fixture
def kube_without_gateway(tmp_path: Path) -> Iterator[KubeConsole]:
    """Without a Gateway: the canary's share is its share of the replicas."""
    yield from kube_console(tmp_path, None)


def weight_row(page: str, role: str) -> str:
    """The row of the traffic table with that role (stable, canary)."""
    row = re.search(rf'<tr data-revision="[^"]*" data-role="{role}">.*?</tr>', page, re.S)
    assert row is not None, f"no {role} row in the traffic table"
    return row.group()


def test_the_overview_lists_a_kubernetes_deployment_with_its_step_and_split(
    kube: KubeConsole,
) -> None:
    kube.canary_at_first_pause()
    page = kube.client().get("/ui/")
    assert page.status_code == 200
    row = re.search(r'<tr id="dep-taxi".*?</tr>', page.text, re.S)
    assert row is not None, page.text
    assert "taxi/1" in row.group() and "step 2/4 (pause)" in row.group()
    assert "rev 1: 75%" in row.group() and "taxi-canary: 25%" in row.group()
    assert "4/4" in row.group()


def test_the_deployment_page_renders_a_canary_mid_step_with_its_weight(
    kube: KubeConsole,
) -> None:
    kube.canary_at_first_pause()
    page = kube.client().get("/ui/deployments/taxi")
    assert page.status_code == 200
    text = page.text
    assert re.search(r'<span id="step">step 2/4 \(pause\)</span>', text)
    assert re.search(r'<li class="step-current" aria-current="step">pause: until promoted</li>',
                     text)  # fmt: skip
    stable, canary = weight_row(text, "stable"), weight_row(text, "canary")
    assert "rev 1" in stable and "taxi/1" in stable and "75%" in stable
    assert "taxi-canary" in canary and "taxi/2" in canary and "25%" in canary
    assert '<dd id="engine">kubernetes</dd>' in text and "<dt>Revision</dt><dd>1</dd>" in text
    assert "run loopline rollout promote to continue" in text  # the rollout status
    assert 'data-number="1"' in text and "SpecApplied" in text  # revisions and events
    assert "loopline rollout promote deployment/taxi" in text


def test_what_the_kubernetes_engine_has_not_is_said_with_the_reason(kube: KubeConsole) -> None:
    kube.canary_at_first_pause()
    kube.service.set_autoscaling("taxi", {"minReplicas": 2, "maxReplicas": 6})
    text = kube.client().get("/ui/deployments/taxi").text
    notes = {k: html.unescape(v) for k, v in re.findall(r'data-absent="(\w+)">(.*?)</', text, re.S)}
    assert set(notes) == {"replicas", "router", "autoscaler"}
    assert "kubectl logs -l app.kubernetes.io/instance=taxi" in notes["replicas"]
    assert "HTTPRoute 'taxi'" in notes["router"]
    assert "kubectl describe hpa taxi" in notes["autoscaler"]
    assert notes["router"].startswith("not on this engine: the Gateway")
    assert notes["replicas"].startswith("Replicas: not on this engine; they are the cluster's")
    assert notes["autoscaler"].startswith("Decisions: not on this engine; the cluster's")
    hpa = re.search(r'<dl class="facts" id="autoscaler">.*?</dl>', text, re.S)
    assert hpa is not None and "HorizontalPodAutoscaler" in hpa.group()
    assert "2..6 replicas" in hpa.group()


def test_promote_through_the_console_moves_the_canary_on_the_cluster(kube: KubeConsole) -> None:
    kube.canary_at_first_pause()
    c = kube.client(signed_in=True)
    page = c.get("/ui/deployments/taxi")
    button = re.search(r'<button[^>]*data-verb="promote"[^>]*>', page.text)
    assert button is not None and "disabled" not in button.group()
    r = c.post("/ui/deployments/taxi/actions/promote",
               headers={"X-CSRF-Token": csrf_of(page.text)})  # fmt: skip
    assert r.status_code == 200 and 'role="status"' in r.text
    assert "loopline rollout promote deployment/taxi" in r.text
    kube.settle()
    assert kube.service.get_deployment("taxi")["status"]["rollout"]["stepIndex"] == 3
    text = c.get("/ui/deployments/taxi").text
    assert re.search(r'<span id="step">step 4/4 \(pause\)</span>', text)
    assert "50%" in weight_row(text, "canary") and "50%" in weight_row(text, "stable")


def test_abort_through_the_console_then_retry_is_the_one_rollout_action(
    kube: KubeConsole,
) -> None:
    kube.canary_at_first_pause()
    c = kube.client(signed_in=True)
    csrf = csrf_of(c.get("/ui/deployments/taxi").text)
    r = c.post("/ui/deployments/taxi/actions/abort", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and "loopline rollout abort deployment/taxi" in r.text
    text = c.get("/ui/deployments/taxi").text
    assert '<span id="phase" class="badge bad">Degraded</span>' in text
    enabled = {v for v, b in re.findall(r'<button[^>]*data-verb="([\w-]+)"([^>]*)>', text)
               if "disabled" not in b}  # fmt: skip
    assert "retry" in enabled and not enabled & {"promote", "promote-full", "abort"}
    assert "100%" in weight_row(text, "stable")


def test_without_a_gateway_the_split_is_the_tracks_replica_ratio(
    kube_without_gateway: KubeConsole,
) -> None:
    kube_without_gateway.canary_at_first_pause()
    c = kube_without_gateway.client()
    text = c.get("/ui/deployments/taxi").text
    assert "75%" in weight_row(text, "stable") and "25%" in weight_row(text, "canary")
    assert "no Gateway is configured" in text
    row = re.search(r'<tr id="dep-taxi".*?</tr>', c.get("/ui/").text, re.S)
    assert row is not None and "taxi-canary: 25%" in row.group()


def test_the_live_stream_of_a_kubernetes_deployment_sends_its_page(kube: KubeConsole) -> None:
    kube.canary_at_first_pause()
    with kube.client().stream("GET", "/ui/live/deployments/taxi?max_events=1") as r:
        assert r.status_code == 200
        body = "".join(r.iter_text())
    data = "\n".join(line[6:] for line in body.splitlines() if line.startswith("data: "))
    assert 'id="step">step 2/4 (pause)' in data and "<html" not in data


def test_an_unknown_deployment_on_the_cluster_is_a_404_page_naming_it(
    kube: KubeConsole,
) -> None:
    r = kube.client().get("/ui/deployments/nope")
    assert r.status_code == 404 and "&#39;nope&#39; is not on the cluster" in r.text
