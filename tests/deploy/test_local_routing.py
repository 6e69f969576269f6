"""LocalRouting drives real router processes with their admin secret, across a control-plane
restart; the secret is in a private file, never on a command line."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.engines.base import ProcessHandle
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.local_routing import LocalRouting
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.traffic import Traffic
from loopline.errors import BackendError

pytestmark = pytest.mark.slow


def _deployment(router: RouterProcess | None) -> Deployment:
    spec = DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"model": "iris/1"},
    })  # fmt: skip
    return Deployment(spec=spec, generation=1, created_at=0.0, router=router)


def _table(port: int) -> RouteTable:
    return RouteTable((Backend("a", "127.0.0.1", port, "r"),), Traffic())


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[LocalEngine]:
    engine = LocalEngine(log_dir=tmp_path / "logs", router_ready_timeout=30)
    started: list[ProcessHandle] = []
    real_start = engine.start_router

    def start_router(*args: Any, **kw: Any) -> ProcessHandle:
        started.append(real_start(*args, **kw))
        return started[-1]

    engine.start_router = start_router  # type: ignore[method-assign]
    yield engine
    for handle in started:
        engine.stop(handle, grace=5)


def test_the_secret_is_private_never_on_a_command_line_and_survives_a_restart(
    engine: LocalEngine, tmp_path: Path, backend: Callable[..., Any]
) -> None:
    port, _ = backend(id="a")
    secrets = tmp_path / "routers"
    router = LocalRouting(engine, secret_dir=secrets).ensure(_deployment(None))
    assert router is not None
    path = secrets / "web.secret"
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = path.read_text()
    assert len(secret) >= 32
    for pid in [router.pid, *_descendants(router.pid)]:
        assert secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    # the control plane restarts: a new LocalRouting on the same directory re-adopts it
    restarted = LocalRouting(engine, secret_dir=secrets)
    deployment = _deployment(router)
    assert restarted.ensure(deployment) == router
    restarted.set_routes(deployment, _table(port))
    r = httpx.post(f"http://127.0.0.1:{router.port}/v2/models/m/infer", json={}, timeout=10)
    assert r.json()["id"] == "a"
    assert restarted.drain(deployment, "a", 1.0)
    unauthenticated = httpx.put(f"http://127.0.0.1:{router.admin_port}/backends", json={})
    assert unauthenticated.status_code == 401
    restarted.stop(deployment)
    assert not path.exists()


def test_a_router_whose_secret_is_gone_is_replaced_on_the_same_port(
    engine: LocalEngine, tmp_path: Path, backend: Callable[..., Any]
) -> None:
    port, _ = backend(id="a")
    routing = LocalRouting(engine, secret_dir=tmp_path / "routers")
    first = routing.ensure(_deployment(None))
    assert first is not None
    (tmp_path / "routers" / "web.secret").unlink()
    with pytest.raises(BackendError, match="admin secret of deployment 'web'.*is missing"):
        routing.set_routes(_deployment(first), _table(port))
    second = routing.ensure(_deployment(first))
    assert second is not None and second.pid != first.pid
    assert (second.port, second.preview_port) == (first.port, first.preview_port)
    routing.set_routes(_deployment(second), _table(port))
    assert engine.poll(ProcessHandle(first.pid, first.process_start, first.port)) is not None


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out += [int(child), *_descendants(int(child))]
    return out
