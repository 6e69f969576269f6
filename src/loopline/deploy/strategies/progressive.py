"""What Canary and BlueGreen share: stable/canary bookkeeping, analysis runs, scale-downs.

A progressive rollout keeps a *stable* revision serving while a *canary* (blue-green: the
preview) is proven. :class:`Rollout` is the working copy of the
:class:`~loopline.deploy.rollout_state.RolloutState` during one reconcile; the strategies
(:mod:`.canary`, :mod:`.bluegreen`) move it forward and it records sizes on the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from loopline.deploy.analysis.measurement import AnalysisPhase
from loopline.deploy.analysis.run import AnalysisRun, RunKind, start_run
from loopline.deploy.analysis.run import terminate as terminate_run
from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.plan import Plan, RevisionState
from loopline.deploy.progressive_spec import AnalysisRef
from loopline.deploy.rollout_state import Phase, RolloutState
from loopline.errors import InvalidDefinitionError


@dataclass(slots=True)
class Verdict:
    """An analysis run's meaning for the rollout."""

    done: bool  # Successful: go on
    failed: bool  # Failed or Error: abort
    inconclusive: bool  # Inconclusive: pause for a person
    message: str = ""


class Rollout:
    """The rollout state being changed during one reconcile of one deployment."""

    def __init__(self, plan: Plan, templates: Mapping[str, AnalysisTemplate]) -> None:
        self.plan = plan
        self.templates = templates
        self.state = plan.deployment.status.rollout or RolloutState()
        self.now = plan.now

    # ---- revisions ---------------------------------------------------------------------------

    def revision(self, hash: str | None) -> RevisionState | None:
        for rs in self.plan.revisions:
            if rs.hash == hash:
                return rs
        return None

    def begin(self) -> RevisionState:
        """Create the new revision if needed and settle which revision is stable/canary.

        The first revision becomes stable at once (Argo skips the steps on the first
        deploy); a template equal to the stable one ends any rollout (an undo or a re-apply
        goes straight back); any other template starts a new rollout from step 0.
        """
        plan = self.plan
        plan.sync_revision(create=True)
        new = plan.new
        assert new is not None  # sync_revision(create=True) always leaves one
        s = self.state
        if s.stable is None or self.revision(s.stable) is None:
            s = RolloutState(stable=new.hash, message=f"Revision {new.revision.name!r} is "
                             "the first: it becomes stable at once.")  # fmt: skip
        elif new.hash == s.stable:
            if s.canary is not None:
                s = self._retire_canary(s, delay=0.0)
                s = replace(s, message=f"Back on the stable revision {new.revision.name!r}.")
        elif new.hash != s.canary:
            if s.canary is not None:
                s = self._retire_canary(s, delay=0.0)
            s = replace(
                s,
                canary=new.hash,
                step_index=0,
                step_started_at=self.now,
                pause=None,
                paused_at=None,
                abort=False,
                aborted_at=None,
                promote_full=False,
                preview_ready_since=None,
                analysis_runs=(),
                message=f"Rolling out revision {new.revision.name!r}.",
            )
        self.state = s
        return new

    def _retire_canary(self, s: RolloutState, delay: float) -> RolloutState:
        assert s.canary is not None
        s = self.schedule_scale_down(s, s.canary, delay)
        runs = tuple(terminate_run(r, self.now) for r in s.analysis_runs)
        return replace(s, canary=None, step_index=0, pause=None, paused_at=None, abort=False,
                       aborted_at=None, promote_full=False, analysis_runs=runs,
                       preview_ready_since=None)  # fmt: skip

    def schedule_scale_down(self, s: RolloutState, revision: str, delay: float) -> RolloutState:
        """``revision`` lost its traffic: it may be scaled to zero after ``delay`` seconds."""
        others = tuple(x for x in s.scale_down if x[0] != revision)
        return replace(s, scale_down=(*others, (revision, self.now + delay)))

    def size(self, rs: RevisionState | None, replicas: int) -> None:
        if rs is not None and rs.replicas != replicas:
            self.plan.scale(rs, replicas)

    def size_others(self, keep: set[str]) -> None:
        """Revisions that are neither stable nor canary go to zero once their delay passed."""
        left = []
        for rs in self.plan.revisions:
            if rs.hash in keep:
                continue
            at = self.state.scale_down_at(rs.hash)
            if at is not None and at > self.now:
                left.append((rs.hash, at))
                continue
            self.size(rs, 0)
        self.state = replace(self.state, scale_down=tuple(left))

    # ---- steps and pauses --------------------------------------------------------------------

    def next_step(self) -> None:
        s = self.state
        self.state = replace(s, step_index=s.step_index + 1, step_started_at=self.now, pause=None,
                             paused_at=None)  # fmt: skip

    def pause_for(self, reason: str) -> None:
        if self.state.pause != reason:
            self.state = replace(self.state, pause=reason, paused_at=self.now)

    def abort(self, message: str) -> None:
        runs = tuple(terminate_run(r, self.now) for r in self.state.analysis_runs)
        self.state = replace(self.state, abort=True, aborted_at=self.now, message=message,
                             pause=None, paused_at=None, analysis_runs=runs)  # fmt: skip

    def waited_too_long(self) -> bool:
        started = self.state.step_started_at
        return started is not None and started + self.plan.spec.progress_deadline_seconds < self.now

    # ---- analysis ----------------------------------------------------------------------------

    def analysis(self, name: str, kind: RunKind, ref: AnalysisRef) -> Verdict:
        """Start the run ``name`` if it does not exist yet, and say what its phase means."""
        run = self.state.run(name)
        if run is None:
            missing = [t for t in ref.templates if t not in self.templates]
            if missing:
                return Verdict(False, True, False,
                               f"AnalysisTemplate {missing[0]!r} does not exist; apply it with "
                               "loopline apply -f FILE.")  # fmt: skip
            assert self.state.canary is not None
            try:
                run = start_run(
                    name,
                    kind,
                    [self.templates[t] for t in ref.templates],
                    canary=self.state.canary,
                    stable=self.state.stable,
                    now=self.now,
                )
            except InvalidDefinitionError as exc:
                return Verdict(False, True, False, str(exc))
            self.state = self.state.with_run(run)
        return verdict(run)

    def end_runs(self) -> None:
        runs = tuple(terminate_run(r, self.now) for r in self.state.analysis_runs)
        self.state = replace(self.state, analysis_runs=runs)

    # ---- phase -------------------------------------------------------------------------------

    def settle_phase(self) -> RolloutState:
        s = self.state
        if s.abort:
            phase = Phase.DEGRADED
        elif s.pause is not None or self.plan.spec.paused:
            phase = Phase.PAUSED
        elif s.canary is not None or not self._stable_available():
            phase = Phase.PROGRESSING
        else:
            phase = Phase.HEALTHY
        self.state = replace(s, phase=phase)
        return self.state

    def _stable_available(self) -> bool:
        rs = self.revision(self.state.stable)
        return rs is None or rs.available >= self.plan.spec.replicas


def verdict(run: AnalysisRun) -> Verdict:
    phase = run.phase
    if phase is AnalysisPhase.SUCCESSFUL:
        return Verdict(True, False, False)
    if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
        message = f"Analysis run {run.name!r} {phase.value.lower()}: {run.message}"
        return Verdict(False, True, False, message)
    if phase is AnalysisPhase.INCONCLUSIVE:
        return Verdict(False, False, True, f"Analysis run {run.name!r} was inconclusive.")
    return Verdict(False, False, False)


def canary_replicas(replicas: int, weight: int) -> int:
    """Replicas for a canary carrying ``weight`` %: ``ceil(replicas × weight / 100)``, at
    least one while the deployment has any (a canary under analysis needs a replica)."""
    if replicas == 0:
        return 0
    return max(1, math.ceil(replicas * weight / 100))
