"""The preview port (blue-green): only the preview revision answers there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.deploy.router.helpers import admin_secret, push, stats, v2

from loopline.deploy.codec import router_from_json, router_to_json
from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.engines.base import ProcessHandle
from loopline.deploy.engines.local import LocalEngine, free_port
from loopline.deploy.local_routing import LocalRouting
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.spec import DeploymentSpec
from loopline.testing.deploy import FakeEngine

INFER = "/v2/models/m/infer"


def _ids(port: int, n: int = 4) -> set[str]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        return {c.post(INFER, json=v2(1.0)).json()["id"] for _ in range(n)}


def test_the_preview_port_serves_only_the_preview_revision(
    backend: Callable[..., Any], preview_router: Callable[..., Any]
) -> None:
    blue, _ = backend(id="blue")
    green, _ = backend(id="green")
    rt = preview_router()
    push(rt, [("b", blue, "blue"), ("g", green, "green")], {"blue": 1}, preview="green",
         labels={"blue": "stable", "green": "preview"})  # fmt: skip
    assert _ids(rt.port) == {"blue"}
    assert _ids(rt.preview_port) == {"green"}
    revs = stats(rt)["revisions"]
    assert (revs["blue"]["requests"], revs["green"]["requests"]) == (4, 4)
    assert revs["green"]["label"] == "preview"
    # Promotion: the preview revision becomes the active one, and the preview port empties.
    push(rt, [("b", blue, "blue"), ("g", green, "green")], {"green": 1})
    assert _ids(rt.port) == {"green"}
    r = httpx.post(f"http://127.0.0.1:{rt.preview_port}{INFER}", json=v2(1.0))
    assert r.status_code == 503
    assert r.json()["error"].startswith("Deployment 'web' has no preview revision")


def test_a_preview_revision_without_a_ready_backend_is_a_503_not_the_active_one(
    backend: Callable[..., Any], preview_router: Callable[..., Any]
) -> None:
    blue, _ = backend(id="blue")
    rt = preview_router()
    push(rt, [("b", blue, "blue")], {"blue": 1}, preview="green", hold_seconds=30)
    r = httpx.post(f"http://127.0.0.1:{rt.preview_port}{INFER}", json=v2(1.0))
    assert r.status_code == 503  # at once: the hold is for the main port
    assert "its preview revision 'green' has no ready replica" in r.json()["error"]
    assert stats(rt)["revisions"]["green"]["errors"] == 1


@pytest.mark.slow
def test_the_local_engine_starts_a_router_with_a_preview_port(
    backend: Callable[..., Any], tmp_path: Path
) -> None:
    blue, _ = backend(id="blue")
    green, _ = backend(id="green")
    engine = LocalEngine(log_dir=tmp_path, router_ready_timeout=30)
    admin, preview = free_port(), free_port()
    secret_file, secret = admin_secret(tmp_path)
    handle = engine.start_router("web", 0, admin, preview_port=preview,
                                 admin_secret_file=secret_file)
    try:
        rt = SimpleNamespace(admin=RouterAdminClient(admin, secret))
        push(rt, [("b", blue, "blue"), ("g", green, "green")], {"blue": 1}, preview="green")
        assert _ids(handle.port) == {"blue"}
        assert _ids(preview) == {"green"}
        assert RouterAdminClient(admin).describe()["preview"] == "green"
    finally:
        engine.stop(handle, grace=10)


def _deployment(router: RouterProcess | None, port: int | None = None) -> Deployment:
    spec = DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"model": "iris/1", **({"port": port} if port else {})},
    })  # fmt: skip
    return Deployment(spec=spec, generation=1, created_at=0.0, router=router)


def test_local_routing_allocates_a_preview_port_once_and_keeps_it(tmp_path: Path) -> None:
    engine = FakeEngine()
    routing = LocalRouting(engine, secret_dir=tmp_path)
    first = routing.ensure(_deployment(None))
    assert first is not None and first.preview_port > 0
    assert first.preview_port != first.port
    # The router died: its successor gets the same ports.
    engine.stop(ProcessHandle(first.pid, first.process_start, first.port), grace=0)
    again = routing.ensure(_deployment(first))
    assert again is not None and again.pid != first.pid
    assert (again.port, again.preview_port) == (first.port, first.preview_port)


def test_router_records_round_trip_and_old_ones_have_no_preview_port() -> None:
    r = RouterProcess(pid=1, process_start=2, port=3, admin_port=4, preview_port=5)
    assert router_from_json(router_to_json(r)) == r
    old = {"pid": 1, "processStart": 2, "port": 3, "adminPort": 4}  # written before previews
    assert router_from_json(old) == RouterProcess(1, 2, 3, 4, preview_port=0)
