"""The issue's reliability scenarios, each under a bounded load generator: real replicas
(``loopline serve``), real routers, the real control plane, all on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.controlplane.live import LiveCluster, deployment, infer_body, live_cluster
from tests.controlplane.load import LoadGenerator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, bc_bundles: list[Path]
) -> Iterator[LiveCluster]:
    base = tmp_path_factory.mktemp("live")
    with live_cluster(base, bc_bundles) as c:
        yield c


def test_rolling_update_v1_to_v2_at_3_replicas_fails_no_request(cluster: LiveCluster) -> None:
    c = cluster.client
    c.apply(deployment("roll", "bc/1", 3))
    cluster.wait_rollout("roll")
    with LoadGenerator(cluster.router_url("roll"), infer_body()) as load:
        time.sleep(0.5)
        c.set_model("roll", "bc/2")
        cluster.wait_rollout("roll")
        time.sleep(0.5)
    report = load.report
    print(f"rolling update: {report}")
    assert report.failed == 0, report.errors
    assert report.versions["1"] > 0 and report.versions["2"] > 0
    assert {r.model for r in c.replicas("roll") if r.phase == "Running"} == {"bc/2"}
    c.delete("roll")


def test_scale_1_to_5_to_1_and_a_killed_replica_fail_no_request(cluster: LiveCluster) -> None:
    c = cluster.client
    c.apply(deployment("scale", "bc/1", 1))
    cluster.wait_rollout("scale")
    with LoadGenerator(cluster.router_url("scale"), infer_body()) as load:
        c.scale("scale", 5)
        cluster.wait_for("5 ready replicas", lambda: sum(
            r.ready for r in c.replicas("scale")) == 5)  # fmt: skip
        scaled_up = load.report.ok
        victim = c.replicas("scale")[2]
        os.killpg(victim.pid or 0, signal.SIGKILL)  # kill -9 the whole replica
        cluster.wait_for("the killed replica to restart", lambda: any(
            r.id == victim.id and r.ready and r.pid != victim.pid
            for r in c.replicas("scale")))  # fmt: skip
        healed = next(r for r in c.replicas("scale") if r.id == victim.id)
        c.scale("scale", 1)
        cluster.wait_for("1 replica left", lambda: len(c.replicas("scale")) == 1)
        time.sleep(0.5)
    print(f"scale 1→5→1 with a kill -9: {load.report}")
    assert load.report.failed == 0, load.report.errors
    assert 0 < scaled_up < load.report.ok
    assert healed.restarts == 1
    assert healed.last_exit is not None and "exited" in healed.last_exit.message
    c.delete("scale")


def test_rollout_undo_fails_no_request(cluster: LiveCluster) -> None:
    c = cluster.client
    c.apply(deployment("undo", "bc/1", 1))
    cluster.wait_rollout("undo")
    c.set_model("undo", "bc/2")
    cluster.wait_rollout("undo")
    with LoadGenerator(cluster.router_url("undo"), infer_body()) as load:
        result = c.undo("undo")
        assert result.deployment.status.model.pinned == "bc/1"
        cluster.wait_rollout("undo")
        time.sleep(0.5)
    print(f"undo: {load.report}")
    assert load.report.failed == 0, load.report.errors
    assert load.report.versions["2"] > 0 and load.report.versions["1"] > 0
    assert [r.number for r in c.revisions("undo")] == [2, 3]
    c.delete("undo")


def test_recreate_reports_its_downtime(cluster: LiveCluster) -> None:
    c = cluster.client
    c.apply(deployment("recreate", "bc/1", 1, strategy={"type": "Recreate"}))
    cluster.wait_rollout("recreate")
    with LoadGenerator(cluster.router_url("recreate"), infer_body()) as load:
        time.sleep(0.3)
        c.set_model("recreate", "bc/2")
        cluster.wait_rollout("recreate")
        time.sleep(0.5)
    downtime = [e for e in c.events("recreate") if e.reason == "Downtime"]
    print(f"recreate: measured {load.report.downtime:.1f} s of failures; {downtime}")
    assert load.report.failed > 0  # Recreate stops every old replica first, by design
    assert len(downtime) == 1 and downtime[0].type == "Warning"
    assert "No replica was available for" in downtime[0].message
    c.delete("recreate")


def test_model_that_fails_to_load_stalls_and_undo_recovers(cluster: LiveCluster) -> None:
    c = cluster.client
    c.apply(deployment("bad", "bc/1", 1))
    cluster.wait_rollout("bad")
    with LoadGenerator(cluster.router_url("bad"), infer_body()) as load:
        c.apply(deployment("bad", "bc/3", 1, progressDeadlineSeconds=6))
        cluster.wait_for("the bc/3 replica to fail", lambda: any(
            r.model == "bc/3" and r.last_exit for r in c.replicas("bad")))  # fmt: skip
        status = cluster.wait_for(
            "ProgressDeadlineExceeded", lambda: (s := c.rollout_status("bad")).failed and s
        )
        assert status.message == "deployment 'bad' exceeded its progress deadline"
        d = c.get_deployment("bad")
        reasons = {x.type: x.reason for x in d.status.conditions}
        assert reasons["Progressing"] == "ProgressDeadlineExceeded"
        assert d.status.available_replicas == 1  # the old replica keeps serving
        c.undo("bad")
        # As in Kubernetes, Progressing stays ProgressDeadlineExceeded until the controller
        # sees progress again, so wait for "done" rather than failing on "failed".
        cluster.wait_for("the undo to complete", lambda: c.rollout_status("bad").done)
        time.sleep(0.5)
    print(f"failed model + undo: {load.report}")
    assert load.report.failed == 0, load.report.errors
    assert set(load.report.versions) == {"1"}
    assert {r.model for r in c.replicas("bad")} == {"bc/1"}
    c.delete("bad")
