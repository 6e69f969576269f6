"""The Kubernetes engine's rollout controller: every loopline deployment of a namespace found on
the cluster, and every progressive rollout among them moved on, one decision per tick.

Without it, a canary on Kubernetes moves only while ``loopline rollout status`` watches it.
The control plane runs a :class:`RolloutController` in its loop when its engine is
``kubernetes`` (beside the cluster with a kubeconfig, or in-cluster with the service account of
``loopline render --controller``), so timed pauses end and weights move with nobody watching.

- :func:`deployment_names`: the loopline deployments of the namespace, from the labels
  :func:`~.render.render` puts on every object (``app.kubernetes.io/name:
  loopline-model-server``, ``app.kubernetes.io/instance: NAME``); a canary or blue-green
  deployment is named once, not once per track.
- :meth:`RolloutController.sync_all`: :meth:`~.deployer.KubernetesDeployer.step` for each
  progressive deployment (pure decisions in :func:`~.rollouts.next_canary_step`; the clock is
  a parameter), after the analysis the canary is at, if any (:mod:`.analysis`: Prometheus
  metrics; Successful completes the step, Failed aborts); the outcome of each is a
  :class:`Tick`. A failure of one deployment (the
  cluster refused a patch, an object was deleted meanwhile) is its tick's ``error`` and never
  stops the others.
- :meth:`RolloutController.run`: ``sync_all`` every ``interval`` seconds until ``stop``.

Everything the controller knows lives on the cluster (the spec and the step in annotations of
``NAME-canary``), so a restarted control plane, or one that took over the lease, carries on
where the last one stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from loopline.deploy.engines.kubernetes.analysis import AnalysisOutcome, StepAnalysis
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.deploy.engines.kubernetes.render import APP_NAME, INSTANCE_LABEL, NAME_LABEL
from loopline.deploy.engines.kubernetes.rollouts import CanaryProgress
from loopline.errors import LooplineError

log = logging.getLogger(__name__)


def deployment_names(deployer: KubernetesDeployer) -> list[str]:
    """The loopline deployments in the deployer's namespace, sorted (each once)."""
    found = deployer.cluster.list("apps/v1", "Deployment", namespace=deployer.namespace,
                                  labels={NAME_LABEL: APP_NAME})  # fmt: skip
    names = set()
    for obj in found.items:
        meta = obj.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        instance = labels.get(INSTANCE_LABEL) if isinstance(labels, dict) else None
        if isinstance(instance, str) and instance:
            names.add(instance)
    return sorted(names)


@dataclass(frozen=True, slots=True)
class Tick:
    """One deployment's decision in one tick: where its rollout is (None: none under way),
    what its analysis did (None: not at an analysis step) or, when it failed, ``error``."""

    name: str
    progress: CanaryProgress | None
    error: str | None = None
    analysis: AnalysisOutcome | None = None


class RolloutController:
    """Moves every progressive rollout of ``deployer``'s namespace on (module docstring).

    Args:
        deployer: the namespace of a cluster.
        clock: seconds since the epoch (``time.time`` in a process; a fake in tests).
        analysis: runs canaries' analysis steps (None: they wait for ``rollout promote``).
    """

    def __init__(self, deployer: KubernetesDeployer, clock: Callable[[], float],
                 analysis: StepAnalysis | None = None) -> None:  # fmt: skip
        self.deployer = deployer
        self.clock = clock
        self.analysis = analysis

    def sync_all(self) -> list[Tick]:
        """One decision for every progressive deployment (plain ones need none: the cluster's
        Deployment controller rolls them out)."""
        ticks = []
        for name in deployment_names(self.deployer):
            try:
                if not self.deployer.progressive(name):
                    continue
                outcome = None
                if self.analysis is not None:
                    outcome = self.analysis.sync(self.deployer, name, self.clock())
                progress = self.deployer.step(name, now=self.clock())
                if outcome is not None and progress is not None and not progress.aborted:
                    progress = replace(progress, waiting=outcome.message)
                ticks.append(Tick(name, progress, analysis=outcome))
            except LooplineError as exc:
                log.warning("Deployment %r on Kubernetes: %s", name, exc)
                ticks.append(Tick(name, None, str(exc)))
        return ticks

    def run(self, stop: threading.Event, interval: float) -> None:
        """:meth:`sync_all` every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.sync_all()
            except LooplineError as exc:  # the list itself failed: the cluster is unreachable
                log.warning("Kubernetes rollout controller: %s", exc)
            stop.wait(interval)
