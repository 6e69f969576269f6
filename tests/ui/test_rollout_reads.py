"""The rollout, traffic and autoscaler the console reads from a deployment's API view
(loopline.ui.rollout), on the local engine's views from the real ControlPlane (fake engine);
the Kubernetes engine's views are read in test_console_kubernetes.py."""

from __future__ import annotations

import re

from tests.ui.conftest import Console, deployment

from loopline.ui.rollout import autoscaler_of, rollout_of, step_of, traffic_of


def test_a_local_canary_reads_as_a_rollout_with_its_step_and_weights_by_revision(
    console: Console,
) -> None:
    console.service.apply(deployment())
    console.settle()
    console.service.set_model("bc", "bc/2")
    console.settle()
    view = console.service.get_deployment("bc")
    rollout = rollout_of(view)
    assert rollout is not None and rollout.in_flight and not rollout.aborted
    assert rollout.step_index == 1 and step_of(view, rollout) == "step 2/4 (pause)"
    rows = traffic_of(view, console.service.revisions("bc"), rollout)
    assert [(r.label, r.role, r.model, r.weight) for r in rows] == [
        ("rev 1", "stable", "bc/1", 75), ("rev 2", "canary", "bc/2", 25)]  # fmt: skip


def test_a_rolling_update_has_no_rollout_and_sends_everything_to_its_revision(
    console: Console,
) -> None:
    console.service.apply(deployment(canary=False))
    console.settle()
    view = console.service.get_deployment("bc")
    assert rollout_of(view) is None and step_of(view, None) == ""
    (row,) = traffic_of(view, console.service.revisions("bc"), None)
    assert (row.label, row.role, row.weight) == ("rev 1", "current", 100)


def test_loopline_s_own_autoscaler_is_shown_with_its_bounds_and_decision(
    console: Console,
) -> None:
    console.service.apply(deployment(canary=False))
    console.service.set_autoscaling("bc", {"minReplicas": 1, "maxReplicas": 4})
    console.settle()
    view = console.service.get_deployment("bc")
    scaler = autoscaler_of(view)
    assert scaler is not None and scaler.decided_by == "loopline"
    assert (scaler.min_replicas, scaler.max_replicas) == (1, 4)
    assert scaler.desired is not None and 1 <= scaler.desired <= 4
    text = console.client().get("/ui/deployments/bc").text
    hpa = re.search(r'<dl class="facts" id="autoscaler">.*?</dl>', text, re.S)
    assert hpa is not None and "loopline&#39;s autoscaler" in hpa.group()
    assert "1..4 replicas" in hpa.group() and f"<dd>{scaler.desired}" in hpa.group()
    assert "not on this engine" not in text
