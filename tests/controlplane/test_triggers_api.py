"""Triggers through the control plane's API (validated when applied, the field named), and
the trigger controller's view of deployments (set the model, read the rollout's end)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.controlplane.conftest import TOKEN, FakeCluster

from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.triggers import DeploymentRollouts, TriggerOperations
from loopline.errors import NotFoundError
from loopline.triggers import (
    InMemoryTriggerStore,
    ProcessLauncher,
    RolloutPhase,
    TriggerController,
    Verdict,
    judge,
)


def trigger(pipeline: Path, name: str = "retrain", cron: str = "0 * * * *") -> dict[str, Any]:
    return {
        "apiVersion": "loopline/v1",
        "kind": "Trigger",
        "metadata": {"name": name},
        "spec": {
            "model": "bc",
            "on": {"schedule": {"cron": cron}},
            "run": {"pipeline": str(pipeline), "params": {"tick": "{{tick}}"}},
            "rollout": {"deployment": "bc"},
        },
    }


@pytest.fixture
def triggers(fake_cluster: FakeCluster, tmp_path: Path) -> Iterator[TriggerOperations]:
    service = fake_cluster.service
    store = InMemoryTriggerStore()
    controller = TriggerController(
        store=store,
        metadata=service.pinner.metadata,
        registry=fake_cluster.registry,
        launcher=ProcessLauncher(tmp_path / "logs"),
        rollouts=DeploymentRollouts(service),
        clock=time.time,
    )
    service.triggers_ops = TriggerOperations(store, controller)
    yield service.triggers_ops
    service.triggers_ops = None


@pytest.fixture
def client(fake_cluster: FakeCluster) -> Iterator[ControlPlaneClient]:
    with ControlPlaneClient(fake_cluster.url, token=TOKEN) as c:
        yield c


def test_a_trigger_is_applied_listed_shown_and_deleted(
    client: ControlPlaneClient, triggers: TriggerOperations, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline.py"
    pipeline.write_text("")
    created = client.apply_trigger(trigger(pipeline))
    assert created.outcome == "created"
    assert created.trigger.metadata.generation == 1
    assert client.apply_trigger(trigger(pipeline)).outcome == "unchanged"
    [listed] = client.list_triggers()
    assert listed.spec["on"] == {"schedule": {"cron": "0 * * * *"}}
    assert listed.status == {"cursor": None, "lastRun": None, "waiting": []}
    assert client.get_trigger("retrain").spec["rollout"]["alias"] == "champion"
    assert client.trigger_history("retrain") == ()
    client.delete_trigger("retrain")
    with pytest.raises(NotFoundError, match=r"Trigger 'retrain' does not exist"):
        client.get_trigger("retrain")
    with pytest.raises(NotFoundError, match=r"Trigger 'retrain' does not exist"):
        client.trigger_history("retrain")


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"cron": "every hour"}, "spec.on.schedule.cron", "cron expression of 5 fields"),
        ({"pipeline": "missing.py"}, "spec.run.pipeline", "no such file on the control plane"),
        ({"name": "other"}, "metadata.name", "does not match the URL's name 'retrain'"),
    ],
)
def test_a_bad_trigger_is_refused_with_400_naming_the_field(
    fake_cluster: FakeCluster,
    triggers: TriggerOperations,
    tmp_path: Path,
    change: dict[str, str],
    field: str,
    message: str,
) -> None:
    pipeline = tmp_path / "pipeline.py"
    pipeline.write_text("")
    doc = trigger(
        tmp_path / change["pipeline"] if "pipeline" in change else pipeline,
        name=change.get("name", "retrain"),
        cron=change.get("cron", "0 * * * *"),
    )
    r = httpx.put(
        f"{fake_cluster.url}/v1/triggers/retrain",
        json=doc,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 400
    assert (r.json()["reason"], r.json()["field"]) == ("Invalid", field)
    assert message in r.json()["error"]
    assert triggers.list() == []


def test_a_control_plane_without_triggers_says_so(fake_cluster: FakeCluster) -> None:
    r = httpx.get(f"{fake_cluster.url}/v1/triggers")
    assert r.status_code == 409
    assert r.json()["error"] == (
        "This control plane keeps no Triggers (it was built without a trigger store)."
    )


def deployment(strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": "bc@champion", "replicas": 2}
    if strategy is not None:
        spec["strategy"] = strategy
    return {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": "bc"},
        "spec": spec,
    }


def test_rollouts_set_the_pinned_model_and_see_it_healthy(
    client: ControlPlaneClient, fake_cluster: FakeCluster
) -> None:
    client.apply(deployment())
    fake_cluster.settle()
    rollouts = DeploymentRollouts(fake_cluster.service)
    generation = rollouts.set_model("bc", "bc/2", "trigger retrain run 1")
    assert judge(rollouts.observe("bc"), "bc/2", generation)[0] is Verdict.WAIT
    fake_cluster.settle()
    seen = rollouts.observe("bc")
    assert (seen.serving, seen.phase) == ("bc/2", RolloutPhase.HEALTHY)
    assert judge(seen, "bc/2", generation) == (Verdict.HEALTHY, "bc/2 rolled out and healthy")
    assert client.revisions("bc")[-1].cause == "trigger retrain run 1"
    fake_cluster.registry.set_alias("bc", "champion", 2, who="trigger retrain", why="healthy")
    again = rollouts.set_model("bc", "bc@champion", "trigger retrain run 1")
    assert again == generation  # pointed back at the alias: the same version, no new revision
    assert len(client.revisions("bc")) == 2


def test_rollouts_see_an_aborted_canary_as_degraded_with_its_message(
    client: ControlPlaneClient, fake_cluster: FakeCluster
) -> None:
    client.apply(
        deployment({"type": "Canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}})
    )
    fake_cluster.settle()
    rollouts = DeploymentRollouts(fake_cluster.service)
    generation = rollouts.set_model("bc", "bc/2", "trigger retrain run 2")
    fake_cluster.settle()
    assert rollouts.observe("bc").phase is RolloutPhase.PROGRESSING  # paused at the step
    client.abort("bc")
    fake_cluster.settle()
    seen = rollouts.observe("bc")
    verdict, why = judge(seen, "bc/2", generation)
    assert (seen.phase, verdict) == (RolloutPhase.DEGRADED, Verdict.DEGRADED)
    assert why and "abort" in why.lower()
