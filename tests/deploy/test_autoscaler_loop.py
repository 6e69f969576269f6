"""The autoscaler inside the sync loop, on the fake-clock simulator: it reads CPU from the
engine and rates from the router, decides every period, and the controller runs its count;
scale to zero and back when the router holds a request; a canary never scales down."""

from __future__ import annotations

from loopline.deploy.autoscaler import ACTIVATOR_HOLD_SECONDS
from loopline.deploy.autoscaling import Autoscaling
from loopline.deploy.progressive_spec import parse_canary
from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.spec import Strategy, StrategyType
from loopline.testing.deploy import DeploymentSimulator, make_spec


def autoscaled(block: dict[str, object], replicas: int = 1, **spec: object) -> DeploymentSimulator:
    sim = DeploymentSimulator(
        make_spec(replicas=replicas, autoscaling=Autoscaling.from_dict(block), **spec),
        autoscale_period=15.0,
    )
    sim.settle()
    return sim


def burn(sim: DeploymentSimulator, cores: float, seconds: float) -> None:
    """Every live replica uses ``cores`` of CPU for ``seconds``, then one sync."""
    for r in sim.live():
        sim.engine.cpu[r.id] = sim.engine.cpu.get(r.id, 0.0) + cores * seconds
    sim.sync(seconds=seconds)


def ready_count(sim: DeploymentSimulator) -> int:
    return sum(1 for r in sim.live() if r.phase is ReplicaPhase.RUNNING and r.ready)


def test_cpu_above_target_scales_up_by_the_hpa_formula_and_records_why() -> None:
    sim = autoscaled({"minReplicas": 1, "maxReplicas": 5, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 50}}}]})  # fmt: skip
    burn(sim, 0.9, 15)  # the first reading only opens the window
    burn(sim, 0.9, 15)  # 90 % of one core against 50 %: ceil(1 × 1.8) = 2
    sim.settle()
    assert sim.sizes() == (2,)
    auto = sim.deployment.status.autoscaler
    assert auto is not None and auto.desired == 2
    assert any(e["reason"] == "SuccessfulRescale" and "New size: 2" in e["message"]
               for e in auto.events)  # fmt: skip


def test_scale_down_waits_for_the_stabilization_window() -> None:
    sim = autoscaled(
        {"minReplicas": 1, "maxReplicas": 5, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 50}}}]},
        replicas=4,
    )  # fmt: skip
    burn(sim, 0.5, 15)
    burn(sim, 0.5, 15)
    assert sim.sizes() == (4,)
    for _ in range(10):  # idle for 150 s: inside the default 300 s window
        burn(sim, 0.0, 15)
    assert sim.sizes() == (4,)
    for _ in range(12):
        burn(sim, 0.0, 15)
    sim.settle()
    assert sim.sizes() == (1,)


def test_an_idle_deployment_scales_to_zero_and_a_held_request_brings_a_replica_back() -> None:
    sim = autoscaled({"minReplicas": 0, "maxReplicas": 3,
                      "scaleToZero": {"idleSeconds": 30, "graceSeconds": 10},
                      "metrics": [{"type": "Pods", "pods": {
                          "metric": {"name": "requests_per_second"},
                          "target": {"type": "AverageValue", "averageValue": "10"}}}]})  # fmt: skip
    table = sim.routing.tables["web"]
    assert table.hold_seconds == ACTIVATOR_HOLD_SECONDS  # the router holds requests meanwhile
    for _ in range(6):
        sim.sync(seconds=15)
    sim.settle()
    assert sim.sizes() == (0,) and ready_count(sim) == 0
    rev = sim.revisions()[0].hash
    sim.routing.router_stats["web"] = {
        "revisions": {rev: {"requests": 1, "inFlight": 0, "rate": 0.0}}, "held": 1,
    }  # fmt: skip
    sim.sync(seconds=0.25)  # not a whole period later: demand at zero is checked every tick
    sim.settle()
    assert sim.sizes() == (1,) and ready_count(sim) == 1


def test_a_canary_in_progress_never_scales_down() -> None:
    strategy = Strategy(type=StrategyType.CANARY, canary=parse_canary(
        {"steps": [{"setWeight": 50}, {"pause": {}}]}))  # fmt: skip
    sim = autoscaled(
        {"minReplicas": 1, "maxReplicas": 4, "behavior": {"scaleDown": {
            "stabilizationWindowSeconds": 0}}},
        replicas=3,
        strategy=strategy,
    )  # fmt: skip
    sim.set_model("iris/2")
    sim.settle()
    for _ in range(8):  # idle CPU: the HPA would want 1 replica
        burn(sim, 0.0, 15)
    sim.settle()
    auto = sim.deployment.status.autoscaler
    assert auto is not None and auto.desired == 3
    assert sim.sizes() == (3, 2)  # stable keeps 3, the canary ceil(3 × 50 %)
