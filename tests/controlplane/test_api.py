"""The REST API over the real ControlPlane (fake engine): auth, errors, pinning, verbs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.controlplane.conftest import TOKEN, FakeCluster

from loopline.controlplane.api import create_app
from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.wire_codec import to_json
from loopline.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidDefinitionError,
    NotFoundError,
    UnauthorizedError,
)


def spec(name: str = "bc", model: str = "bc@champion", replicas: int = 2, **extra: Any) -> dict:
    return {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"model": model, "replicas": replicas, **extra},
    }


@pytest.fixture
def client(fake_cluster: FakeCluster) -> Iterator[ControlPlaneClient]:
    with ControlPlaneClient(fake_cluster.url, token=TOKEN) as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/deployments", spec()),
        ("PUT", "/v1/deployments/bc", spec()),
        ("PUT", "/v1/deployments/bc/scale", {"replicas": 3}),
        ("PATCH", "/v1/deployments/bc/scale", {"replicas": 3}),
        ("DELETE", "/v1/deployments/bc", None),
        ("POST", "/v1/deployments/bc/rollout/undo", {}),
    ],
)
def test_mutations_without_a_token_are_rejected_with_401(
    fake_cluster: FakeCluster, method: str, path: str, body: object
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = httpx.request(method, fake_cluster.url + path, json=body, headers=headers)
        assert r.status_code == 401
        assert r.json()["reason"] == "Unauthorized"
        assert "Authorization: Bearer <token>" in r.json()["error"]
    assert fake_cluster.service.list_deployments() == []


def test_client_without_token_gets_unauthorized_error(fake_cluster: FakeCluster) -> None:
    with (
        ControlPlaneClient(fake_cluster.url, token=None) as anonymous,
        pytest.raises(UnauthorizedError, match="carries no bearer token"),
    ):
        anonymous.apply(spec())


def test_reads_are_open_on_loopback(fake_cluster: FakeCluster, client: ControlPlaneClient) -> None:
    client.apply(spec())
    r = httpx.get(fake_cluster.url + "/v1/deployments")
    assert r.status_code == 200
    assert [d["metadata"]["name"] for d in r.json()["items"]] == ["bc"]


def test_invalid_spec_is_400_naming_the_field(fake_cluster: FakeCluster) -> None:
    r = httpx.put(
        fake_cluster.url + "/v1/deployments/bc",
        json=spec(replicas=-1),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 400
    body = r.json()
    assert body["reason"] == "Invalid"
    assert body["field"] == "spec.replicas"
    assert "Traceback" not in r.text


def test_malformed_body_is_400_not_a_stack_trace(fake_cluster: FakeCluster) -> None:
    r = httpx.put(
        fake_cluster.url + "/v1/deployments/bc",
        content=b"{not json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 400
    assert r.json()["reason"] == "BadRequest"
    assert "not valid JSON" in r.json()["error"]


def test_unknown_deployment_is_404(client: ControlPlaneClient, fake_cluster: FakeCluster) -> None:
    r = httpx.get(fake_cluster.url + "/v1/deployments/nope")
    assert r.status_code == 404
    assert r.json()["reason"] == "NotFound"
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        client.scale("nope", 2)


def test_unknown_route_is_a_json_404(fake_cluster: FakeCluster) -> None:
    r = httpx.get(fake_cluster.url + "/v2/whatever")
    assert (r.status_code, r.json()["reason"]) == (404, "NotFound")


def test_creating_an_existing_deployment_is_409(client: ControlPlaneClient) -> None:
    client.create(spec())
    with pytest.raises(AlreadyExistsError, match="'bc' already exists"):
        client.create(spec())


def test_name_in_body_must_match_the_url(fake_cluster: FakeCluster) -> None:
    r = httpx.put(
        fake_cluster.url + "/v1/deployments/other",
        json=spec(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 400
    assert r.json()["field"] == "metadata.name"


def test_unresolvable_model_is_400_listing_known_aliases(client: ControlPlaneClient) -> None:
    with pytest.raises(InvalidDefinitionError, match="spec.model = 'bc@canary' cannot be resolved"):
        client.apply(spec(model="bc@canary"))
    with pytest.raises(InvalidDefinitionError, match="champion"):
        client.apply(spec(model="bc@canary"))


def test_apply_pins_the_alias_and_a_moved_alias_makes_a_new_revision(
    client: ControlPlaneClient, fake_cluster: FakeCluster
) -> None:
    first = client.apply(spec())
    assert first.outcome == "created"
    model = first.deployment.status.model
    assert (model.ref, model.pinned, model.version) == ("bc@champion", "bc/1", 1)
    assert model.digest is not None and model.digest.startswith("sha256:")
    assert first.deployment.spec["model"] == "bc@champion"
    fake_cluster.settle()
    assert client.apply(spec()).outcome == "unchanged"

    fake_cluster.registry.set_alias("bc", "champion", 2, who="test", why="v2 wins")
    second = client.apply(spec())
    assert second.outcome == "configured"
    assert second.deployment.status.model.pinned == "bc/2"
    fake_cluster.settle()
    revisions = client.revisions("bc")
    assert [(r.number, r.model, r.ref, r.current) for r in revisions] == [
        (1, "bc/1", "bc@champion", False),
        (2, "bc/2", "bc@champion", True),
    ]
    models = {p.template.model for p in fake_cluster.engine.processes.values() if p.alive}
    assert models == {"bc/2"}
    assert client.rollout_status("bc").done is True


def test_scale_keeps_the_revision_and_set_model_adds_one(
    client: ControlPlaneClient, fake_cluster: FakeCluster
) -> None:
    client.apply(spec())
    fake_cluster.settle()
    client.scale("bc", 4)
    fake_cluster.settle()
    assert [r.replicas for r in client.revisions("bc")] == [4]
    assert sum(1 for r in client.replicas("bc") if r.ready) == 4
    out = client.set_model("bc", "bc/2", cause="loopline set model deployment/bc bc/2")
    assert out.status.model.pinned == "bc/2"
    fake_cluster.settle()
    revisions = client.revisions("bc")
    assert [r.replicas for r in revisions] == [0, 4]
    assert revisions[1].cause == "loopline set model deployment/bc bc/2"


def test_undo_returns_to_the_previous_model_and_is_refused_while_paused(
    client: ControlPlaneClient, fake_cluster: FakeCluster
) -> None:
    client.apply(spec())
    fake_cluster.settle()
    client.set_model("bc", "bc/2")
    fake_cluster.settle()
    client.pause("bc")
    with pytest.raises(ConflictError, match="is paused; resume it"):
        client.undo("bc")
    with pytest.raises(ConflictError, match="already paused"):
        client.pause("bc")
    client.resume("bc")
    result = client.undo("bc")
    assert result.skipped is False
    assert result.deployment.status.model.pinned == "bc/1"
    fake_cluster.settle()
    numbers = {r.number: r.model for r in client.revisions("bc")}
    assert numbers == {2: "bc/2", 3: "bc/1"}
    with pytest.raises(NotFoundError, match="has no revision 9"):
        client.undo("bc", to_revision=9)


def test_delete_stops_replicas_and_forgets_the_deployment(
    client: ControlPlaneClient, fake_cluster: FakeCluster
) -> None:
    client.apply(spec(replicas=3))
    fake_cluster.settle()
    client.delete("bc")
    assert client.list_deployments() == ()
    assert not any(p.alive for p in fake_cluster.engine.processes.values() if p.template)
    with pytest.raises(NotFoundError):
        client.delete("bc")


def test_describe_data_has_conditions_and_events(
    client: ControlPlaneClient, fake_cluster: FakeCluster
) -> None:
    client.apply(spec())
    fake_cluster.settle()
    d = client.get_deployment("bc")
    conditions = {c.type: c.reason for c in d.status.conditions}
    assert conditions["Available"] == "MinimumReplicasAvailable"
    assert conditions["Progressing"] == "NewRevisionAvailable"
    reasons = [e.reason for e in client.events("bc")]
    assert reasons[0] == "SpecApplied"
    assert "RevisionCreated" in reasons and "ReplicaStarted" in reasons
    assert d.status.router is not None and d.status.router.port == 8000


def test_openapi_document_describes_every_route(fake_cluster: FakeCluster) -> None:
    doc = httpx.get(fake_cluster.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/deployments/{name}/rollout/undo" in doc["paths"]
    assert doc["paths"]["/v1/deployments"]["post"]["security"] == [{"bearer": []}]


def test_reads_from_other_hosts_need_the_token(fake_cluster: FakeCluster) -> None:
    app = create_app(fake_cluster.service, token=TOKEN)

    async def get(headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as remote:
            return await remote.get("/v1/deployments", headers=headers)

    denied = asyncio.run(get({}))
    assert denied.status_code == 401
    assert "reads from other hosts" in denied.json()["error"]
    allowed = asyncio.run(get({"Authorization": f"Bearer {TOKEN}"}))
    assert allowed.status_code == 200


def test_the_output_of_get_can_be_applied_again(client: ControlPlaneClient) -> None:
    client.apply(spec())
    shown = to_json(client.get_deployment("bc"))  # what get -o yaml prints
    shown["spec"]["replicas"] = 3
    result = client.apply(shown)
    assert result.outcome == "configured"
    assert result.deployment.spec["replicas"] == 3
    assert result.deployment.status.model.pinned == "bc/1"


def test_a_failing_database_is_a_503_json_error_not_a_traceback(
    fake_cluster: FakeCluster,
) -> None:
    fake_cluster.registry.metadata.close()
    r = httpx.put(
        fake_cluster.url + "/v1/deployments/bc",
        json=spec(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 503
    assert r.json()["reason"] == "BackendUnavailable"
    assert "was closed" in r.json()["error"]
    assert "Traceback" not in r.text


def quality_template(name: str = "quality") -> dict[str, Any]:
    return {
        "apiVersion": "loopline/v1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"metrics": [{"name": "agreement", "successCondition": "result >= 0.95",
                              "provider": {"agreement": {}}}]},
    }  # fmt: skip


def test_analysis_templates_are_applied_listed_read_and_deleted(
    client: ControlPlaneClient,
) -> None:
    assert client.apply_template(quality_template()).outcome == "created"
    assert client.apply_template(quality_template()).outcome == "unchanged"
    assert [t.metadata.name for t in client.list_templates()] == ["quality"]
    assert client.get_template("quality").metadata.generation == 1
    client.delete_template("quality")
    with pytest.raises(NotFoundError, match="'quality' does not exist"):
        client.get_template("quality")


def test_a_bad_template_is_a_400_naming_its_field(fake_cluster: FakeCluster) -> None:
    bad = quality_template()
    bad["spec"]["metrics"][0]["successCondition"] = "__import__('os')"
    r = httpx.put(f"{fake_cluster.url}/v1/analysistemplates/quality", json=bad,
                  headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 400 and r.json()["field"] == "spec.metrics[0].successCondition"
    r = httpx.put(f"{fake_cluster.url}/v1/analysistemplates/other", json=quality_template(),
                  headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 400 and "does not match the URL's name 'other'" in r.json()["error"]


def test_rollout_verbs_refuse_a_rolling_update_deployment_with_409(
    client: ControlPlaneClient,
) -> None:
    client.apply(spec())
    for verb in (client.promote, client.abort, client.retry):
        with pytest.raises(ConflictError, match="applies to Canary and BlueGreen"):
            verb("bc")


def test_autoscaling_is_set_validated_and_removed(client: ControlPlaneClient) -> None:
    client.apply(spec())
    d = client.set_autoscaling("bc", {"minReplicas": 1, "maxReplicas": 4})
    assert d.spec["autoscaling"]["maxReplicas"] == 4
    with pytest.raises(InvalidDefinitionError, match=r"spec\.autoscaling\.maxReplicas"):
        client.set_autoscaling("bc", {"minReplicas": 3, "maxReplicas": 2})
    assert "autoscaling" not in client.set_autoscaling("bc", None).spec
