"""What the sync loop learns before :func:`reconcile`: analysis measurements and autoscaler
decisions, written on the sync's view so they are committed with it.

The I/O (providers, router stats, ``/proc``) runs on worker threads (analysis) or is one
cheap call per period (the autoscaler); the decisions stay pure in
:mod:`loopline.deploy.analysis` and :mod:`loopline.deploy.hpa`.
"""

from __future__ import annotations

from dataclasses import replace

from loopline.deploy.analysis import AnalysisTemplate
from loopline.deploy.analysis_runner import AnalysisRunner
from loopline.deploy.autoscaler import Autoscaler
from loopline.deploy.deployment import Deployment
from loopline.deploy.progressive_spec import referenced_templates
from loopline.deploy.spec import template_hash
from loopline.deploy.sync import SyncView
from loopline.deploy.template_store import AnalysisTemplateStore
from loopline.deploy.writes import SetStatus


class Measurer:
    """Analysis runs and the autoscaler of every deployment, for the sync loop."""

    def __init__(
        self,
        *,
        analysis: AnalysisRunner,
        autoscaler: Autoscaler,
        templates: AnalysisTemplateStore | None,
    ) -> None:
        self.analysis = analysis
        self.autoscaler = autoscaler
        self.templates = templates

    def measure(self, view: SyncView, now: float) -> None:
        """Record finished analysis measurements and a due autoscaler decision on ``view``."""
        d = view.deployment
        state = d.status.rollout
        if state is not None and state.analysis_runs:
            advanced = self.analysis.advance(d, list(view.current.revisions), now)
            if advanced is not None:
                view.write(SetStatus(replace(d.status, rollout=advanced)))
        d = view.deployment
        if d.spec.autoscaling is not None:
            rolling_out = d.status.rollout is not None and d.status.rollout.canary is not None
            decided = self.autoscaler.step(d, view.current.replicas, now, rolling_out)
            if decided is not None:
                view.write(SetStatus(replace(d.status, autoscaler=decided)))

    def forget(self, name: str) -> None:
        """Drop what was kept about a deleted deployment (pending sweeps, readings)."""
        self.analysis.forget(name)
        self.autoscaler.forget(name)

    def templates_for(self, d: Deployment) -> dict[str, AnalysisTemplate]:
        """The templates the spec names, read only while a rollout may start or run one."""
        names = referenced_templates(d.spec)
        state = d.status.rollout
        if not names or self.templates is None:
            return {}
        if state is not None and state.canary is None and state.stable == template_hash(
            d.spec.template
        ):
            return {}  # nothing to roll out: an idle deployment reads nothing
        return self.templates.find(names)


def route_labels(d: Deployment) -> tuple[tuple[str, str], ...]:
    """``stable``/``canary`` (blue-green: ``preview``) per revision, for the router's metrics."""
    state = d.status.rollout
    if state is None:
        return ()
    labels = {}
    if state.stable is not None:
        labels[state.stable] = "stable"
    if state.canary is not None:
        labels[state.canary] = "preview" if d.spec.strategy.blue_green is not None else "canary"
    return tuple(sorted(labels.items()))
