"""Blue-green rollouts on the fake-clock simulator: the preview stack, manual and automatic
promotion, pre- and post-promotion analysis, and the switch back on failure."""

from __future__ import annotations

from loopline.deploy.analysis import AnalysisTemplate
from loopline.deploy.progressive_spec import parse_blue_green
from loopline.deploy.rollout_state import PauseReason, Phase
from loopline.deploy.spec import Strategy, StrategyType
from loopline.deploy.strategies.verbs import abort
from loopline.testing.analysis import ScriptedProviders
from loopline.testing.deploy import DeploymentSimulator, make_spec

SMOKE = AnalysisTemplate.from_dict(
    {
        "apiVersion": "loopline/v1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "smoke"},
        "spec": {
            "metrics": [
                {
                    "name": "error-rate",
                    "count": 1,
                    "successCondition": "result <= 0.01",
                    "provider": {"router": {"metric": "errorRate", "revision": "canary"}},
                }
            ]
        },
    }
)


def simulator(replicas: int = 3, **blue_green: object) -> DeploymentSimulator:
    strategy = Strategy(type=StrategyType.BLUE_GREEN, blue_green=parse_blue_green(blue_green))
    sim = DeploymentSimulator(
        make_spec(replicas=replicas, strategy=strategy),
        templates=[SMOKE],
        providers=ScriptedProviders({"error-rate": (0.0, 1000)}),
    )
    sim.settle()
    return sim


def table(sim: DeploymentSimulator) -> tuple[dict[str, int], str | None]:
    t = sim.routing.tables["web"].traffic
    return dict(t.weights or ()), t.preview


def test_the_preview_runs_a_full_stack_beside_the_active_one_and_waits_for_promote() -> None:
    sim = simulator(autoPromotionEnabled=False)
    active = sim.deployment.status.rollout
    assert active is not None and active.stable is not None
    sim.set_model("iris/2")
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is not None
    assert sim.sizes() == (3, 3)
    assert table(sim) == ({active.stable: 100}, state.canary)
    assert state.pause == PauseReason.BLUE_GREEN_PAUSE and state.phase is Phase.PAUSED
    sim.promote()
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None and state.stable != active.stable
    assert table(sim) == ({state.stable: 100}, None)
    assert sim.sizes() == (3, 3)  # the old stack waits scaleDownDelaySeconds
    sim.sync(seconds=31)
    sim.settle()
    assert sim.sizes() == (0, 3)


def test_a_smaller_preview_is_scaled_up_before_the_switch() -> None:
    sim = simulator(replicas=4, previewReplicaCount=1, autoPromotionEnabled=False)
    sim.set_model("iris/2")
    sim.settle()
    assert sim.sizes() == (4, 1)
    sim.promote()
    sim.sync()
    assert sim.sizes() == (4, 4)
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None


def test_auto_promotion_seconds_switches_after_the_preview_was_ready_that_long() -> None:
    sim = simulator(autoPromotionSeconds=60)
    old = sim.deployment.status.rollout
    assert old is not None
    sim.set_model("iris/2")
    sim.settle()
    assert table(sim)[0] == {old.stable: 100}
    sim.sync(seconds=61)
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None and state.stable != old.stable


def test_a_failing_pre_promotion_analysis_never_switches() -> None:
    sim = simulator(prePromotionAnalysis={"templates": [{"templateName": "smoke"}]})
    old = sim.deployment.status.rollout
    assert old is not None
    sim.providers.values["error-rate"] = (0.2, 1000)
    sim.set_model("iris/2")
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.abort and state.phase is Phase.DEGRADED
    assert table(sim) == ({old.stable: 100}, None)


def test_a_failing_post_promotion_analysis_switches_traffic_straight_back() -> None:
    sim = simulator(postPromotionAnalysis={"templates": [{"templateName": "smoke"}]})
    old = sim.deployment.status.rollout
    assert old is not None
    sim.providers.values["error-rate"] = (0.3, 1000)
    sim.set_model("iris/2")
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.abort
    assert table(sim) == ({old.stable: 100}, None)
    assert sim.sizes() == (3, 3)  # the new stack waits abortScaleDownDelaySeconds
    sim.sync(seconds=31)
    sim.settle()
    assert sim.sizes() == (3, 0)


def test_a_passing_post_promotion_analysis_completes_the_rollout() -> None:
    sim = simulator(postPromotionAnalysis={"templates": [{"templateName": "smoke"}]})
    sim.set_model("iris/2")
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None and state.phase is Phase.HEALTHY


def test_abort_of_a_waiting_preview_keeps_the_active_stack() -> None:
    sim = simulator(autoPromotionEnabled=False)
    old = sim.deployment.status.rollout
    assert old is not None
    sim.set_model("iris/2")
    sim.settle()
    sim.verb(abort)
    sim.settle()
    assert table(sim) == ({old.stable: 100}, None)
