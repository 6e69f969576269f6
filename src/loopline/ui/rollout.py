"""A deployment's rollout, traffic and autoscaler as the console shows them, on either engine.

The API serves one ``w.Deployment`` for both engines, but ``status.rollout``,
``status.traffic`` and ``status.autoscaler`` carry what each engine has
(``docs/kubernetes.md``, "The control plane drives the cluster"):

=================  ===================================  ======================================
field              local engine                         Kubernetes engine
=================  ===================================  ======================================
``rollout``        ``RolloutState``: ``stable`` and     ``stepIndex``, ``waiting``,
                   ``canary`` revision hashes,          ``aborted``, ``canaryModel`` and the
                   ``currentStepIndex``, ``abort``,     one ``analysis`` run of the step; None
                   ``analysisRuns``; kept at rest       when no rollout is under way
                   (``canary`` None)
``traffic``        ``weights`` by revision hash         ``weights`` by Service (``NAME-stable``,
                                                        ``NAME-canary``: the HTTPRoute), or
                                                        ``replicas`` per track (no Gateway)
``autoscaler``     loopline's last decision             the HorizontalPodAutoscaler's status
                   (``desiredReplicas``, ``events``)    (``decidedBy``)
=================  ===================================  ======================================

:func:`rollout_of`, :func:`traffic_of` and :func:`autoscaler_of` read either into one shape,
so the overview, the deployment page and its buttons are the same code on both engines.
Pure: the inputs are the API's JSON views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.deploy import DeploymentSpec
from loopline.deploy.rollout_state import RolloutState
from loopline.deploy.strategies.progressive_sync import step_summary
from loopline.errors import LooplineError

PROMOTING = "promoting"  # how the Kubernetes engine's ``waiting`` starts while it promotes


@dataclass(frozen=True, slots=True)
class Rollout:
    """A progressive deployment's rollout, read from ``status.rollout``.

    ``stable`` and ``canary`` are the keys of ``status.traffic`` that carry each role (revision
    hashes locally, Service names on Kubernetes); ``step_index`` is the canary step in progress
    (the number of steps once every one is done); ``analysis`` holds AnalysisRun JSON.
    """

    in_flight: bool  # a canary or preview is being proven (or was, and was aborted)
    step_index: int
    promoting: bool
    aborted: bool
    waiting: str  # what the rollout waits for, in a sentence, or ""
    stable: str | None
    canary: str | None
    canary_model: str | None
    analysis: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class TrafficRow:
    """One revision's (or track's) share of the traffic."""

    key: str  # the key in status.traffic (a revision hash or a Service name)
    label: str  # "rev 3", or "NAME-canary" for a Kubernetes track with no revision number
    revision: str  # the revision number as text ("3"), or the role for a track ("canary")
    role: str  # stable, canary, current or ""
    model: str  # the model version it serves ("" when not known)
    weight: int  # percent


@dataclass(frozen=True, slots=True)
class Autoscaler:
    """The autoscaler's state: loopline's own decision (local) or the cluster's HPA."""

    decided_by: str  # "loopline" or "HorizontalPodAutoscaler"
    desired: int | None
    current: int | None
    min_replicas: int | None
    max_replicas: int | None
    observed_at: object  # epoch seconds or RFC 3339 (loopline's decision), or None
    events: tuple[Mapping[str, Any], ...]  # loopline's events of the decision


def at(doc: object, *keys: str) -> Any:
    """``doc[k1][k2]…`` through JSON objects; None where a key is missing or not an object."""
    for key in keys:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def rollout_of(view: Mapping[str, Any]) -> Rollout | None:
    """The rollout of a deployment's API view; None for a rolling-update or recreate
    deployment, and for a Kubernetes one with no rollout under way."""
    if at(view, "spec", "strategy", "type") not in ("Canary", "BlueGreen"):
        return None
    ro = at(view, "status", "rollout")
    if not isinstance(ro, Mapping):
        return None
    if "stepIndex" in ro:  # the Kubernetes engine's shape
        name = str(at(view, "metadata", "name"))
        waiting = str(ro.get("waiting") or "")
        run = ro.get("analysis")
        model = ro.get("canaryModel")
        return Rollout(
            in_flight=True,
            step_index=_int(ro.get("stepIndex")),
            promoting=waiting.startswith(PROMOTING),
            aborted=bool(ro.get("aborted")),
            waiting=waiting,
            stable=f"{name}-stable",
            canary=f"{name}-canary",
            canary_model=model if isinstance(model, str) else None,
            analysis=(run,) if isinstance(run, Mapping) else (),
        )
    canary = ro.get("canary")
    runs = ro.get("analysisRuns")
    return Rollout(
        in_flight=bool(canary),
        step_index=_int(ro.get("currentStepIndex")),
        promoting=bool(ro.get("promoteFull")),
        aborted=ro.get("phase") == "Degraded" and bool(ro.get("abort")),
        waiting=str(ro.get("message") or ""),
        stable=_str(ro.get("stable")),
        canary=_str(canary),
        canary_model=None,
        analysis=tuple(r for r in runs if isinstance(r, Mapping)) if isinstance(runs, list)
        else (),
    )  # fmt: skip


def step_of(view: Mapping[str, Any], rollout: Rollout | None) -> str:
    """``step 2/4 (pause)`` for a canary in flight, ``preview``/``promoting`` for a blue-green
    one (the local control plane's words, :func:`step_summary`); "" at rest."""
    if rollout is None or not rollout.in_flight:
        return ""
    try:
        doc = {"apiVersion": "loopline/v1", "kind": "Deployment",
               "metadata": {"name": str(at(view, "metadata", "name"))}, "spec": at(view, "spec")}
        spec = DeploymentSpec.from_dict(doc)
    except LooplineError:  # a view without a readable spec (not applied by loopline)
        return ""
    state = RolloutState(step_index=rollout.step_index, promote_full=rollout.promoting)
    return step_summary(spec, state)


def traffic_of(
    view: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]], rollout: Rollout | None
) -> tuple[TrafficRow, ...]:
    """Who gets the traffic, highest weight first: ``status.traffic.weights`` (by revision
    hash, or by a Kubernetes track's Service), else a Kubernetes canary's replica ratio, else
    everything to the current revision."""
    traffic = at(view, "status", "traffic") or {}
    numbers = {str(r.get("hash")): str(r.get("number")) for r in revisions}
    models = {str(r.get("hash")): str(r.get("model") or "") for r in revisions}
    current = next((r for r in revisions if r.get("current")), None)
    weights = traffic.get("weights")
    if isinstance(weights, Mapping) and weights:
        shares = {str(k): _int(v) for k, v in weights.items()}
    elif isinstance(traffic.get("replicas"), Mapping) and traffic["replicas"]:
        shares = _percentages({str(k): _int(v) for k, v in traffic["replicas"].items()})
    else:
        key = str(at(view, "status", "templateHash") or "")
        number = numbers.get(key) or (str(current.get("number")) if current else "")
        model = str(at(view, "status", "model", "pinned") or "")
        label = f"rev {number}" if number else "current"
        return (TrafficRow(key, label, number or "current", "current", model, 100),)
    stable_model = str(at(view, "status", "model", "pinned") or "")
    name = str(at(view, "metadata", "name"))
    rows = []
    for key, weight in shares.items():
        role = ("stable" if rollout is not None and key == rollout.stable
                else "canary" if rollout is not None and key == rollout.canary else "")  # fmt: skip
        if key in numbers:  # a revision (the local engine)
            rows.append(TrafficRow(key, f"rev {numbers[key]}", numbers[key], role,
                                   models.get(key, ""), weight))  # fmt: skip
            continue
        # A Kubernetes track: the stable one runs the current revision of its Deployment.
        if role == "stable" and current is not None and key == f"{name}-stable":
            number = str(current.get("number"))
            rows.append(TrafficRow(key, f"rev {number}", number, role, stable_model, weight))
        elif role == "canary" and key == f"{name}-canary":
            canary_model = rollout.canary_model if rollout is not None else None
            rows.append(TrafficRow(key, key, "canary", role, canary_model or "", weight))
        else:
            rows.append(TrafficRow(key, key, key, role, "", weight))
    return tuple(sorted(rows, key=lambda r: (-r.weight, r.label)))


def autoscaler_of(view: Mapping[str, Any]) -> Autoscaler | None:
    """The autoscaler of a deployment's API view (None: it has no autoscaling)."""
    a = at(view, "status", "autoscaler")
    if not isinstance(a, Mapping):
        return None
    if a.get("decidedBy") == "HorizontalPodAutoscaler":
        return Autoscaler("HorizontalPodAutoscaler", _opt(a.get("desiredReplicas")),
                          _opt(a.get("currentReplicas")), _opt(a.get("minReplicas")),
                          _opt(a.get("maxReplicas")), None, ())  # fmt: skip
    block = at(view, "spec", "autoscaling") or {}
    events = a.get("events")
    return Autoscaler(
        "loopline", _opt(a.get("desiredReplicas")), _opt(at(view, "status", "readyReplicas")),
        _opt(block.get("minReplicas")), _opt(block.get("maxReplicas")), a.get("observedAt"),
        tuple(e for e in events if isinstance(e, Mapping)) if isinstance(events, list) else (),
    )  # fmt: skip


def describe(step: Mapping[str, Any]) -> str:
    """A canary step as Argo's CLI lists it (``setWeight: 20``, ``pause: 30s``)."""
    (kind, value), *_ = step.items() or [("step", "")]
    if isinstance(value, dict):
        if not value:
            return f"{kind}: until promoted" if kind == "pause" else kind
        inner = ", ".join(f"{k}={v}" for k, v in value.items())
        return f"{kind}: {inner}"
    return f"{kind}: {value}"


def _percentages(replicas: Mapping[str, int]) -> dict[str, int]:
    """Replica counts as whole percentages that add up to 100 (largest remainder)."""
    total = sum(replicas.values())
    if total <= 0:
        return {k: 0 for k in replicas}
    exact = {k: 100 * v / total for k, v in replicas.items()}
    shares = {k: int(x) for k, x in exact.items()}
    left = 100 - sum(shares.values())
    for k in sorted(exact, key=lambda k: shares[k] - exact[k])[:left]:
        shares[k] += 1
    return shares


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _opt(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
