"""The state of a Canary or BlueGreen rollout, kept in the deployment status.

Copies Argo Rollouts' status fields (``stableRS``, ``currentStepIndex``, ``pauseConditions``,
``abort``, ``abortedAt``, ``promoteFull``, the analysis runs, blue-green's scale-down
deadlines) so that a restarted control plane carries a rollout on where it stopped.
Everything here is data; the decisions are in :mod:`loopline.deploy.strategies`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from loopline.deploy.analysis.run import AnalysisRun
from loopline.types import JsonDict


class Phase(enum.Enum):
    """Argo Rollouts' phases (``status.phase``)."""

    HEALTHY = "Healthy"  # the stable revision serves everything and is available
    PROGRESSING = "Progressing"  # a new revision is being rolled out
    PAUSED = "Paused"  # waiting for a pause step, a promotion or a person
    DEGRADED = "Degraded"  # aborted (analysis failed, `rollout abort`, deadline passed)


class PauseReason:
    """Why a rollout waits (Argo's ``PauseCondition`` reasons)."""

    CANARY_PAUSE_STEP = "CanaryPauseStep"
    BLUE_GREEN_PAUSE = "BlueGreenPause"
    INCONCLUSIVE_ANALYSIS = "InconclusiveAnalysisRun"


@dataclass(frozen=True, slots=True)
class RolloutState:
    """Where a progressive rollout is.

    ``stable`` serves by default; ``canary`` is the revision being proven (the blue-green
    preview), None when nothing is being rolled out. ``step_index`` is the canary step in
    progress (``len(steps)``: every step done, promotion under way). ``scale_down`` maps a
    revision that lost its traffic to the time it may be scaled to zero.
    """

    stable: str | None = None
    canary: str | None = None
    step_index: int = 0
    step_started_at: float | None = None
    pause: str | None = None  # a PauseReason while waiting, else None
    paused_at: float | None = None
    abort: bool = False
    aborted_at: float | None = None
    promote_full: bool = False
    message: str = ""
    scale_down: tuple[tuple[str, float], ...] = ()
    analysis_runs: tuple[AnalysisRun, ...] = ()
    preview_ready_since: float | None = None  # blue-green: auto-promotion timer
    previous_stable: str | None = None  # blue-green: where post-promotion aborts go back to
    phase: Phase = Phase.HEALTHY

    def run(self, name: str) -> AnalysisRun | None:
        for r in self.analysis_runs:
            if r.name == name:
                return r
        return None

    def with_run(self, run: AnalysisRun) -> RolloutState:
        """This state with ``run`` added or replaced (by name)."""
        others = tuple(r for r in self.analysis_runs if r.name != run.name)
        return replace(self, analysis_runs=(*others, run))

    def scale_down_at(self, revision: str) -> float | None:
        return dict(self.scale_down).get(revision)

    def to_dict(self) -> JsonDict:
        return {
            "phase": self.phase.value,
            "stable": self.stable,
            "canary": self.canary,
            "currentStepIndex": self.step_index,
            "stepStartedAt": self.step_started_at,
            "pause": self.pause,
            "pausedAt": self.paused_at,
            "abort": self.abort,
            "abortedAt": self.aborted_at,
            "promoteFull": self.promote_full,
            "message": self.message,
            "scaleDown": {h: t for h, t in self.scale_down},
            "analysisRuns": [r.to_json() for r in self.analysis_runs],
            "previewReadySince": self.preview_ready_since,
            "previousStable": self.previous_stable,
        }

    @classmethod
    def from_dict(cls, d: Any) -> RolloutState:
        return cls(
            stable=d.get("stable"),
            canary=d.get("canary"),
            step_index=int(d.get("currentStepIndex") or 0),
            step_started_at=d.get("stepStartedAt"),
            pause=d.get("pause"),
            paused_at=d.get("pausedAt"),
            abort=bool(d.get("abort")),
            aborted_at=d.get("abortedAt"),
            promote_full=bool(d.get("promoteFull")),
            message=str(d.get("message") or ""),
            scale_down=tuple(sorted((str(h), float(t))
                                    for h, t in (d.get("scaleDown") or {}).items())),
            analysis_runs=tuple(AnalysisRun.from_json(r) for r in d.get("analysisRuns") or ()),
            preview_ready_since=d.get("previewReadySince"),
            previous_stable=d.get("previousStable"),
            phase=Phase(d.get("phase") or Phase.HEALTHY.value),
        )  # fmt: skip
