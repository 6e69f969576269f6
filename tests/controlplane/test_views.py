"""The deployment view's router block: where users find the stable and the preview URL."""

from __future__ import annotations

from loopline.controlplane.views import deployment_view
from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.spec import DeploymentSpec, Template


def view(router: RouterProcess | None) -> dict[str, object]:
    spec = DeploymentSpec(name="bg", template=Template(model="bc/1"))
    d = Deployment(spec=spec, generation=1, created_at=0.0, router=router)
    status = deployment_view(d, {}, "127.0.0.1")["status"]
    assert isinstance(status, dict)
    return status


def test_the_router_block_shows_the_preview_url_of_a_router_with_a_preview_port() -> None:
    router = RouterProcess(pid=10, process_start=1, port=8080, admin_port=9090,
                           preview_port=8081)  # fmt: skip
    assert view(router)["router"] == {
        "port": 8080,
        "url": "http://127.0.0.1:8080",
        "previewUrl": "http://127.0.0.1:8081",
        "pid": 10,
    }


def test_a_router_without_a_preview_port_has_no_preview_url() -> None:
    router = RouterProcess(pid=10, process_start=1, port=8080, admin_port=9090)
    block = view(router)["router"]
    assert isinstance(block, dict) and block["previewUrl"] is None
    assert view(None)["router"] is None
