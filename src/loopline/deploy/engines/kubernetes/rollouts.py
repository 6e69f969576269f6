"""Pure decisions of the Kubernetes engine's rollout verbs: no I/O, ``now`` is a parameter.

- :func:`deployment_status`: what ``kubectl rollout status`` says of a Deployment, from its
  ``observedGeneration``, replica counts and conditions (``ProgressDeadlineExceeded`` fails);
- :func:`revisions` / :func:`undo_target`: the history from the Deployment's ReplicaSets
  (``deployment.kubernetes.io/revision``, ``kubernetes.io/change-cause``, and the model each
  one served from ``loopline.dev/model``), and the template ``undo`` goes back to;
- :func:`next_canary_step`: one step of a canary on Kubernetes, with the local controller's
  ``step_index`` (steps before it are done). ``setWeight``/``setMirror``/``setHeaderRoute``
  complete once the canary track is ready; a ``pause`` with a duration completes when it has
  elapsed; a ``pause`` without one, and an ``analysis`` step, wait for ``promote`` (a pause
  step, timed or not, is ``paused``: phase Paused, as locally; a control
  plane with ``--engine kubernetes`` runs the analysis and promotes or aborts by its verdict:
  :mod:`.analysis`); ``promote --full`` completes every step;
- :func:`merge_diff`: the JSON merge patch that turns one object into another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from loopline.deploy.engines.kubernetes.fields import as_int as _int
from loopline.deploy.engines.kubernetes.fields import as_list as _list
from loopline.deploy.engines.kubernetes.fields import as_map as _map
from loopline.deploy.engines.kubernetes.pod import MODEL_ANNOTATION
from loopline.deploy.progressive_spec import CanaryStrategy, Pause, RunAnalysis, describe_step
from loopline.errors import NotFoundError
from loopline.types import Json, JsonDict

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """One report: finished, failed (stop waiting), or neither, with kubectl's sentence."""

    done: bool
    failed: bool
    message: str


def deployment_status(obj: JsonDict) -> RolloutStatus:
    """kubectl's rollout status of an ``apps/v1`` Deployment (``kubectl/pkg/polymorphichelpers/
    rollout_status.go``)."""
    meta, spec, status = _map(obj.get("metadata")), _map(obj.get("spec")), _map(obj.get("status"))
    name = meta.get("name")
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        return RolloutStatus(False, False, "Waiting for deployment spec update to be observed...")
    for condition in _list(status.get("conditions")):
        c = _map(condition)
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return RolloutStatus(False, True, f'deployment "{name}" exceeded its progress deadline')
    if spec.get("paused"):
        return RolloutStatus(False, False, f'deployment "{name}" is paused; resume it to roll out')
    wanted = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    total = _int(status.get("replicas"))
    available = _int(status.get("availableReplicas"))
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < wanted:
        return RolloutStatus(False, False, f"{waiting}{updated} out of {wanted} new replicas have "
                             "been updated...")  # fmt: skip
    if total > updated:
        return RolloutStatus(False, False, f"{waiting}{total - updated} old replicas are pending "
                             "termination...")  # fmt: skip
    if available < updated:
        return RolloutStatus(False, False, f"{waiting}{available} of {updated} updated replicas "
                             "are available...")  # fmt: skip
    return RolloutStatus(True, False, f'deployment "{name}" successfully rolled out')


@dataclass(frozen=True, slots=True)
class Revision:
    """One ReplicaSet of a Deployment: its revision, model, cause and pod template."""

    number: int
    replica_set: str
    model: str | None
    change_cause: str | None
    replicas: int
    template: JsonDict

    def to_dict(self) -> JsonDict:
        return {"number": self.number, "replicaSet": self.replica_set, "model": self.model,
                "changeCause": self.change_cause, "replicas": self.replicas}  # fmt: skip


def revisions(deployment: JsonDict, replica_sets: Sequence[JsonDict]) -> list[Revision]:
    """The revisions of ``deployment``: its ReplicaSets (those it owns, by uid) by number."""
    uid = _map(deployment.get("metadata")).get("uid")
    out = []
    for rs in replica_sets:
        meta = _map(rs.get("metadata"))
        owners = [_map(o).get("uid") for o in _list(meta.get("ownerReferences"))]
        annotations = _map(meta.get("annotations"))
        number = _int(annotations.get(REVISION_ANNOTATION))
        if uid not in owners or number == 0:
            continue
        template = _map(_map(rs.get("spec")).get("template"))
        model = _map(_map(template.get("metadata")).get("annotations")).get(MODEL_ANNOTATION)
        cause = annotations.get(CHANGE_CAUSE_ANNOTATION)
        out.append(Revision(number, str(meta.get("name")), model if isinstance(model, str) else
                            None, cause if isinstance(cause, str) else None,
                            _int(_map(rs.get("spec")).get("replicas")), template))  # fmt: skip
    return sorted(out, key=lambda r: r.number)


def undo_target(name: str, history: Sequence[Revision], to_revision: int) -> Revision:
    """The revision ``undo`` returns to (0: the one before the newest), as kubectl does.

    Raises:
        NotFoundError: no such revision, or no earlier one; the message lists the known ones.
    """
    known = [r.number for r in history]
    if to_revision == 0:
        if len(history) < 2:
            raise NotFoundError(f"Deployment {name!r} has no revision before the current one "
                                f"(known revisions: {known}); nothing to undo.")  # fmt: skip
        return history[-2]
    for r in history:
        if r.number == to_revision:
            return r
    raise NotFoundError(f"Deployment {name!r} has no revision {to_revision}; known revisions: "
                        f"{known}.")  # fmt: skip


def template_without_hash(template: JsonDict) -> JsonDict:
    """A ReplicaSet's pod template as its Deployment had it (no ``pod-template-hash``)."""
    meta = dict(_map(template.get("metadata")))
    labels = {k: v for k, v in _map(meta.get("labels")).items() if k != POD_TEMPLATE_HASH}
    return {**template, "metadata": {**meta, "labels": labels}}


def merge_diff(current: Json, target: Json) -> Json:
    """The RFC 7386 merge patch that turns ``current`` into ``target`` (keys ``target`` lacks
    become ``None``; lists are replaced whole)."""
    if not (isinstance(current, dict) and isinstance(target, dict)):
        return target
    patch: JsonDict = {k: None for k in current if k not in target}
    for k, v in target.items():
        if k not in current:
            patch[k] = v
        elif current[k] != v:
            patch[k] = merge_diff(current[k], v)
    return patch


@dataclass(frozen=True, slots=True)
class CanaryProgress:
    """Where a canary on Kubernetes is: ``step_index`` (steps before it done), when the pause
    at it started (None: not paused), whether it was aborted, and what it waits for.
    ``paused``: it waits at a pause — a ``pause`` step, timed or not, or a blue-green preview
    ready for ``promote`` (Argo Rollouts' pause conditions): its phase is Paused, as on the
    local engine."""

    step_index: int = 0
    pause_started: float | None = None
    aborted: bool = False
    waiting: str = ""
    paused: bool = False


def next_canary_step(
    canary: CanaryStrategy, progress: CanaryProgress, *, now: float, canary_ready: bool,
    promote: bool = False, full: bool = False,
) -> CanaryProgress:  # fmt: skip
    """One decision (see the module docstring); at most one step completes per call, so the
    replicas of the next ``setWeight`` are in place before its traffic moves."""
    steps = canary.steps
    if progress.aborted:
        return progress
    if full:
        return CanaryProgress(len(steps))
    index = progress.step_index
    if index >= len(steps):
        return CanaryProgress(len(steps))
    step = steps[index]
    label = f"step {index + 1} of {len(steps)} ({describe_step(step)})"
    if isinstance(step, Pause | RunAnalysis):
        if promote:
            return CanaryProgress(index + 1)
        started = now if progress.pause_started is None else progress.pause_started
        if isinstance(step, Pause) and step.duration is not None:
            if now - started >= step.duration:
                return CanaryProgress(index + 1)
            left = step.duration - (now - started)
            return CanaryProgress(index, started, waiting=f"paused at {label}, {left:.0f} s left",
                                  paused=True)  # fmt: skip
        why = (" (on the Kubernetes engine analyses run in a control plane with --engine "
               "kubernetes, Prometheus metrics only)" if isinstance(step, RunAnalysis)
               else "")  # fmt: skip
        return CanaryProgress(index, started, waiting=f"paused at {label}{why}; run loopline "
                              "rollout promote to continue",
                              paused=isinstance(step, Pause))  # fmt: skip
    if promote or canary_ready:
        return CanaryProgress(index + 1)
    return replace(progress, waiting=f"waiting for the canary's replicas to be ready: {label}")
