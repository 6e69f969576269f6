"""The console of a real ``loopline controlplane --engine kubernetes`` process (127.0.0.1, the
fake API server as its cluster, the fixture of the control plane's own end-to-end test): the
overview and the deployment page of a canary it drives, read over HTTP."""

from __future__ import annotations

import re

import httpx
import pytest
from tests.deploy.engines.kubernetes.test_k8s_controlplane import (
    TOKEN,
    control_plane,
    deployment,
    get,
    wait_until,
)

from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.files import Endpoint
from loopline.testing.kube import FakeApiServer
from loopline.testing.kube_controller import DeploymentControllerSim

__all__ = ["control_plane"]  # the fixture, shared with the control plane's end-to-end test

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")


def test_the_console_of_a_kubernetes_control_plane_shows_the_canary_it_drives(
    control_plane: tuple[FakeApiServer, Endpoint, dict[str, str]],
) -> None:
    server, endpoint, _ = control_plane
    kubelet = DeploymentControllerSim(server.store).sync
    with ControlPlaneClient(endpoint.url, token=TOKEN, timeout=60) as client:
        client.apply(deployment("taxi/1"))
        kubelet()
        client.apply(deployment("taxi/2"))
        wait_until("the canary to hold at the untimed pause",
                   lambda: get(server.store, "taxi-canary")["metadata"]["annotations"][
                       "loopline.dev/canary-step"] == "3", kubelet)  # fmt: skip
    with httpx.Client(base_url=endpoint.url, timeout=60) as http:  # loopback: tokenless reads
        overview = http.get("/ui/")
        assert overview.status_code == 200
        row = re.search(r'<tr id="dep-taxi".*?</tr>', overview.text, re.S)
        assert row is not None and "step 4/4 (pause)" in row.group()
        assert "taxi-canary: 50%" in row.group()
        page = http.get("/ui/deployments/taxi")
        assert page.status_code == 200
        assert '<span id="step">step 4/4 (pause)</span>' in page.text
        assert '<dd id="engine">kubernetes</dd>' in page.text
        assert 'data-absent="replicas"' in page.text
