"""BlueGreen (Argo Rollouts): a full preview stack, then all traffic switched at once.

The new revision (the *preview*) is scaled to ``previewReplicaCount`` (default: all
replicas) and served on the router's preview port only. Once it is available the
``prePromotionAnalysis`` runs; then the rollout promotes at once (``autoPromotionEnabled``),
after ``autoPromotionSeconds``, or waits for ``rollout promote``. Promotion scales the preview
to full size, switches all traffic to it, and runs the ``postPromotionAnalysis`` while the
previous revision stays up: a failure there switches traffic straight back. After success
the previous revision is scaled down after ``scaleDownDelaySeconds``.

``step_index`` in the state records the stage: 0 preview, 1 promoting (scaling up), 2
switched (post-promotion analysis running).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from loopline.deploy.analysis.run import RunKind
from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.plan import Plan
from loopline.deploy.rollout_state import PauseReason, RolloutState
from loopline.deploy.strategies.progressive import Rollout
from loopline.deploy.traffic import Traffic

PREVIEW, PROMOTING, SWITCHED = 0, 1, 2


def rollout_blue_green(
    plan: Plan, templates: Mapping[str, AnalysisTemplate]
) -> tuple[RolloutState, Traffic]:
    """One sync of a BlueGreen deployment: sizes on ``plan``, the new state and traffic."""
    spec = plan.spec.strategy.blue_green
    assert spec is not None  # the spec guarantees it for type BlueGreen
    ro = Rollout(plan, templates)
    ro.begin()
    replicas = plan.spec.replicas
    ro.size(ro.revision(ro.state.stable), replicas)
    if ro.state.canary is None:
        ro.size_others({ro.state.stable or ""})
        return ro.settle_phase(), _active(ro.state.stable)
    preview = ro.revision(ro.state.canary)
    if ro.state.abort:
        if (ro.state.aborted_at or plan.now) + spec.abort_scale_down_delay_seconds <= plan.now:
            ro.size(preview, 0)
        ro.size_others({ro.state.stable or "", ro.state.canary})
        return ro.settle_phase(), _active(ro.state.stable)
    stage = ro.state.step_index
    if stage == PREVIEW:
        ro.size(preview, min(replicas, spec.preview_replica_count or replicas))
        want = preview.replicas if preview is not None else 0
        ready = preview is not None and preview.available >= want
        if not ready and ro.waited_too_long():
            ro.abort(_deadline_message(plan))
        elif ready and not plan.spec.paused:
            if ro.state.preview_ready_since is None:
                ro.state = replace(ro.state, preview_ready_since=plan.now)
            _decide_promotion(ro, spec.pre_promotion_analysis is not None)
    stage = ro.state.step_index
    if not ro.state.abort and stage == PROMOTING:
        ro.size(preview, replicas)
        if preview is not None and preview.available >= replicas:
            _switch(ro, spec.post_promotion_analysis is not None, spec.scale_down_delay_seconds)
        elif ro.waited_too_long():
            ro.abort(_deadline_message(plan))
    if not ro.state.abort and ro.state.step_index == SWITCHED and ro.state.canary is not None:
        ro.size(preview, replicas)
        ref = spec.post_promotion_analysis
        assert ref is not None  # SWITCHED with a canary left means a post analysis runs
        v = ro.analysis(f"{ro.state.canary}-post", RunKind.POST_PROMOTION, ref)
        if v.failed:
            ro.abort(v.message)
        elif v.inconclusive:
            ro.pause_for(PauseReason.INCONCLUSIVE_ANALYSIS)
        elif v.done:
            _finish(ro, spec.scale_down_delay_seconds)
    s = ro.state
    keep = {s.stable or "", s.canary or ""}
    ro.size_others(keep)
    state = ro.settle_phase()
    if state.abort or state.canary is None:
        return state, _active(state.stable)
    if state.step_index == SWITCHED:
        return state, _active(state.canary)
    return state, Traffic(weights=((state.stable or "", 100),), preview=state.canary)


def _decide_promotion(ro: Rollout, has_pre: bool) -> None:
    spec = ro.plan.spec.strategy.blue_green
    assert spec is not None and ro.state.canary is not None
    if has_pre:
        assert spec.pre_promotion_analysis is not None
        ref = spec.pre_promotion_analysis
        v = ro.analysis(f"{ro.state.canary}-pre", RunKind.PRE_PROMOTION, ref)
        if v.failed:
            ro.abort(v.message)
            return
        if v.inconclusive:
            ro.pause_for(PauseReason.INCONCLUSIVE_ANALYSIS)
            return
        if not v.done:
            return
    if not spec.auto_promotion_enabled:
        ro.pause_for(PauseReason.BLUE_GREEN_PAUSE)
        return
    since = ro.state.preview_ready_since or ro.now
    if since + spec.auto_promotion_seconds > ro.now:
        ro.pause_for(PauseReason.BLUE_GREEN_PAUSE)
        return
    ro.next_step()


def _switch(ro: Rollout, has_post: bool, delay: float) -> None:
    if has_post:
        ro.state = replace(ro.state, step_index=SWITCHED, step_started_at=ro.now,
                           previous_stable=ro.state.stable)  # fmt: skip
        return
    _finish(ro, delay)


def _finish(ro: Rollout, delay: float) -> None:
    ro.end_runs()
    s = ro.state
    assert s.canary is not None and s.stable is not None
    rs = ro.revision(s.canary)
    name = rs.revision.name if rs is not None else s.canary
    state = replace(s, stable=s.canary, canary=None, step_index=0, pause=None, paused_at=None,
                    previous_stable=s.stable, preview_ready_since=None,
                    message=f"Revision {name!r} is promoted: it serves all traffic.")  # fmt: skip
    ro.state = ro.schedule_scale_down(state, s.stable, delay)


def _active(revision: str | None) -> Traffic:
    return Traffic(weights=((revision or "", 100),))


def _deadline_message(plan: Plan) -> str:
    return (
        f"The preview of deployment {plan.spec.name!r} did not become available within "
        f"progressDeadlineSeconds ({plan.spec.progress_deadline_seconds} s); the active "
        "revision keeps all traffic. See `loopline get replicas` and the replica logs."
    )
