"""Monitors in the control plane: ``/v1/monitors`` over HTTP on the real ControlPlane, its
monitor loop ticking off the deployment loop, on the pipeline-trained taxi model with
prediction logs written by the model server's own writer (the replicas are the shipped fake
engine's: no processes)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.controlplane.conftest import TOKEN
from tests.monitor.conftest import Traffic, Trained, taxi_frame, trained

from loopline.controlplane.api import create_app
from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.events import EventLog
from loopline.controlplane.monitors import MonitorOperations
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.service import ControlPlane
from loopline.controlplane.timestamps import read_back
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.errors import InvalidDefinitionError, NotFoundError
from loopline.monitor import MonitorStatus, SqlMonitorStore
from loopline.testing.deploy import FakeEngine, FakeRouting

__all__ = ["taxi_frame", "trained"]  # the session fixtures of tests/monitor


def monitor_doc(name: str, deployment: str = "taxi", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deployment": deployment,
        "window": {"rows": 300},
        "label": {"task": "classification", "positiveClass": "yes"},
        **spec,
    }
    return {"apiVersion": "loopline/v1", "kind": "Monitor", "metadata": {"name": name},
            "spec": body}  # fmt: skip


@dataclass
class MonitorCluster:
    url: str
    client: ControlPlaneClient
    service: ControlPlane
    traffic: Traffic

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                shown = {m.metadata.name: m.status for m in self.client.list_monitors()}
                raise AssertionError(f"timed out after {timeout} s waiting for {what}: {shown}")
            time.sleep(0.1)

    def status(self, name: str) -> MonitorStatus:
        return MonitorStatus.from_dict(read_back(self.client.get_monitor(name).status))


def monitored_control_plane(trained: Trained, logs: Path) -> ControlPlane:
    """A control plane on the fake engine whose monitor loop ticks every 0.1 s, reading the
    prediction logs under ``logs`` and the trained taxi model's stores."""
    manager = DeploymentManager(
        store=InMemoryDeploymentStateStore(),
        engine=FakeEngine(),
        routing=FakeRouting(),
        backoff=BackoffPolicy(),
        background_stops=False,
    )
    service = ControlPlane(
        manager=manager,
        pinner=ModelPinner(registry=trained.registry, metadata=trained.metadata),
        events=EventLog(clock=time.time),
    )
    store = SqlMonitorStore.from_metadata(trained.metadata)
    service.monitors_ops = MonitorOperations(
        store,
        deployments=service.store,
        metadata=trained.metadata,
        registry=trained.registry,
        artifacts=trained.artifacts,
        log_root=logs,
        interval=0.1,
    )
    return service


@pytest.fixture
def cluster(trained: Trained, tmp_path: Path) -> Iterator[MonitorCluster]:
    logs = tmp_path / "predictions"
    service = monitored_control_plane(trained, logs)
    store = service.monitors().store
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(create_app(service, token=TOKEN), log_level="warning", lifespan="off")
    )
    api = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    stop = threading.Event()
    loop = threading.Thread(target=service.run, args=(stop, 0.1))
    api.start()
    loop.start()
    client = ControlPlaneClient(url, token=TOKEN)
    try:
        while not server.started:
            time.sleep(0.01)
        yield MonitorCluster(url, client, service, Traffic(logs, trained.model))
    finally:
        stop.set()
        loop.join(30)
        server.should_exit = True
        api.join(15)
        sock.close()
        client.close()
        for m in store.list():  # the session database outlives this test
            store.delete(m.spec.name)


def deploy_taxi(cluster: MonitorCluster) -> None:
    cluster.client.apply(
        {
            "apiVersion": "loopline/v1",
            "kind": "Deployment",
            "metadata": {"name": "taxi"},
            "spec": {"model": "taxi/1", "replicas": 1, "template": {"logging": {"enabled": True}}},
        }
    )


def test_an_applied_monitor_runs_off_the_sync_loop_and_serves_its_status_and_windows(
    cluster: MonitorCluster, trained: Trained
) -> None:
    deploy_taxi(cluster)
    applied = cluster.client.apply_monitor(monitor_doc("cp-taxi"))
    assert applied.outcome == "created"
    assert applied.monitor.metadata.generation == 1
    assert applied.monitor.status is not None and applied.monitor.status["windows"] == 0
    assert cluster.client.apply_monitor(monitor_doc("cp-taxi")).outcome == "unchanged"

    rows = trained.data.sample(900, random_state=11)
    cluster.traffic.send(rows, labels=True)
    status = cluster.wait_for(
        "three windows", lambda: (s := cluster.status("cp-taxi")).windows == 3 and s
    )
    assert (status.model, status.rows, status.labels, status.error) == ("taxi", 900, 900, None)
    (v,) = status.versions
    assert (v.version, v.windows, v.last_index, v.rows) == ("1", 3, 2, 300)
    assert {f.name for f in v.features} >= {"distance", "company"}
    assert all(len(f.history) == 3 for f in v.features)
    accuracy = next(p for p in v.performance if p.name == "accuracy")
    assert accuracy.n == 300 and accuracy.value is not None
    assert v.lineage is not None and v.lineage.producer == "Trainer"

    windows = cluster.client.monitor_windows("cp-taxi", limit=2)
    assert [(w["version"], w["index"], w["rows"]) for w in windows] == [
        ("1", 1, 300),
        ("1", 2, 300),
    ]
    assert cluster.client.monitor_windows("cp-taxi", version="2") == ()
    (listed,) = [m for m in cluster.client.list_monitors() if m.metadata.name == "cp-taxi"]
    assert listed.spec["deployment"] == "taxi" and (listed.status or {})["windows"] == 3

    cluster.client.delete_monitor("cp-taxi")
    with pytest.raises(NotFoundError, match="Monitor 'cp-taxi' does not exist"):
        cluster.client.get_monitor("cp-taxi")


def test_an_invalid_monitor_is_refused_with_the_field_named(cluster: MonitorCluster) -> None:
    bad = monitor_doc("cp-bad", window={"rows": 0})
    response = httpx.put(
        f"{cluster.url}/v1/monitors/cp-bad",
        json=bad,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["reason"], body["field"]) == ("Invalid", "spec.window.rows")
    assert "spec.window.rows = 0 is invalid: it must be a positive integer" in body["error"]
    with pytest.raises(InvalidDefinitionError, match=r"spec.rules\[0\].metric = 'nope'"):
        cluster.client.apply_monitor(monitor_doc("cp-bad", rules=[{"name": "x", "metric": "nope"}]))
    with pytest.raises(InvalidDefinitionError, match="does not match the URL's name 'other'"):
        cluster.client.request("PUT", "/v1/monitors/other", json=monitor_doc("cp-bad"))
    assert cluster.client.list_monitors() == ()


def test_monitor_changes_need_the_token_and_reads_do_not(cluster: MonitorCluster) -> None:
    denied = httpx.put(f"{cluster.url}/v1/monitors/cp-x", json=monitor_doc("cp-x"))
    assert denied.status_code == 401 and "carries no bearer token" in denied.json()["error"]
    cluster.client.apply_monitor(monitor_doc("cp-x"))
    assert httpx.get(f"{cluster.url}/v1/monitors/cp-x").status_code == 200
    assert httpx.get(f"{cluster.url}/v1/monitors/cp-x/windows").json() == {"items": []}
    assert httpx.delete(f"{cluster.url}/v1/monitors/cp-x").status_code == 401


def test_a_monitor_that_cannot_tick_records_why_and_the_others_go_on(
    cluster: MonitorCluster, trained: Trained
) -> None:
    deploy_taxi(cluster)
    cluster.client.apply_monitor(monitor_doc("cp-orphan", deployment="nowhere"))
    cluster.client.apply_monitor(monitor_doc("cp-ok"))
    cluster.traffic.send(trained.data.sample(300, random_state=12))
    cluster.wait_for("a window of cp-ok", lambda: cluster.status("cp-ok").windows == 1)
    orphan = cluster.wait_for("the orphan's error", lambda: cluster.status("cp-orphan").error)
    assert "watches deployment 'nowhere', which does not exist" in orphan
    assert cluster.status("cp-orphan").model is None
    # fixed by naming the model: the error clears and it catches up on the same logs
    cluster.client.apply_monitor(monitor_doc("cp-orphan", deployment="nowhere", model="taxi"))
    fixed = cluster.wait_for(
        "the orphan's window", lambda: (s := cluster.status("cp-orphan")).windows == 1 and s
    )
    assert fixed.error is None and fixed.model == "taxi"


def test_the_openapi_document_describes_the_monitor_routes(cluster: MonitorCluster) -> None:
    doc = httpx.get(cluster.url + "/openapi.json").json()
    assert doc["paths"]["/v1/monitors/{name}"]["put"]["security"] == [{"bearer": []}]
    assert "get" in doc["paths"]["/v1/monitors/{name}/windows"]
    status = doc["components"]["schemas"]["MonitorStatus"]["properties"]
    assert set(MonitorStatus("m", "d", None, {}, 1, 0.0).to_dict()) == set(status)
