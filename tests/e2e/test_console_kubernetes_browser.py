"""The console in headless chromium on a control plane that drives Kubernetes: the in-process
KubernetesControlPlane against the fake API server, its loop running, and the fake cluster's
Deployment controller ticking on a thread of its own. A canary held at an untimed pause is
promoted with the console's button; the page follows the cluster without a reload and passes
axe-core."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from tests.controlplane.conftest import serve_api
from tests.e2e.conftest import serious_violations, shot
from tests.ui.conftest import TOKEN
from tests.ui.kube_console import KubeConsole, kube_console

from loopline.deploy.engines.kubernetes import GatewayRef
from loopline.testing.kube_controller import DeploymentControllerSim

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")


def tick(kubelet: DeploymentControllerSim, stop: threading.Event) -> None:
    """The cluster's Deployment controller, every 50 ms until ``stop``."""
    while not stop.wait(0.05):
        kubelet.sync()


@pytest.fixture
def kube_live(tmp_path: Path) -> Iterator[tuple[str, KubeConsole]]:
    """The console served on 127.0.0.1, a canary of ``taxi`` held at step 2/4 (pause), the
    control plane's loop and the cluster's Deployment controller running."""
    consoles = kube_console(tmp_path, GatewayRef("public"))
    kube = next(consoles)
    stop = threading.Event()
    threads = [threading.Thread(target=kube.service.run, args=(stop, 0.05), daemon=True),
               threading.Thread(target=tick, args=(kube.kubelet, stop), daemon=True)]  # fmt: skip
    try:
        kube.canary_at_first_pause()
        for t in threads:
            t.start()
        with serve_api(kube.app) as url:
            yield url, kube
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join(15)
        consoles.close()


def test_promote_on_the_kubernetes_engine_moves_the_page_without_a_reload(
    page: Page, kube_live: tuple[str, KubeConsole]
) -> None:
    url, _ = kube_live
    page.goto(f"{url}/ui/login?next=/ui/deployments/taxi")
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/ui/deployments/taxi")
    expect(page.locator("#step")).to_have_text("step 2/4 (pause)")
    expect(page.locator('#weights tr[data-role="canary"]')).to_contain_text("25%")
    expect(page.locator("#engine")).to_have_text("kubernetes")
    expect(page.locator('[data-absent="replicas"]')).to_contain_text("not on this engine")
    assert serious_violations(page) == []
    page.locator('button[data-verb="promote"]').click()
    expect(page.get_by_role("status")).to_contain_text("loopline rollout promote deployment/taxi")
    # The loop moves the canary on (setWeight 50) and the page follows by SSE, no reload.
    expect(page.locator("#step")).to_have_text("step 4/4 (pause)", timeout=5000)
    expect(page.locator('#weights tr[data-role="canary"]')).to_contain_text("50%", timeout=5000)
    shot(page, "deployment-kubernetes")
