"""``rollout promote | abort | retry`` as pure changes of a :class:`RolloutState`.

Argo Rollouts' semantics: ``promote`` goes past the current pause, analysis or step
(``--full`` skips every remaining step, blue-green switches now); ``abort`` sends all traffic
back to the stable revision at once and marks the rollout Degraded; ``retry`` clears an abort
and starts the steps over. Each refuses, with a message saying why and what to do, when the
rollout is not in a state where it means anything.
"""

from __future__ import annotations

from dataclasses import replace

from loopline.deploy.analysis.measurement import AnalysisPhase
from loopline.deploy.analysis.run import RunKind
from loopline.deploy.analysis.run import terminate as terminate_run
from loopline.deploy.rollout_state import PauseReason, Phase, RolloutState
from loopline.deploy.spec import DeploymentSpec, StrategyType
from loopline.errors import ConflictError


def _in_progress(spec: DeploymentSpec, state: RolloutState | None, verb: str) -> RolloutState:
    if not spec.strategy.progressive:
        raise ConflictError(
            f"Deployment {spec.name!r} uses the {spec.strategy.type.value} strategy; "
            f"`rollout {verb}` applies to Canary and BlueGreen deployments."
        )
    if state is None or state.canary is None:
        raise ConflictError(
            f"Deployment {spec.name!r} has no rollout in progress: its stable revision "
            "serves all traffic. Apply a new model or template to start one."
        )
    return state


def promote(
    spec: DeploymentSpec, state: RolloutState | None, full: bool, now: float
) -> RolloutState:
    """Go past the current step (canary) or switch traffic (blue-green)."""
    s = _in_progress(spec, state, "promote")
    if s.abort:
        raise ConflictError(
            f"Deployment {spec.name!r}: the rollout was aborted ({s.message}); use "
            "`loopline rollout retry` to start it over, or apply another model."
        )
    if spec.strategy.type is StrategyType.BLUE_GREEN:
        if s.step_index >= 1 and not s.pause:
            raise ConflictError(f"Deployment {spec.name!r} is already being promoted.")
        step = max(1, s.step_index)
        return replace(s, step_index=step, step_started_at=now, pause=None, paused_at=None,
                       message="Promoted by a user.")  # fmt: skip
    stuck = [r for r in s.analysis_runs
             if r.kind is RunKind.BACKGROUND and r.phase is AnalysisPhase.INCONCLUSIVE]  # fmt: skip
    if s.pause == PauseReason.INCONCLUSIVE_ANALYSIS and stuck and not full:
        # Paused by the background analysis, not by a step: go on at the same step, with a
        # fresh background run (the inconclusive one would pause it again at once).
        runs = tuple(r for r in s.analysis_runs if r not in stuck)
        return replace(s, pause=None, paused_at=None, analysis_runs=runs,
                       message="Promoted past an inconclusive background analysis; it "
                       "starts over.")  # fmt: skip
    if full:
        runs = tuple(terminate_run(r, now) for r in s.analysis_runs)
        return replace(s, promote_full=True, pause=None, paused_at=None, analysis_runs=runs,
                       step_started_at=now, message="Fully promoted by a user: remaining "
                       "steps are skipped.")  # fmt: skip
    step_runs = tuple(
        terminate_run(r, now) if r.name.endswith(f"-step-{s.step_index}") else r
        for r in s.analysis_runs
    )
    return replace(s, step_index=s.step_index + 1, step_started_at=now, pause=None,
                   paused_at=None, analysis_runs=step_runs,
                   message=f"Promoted past step {s.step_index} by a user.")  # fmt: skip


def abort(spec: DeploymentSpec, state: RolloutState | None, now: float) -> RolloutState:
    """All traffic back to stable at once; the canary is scaled down after the delay."""
    s = _in_progress(spec, state, "abort")
    if s.abort:
        raise ConflictError(f"Deployment {spec.name!r}: the rollout is already aborted.")
    runs = tuple(terminate_run(r, now) for r in s.analysis_runs)
    return replace(s, abort=True, aborted_at=now, pause=None, paused_at=None, analysis_runs=runs,
                   phase=Phase.DEGRADED, message="Aborted by a user: all traffic is back on "
                   "the stable revision.")  # fmt: skip


def retry(spec: DeploymentSpec, state: RolloutState | None, now: float) -> RolloutState:
    """Clear an abort and start the steps over."""
    s = _in_progress(spec, state, "retry")
    if not s.abort:
        raise ConflictError(
            f"Deployment {spec.name!r}: the rollout is not aborted; `rollout retry` restarts "
            "an aborted rollout."
        )
    return replace(s, abort=False, aborted_at=None, step_index=0, step_started_at=now,
                   pause=None, paused_at=None, promote_full=False, analysis_runs=(),
                   preview_ready_since=None, phase=Phase.PROGRESSING,
                   message="Retried by a user: the steps start over.")  # fmt: skip
