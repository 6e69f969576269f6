"""A sync starts a bounded number of replica processes (Kubernetes' ``burstReplicas``): a
deployment asking for hundreds of replicas is brought up over several syncs, not in one."""

from __future__ import annotations

from loopline.deploy.actions import RestartReplica, StartReplica
from loopline.deploy.healing import MAX_STARTS_PER_SYNC
from loopline.testing.deploy import DeploymentSimulator, make_spec


def test_one_sync_starts_at_most_the_burst_and_the_next_syncs_start_the_rest() -> None:
    wanted = 2 * MAX_STARTS_PER_SYNC + 3
    sim = DeploymentSimulator(make_spec(replicas=wanted))
    started = []
    for _ in range(3):
        actions = sim.sync()
        starts = [a for a in actions if isinstance(a, StartReplica | RestartReplica)]
        assert len(starts) <= MAX_STARTS_PER_SYNC
        started.append(len(starts))
    assert started == [MAX_STARTS_PER_SYNC, MAX_STARTS_PER_SYNC, 3]
    sim.settle()
    assert len(sim.live()) == wanted
