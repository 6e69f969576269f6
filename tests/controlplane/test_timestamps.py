"""Timestamps the API shows are RFC 3339 in UTC with a ``Z``: whole seconds in metadata and
conditions (Kubernetes' ``Time``), microseconds everywhere else (``MicroTime``); stored values
stay floats, converted at the edge and parsed back by readers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.controlplane.conftest import TOKEN, FakeCluster

from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.timestamps import MICROS, SECONDS, epoch, read_back, rfc3339, shown
from loopline.errors import InvalidInputError

WHOLE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MICRO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_epoch_seconds_are_written_in_utc_with_a_z() -> None:
    assert rfc3339(1796616246.25) == "2026-12-07T04:04:06.250000Z"
    assert rfc3339(1796616246.999, micro=False) == "2026-12-07T04:04:06Z"  # truncated, as Go
    assert rfc3339(0) == "1970-01-01T00:00:00.000000Z"


def test_timestamps_read_back_to_the_same_seconds() -> None:
    assert epoch("2026-12-07T04:04:06.250000Z") == 1796616246.25
    assert epoch("2026-12-07T04:04:06Z") == 1796616246.0
    assert epoch("2026-12-07T05:04:06+01:00") == 1796616246.0
    assert epoch(rfc3339(1796616246.123456)) == pytest.approx(1796616246.123456, abs=1e-6)


@pytest.mark.parametrize("text", ["yesterday", "2026-12-07T04:04:06", "", "1796616246"])
def test_a_timestamp_without_a_zone_or_not_a_date_is_refused_naming_it(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"is not RFC 3339; expect a UTC time such as"):
        epoch(text)


def test_only_the_servers_fields_are_converted_never_what_a_user_wrote() -> None:
    doc = {
        "metadata": {"creationTimestamp": 1796616246.5, "labels": {"createdAt": 5}},
        "spec": {"run": {"params": {"at": 7}}},
        "status": {
            "conditions": [{"lastTransitionTime": 1796616246.5, "at": None}],
            "lastRun": {"createdAt": 1796616246.5, "params": {"endedAt": 1}, "id": 3},
            "autoscaler": {"state": {"recommendations": [[1796616246.5, 2]]}},
            "rows": 1796616246.5,
        },
    }
    out = shown(doc)
    assert out == {
        "metadata": {"creationTimestamp": "2026-12-07T04:04:06Z", "labels": {"createdAt": 5}},
        "spec": {"run": {"params": {"at": 7}}},
        "status": {
            "conditions": [{"lastTransitionTime": "2026-12-07T04:04:06Z", "at": None}],
            "lastRun": {"createdAt": "2026-12-07T04:04:06.500000Z", "params": {"endedAt": 1},
                        "id": 3},
            "autoscaler": {"state": {"recommendations": [["2026-12-07T04:04:06.500000Z", 2]]}},
            "rows": 1796616246.5,
        },
    }  # fmt: skip
    back = read_back(out)
    assert back["status"]["lastRun"]["createdAt"] == 1796616246.5
    assert back["metadata"]["creationTimestamp"] == 1796616246.0


def _timestamps(doc: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, value) under a timestamp's name, and every float that looks like epoch
    seconds under any other name (as ``("?<key>", value)``)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in SECONDS or k in MICROS:
                yield k, v
            elif k not in ("spec",):
                yield from _timestamps(v, k)
    elif isinstance(doc, list):
        for v in doc:
            yield from _timestamps(v, key)
    elif isinstance(doc, float) and doc > 1e9:
        yield f"?{key}", doc


@pytest.fixture
def client(fake_cluster: FakeCluster) -> Iterator[ControlPlaneClient]:
    with ControlPlaneClient(fake_cluster.url, token=TOKEN) as c:
        yield c


def test_every_timestamp_the_deployment_api_shows_is_rfc_3339(
    fake_cluster: FakeCluster, client: ControlPlaneClient
) -> None:
    client.apply_template({
        "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": "q"},
        "spec": {"metrics": [{"name": "agreement", "successCondition": "result >= 0.95",
                              "provider": {"agreement": {}}}]},
    })  # fmt: skip
    client.apply({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "bc"},
        "spec": {"model": "bc@champion", "replicas": 2,
                 "autoscaling": {"minReplicas": 1, "maxReplicas": 4},
                 "strategy": {"type": "Canary", "canary": {
                     "steps": [{"setWeight": 20}, {"pause": {}}],
                     "analysis": {"templates": [{"templateName": "q"}]}}}},
    })  # fmt: skip
    fake_cluster.settle()
    client.set_model("bc", "bc/2")
    fake_cluster.settle()
    seen: set[str] = set()
    for path in ("/v1/deployments", "/v1/deployments/bc", "/v1/deployments/bc/revisions",
                 "/v1/deployments/bc/replicas", "/v1/replicas", "/v1/deployments/bc/events",
                 "/v1/deployments/bc/rollout", "/v1/analysistemplates",
                 "/v1/analysistemplates/q"):  # fmt: skip
        body = httpx.get(fake_cluster.url + path).json()
        for key, value in _timestamps(body):
            assert not key.startswith("?"), f"{path}: {key} = {value} looks like epoch seconds"
            if value is not None:
                assert (WHOLE if key in SECONDS else MICRO).fullmatch(value), (path, key, value)
                seen.add(key)
    # the sweep reached the rollout, the analysis, the autoscaler and the replicas
    assert {"creationTimestamp", "lastTransitionTime", "createdAt", "startedAt", "at",
            "stepStartedAt", "observedAt", "finishedAt"} <= seen, seen  # fmt: skip
