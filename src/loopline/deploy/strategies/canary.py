"""Canary (Argo Rollouts with a traffic router): steps of exact weights, pauses, analyses.

Per sync, with ``R`` the deployment's replicas: the stable revision keeps ``R`` replicas
(so an abort can send all traffic back at once); the canary runs ``ceil(R × w / 100)``
(at least one) for the weight ``w`` it carries or is about to carry. A ``setWeight`` step
first scales the canary and moves the traffic only once those replicas are available; a
``pause`` waits for its duration or for ``rollout promote``; an ``analysis`` step runs its
templates (Successful → next step, Failed/Error → abort, Inconclusive → pause); ``setMirror``
and ``setHeaderRoute`` take effect at once. After the last step the canary is scaled to
``R`` and becomes stable; the old stable loses its traffic and is scaled down after
``scaleDownDelaySeconds``. An abort (analysis, ``rollout abort``, a canary that does not
become available within ``progressDeadlineSeconds``) sends all traffic to stable at once and
scales the canary down after ``abortScaleDownDelaySeconds``; ``rollout retry`` or a new
template starts over. Several steps may complete in one sync; none is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from loopline.deploy.analysis.run import RunKind
from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.plan import Plan
from loopline.deploy.progressive_spec import (
    CanaryStrategy,
    Pause,
    RunAnalysis,
    SetHeaderRoute,
    SetMirror,
    SetWeight,
)
from loopline.deploy.rollout_state import PauseReason, RolloutState
from loopline.deploy.strategies.progressive import Rollout, canary_replicas
from loopline.deploy.traffic import HeaderRoute, Mirror, Traffic


def rollout_canary(
    plan: Plan, templates: Mapping[str, AnalysisTemplate]
) -> tuple[RolloutState, Traffic]:
    """One sync of a Canary deployment: sizes on ``plan``, the new state and traffic."""
    canary_spec = plan.spec.strategy.canary
    assert canary_spec is not None  # the spec guarantees it for type Canary
    ro = Rollout(plan, templates)
    ro.begin()
    replicas = plan.spec.replicas
    stable = ro.revision(ro.state.stable)
    ro.size(stable, replicas)
    if ro.state.canary is None:
        ro.size_others({ro.state.stable or ""})
        state = ro.settle_phase()
        return state, Traffic(weights=((state.stable or "", 100),))
    canary = ro.revision(ro.state.canary)
    if ro.state.abort:
        aborted_at = ro.state.aborted_at or plan.now
        if aborted_at + canary_spec.abort_scale_down_delay_seconds <= plan.now:
            ro.size(canary, 0)  # until then it keeps its replicas, without traffic
        ro.size_others({ro.state.stable or "", ro.state.canary})
        state = ro.settle_phase()
        return state, Traffic(weights=((state.stable or "", 100),))
    if not plan.spec.paused:
        _background(ro, canary_spec)
        if not ro.state.abort:
            _advance(ro, canary_spec)
    if not ro.state.abort and _finished(ro, canary_spec):
        ro.size(canary, replicas)
        if canary is not None and canary.available >= replicas:
            _promote(ro, canary_spec)
            ro.size_others({ro.state.stable or ""})
            state = ro.settle_phase()
            return state, Traffic(weights=((state.stable or "", 100),))
        if ro.waited_too_long():
            ro.abort(_deadline_message(plan))
    if ro.state.abort:
        ro.size_others({ro.state.stable or "", ro.state.canary or ""})
        state = ro.settle_phase()
        return state, Traffic(weights=((state.stable or "", 100),))
    weight = _completed_weight(canary_spec, ro.state.step_index)
    if not _finished(ro, canary_spec):
        share = _load_share(max(weight, _pending_weight(ro, canary_spec)),
                            _mirror_percent(canary_spec, ro.state.step_index + 1))  # fmt: skip
        ro.size(canary, canary_replicas(replicas, share))
    ro.size_others({ro.state.stable or "", ro.state.canary or ""})
    state = ro.settle_phase()
    return state, _traffic(canary_spec, state, weight)


def _finished(ro: Rollout, spec: CanaryStrategy) -> bool:
    return ro.state.promote_full or ro.state.step_index >= len(spec.steps)


def _background(ro: Rollout, spec: CanaryStrategy) -> None:
    bg = spec.analysis
    if bg is None or ro.state.step_index < bg.starting_step or _finished(ro, spec):
        return
    assert ro.state.canary is not None
    v = ro.analysis(f"{ro.state.canary}-background", RunKind.BACKGROUND, bg.analysis)
    if v.failed:
        ro.abort(v.message)
    elif v.inconclusive:  # a person decides, even while a pause step runs
        ro.pause_for(PauseReason.INCONCLUSIVE_ANALYSIS)


def _advance(ro: Rollout, spec: CanaryStrategy) -> None:
    """Run steps until one has to wait (bounded: each pass completes a step or returns)."""
    plan = ro.plan
    canary = ro.revision(ro.state.canary)
    for _ in range(len(spec.steps) + 1):
        if ro.state.pause is not None and ro.state.pause != PauseReason.CANARY_PAUSE_STEP:
            return  # inconclusive analysis: a person decides (promote, abort)
        if _finished(ro, spec):
            return
        idx = ro.state.step_index
        step = spec.steps[idx]
        if isinstance(step, SetWeight):
            want = canary_replicas(plan.spec.replicas, step.weight)
            if canary is None or canary.available < want:
                ro.size(canary, max(want, canary.replicas if canary is not None else 0))
                if ro.waited_too_long():
                    ro.abort(_deadline_message(plan))
                return
        elif isinstance(step, Pause):
            if step.duration is None or (ro.state.step_started_at or plan.now) + step.duration > (
                plan.now
            ):
                ro.pause_for(PauseReason.CANARY_PAUSE_STEP)
                return
        elif isinstance(step, RunAnalysis):
            assert ro.state.canary is not None
            v = ro.analysis(f"{ro.state.canary}-step-{idx}", RunKind.STEP, step.analysis)
            if v.failed:
                ro.abort(v.message)
                return
            if v.inconclusive:
                ro.pause_for(PauseReason.INCONCLUSIVE_ANALYSIS)
                return
            if not v.done:
                return
        elif isinstance(step, SetMirror | SetHeaderRoute):
            if canary is None or canary.available < 1:
                ro.size(canary, max(1, canary.replicas if canary is not None else 0))
                if ro.waited_too_long():
                    ro.abort(_deadline_message(plan))
                return
        ro.next_step()


def _promote(ro: Rollout, spec: CanaryStrategy) -> None:
    ro.end_runs()
    s = ro.state
    assert s.canary is not None and s.stable is not None
    rs = ro.revision(s.canary)
    name = rs.revision.name if rs is not None else s.canary
    message = f"Revision {name!r} is promoted to stable."
    state = replace(s, stable=s.canary, canary=None, step_index=0, pause=None, paused_at=None,
                    promote_full=False, message=message)  # fmt: skip
    ro.state = ro.schedule_scale_down(state, s.stable, spec.scale_down_delay_seconds)


def _completed_weight(spec: CanaryStrategy, index: int) -> int:
    weight = 0
    for step in spec.steps[:index]:
        if isinstance(step, SetWeight):
            weight = step.weight
    return weight


def _mirror_percent(spec: CanaryStrategy, index: int) -> int:
    """The mirror in force once the steps before ``index`` ran (the last setMirror)."""
    percent = 0
    for step in spec.steps[:index]:
        if isinstance(step, SetMirror):
            percent = step.percent
    return percent


def _load_share(weight: int, mirror: int) -> int:
    """The share of the deployment's requests the canary answers: its weight plus the
    mirrored copies of ``mirror`` % of the rest (shadow traffic is load too)."""
    return min(100, weight + math.ceil(mirror * (100 - weight) / 100))


def _pending_weight(ro: Rollout, spec: CanaryStrategy) -> int:
    idx = ro.state.step_index
    if idx < len(spec.steps):
        step = spec.steps[idx]
        if isinstance(step, SetWeight):
            return step.weight
    return 0


def _traffic(spec: CanaryStrategy, state: RolloutState, weight: int) -> Traffic:
    stable, canary = state.stable or "", state.canary or ""
    mirror: Mirror | None = None
    routes: dict[str, HeaderRoute] = {}
    for step in spec.steps[: state.step_index]:
        if isinstance(step, SetMirror):
            mirror = Mirror(canary, step.percent) if step.percent > 0 else None
        elif isinstance(step, SetHeaderRoute):
            if step.matches:
                routes[step.name] = HeaderRoute(step.name, canary, step.matches)
            else:
                routes.pop(step.name, None)
    weights = ((stable, 100 - weight), (canary, weight)) if stable != canary else ((stable, 100),)
    return Traffic(weights=weights, header_routes=tuple(routes.values()), mirror=mirror)


def _deadline_message(plan: Plan) -> str:
    return (
        f"The canary of deployment {plan.spec.name!r} did not become available within "
        f"progressDeadlineSeconds ({plan.spec.progress_deadline_seconds} s); traffic is back "
        "on the stable revision. See `loopline get replicas` and the replica logs."
    )
