"""Changing ``spec.autoscaling`` of a running deployment, on the fake-clock simulator: the
controller runs a count the new block allows."""

from __future__ import annotations

from typing import Any

from loopline.deploy.autoscaler_state import HpaConditionType
from loopline.deploy.autoscaling import Autoscaling
from loopline.testing.deploy import DeploymentSimulator, make_spec

RPS = [{"type": "Pods", "pods": {
    "metric": {"name": "requests_per_second"},
    "target": {"type": "AverageValue", "averageValue": "10"}}}]  # fmt: skip


def block(min_replicas: int, **extra: Any) -> Autoscaling:
    return Autoscaling.from_dict(
        {"minReplicas": min_replicas, "maxReplicas": 3, "metrics": RPS, **extra}
    )


def scaled_to_zero() -> DeploymentSimulator:
    zero = block(0, scaleToZero={"idleSeconds": 10, "graceSeconds": 5})
    sim = DeploymentSimulator(make_spec(replicas=1, autoscaling=zero), autoscale_period=15.0)
    sim.settle()
    for _ in range(3):  # no request for 45 s
        sim.sync(15)
    sim.settle()
    assert sim.sizes() == (0,) and not sim.live()
    return sim


def test_raising_min_replicas_brings_a_deployment_scaled_to_zero_back() -> None:
    sim = scaled_to_zero()
    sim.apply(autoscaling=block(1))
    sim.sync()  # at once, not at the next decision: nothing holds requests any more
    sim.settle()
    assert sim.sizes() == (1,) and len(sim.live()) == 1
    sim.sync(15)
    auto = sim.deployment.status.autoscaler
    assert auto is not None and auto.desired == 1
    active = auto.state.condition(HpaConditionType.SCALING_ACTIVE)
    assert active is not None and active.reason != "ScalingDisabled", active


def test_removing_autoscaling_from_a_deployment_at_zero_runs_spec_replicas() -> None:
    sim = scaled_to_zero()
    sim.apply(autoscaling=None, replicas=2)
    sim.settle()
    assert sim.sizes() == (2,) and len(sim.live()) == 2
