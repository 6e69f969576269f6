"""The Kubernetes engine's pure decisions: canary steps on a fake clock, kubectl's rollout
status, merge diffs."""

from __future__ import annotations

from loopline.deploy.engines.kubernetes.rollouts import (
    CanaryProgress,
    deployment_status,
    merge_diff,
    next_canary_step,
)
from loopline.deploy.progressive_spec import parse_canary

CANARY = parse_canary({"steps": [{"setWeight": 20}, {"pause": {"duration": "60s"}},
                                 {"analysis": {"templates": [{"templateName": "q"}]}},
                                 {"setWeight": 60}]})  # fmt: skip


def test_a_weight_step_completes_only_once_the_canary_is_ready() -> None:
    waiting = next_canary_step(CANARY, CanaryProgress(), now=0, canary_ready=False)
    assert waiting.step_index == 0 and "ready" in waiting.waiting
    assert next_canary_step(CANARY, CanaryProgress(), now=0, canary_ready=True).step_index == 1


def test_a_timed_pause_completes_when_its_duration_has_elapsed_on_the_clock() -> None:
    started = next_canary_step(CANARY, CanaryProgress(1), now=100, canary_ready=True)
    assert started == CanaryProgress(1, 100, waiting="paused at step 2 of 4 (pause 1m), 60 s left",
                                     paused=True)  # fmt: skip
    assert next_canary_step(CANARY, started, now=159, canary_ready=True).step_index == 1
    assert next_canary_step(CANARY, started, now=160, canary_ready=True).step_index == 2


def test_an_analysis_step_waits_for_promote_on_kubernetes_and_full_skips_the_rest() -> None:
    held = next_canary_step(CANARY, CanaryProgress(2), now=0, canary_ready=True)
    assert held.step_index == 2 and "analyses run in a control plane" in held.waiting
    assert next_canary_step(CANARY, held, now=1, canary_ready=True, promote=True).step_index == 3
    assert next_canary_step(CANARY, held, now=1, canary_ready=False, full=True).step_index == 4


def test_a_pause_step_timed_or_not_is_paused_and_an_analysis_step_is_not() -> None:
    untimed = parse_canary({"steps": [{"setWeight": 20}, {"pause": {}}]})
    assert next_canary_step(untimed, CanaryProgress(1), now=0, canary_ready=True).paused
    assert next_canary_step(CANARY, CanaryProgress(1), now=0, canary_ready=True).paused
    assert not next_canary_step(CANARY, CanaryProgress(2), now=0, canary_ready=True).paused
    assert not next_canary_step(CANARY, CanaryProgress(0), now=0, canary_ready=False).paused


def test_an_aborted_canary_never_moves() -> None:
    aborted = CanaryProgress(1, aborted=True)
    assert next_canary_step(CANARY, aborted, now=0, canary_ready=True, full=True) == aborted


def test_rollout_status_follows_kubectls_order_of_checks() -> None:
    base = {"metadata": {"name": "taxi", "generation": 2}, "spec": {"replicas": 3}}
    assert "observed" in deployment_status({**base, "status": {"observedGeneration": 1}}).message
    partial = {**base, "status": {"observedGeneration": 2, "updatedReplicas": 3,
                                  "replicas": 4, "availableReplicas": 3}}  # fmt: skip
    assert "1 old replicas are pending termination" in deployment_status(partial).message
    done = {**base, "status": {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3,
                               "availableReplicas": 3}}  # fmt: skip
    assert deployment_status(done).done


def test_merge_diff_turns_one_object_into_the_other() -> None:
    assert merge_diff({"a": 1, "b": {"c": 2, "d": 3}, "l": [1]},
                      {"b": {"c": 2}, "l": [2], "e": 5}) == {
        "a": None, "b": {"d": None}, "l": [2], "e": 5}  # fmt: skip
