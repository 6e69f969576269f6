"""RollingUpdate against the Kubernetes algorithm, step by step, on a fake clock."""

from __future__ import annotations

import pytest

from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.status import ConditionType, Reason
from loopline.testing.deploy import DeploymentSimulator, FakeEngine, make_spec


def rollout_steps(sim: DeploymentSimulator, max_syncs: int = 60) -> list[tuple[int, ...]]:
    """Revision sizes after every sync that changed them, until nothing moves."""
    steps: list[tuple[int, ...]] = []
    for _ in range(max_syncs):
        before = sim.sizes()
        actions = sim.sync()
        if sim.sizes() != before:
            steps.append(sim.sizes())
        if not actions:
            return steps
    raise AssertionError("rollout did not settle")


def test_first_rollout_starts_all_replicas_and_completes() -> None:
    sim = DeploymentSimulator(make_spec(replicas=3))
    sim.settle()
    st = sim.deployment.status
    assert (st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas) == (
        3,
        3,
        3,
        3,
    )
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.NEW_REVISION_AVAILABLE)
    assert sim.condition(ConditionType.AVAILABLE) == ("True", Reason.MINIMUM_REPLICAS_AVAILABLE)
    assert st.revision == 1 and st.observed_generation == 1


def test_three_replicas_at_25_percent_surge_one_at_a_time_never_below_three() -> None:
    sim = DeploymentSimulator(make_spec(replicas=3))
    sim.settle()
    sim.set_model("iris/2")
    seen_available, seen_total = [], []
    steps: list[tuple[int, ...]] = []
    for _ in range(30):
        before = sim.sizes()
        actions = sim.sync()
        seen_available.append(sim.available())
        seen_total.append(len(sim.live()))
        if sim.sizes() != before:
            steps.append(sim.sizes())
        if not actions:
            break
    # (old, new): surge 1, unavailable 0 → one new, then one old down, ...
    assert steps == [(3, 1), (2, 1), (2, 2), (1, 2), (1, 3), (0, 3)]
    assert min(seen_available) >= 3
    assert max(seen_total) <= 4
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.NEW_REVISION_AVAILABLE)
    assert sim.deployment.status.revision == 2


def test_ten_replicas_with_slow_new_replicas_follows_the_kubernetes_worked_example() -> None:
    sim = DeploymentSimulator(make_spec(replicas=10))
    sim.settle()
    sim.engine.auto_ready = False  # new replicas are not ready until we say so
    sim.set_model("iris/2")
    # Creation sync: new revision gets 3 (13 = 10 + surge 3); in the same sync old may lose
    # 13 - 8 (min available) - 3 (new unavailable) = 2.
    sim.sync()
    assert sim.sizes() == (8, 3)
    sim.sync()  # new grows to fill the surge: 13 - 8 = 5
    assert sim.sizes() == (8, 5)
    sim.sync()  # 13 - 8 - 5 unavailable new = 0: stuck until new replicas become available
    sim.sync()
    assert sim.sizes() == (8, 5)
    sim.engine.auto_ready = True
    sim.engine.set_all_ready()
    steps = rollout_steps(sim)
    assert steps[-1] == (0, 10)
    for old, new in steps:
        assert old + new <= 13


def test_ten_replicas_never_below_eight_available_nor_above_thirteen() -> None:
    sim = DeploymentSimulator(make_spec(replicas=10))
    sim.settle()
    sim.set_model("iris/2")
    for _ in range(40):
        actions = sim.sync()
        assert sim.available() >= 8
        assert sum(sim.sizes()) <= 13
        assert len(sim.live()) <= 13
        if not actions:
            break
    assert sim.sizes() == (0, 10)


def test_max_unavailable_only_scales_old_down_first() -> None:
    sim = DeploymentSimulator(make_spec(replicas=4, surge=0, unavailable=2))
    sim.settle()
    sim.set_model("iris/2")
    steps = rollout_steps(sim)
    assert steps[0] == (4, 0) or steps[0] == (2, 0)
    assert all(old + new <= 4 for old, new in steps)
    assert steps[-1] == (0, 4)


def test_scaling_mid_rollout_is_proportional_like_the_kubernetes_docs() -> None:
    # Docs example: 10 replicas, maxSurge 3, maxUnavailable 2, a broken new version;
    # scaling to 15 adds 3 to the old revision and 2 to the new one.
    sim = DeploymentSimulator(
        make_spec(replicas=10, surge=3, unavailable=2), FakeEngine(crashing_models=["iris/bad"])
    )
    sim.settle()
    sim.set_model("iris/bad")
    for _ in range(4):
        sim.sync()
    assert sim.sizes() == (8, 5)
    sim.apply(replicas=15)
    sim.sync()
    assert sim.sizes() == (11, 7)


def test_scale_up_and_down_of_a_complete_deployment_resizes_the_only_revision() -> None:
    sim = DeploymentSimulator(make_spec(replicas=1))
    sim.settle()
    sim.apply(replicas=5)
    sim.settle()
    assert sim.sizes() == (5,) and sim.deployment.status.available_replicas == 5
    sim.apply(replicas=1)
    sim.settle()
    assert sim.sizes() == (1,) and len(sim.live()) == 1


def test_scale_down_removes_unready_replicas_before_ready_ones() -> None:
    sim = DeploymentSimulator(make_spec(replicas=3))
    sim.settle()
    victim = sim.live()[1].id
    sim.engine.set_ready(victim, False)
    for _ in range(3):  # readiness failureThreshold
        sim.sync()
    sim.apply(replicas=2)
    sim.sync()
    assert victim in sim.engine.stopped
    assert victim not in {r.id for r in sim.replicas()}


def test_undo_during_a_crash_loop_removes_the_broken_replicas() -> None:
    sim = DeploymentSimulator(
        make_spec(replicas=10, surge=3, unavailable=2), FakeEngine(crashing_models=["iris/bad"])
    )
    sim.settle()
    sim.set_model("iris/bad")
    for _ in range(6):
        sim.sync()
    assert sim.sizes() == (8, 5)
    result = sim.manager.undo("web")
    assert not result.skipped and result.revision.number == 1
    sim.settle()
    revs = {r.template.model: r for r in sim.revisions()}
    assert revs["iris/1"].replicas == 10 and revs["iris/bad"].replicas == 0
    assert revs["iris/1"].number == 3 and revs["iris/1"].history == (1,)
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.NEW_REVISION_AVAILABLE)
    assert all(r.phase is ReplicaPhase.RUNNING for r in sim.replicas())


def test_reapplying_an_old_template_reuses_its_revision() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.settle()
    sim.set_model("iris/2")
    sim.settle()
    sim.set_model("iris/1")
    sim.settle()
    assert len(sim.revisions()) == 2
    assert [(r.template.model, r.number) for r in sim.revisions()] == [("iris/2", 2), ("iris/1", 3)]


def test_revision_history_limit_deletes_the_oldest_empty_revisions() -> None:
    sim = DeploymentSimulator(make_spec(replicas=1, revision_history_limit=1))
    for version in range(1, 5):
        sim.set_model(f"iris/{version}")
        sim.settle()
    assert [r.template.model for r in sim.revisions()] == ["iris/3", "iris/4"]


def test_min_ready_seconds_delays_availability_and_the_rollout() -> None:
    sim = DeploymentSimulator(make_spec(replicas=1, min_ready_seconds=30))
    sim.sync()
    sim.sync()
    st = sim.deployment.status
    assert st.ready_replicas == 1 and st.available_replicas == 0
    assert sim.condition(ConditionType.AVAILABLE) == ("False", Reason.MINIMUM_REPLICAS_UNAVAILABLE)
    sim.sync(seconds=31)
    assert sim.deployment.status.available_replicas == 1
    assert sim.condition(ConditionType.AVAILABLE) == ("True", Reason.MINIMUM_REPLICAS_AVAILABLE)


def test_router_sees_only_ready_replicas_and_retired_ones_are_drained() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.sync()
    assert sim.routing.backends.get("web", ()) == ()
    sim.settle()
    first = {b.id for b in sim.routing.backends["web"]}
    assert len(first) == 2
    sim.set_model("iris/2")
    sim.settle()
    now = {b.id for b in sim.routing.backends["web"]}
    assert len(now) == 2 and not now & first
    assert set(sim.routing.drained) == first


def test_a_ready_replica_is_marked_unready_after_three_failed_probes() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.settle()
    rid = sim.live()[0].id
    sim.engine.set_ready(rid, False)
    sim.sync()
    sim.sync()
    assert sim.deployment.status.ready_replicas == 2  # two failures: still ready
    sim.sync()  # third failure: out of rotation
    assert sim.deployment.status.ready_replicas == 1
    assert rid not in {b.id for b in sim.routing.backends["web"]}
    sim.engine.set_ready(rid, True)
    sim.sync()
    sim.sync()
    assert sim.deployment.status.ready_replicas == 2


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable"),
    [
        (1, "25%", "25%"),  # surge 1, unavailable 0
        (2, 0, "1%"),  # both resolve to 0 → unavailable 1
        (4, "50%", 0),
        (5, 2, "40%"),
        (7, "10%", "10%"),  # surge 1 (up), unavailable 0 (down)
        (10, 3, 2),
        (6, "100%", 0),  # blue-green-like: whole new set first
    ],
)
def test_rollouts_respect_their_fenceposts_at_every_step(
    replicas: int, surge: int | str, unavailable: int | str
) -> None:
    from loopline.deploy.fenceposts import resolve_fenceposts

    max_s, max_u = resolve_fenceposts(surge, unavailable, replicas)
    max_u = min(max_u, replicas)
    sim = DeploymentSimulator(make_spec(replicas=replicas, surge=surge, unavailable=unavailable))
    sim.settle()
    sim.set_model("iris/2")
    for _ in range(80):
        actions = sim.sync()
        assert sum(sim.sizes()) <= replicas + max_s
        assert len(sim.live()) <= replicas + max_s
        assert sim.available() >= replicas - max_u
        if not actions:
            break
    assert sim.sizes() == (0, replicas)
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.NEW_REVISION_AVAILABLE)
