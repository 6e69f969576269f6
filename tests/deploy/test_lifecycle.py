"""Recreate, pause/resume, progress deadline, crash back-off, undo, adoption."""

from __future__ import annotations

import pytest

from loopline.deploy.actions import RestartReplica, StartReplica
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.healing import waiting_reason
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.status import ConditionType, Reason
from loopline.errors import ConflictError, NotFoundError
from loopline.testing.deploy import DeploymentSimulator, FakeEngine, make_spec


def test_recreate_stops_every_old_replica_before_starting_new_ones() -> None:
    sim = DeploymentSimulator(make_spec(replicas=3, recreate=True))
    sim.settle()
    sim.set_model("iris/2")
    sim.sync()
    assert sim.sizes() == (0,)  # old scaled to 0, new revision not created yet
    sim.sync()  # old processes are gone: only now is the new revision created
    assert sim.sizes() == (0, 3)
    assert sim.deployment.status.available_replicas == 0  # downtime by design, reported
    assert sim.condition(ConditionType.AVAILABLE) == ("False", Reason.MINIMUM_REPLICAS_UNAVAILABLE)
    sim.settle()
    assert sim.deployment.status.available_replicas == 3
    models = {r.revision for r in sim.live()}
    assert len(models) == 1


def test_paused_deployment_does_not_roll_out_but_scales_and_resumes() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.settle()
    sim.apply(paused=True)
    sim.sync()
    assert sim.condition(ConditionType.PROGRESSING) == ("Unknown", Reason.DEPLOYMENT_PAUSED)
    sim.set_model("iris/2")
    sim.settle()
    assert len(sim.revisions()) == 1  # template change waits
    sim.apply(replicas=4)
    sim.settle()
    assert sim.sizes() == (4,)  # scaling still happens while paused
    sim.clock.advance(10_000)  # a long pause never trips the progress deadline
    sim.apply(paused=False)
    sim.sync()
    assert len(sim.revisions()) == 2
    sim.settle()
    assert sim.sizes() == (0, 4)
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.NEW_REVISION_AVAILABLE)


def test_proportional_scaling_while_paused_mid_rollout() -> None:
    sim = DeploymentSimulator(
        make_spec(replicas=10, surge=3, unavailable=2), FakeEngine(crashing_models=["iris/bad"])
    )
    sim.settle()
    sim.set_model("iris/bad")
    for _ in range(4):
        sim.sync()
    sim.apply(paused=True, replicas=15)
    sim.sync()
    assert sim.sizes() == (11, 7)


def test_stalled_rollout_reports_progress_deadline_exceeded_and_old_replicas_keep_serving() -> None:
    sim = DeploymentSimulator(
        make_spec(replicas=3, progress_deadline_seconds=60),
        FakeEngine(crashing_models=["iris/bad"]),
    )
    sim.settle()
    sim.set_model("iris/bad")
    for _ in range(5):
        sim.sync(seconds=5)
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.REVISION_UPDATED)
    assert sim.condition(ConditionType.REPLICA_FAILURE) == ("True", Reason.CRASH_LOOP_BACK_OFF)
    sim.sync(seconds=60)
    assert sim.condition(ConditionType.PROGRESSING) == (
        "False",
        Reason.PROGRESS_DEADLINE_EXCEEDED,
    )
    assert sim.sizes() == (3, 1)  # never rolls back by itself
    assert sim.deployment.status.available_replicas == 3
    assert len(sim.routing.backends["web"]) == 3
    sim.manager.undo("web")
    sim.settle()
    assert sim.sizes() == (3, 0)
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.NEW_REVISION_AVAILABLE)
    assert sim.condition(ConditionType.REPLICA_FAILURE) is None


def test_unlaunchable_revision_reports_failed_create() -> None:
    sim = DeploymentSimulator(make_spec(replicas=1), FakeEngine(unlaunchable_models=["iris/1"]))
    sim.sync()
    sim.sync()
    cond = sim.deployment.status.condition(ConditionType.REPLICA_FAILURE)
    assert cond is not None and cond.reason == Reason.FAILED_CREATE
    assert "failed to start: cannot launch model 'iris/1'" in cond.message


def test_crashing_replica_restarts_with_exponential_back_off_capped_at_five_minutes() -> None:
    sim = DeploymentSimulator(make_spec(replicas=1))
    sim.settle()
    rid = sim.live()[0].id
    policy = BackoffPolicy()
    delays = []
    for _ in range(8):
        sim.engine.kill(rid, code=3)
        sim.sync(seconds=0)  # observe the exit; first one restarts at once
        rep = next(r for r in sim.replicas() if r.id == rid)
        waited = 0.0
        while rep.phase is ReplicaPhase.FAILED:
            assert waiting_reason(rep, policy, sim.clock()) == "CrashLoopBackOff"
            sim.sync(seconds=1)
            waited += 1
            rep = next(r for r in sim.replicas() if r.id == rid)
        delays.append(waited)
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    rep = next(r for r in sim.replicas() if r.id == rid)
    assert rep.restarts == 8 and rep.last_exit is not None and rep.last_exit.code == 3


def test_back_off_resets_after_the_process_ran_long_enough() -> None:
    sim = DeploymentSimulator(make_spec(replicas=1))
    sim.settle()
    rid = sim.live()[0].id
    for _ in range(3):
        sim.engine.kill(rid)
        for _ in range(40):
            sim.sync(seconds=1)
    sim.sync(seconds=700)
    sim.engine.kill(rid)
    sim.sync(seconds=0)
    sim.sync(seconds=0)
    rep = next(r for r in sim.replicas() if r.id == rid)
    assert rep.crash_streak == 1 and rep.restarts == 4  # restarted at once: a new streak
    assert rep.phase is ReplicaPhase.RUNNING


def test_killed_replica_is_replaced_and_removed_from_the_router() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.settle()
    rid = sim.live()[0].id
    sim.engine.kill(rid)
    sim.sync(seconds=0)
    assert rid not in {b.id for b in sim.routing.backends["web"]}
    sim.settle()
    assert rid in {b.id for b in sim.routing.backends["web"]}
    assert sim.deployment.status.available_replicas == 2


def test_undo_refuses_paused_deployments_and_unknown_revisions() -> None:
    sim = DeploymentSimulator(make_spec(replicas=1))
    sim.settle()
    with pytest.raises(NotFoundError, match="has no previous revision to undo to"):
        sim.manager.undo("web")
    sim.set_model("iris/2")
    sim.settle()
    with pytest.raises(NotFoundError, match=r"has no revision 7; known revisions: \[1, 2\]"):
        sim.manager.undo("web", to_revision=7)
    assert sim.manager.undo("web", to_revision=2).skipped
    sim.apply(paused=True)
    with pytest.raises(ConflictError, match="is paused; resume it before undoing"):
        sim.manager.undo("web")


def test_a_new_manager_adopts_running_replicas_and_finishes_the_rollout() -> None:
    sim = DeploymentSimulator(make_spec(replicas=3))
    sim.settle()
    sim.set_model("iris/2")
    sim.sync()
    sim.sync()
    before = {r.id for r in sim.live()}
    # The control plane dies; a new one starts on the same store and the same processes.
    fresh = DeploymentManager(
        store=sim.store,
        engine=sim.engine,
        routing=sim.routing,
        clock=sim.clock,
        background_stops=False,
    )
    fresh.adopt()
    actions = fresh.sync("web")
    # Nothing is restarted: the running replicas were adopted as they are, and the rollout
    # carries on from where it was (one more new replica).
    assert not any(isinstance(a, RestartReplica) for a in actions)
    assert all(r.restarts == 0 for r in sim.replicas())
    assert before <= {r.id for r in sim.replicas()}
    assert sum(isinstance(a, StartReplica) for a in actions) == 1
    sim.manager = fresh
    sim.settle()
    assert sim.sizes() == (0, 3)
    assert sim.condition(ConditionType.PROGRESSING) == ("True", Reason.NEW_REVISION_AVAILABLE)


def test_replicas_whose_process_vanished_while_the_control_plane_was_down_are_replaced() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.settle()
    gone = sim.live()[0]
    del sim.engine.processes[gone.pid]  # type: ignore[arg-type]
    sim.sync(seconds=0)
    rep = next(r for r in sim.replicas() if r.id == gone.id)
    assert rep.restarts == 1 and rep.phase is ReplicaPhase.PENDING


def test_a_router_that_cannot_be_reached_does_not_stop_replica_reconciliation() -> None:
    from loopline.errors import BackendError
    from loopline.testing.deploy import FakeRouting

    class FlakyRouting(FakeRouting):
        broken = True

        def set_routes(self, deployment, table):  # type: ignore[no-untyped-def]
            if self.broken:
                raise BackendError("router unreachable")
            super().set_routes(deployment, table)

    sim = DeploymentSimulator(make_spec(replicas=2))
    flaky = FlakyRouting()
    sim.manager.routing = flaky
    sim.settle()
    assert sim.deployment.status.available_replicas == 2
    flaky.broken = False
    sim.sync()
    assert len(flaky.backends["web"]) == 2  # pushed as soon as the router answers


def test_when_every_replica_fails_readiness_at_once_the_router_keeps_them() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.settle()
    ids = {r.id for r in sim.live()}
    pushed_before = len(sim.routing.history)
    for rid in ids:  # probes starved, processes alive
        sim.engine.find(rid).ready = False
    for _ in range(5):  # well past the probe failure threshold
        sim.sync(seconds=1)
    assert sim.deployment.status.ready_replicas == 0
    assert {b.id for b in sim.routing.backends["web"]} == ids
    assert () not in sim.routing.history[pushed_before:]


def test_an_unready_replica_leaves_the_router_while_another_is_ready() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2))
    sim.settle()
    bad, good = (r.id for r in sim.live())
    sim.engine.find(bad).ready = False
    for _ in range(5):
        sim.sync(seconds=1)
    assert {b.id for b in sim.routing.backends["web"]} == {good}
