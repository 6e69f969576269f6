"""The control plane's errors never echo a huge value: a field, a name, a body or a query
parameter of almost a MiB is refused (400) with an error under 1 KiB that names the field."""

from __future__ import annotations

import json
from typing import Any

import httpx
from tests.controlplane.conftest import TOKEN, FakeCluster

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
BIG = "x" * 900_000  # the body limit is 1 MiB


def _deployment(name: str = "bc", **spec: Any) -> bytes:
    doc = {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"model": "bc/1", "replicas": 1, **spec},
    }
    return json.dumps(doc).encode()


def _refused(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 400, r.text[:500]
    assert len(r.content) < 1024 + 100, r.text[:500]  # the message, its reason and field
    body: dict[str, Any] = r.json()
    assert len(body["error"]) < 1024
    return body


def test_a_huge_field_value_is_refused_in_under_a_kib_naming_the_field(
    fake_cluster: FakeCluster,
) -> None:
    url = fake_cluster.url + "/v1/deployments/bc"
    body = _refused(httpx.put(url, content=_deployment(model=BIG), headers=AUTH))
    assert body["field"] == "spec.model"
    assert "…(900000 characters)" in body["error"]
    body = _refused(httpx.put(url, content=_deployment(strategy={"type": BIG}), headers=AUTH))
    assert body["field"] == "spec.strategy.type"
    body = _refused(httpx.put(url, content=_deployment(**{BIG: 1}), headers=AUTH))
    assert body["error"].startswith("Deployment field spec has unknown key(s) ['xxx")


def test_a_huge_name_or_body_is_refused_in_under_a_kib(fake_cluster: FakeCluster) -> None:
    url = fake_cluster.url + "/v1/deployments/bc"
    body = _refused(httpx.put(url, content=_deployment(name=BIG), headers=AUTH))
    assert body["error"].startswith("Deployment field metadata.name = 'xxx")
    body = _refused(httpx.put(url + "/scale", content=json.dumps(BIG), headers=AUTH))
    assert body["error"].startswith("The request body must be a JSON object, not 'xxx")
    query = fake_cluster.url + "/v1/deployments/bc/events?limit=" + "9" * 4000
    body = _refused(httpx.get(query, headers=AUTH))
    assert body["error"].startswith("Query parameter limit='999")


def test_a_huge_value_given_to_a_verb_is_refused_in_under_a_kib(
    fake_cluster: FakeCluster,
) -> None:
    url = fake_cluster.url + "/v1/deployments/bc"
    assert httpx.put(url, content=_deployment(), headers=AUTH).status_code == 201
    for method, verb, body in (
        ("PUT", "scale", {"replicas": BIG}),
        ("PUT", "model", {"model": [BIG]}),
        ("POST", "rollout/undo", {"toRevision": BIG}),
        ("POST", "rollout/promote", {"full": BIG}),
    ):
        r = httpx.request(method, f"{url}/{verb}", json=body, headers=AUTH)
        assert "characters)" in _refused(r)["error"], verb
