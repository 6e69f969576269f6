"""The rollout part of a triggered run: what the trigger controller needs from deployments.

The controller does not know the control plane; it is given a :class:`Rollouts` (the control
plane implements it over its own operations) that sets a deployment's model — the
deployment's strategy rolls the new revision out, a canary with analysis in the example — and
reports where that rollout is. :func:`judge` is the pure reading of one observation for the
version the run rolled out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class RolloutPhase(enum.Enum):
    PROGRESSING = "Progressing"  # still rolling out (or paused)
    HEALTHY = "Healthy"  # the current template serves everything and is available
    DEGRADED = "Degraded"  # aborted: an analysis failed, a person aborted, a deadline passed


@dataclass(frozen=True, slots=True)
class RolloutObservation:
    """A deployment as last observed by its controller.

    ``serving`` is the pinned model of its current template (``taxi/5``); ``message`` says
    why a Degraded rollout was aborted (the analysis run's message).
    """

    serving: str
    generation: int
    observed_generation: int
    phase: RolloutPhase
    message: str = ""


class Rollouts(Protocol):
    """Deployments, as a triggered run sees them."""

    def set_model(self, deployment: str, ref: str, cause: str) -> int:
        """Point ``deployment`` at model ``ref``; returns the deployment's generation.
        Raises NotFoundError (no such deployment) or a LooplineError naming what failed."""

    def observe(self, deployment: str) -> RolloutObservation:
        """Where ``deployment``'s rollout is. Raises NotFoundError."""


class Verdict(enum.Enum):
    WAIT = "wait"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    REPLACED = "replaced"  # the deployment was pointed elsewhere meanwhile


def judge(observation: RolloutObservation, ref: str, generation: int) -> tuple[Verdict, str]:
    """How the rollout of ``ref`` (set at ``generation``) stands."""
    if observation.generation > generation and observation.serving != ref:
        return Verdict.REPLACED, (
            f"the deployment was changed meanwhile (generation {observation.generation}) and "
            f"now serves {observation.serving}, not {ref}"
        )
    if observation.observed_generation < generation:
        return Verdict.WAIT, "the deployment's controller has not observed the new model yet"
    if observation.phase is RolloutPhase.DEGRADED:
        return Verdict.DEGRADED, observation.message or "the rollout was aborted"
    if observation.phase is RolloutPhase.HEALTHY and observation.serving == ref:
        return Verdict.HEALTHY, f"{ref} rolled out and healthy"
    return Verdict.WAIT, observation.message or "rolling out"
