"""Helpers for the trigger tests: Trigger documents, a fake clock, recorded rollouts."""

from __future__ import annotations

from typing import Any

from loopline.errors import NotFoundError
from loopline.registry import ModelRegistry
from loopline.triggers import RolloutObservation, RolloutPhase, TriggerSpec

SPANS = {"newSpan": {"inputDir": "data", "pattern": "span-{SPAN}/*.csv"}}


def trigger_doc(
    on: dict[str, Any] | None = None,
    *,
    name: str = "retrain",
    params: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Trigger document for model ``taxi`` (by default on new spans, ``span: {{span}}``)."""
    on = on if on is not None else SPANS
    if params is None:
        params = {"span": "{{span}}"} if "newSpan" in on else {}
    body: dict[str, Any] = {
        "model": "taxi",
        "on": on,
        "run": {"pipeline": "pipeline.py", "params": params},
        **spec,
    }
    return {
        "apiVersion": "loopline/v1",
        "kind": "Trigger",
        "metadata": {"name": name},
        "spec": body,
    }


def trigger(on: dict[str, Any] | None = None, **kwargs: Any) -> TriggerSpec:
    return TriggerSpec.from_dict(trigger_doc(on, **kwargs))


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingRollouts:
    """Deployments as the trigger controller sees them, driven by the test: ``set_model``
    pins the reference through the real registry and bumps the generation; the test says
    where the rollout is with :meth:`reach`."""

    def __init__(self, registry: ModelRegistry, deployment: str, serving: str) -> None:
        self.registry = registry
        self.deployment = deployment
        self.serving = serving
        self.generation = 1
        self.observed = 1
        self.phase = RolloutPhase.HEALTHY
        self.message = ""
        self.calls: list[tuple[str, str, str]] = []

    def set_model(self, deployment: str, ref: str, cause: str) -> int:
        if deployment != self.deployment:
            raise NotFoundError(f"Deployment {deployment!r} does not exist.")
        self.calls.append((deployment, ref, cause))
        resolved = self.registry.resolve(ref)
        pinned = f"{resolved.name}/{resolved.version}"
        if pinned != self.serving:
            self.serving = pinned
            self.generation += 1
            self.phase = RolloutPhase.PROGRESSING
        return self.generation

    def reach(self, phase: RolloutPhase, message: str = "") -> None:
        self.observed = self.generation
        self.phase, self.message = phase, message

    def observe(self, deployment: str) -> RolloutObservation:
        return RolloutObservation(
            self.serving, self.generation, self.observed, self.phase, self.message
        )
