"""Analysis steps of a canary on Kubernetes, run by the control plane's loop.

A canary on the cluster that reaches an ``analysis`` step gets an
:class:`~loopline.deploy.analysis.AnalysisRun` of the step's templates, with Argo Rollouts'
rules (:mod:`loopline.deploy.analysis`, pure): **Successful** completes the step,
**Failed/Error** aborts the rollout (all traffic back to the stable track), **Inconclusive**
holds it for ``rollout promote`` (or ``abort``). The run lives in the
``loopline.dev/analysis-run`` annotation of ``NAME-canary`` (JSON), so a restarted control
plane measures on where the last one stopped.

Only metrics the cluster can answer run here: **Prometheus queries** (the cluster's
Prometheus scrapes the model servers' ``/metrics``). The other providers read the local
engine's router figures and prediction logs; a step whose templates use one is left waiting
for ``rollout promote``, and :meth:`StepAnalysis.sync` says which metric keeps it there.
``loopline rollout status --engine kubernetes`` without a control plane runs no analysis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from loopline.deploy.analysis import (
    AnalysisPhase,
    AnalysisRun,
    AnalysisTemplate,
    MeasureContext,
    Metric,
    MetricProvider,
    PrometheusQuery,
    RevisionModel,
    RunKind,
    measure_due,
    provider_for,
    start_run,
)
from loopline.deploy.engines.kubernetes.cluster import ObjectRef
from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer
from loopline.deploy.engines.kubernetes.pod import MODEL_ANNOTATION
from loopline.deploy.progressive_spec import RunAnalysis
from loopline.errors import InvalidDefinitionError, InvalidInputError, NotFoundError
from loopline.types import Json, ModelRef

ANALYSIS_ANNOTATION = "loopline.dev/analysis-run"


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    """What one sync did: the run as it now stands (None: none could start), and a sentence."""

    run: AnalysisRun | None
    message: str


def stored_run(deployer: KubernetesDeployer, name: str) -> AnalysisRun | None:
    """The analysis run stored on ``NAME-canary``, None when there is none (or it is unreadable)."""
    try:
        canary = deployer.cluster.get(_canary(deployer, name))
    except NotFoundError:
        return None
    text = _notes(canary).get(ANALYSIS_ANNOTATION)
    if not isinstance(text, str):
        return None
    try:
        return AnalysisRun.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, InvalidDefinitionError):
        return None


class StepAnalysis:
    """Runs the analysis step a canary is at (module docstring).

    Args:
        templates: the AnalysisTemplate of a name (raises NotFoundError for an unknown one).
        providers: the provider of a metric (default: the built-in ones).
    """

    def __init__(self, templates: Callable[[str], AnalysisTemplate],
                 providers: Callable[[Metric], MetricProvider] = provider_for) -> None:  # fmt: skip
        self.templates = templates
        self.providers = providers

    def sync(self, deployer: KubernetesDeployer, name: str, now: float) -> AnalysisOutcome | None:
        """Measure what is due of the analysis ``name``'s canary is at and act on the verdict;
        None when the canary is not at an analysis step."""
        spec = deployer.spec(name)
        progress = deployer.progress(name)
        strategy = spec.strategy.canary if spec is not None else None
        if strategy is None or progress is None or progress.aborted:
            return None
        index = progress.step_index
        step = strategy.steps[index] if index < len(strategy.steps) else None
        if not isinstance(step, RunAnalysis):
            return None
        canary = deployer.cluster.get(_canary(deployer, name))
        stable = deployer.primary(name)
        canary_model, stable_model = (str(_notes(o).get(MODEL_ANNOTATION) or "")
                                      for o in (canary, stable))  # fmt: skip
        run_name = f"{name}-step-{index}"
        run = stored_run(deployer, name)
        if run is None or run.name != run_name or run.canary != canary_model:
            try:
                templates = [self.templates(t) for t in step.analysis.templates]
            except NotFoundError as exc:
                return AnalysisOutcome(None, f"analysis {run_name} cannot start: {exc} "
                                       "Apply the template, or run loopline rollout "
                                       "promote.")  # fmt: skip
            foreign = [m for t in templates for m in t.metrics
                       if not isinstance(m.provider, PrometheusQuery)]  # fmt: skip
            if foreign:
                m = foreign[0]
                return AnalysisOutcome(None, f"analysis {run_name} waits for rollout promote: "
                                       f"metric {m.name!r} reads the local engine's router "
                                       "or prediction logs, which pods on Kubernetes do not "
                                       "have; only prometheus metrics run on the Kubernetes "
                                       "engine")  # fmt: skip
            run = start_run(run_name, RunKind.STEP, templates, canary=canary_model,
                            stable=stable_model, now=now)  # fmt: skip
        if not run.completed:
            context = MeasureContext(name, _side(canary_model), _side(stable_model),
                                     admin_port=None, log_directory=None,
                                     window_start=run.started_at,
                                     window_end=max(now, run.started_at))  # fmt: skip
            run = measure_due(run, context, now, self.providers)
            deployer.cluster.patch(_canary(deployer, name), {"metadata": {"annotations": {
                ANALYSIS_ANNOTATION: json.dumps(run.to_json(), sort_keys=True)}}})  # fmt: skip
        return self._act(deployer, name, run, now)

    def _act(self, deployer: KubernetesDeployer, name: str, run: AnalysisRun,
             now: float) -> AnalysisOutcome:  # fmt: skip
        phase = run.phase
        why = f": {run.message}" if run.message else ""
        if phase is AnalysisPhase.SUCCESSFUL:
            deployer.promote(name, now=now)  # completes exactly this step
            return AnalysisOutcome(run, f"analysis {run.name} Successful: step done")
        if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
            deployer.abort(name)
            return AnalysisOutcome(run, f"analysis {run.name} {phase.value}{why}; rollout "
                                   "aborted, all traffic on the stable track")  # fmt: skip
        if phase is AnalysisPhase.INCONCLUSIVE:
            return AnalysisOutcome(run, f"analysis {run.name} Inconclusive{why}; run loopline "
                                   "rollout promote to continue or abort to roll back")  # fmt: skip
        return AnalysisOutcome(run, f"analysis {run.name} {phase.value}")


def _canary(deployer: KubernetesDeployer, name: str) -> ObjectRef:
    return ObjectRef("apps/v1", "Deployment", f"{name}-canary", deployer.namespace)


def _notes(obj: dict[str, Json]) -> dict[str, Json]:
    meta = obj.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    return notes if isinstance(notes, dict) else {}


def _side(model: str) -> RevisionModel:
    """A side of the analysis: the model version the track serves (``taxi/3``)."""
    try:
        ref = ModelRef.parse(model)
    except InvalidInputError:  # a model baked into the image: a path, not a reference
        return RevisionModel(model, model, "")
    return RevisionModel(model, ref.name, "" if ref.version is None else str(ref.version))
