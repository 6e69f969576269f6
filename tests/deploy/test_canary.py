"""Canary rollouts on the fake-clock simulator: exact weights step by step, pauses, analyses
that promote, abort or pause, mirrors and header routes, the verbs, and a restart mid-way."""

from __future__ import annotations

import pytest

from loopline.deploy.analysis import AnalysisTemplate
from loopline.deploy.progressive_spec import parse_canary
from loopline.deploy.rollout_state import PauseReason, Phase
from loopline.deploy.spec import Strategy, StrategyType
from loopline.deploy.strategies.verbs import abort, retry
from loopline.errors import ConflictError
from loopline.testing.analysis import ScriptedProviders
from loopline.testing.deploy import DeploymentSimulator, make_spec

QUALITY = AnalysisTemplate.from_dict(
    {
        "apiVersion": "loopline/v1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "quality"},
        "spec": {
            "metrics": [
                {
                    "name": "agreement",
                    "interval": "10s",
                    "count": 3,
                    "successCondition": "result >= 0.95",
                    "minSampleSize": 100,
                    "sampleTimeout": "5m",
                    "provider": {"agreement": {}},
                }
            ]
        },
    }
)


def canary(steps: list[object], **extra: object) -> Strategy:
    return Strategy(type=StrategyType.CANARY, canary=parse_canary({"steps": steps, **extra}))


def simulator(steps: list[object], replicas: int = 4, **extra: object) -> DeploymentSimulator:
    sim = DeploymentSimulator(
        make_spec(replicas=replicas, strategy=canary(steps, **extra)),
        templates=[QUALITY],
        providers=ScriptedProviders({"agreement": (0.99, 500)}),
    )
    sim.settle()
    return sim


def weights(sim: DeploymentSimulator) -> dict[str, int]:
    table = sim.routing.tables["web"]
    return dict(table.traffic.weights or ())


def hashes(sim: DeploymentSimulator) -> tuple[str, str]:
    state = sim.deployment.status.rollout
    assert state is not None and state.stable is not None and state.canary is not None
    return state.stable, state.canary


def test_the_first_revision_becomes_stable_at_once_without_steps() -> None:
    sim = simulator([{"setWeight": 20}, {"pause": {}}])
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None and state.phase is Phase.HEALTHY
    assert sim.sizes() == (4,)
    assert weights(sim) == {state.stable: 100}


def test_set_weight_scales_the_canary_first_and_moves_traffic_only_once_it_is_available() -> None:
    sim = simulator([{"setWeight": 25}, {"pause": {}}])
    sim.engine.auto_ready = False
    sim.set_model("iris/2")
    sim.sync()
    stable, new = hashes(sim)
    assert sim.sizes() == (4, 1)  # ceil(4 × 25 %) = 1 canary replica; stable keeps 4
    assert weights(sim) == {stable: 100, new: 0}
    sim.engine.set_all_ready()
    sim.sync()
    sim.sync()
    assert weights(sim) == {stable: 75, new: 25}
    state = sim.deployment.status.rollout
    assert state is not None and state.pause == PauseReason.CANARY_PAUSE_STEP
    assert state.phase is Phase.PAUSED


def test_a_timed_pause_continues_by_itself_and_the_last_step_promotes() -> None:
    sim = simulator([{"setWeight": 50}, {"pause": {"duration": "30s"}}, {"setWeight": 100}])
    sim.set_model("iris/2")
    sim.settle()
    _, new = hashes(sim)
    state = sim.deployment.status.rollout
    assert state is not None and state.phase is Phase.PAUSED and weights(sim)[new] == 50
    sim.sync(seconds=31)
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.stable == new and state.canary is None
    assert state.phase is Phase.HEALTHY
    assert weights(sim) == {new: 100}
    # the old stable keeps its replicas (no traffic) for scaleDownDelaySeconds, then goes
    assert sim.sizes() == (4, 4)
    sim.sync(seconds=31)
    sim.settle()
    assert sim.sizes() == (0, 4)


def test_an_indefinite_pause_waits_for_promote() -> None:
    sim = simulator([{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}])
    sim.set_model("iris/2")
    sim.settle()
    sim.sync(seconds=3600)
    state = sim.deployment.status.rollout
    assert state is not None and state.pause == PauseReason.CANARY_PAUSE_STEP
    sim.promote()
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None and state.phase is Phase.HEALTHY


def test_a_successful_analysis_step_goes_on_after_its_measurements() -> None:
    sim = simulator(
        [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "quality"}]}},
         {"setWeight": 60}, {"pause": {}}]
    )  # fmt: skip
    sim.set_model("iris/2")
    for _ in range(6):
        sim.sync(seconds=10)
    stable, new = hashes(sim)
    state = sim.deployment.status.rollout
    assert state is not None
    run = state.run(f"{new}-step-1")
    assert run is not None and run.phase.value == "Successful"
    assert run.result("agreement").measured == 3
    assert weights(sim) == {stable: 40, new: 60}


def test_a_failing_analysis_aborts_and_the_canary_scales_down_after_the_delay() -> None:
    sim = simulator(
        [{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "quality"}]}},
         {"setWeight": 100}]
    )  # fmt: skip
    sim.providers.values["agreement"] = (0.5, 500)
    sim.set_model("iris/2")
    for _ in range(4):
        sim.sync(seconds=10)
    stable, _ = hashes(sim)
    state = sim.deployment.status.rollout
    assert state is not None and state.abort and state.phase is Phase.DEGRADED
    assert "agreement" in state.message or "failed" in state.message
    assert weights(sim) == {stable: 100}
    assert sim.sizes() == (4, 1)  # the canary waits abortScaleDownDelaySeconds
    sim.sync(seconds=31)
    sim.settle()
    assert sim.sizes() == (4, 0)


def test_too_little_traffic_is_inconclusive_and_pauses_never_promotes() -> None:
    sim = simulator([{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "quality"}]}}])
    sim.providers.values["agreement"] = (1.0, 3)  # perfect agreement on 3 requests
    sim.set_model("iris/2")
    for _ in range(40):  # 400 s > sampleTimeout 5m
        sim.sync(seconds=10)
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is not None
    assert state.pause == PauseReason.INCONCLUSIVE_ANALYSIS and state.phase is Phase.PAUSED


def test_mirror_and_header_route_steps_reach_the_router() -> None:
    sim = simulator(
        [{"setMirror": 50},
         {"setHeaderRoute": {"name": "qa", "match": [
             {"headerName": "X-Canary", "headerValue": {"exact": "1"}}]}},
         {"pause": {}}]
    )  # fmt: skip
    sim.set_model("iris/2")
    sim.settle()
    stable, new = hashes(sim)
    table = sim.routing.tables["web"]
    assert table.traffic.mirror is not None and table.traffic.mirror.revision == new
    assert table.traffic.mirror.percent == 50
    (route,) = table.traffic.header_routes
    assert route.revision == new and route.matches[0].exact == "1"
    assert weights(sim) == {stable: 100, new: 0}
    assert sim.sizes() == (4, 2)  # the canary is sized for the mirrored half of the traffic


def test_abort_and_retry_by_a_user() -> None:
    sim = simulator([{"setWeight": 50}, {"pause": {}}])
    sim.set_model("iris/2")
    sim.settle()
    sim.verb(abort)
    sim.settle()
    stable, new = hashes(sim)
    state = sim.deployment.status.rollout
    assert state is not None and state.phase is Phase.DEGRADED and weights(sim) == {stable: 100}
    with pytest.raises(ConflictError, match="aborted"):
        sim.promote()
    sim.verb(retry)
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and not state.abort and state.step_index == 1
    assert weights(sim) == {stable: 50, new: 50}


def test_promote_full_skips_every_remaining_step() -> None:
    sim = simulator([{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    sim.set_model("iris/2")
    sim.settle()
    sim.promote(full=True)
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None and state.phase is Phase.HEALTHY


def test_verbs_refuse_when_no_rollout_runs() -> None:
    sim = simulator([{"pause": {}}])
    with pytest.raises(ConflictError, match="no rollout in progress"):
        sim.promote()
    with pytest.raises(ConflictError, match="no rollout in progress"):
        sim.verb(abort)


def test_a_new_model_mid_canary_starts_over_and_reapplying_stable_ends_it() -> None:
    sim = simulator([{"setWeight": 50}, {"pause": {}}])
    sim.set_model("iris/2")
    sim.settle()
    stable, first = hashes(sim)
    sim.set_model("iris/3")
    sim.settle()
    _, second = hashes(sim)
    assert second != first and weights(sim) == {stable: 50, second: 50}
    sim.set_model("iris/1")
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None and state.stable == stable
    assert weights(sim) == {stable: 100}


def test_a_canary_that_never_becomes_available_is_aborted_at_the_progress_deadline() -> None:
    sim = simulator([{"setWeight": 50}, {"pause": {}}])
    sim.engine.auto_ready = False
    sim.set_model("iris/2")
    sim.sync()
    sim.sync(seconds=601)
    state = sim.deployment.status.rollout
    assert state is not None and state.abort and "progressDeadlineSeconds" in state.message


def test_a_background_analysis_failure_aborts_from_its_starting_step() -> None:
    sim = simulator(
        [{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 100}],
        analysis={"templates": [{"templateName": "quality"}], "startingStep": 1},
    )
    sim.providers.values["agreement"] = (0.2, 500)
    sim.set_model("iris/2")
    for _ in range(5):
        sim.sync(seconds=10)
    state = sim.deployment.status.rollout
    assert state is not None and state.abort
    assert any(r.name.endswith("-background") for r in state.analysis_runs)


def test_a_restarted_manager_carries_the_canary_on_where_it_stopped() -> None:
    sim = simulator([{"setWeight": 30}, {"pause": {}}, {"setWeight": 100}])
    sim.set_model("iris/2")
    sim.settle()
    before = sim.deployment.status.rollout
    sim.restart_manager()
    sim.settle()
    assert sim.deployment.status.rollout == before
    sim.promote()
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None


def test_an_idle_canary_takes_no_action_per_sync() -> None:
    sim = simulator([{"setWeight": 30}, {"pause": {}}])
    sim.set_model("iris/2")
    sim.settle()
    assert sim.sync(seconds=5) == []


def test_spec_pause_freezes_the_steps() -> None:
    sim = simulator([{"setWeight": 30}, {"pause": {"duration": "10s"}}, {"setWeight": 100}])
    sim.set_model("iris/2")
    sim.settle()
    sim.apply(paused=True)
    sim.sync(seconds=60)
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is not None and state.phase is Phase.PAUSED
    sim.apply(paused=False)
    sim.settle()
    state = sim.deployment.status.rollout
    assert state is not None and state.canary is None


def test_promote_past_an_inconclusive_background_analysis_restarts_it_at_the_same_step() -> None:
    sim = simulator(
        [{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 100}],
        analysis={"templates": [{"templateName": "quality"}], "startingStep": 1},
    )
    sim.providers.values["agreement"] = (1.0, 3)  # too few samples, for ever
    sim.set_model("iris/2")
    for _ in range(40):  # past sampleTimeout (5 min): the background run is Inconclusive
        sim.sync(seconds=10)
    state = sim.deployment.status.rollout
    assert state is not None and state.pause == PauseReason.INCONCLUSIVE_ANALYSIS
    step = state.step_index
    sim.promote()
    sim.sync()
    state = sim.deployment.status.rollout
    assert state is not None and state.step_index == step and state.pause != (
        PauseReason.INCONCLUSIVE_ANALYSIS
    )
    run = state.run(f"{state.canary}-background")
    assert run is not None and run.phase.value == "Running"  # a fresh run
