"""The served OpenAPI document is generated from the route table and the wire types: it
covers every route of the app with its methods, and each handler's declared response type
decodes its real answers, strictly, back to the same JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route
from tests.controlplane.conftest import TOKEN, FakeCluster, register_bc, serve_api
from tests.fuzz.documents import MONITOR, trigger

from loopline.controlplane.api import ApiHandlers, create_app
from loopline.controlplane.build import build_controlplane
from loopline.controlplane.openapi import Endpoint
from loopline.controlplane.routes import api_endpoints
from loopline.controlplane.wire import ErrorBody
from loopline.controlplane.wire_codec import from_json, to_json
from loopline.errors import InvalidInputError
from loopline.platform import Platform
from loopline.settings import Settings

PIPELINE = Path(__file__).resolve().parents[1] / "triggers" / "pipelines" / "retrain.py"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEMPLATE = {
    "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": "q"},
    "spec": {"metrics": [{"name": "agreement", "successCondition": "result >= 0.95",
                          "provider": {"agreement": {}}}]},
}  # fmt: skip
CANARY = {
    "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "bc"},
    "spec": {"model": "bc@champion", "replicas": 2,
             "autoscaling": {"minReplicas": 1, "maxReplicas": 4},
             "strategy": {"type": "Canary", "canary": {
                 "steps": [{"setWeight": 20}, {"pause": {}}],
                 "analysis": {"templates": [{"templateName": "q"}]}}}},
}  # fmt: skip


def _table() -> dict[tuple[str, str], Endpoint]:
    endpoints = api_endpoints(ApiHandlers.__new__(ApiHandlers))
    return {(m, e.path): e for e in endpoints for m in e.methods}


class Checked:
    """Calls the API and checks each JSON answer against its route's declared type."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers=AUTH, timeout=60)
        self.table = _table()
        self.seen: set[tuple[str, str]] = set()

    def call(
        self, method: str, template: str, body: Any = None, error: int = 0, **params: str
    ) -> Any:
        """One call; ``error``: the error code it answers (its body an ErrorBody)."""
        r = self.http.request(method, template.format(**params), json=body)
        endpoint = self.table[(method, template)]
        self.seen.add((method, template))
        if error:
            assert r.status_code == error and error in endpoint.errors, r.text
            assert to_json(from_json(ErrorBody, r.json(), strict=True)) == r.json()
            return r.json()
        assert r.status_code < 300, r.text
        if endpoint.response is None:
            assert r.headers["content-type"].startswith("text/plain")
            return r.text
        answer = r.json()
        typed = from_json(endpoint.response, answer, strict=True)
        assert to_json(typed) == answer, f"{method} {template}: the type loses a field"
        return answer


@pytest.fixture
def deployments(fake_cluster: FakeCluster) -> Iterator[tuple[Checked, FakeCluster]]:
    checked = Checked(fake_cluster.url)
    yield checked, fake_cluster
    checked.http.close()


@pytest.fixture
def full(tmp_path: Path, bc_bundles: list[Path]) -> Iterator[Checked]:
    """A control plane as ``loopline controlplane`` builds it (Triggers and Monitors kept);
    its loops do not run, so no process starts."""
    settings = Settings.from_env({
        "LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
        "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "LOOPLINE_HOME": str(tmp_path / "home"),
    })  # fmt: skip
    platform = Platform(settings)
    register_bc(platform.metadata, platform.artifacts, bc_bundles)
    service = build_controlplane(platform)
    try:
        with serve_api(create_app(service, token=TOKEN)) as url:
            checked = Checked(url)
            try:
                yield checked
            finally:
                checked.http.close()
    finally:
        service.manager.close(timeout=10)
        platform.close()


def test_the_served_document_covers_every_route_of_the_app_with_its_methods(
    fake_cluster: FakeCluster,
) -> None:
    doc = httpx.get(fake_cluster.url + "/openapi.json").json()
    app = create_app(fake_cluster.service, token=TOKEN)
    routes = {
        (m.lower(), r.path)
        for r in app.routes
        if isinstance(r, Route)
        for m in (r.methods or ()) - {"HEAD"}
    }
    documented = {(m, p) for p, item in doc["paths"].items() for m in item if m != "parameters"}
    assert routes == documented
    assert len(routes) == len(_table())
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("post", "put", "patch", "delete"):
                assert op["security"] == [{"bearer": []}], (method, path)
                assert "401" in op["responses"], (method, path)
    assert doc["openapi"] == "3.1.0"


def test_every_schema_reference_resolves(fake_cluster: FakeCluster) -> None:
    doc = httpx.get(fake_cluster.url + "/openapi.json").json()
    text = json.dumps(doc)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs and refs <= set(doc["components"]["schemas"]), refs - set(
        doc["components"]["schemas"]
    )
    deployment = doc["components"]["schemas"]["Deployment"]
    assert deployment["required"] == ["apiVersion", "kind", "metadata", "spec", "status"]
    meta = doc["components"]["schemas"]["ObjectMeta"]["properties"]
    assert meta["creationTimestamp"] == {"type": ["string", "null"]}


def test_each_deployment_handler_answers_its_declared_type(
    deployments: tuple[Checked, FakeCluster],
) -> None:
    api, cluster = deployments
    api.call("GET", "/healthz")
    api.call("PUT", "/v1/analysistemplates/{name}", TEMPLATE, name="q")
    api.call("GET", "/v1/analysistemplates")
    api.call("GET", "/v1/analysistemplates/{name}", name="q")
    api.call("PUT", "/v1/deployments/{name}", CANARY, name="bc")
    cluster.settle()
    api.call("PUT", "/v1/deployments/{name}/model", {"model": "bc/2"}, name="bc")
    cluster.settle()
    for template in ("/v1/deployments/{name}", "/v1/deployments/{name}/revisions",
                     "/v1/deployments/{name}/replicas", "/v1/deployments/{name}/events",
                     "/v1/deployments/{name}/rollout"):  # fmt: skip
        api.call("GET", template, name="bc")
    api.call("GET", "/v1/deployments")
    replicas = api.call("GET", "/v1/replicas")
    log = "/v1/replicas/{replica_id}/log"  # the fake engine's replicas write no log
    api.call("GET", log, error=404, replica_id=replicas["items"][0]["id"])
    for verb in ("pause", "resume", "promote", "abort", "retry"):
        api.call("POST", f"/v1/deployments/{{name}}/rollout/{verb}", name="bc")
    api.call("PUT", "/v1/deployments/{name}/scale", {"replicas": 3}, name="bc")
    api.call("PATCH", "/v1/deployments/{name}/scale", {"replicas": 2}, name="bc")
    api.call("PUT", "/v1/deployments/{name}/autoscaling", {"autoscaling": None}, name="bc")
    cluster.settle()
    api.call("POST", "/v1/deployments/{name}/rollout/undo", {"toRevision": 1}, name="bc")
    plain = dict(CANARY, metadata={"name": "plain"}, spec={"model": "bc/1", "replicas": 1})
    api.call("POST", "/v1/deployments", plain)
    api.call("DELETE", "/v1/deployments/{name}", name="plain")
    api.call("DELETE", "/v1/analysistemplates/{name}", name="q")
    api.call("GET", "/openapi.json")
    missed = {k for k in api.table if not k[1].startswith(("/v1/triggers", "/v1/monitors"))}
    assert missed - api.seen == set()


def test_each_trigger_and_monitor_handler_answers_its_declared_type(full: Checked) -> None:
    full.call("PUT", "/v1/triggers/{name}", trigger(str(PIPELINE)), name="retrain")
    full.call("GET", "/v1/triggers")
    full.call("GET", "/v1/triggers/{name}", name="retrain")
    full.call("GET", "/v1/triggers/{name}/history", name="retrain")
    full.call("PUT", "/v1/monitors/{name}", MONITOR, name="bc")
    full.call("GET", "/v1/monitors")
    full.call("GET", "/v1/monitors/{name}", name="bc")
    full.call("GET", "/v1/monitors/{name}/windows", name="bc")
    full.call("DELETE", "/v1/monitors/{name}", name="bc")
    full.call("DELETE", "/v1/triggers/{name}", name="retrain")
    wanted = {k for k in full.table if k[1].startswith(("/v1/triggers", "/v1/monitors"))}
    assert wanted - full.seen == set()


def test_a_strict_decode_names_the_field_a_type_does_not_know() -> None:
    from loopline.controlplane import wire

    with pytest.raises(InvalidInputError, match=r"its body = \['extra'\], not a Deleted"):
        from_json(wire.Deleted, {"outcome": "deleted", "name": "x", "extra": 1}, strict=True)
    with pytest.raises(InvalidInputError, match=r"items\[0\]\.number = 'one', not int") as err:
        from_json(wire.RevisionList, {"items": [{"number": "one"}]})
    assert err.value.field == "items[0].number"
    lenient = from_json(wire.Deleted, {"outcome": "deleted", "name": "x", "extra": 1})
    assert lenient == wire.Deleted("deleted", "x")
