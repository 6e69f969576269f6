"""The API refuses what a spec may not hold and never answers 500 because of a number:
NaN/Infinity in a body, a replica count of 10³⁰, ``?limit=²`` (issue #11)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text
from tests.controlplane.conftest import TOKEN, FakeCluster, Registry

from loopline.controlplane.api import create_app
from loopline.controlplane.events import EventLog
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.service import ControlPlane
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.sql_state import SqlDeploymentStateStore
from loopline.testing.deploy import FakeEngine, FakeRouting

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _deployment(sample_rate: str = "0.5", replicas: str = "1") -> bytes:
    return (
        '{"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "bc"}, '
        f'"spec": {{"model": "bc/1", "replicas": {replicas}, '
        f'"template": {{"logging": {{"enabled": true, "sampleRate": {sample_rate}}}}}}}}}'
    ).encode()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_body_with_nan_or_infinity_is_a_400_naming_the_field(
    fake_cluster: FakeCluster, literal: str
) -> None:
    r = httpx.put(
        fake_cluster.url + "/v1/deployments/bc", content=_deployment(literal), headers=AUTH
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "spec.template.logging.sampleRate"
    assert "finite" in r.json()["error"]
    listed = httpx.get(fake_cluster.url + "/v1/deployments")
    assert (listed.status_code, listed.json()["items"]) == (200, [])


def test_a_replica_count_beyond_the_bound_is_a_400(fake_cluster: FakeCluster) -> None:
    r = httpx.put(
        fake_cluster.url + "/v1/deployments/bc",
        content=_deployment(replicas="1" + "0" * 30),
        headers=AUTH,
    )
    assert (r.status_code, r.json()["field"]) == (400, "spec.replicas")
    ok = httpx.put(fake_cluster.url + "/v1/deployments/bc", content=_deployment(), headers=AUTH)
    assert ok.status_code == 201
    for replicas in (10**30, 1001):
        scaled = httpx.put(
            fake_cluster.url + "/v1/deployments/bc/scale", json={"replicas": replicas},
            headers=AUTH,
        )  # fmt: skip
        assert scaled.status_code == 400
        assert "at most 1000" in scaled.json()["error"]


@pytest.mark.parametrize("value", ["²", "٣", "1%0A", "-1", "1.5", "9" * 40, ""])
@pytest.mark.parametrize(
    "path",
    ["/v1/deployments/bc/events?limit=", "/v1/replicas/bc-abc/log?tail=",
     "/v1/triggers/t/history?limit=", "/v1/monitors/m/windows?limit="],
)  # fmt: skip
def test_a_query_parameter_that_is_not_ascii_digits_is_a_400_naming_it(
    fake_cluster: FakeCluster, path: str, value: str
) -> None:
    r = httpx.get(fake_cluster.url + path + value)
    assert r.status_code == 400, r.text
    key = path.rsplit("?", 1)[1].rstrip("=")
    assert f"Query parameter {key}=" in r.json()["error"]


def test_a_stored_deployment_holding_nan_is_still_rendered(fake_cluster: FakeCluster) -> None:
    ok = httpx.put(fake_cluster.url + "/v1/deployments/bc", content=_deployment(), headers=AUTH)
    assert ok.status_code == 201
    # What an older version stored: the parser is bypassed, as a row written before the
    # validation existed would be.
    stored = fake_cluster.service.store.get_deployment("bc").spec
    logging = replace(stored.template.logging, sample_rate=math.nan)
    bad: DeploymentSpec = replace(stored, template=replace(stored.template, logging=logging))
    fake_cluster.service.manager.apply(bad)
    for path in ("/v1/deployments", "/v1/deployments/bc"):
        r = httpx.get(fake_cluster.url + path)
        assert r.status_code == 200, r.text
    item = httpx.get(fake_cluster.url + "/v1/deployments").json()["items"][0]
    assert item["spec"]["template"]["logging"]["sampleRate"] is None


def test_a_stored_row_this_version_refuses_is_reported_and_the_others_listed(
    bc_registry: Registry,
) -> None:
    store = SqlDeploymentStateStore.from_metadata(bc_registry.metadata)
    manager = DeploymentManager(store=store, engine=FakeEngine(), routing=FakeRouting(),
                                background_stops=False)  # fmt: skip
    service = ControlPlane(
        manager=manager,
        pinner=ModelPinner(registry=bc_registry.registry, metadata=bc_registry.metadata),
        events=EventLog(clock=time.time),
    )
    for name in ("good", "bad"):
        service.apply(json.loads(_deployment().replace(b'"bc"}', f'"{name}"}}'.encode())))
    with bc_registry.metadata.engine.begin() as conn:  # type: ignore[attr-defined]
        raw = conn.execute(text("SELECT spec FROM deploy_deployments WHERE name = 'bad'"))
        doc = json.loads(raw.scalar_one())
        doc["spec"]["template"]["logging"]["sampleRate"] = math.nan  # as an older version wrote
        conn.execute(text("UPDATE deploy_deployments SET spec = :s WHERE name = 'bad'"),
                     {"s": json.dumps(doc)})  # fmt: skip
    app = create_app(service, token=TOKEN)

    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.get(path)

    listed = asyncio.run(get("/v1/deployments"))
    assert listed.status_code == 200
    assert [d["metadata"]["name"] for d in listed.json()["items"]] == ["good"]
    [unreadable] = listed.json()["unreadable"]
    assert unreadable["name"] == "bad"
    assert "sampleRate = nan" in unreadable["error"]
    one = asyncio.run(get("/v1/deployments/bad"))
    assert (one.status_code, one.json()["reason"]) == (409, "Conflict")
    assert "apply a corrected spec over it" in one.json()["error"]
