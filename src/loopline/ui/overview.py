"""The overview's rows: one per deployment, built from the API's own views.

A row joins what the API serves separately: the deployment (model version, phase, replicas,
traffic split by revision number), the monitors that watch it (drift: how many features of
the newest version drifted in its last window, firing alerts) and the triggers that roll out
to it (the last retrain run). Pure: the inputs are the API's JSON views, of either engine (the
rollout step and the split are read by :mod:`loopline.ui.rollout`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopline.ui.rollout import at, rollout_of, step_of, traffic_of

__all__ = ["OverviewRow", "Split", "at", "drift_summary", "last_retrain", "overview_row",
           "traffic_split"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Split:
    """One revision's share of the traffic."""

    revision: str  # "rev 3" or the hash when the revision is unknown
    weight: int


@dataclass(frozen=True, slots=True)
class OverviewRow:
    name: str
    model: str  # the pinned reference, name/version
    ref: str  # the reference as written (name@alias)
    phase: str  # Healthy, Progressing, Paused, Degraded
    ready: int
    desired: int
    step: str  # the rollout's step ("step 2/4") or ""
    split: tuple[Split, ...]
    drift: str  # "2 of 9 features drifted", "no drift", "alert: …" or "—" (no monitor)
    drifted: bool
    retrain: str  # "run 12 succeeded" or "—"
    retrain_at: object  # the run's time (epoch seconds or RFC 3339), or None


def traffic_split(
    view: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]]
) -> tuple[Split, ...]:
    """The traffic by revision number, highest weight first, on either engine
    (:func:`loopline.ui.rollout.traffic_of`): a Kubernetes canary's track is named by its
    Service; a rolling-update deployment sends everything to its current revision."""
    rows = traffic_of(view, revisions, rollout_of(view))
    return tuple(Split(r.label, r.weight) for r in rows)


def drift_summary(name: str, monitors: Sequence[Mapping[str, Any]]) -> tuple[str, bool]:
    """The drift column for deployment ``name``: firing alerts first, then the newest
    version's last window; ``—`` when no monitor watches it."""
    mine = [m for m in monitors if (m.get("spec") or {}).get("deployment") == name]
    if not mine:
        return "—", False
    firing = [a for m in mine for a in (m.get("status") or {}).get("firing") or ()]
    if firing:
        first = firing[0]
        return f"alert: {first.get('rule')} ({first.get('reason')})", True
    drifted, total, measured = 0, 0, False
    for m in mine:
        versions = (m.get("status") or {}).get("versions") or []
        if versions:
            last = versions[-1]
            features = last.get("features") or []
            total += len(features)
            drifted += sum(1 for f in features if f.get("drifted"))
            measured = measured or last.get("windows", 0) > 0
    if not measured:
        return "no window yet", False
    return (f"{drifted} of {total} features drifted" if drifted else "no drift"), drifted > 0


def last_retrain(name: str, triggers: Sequence[Mapping[str, Any]]) -> tuple[str, object]:
    """The newest run of the triggers that roll out to deployment ``name``."""
    runs = [
        (t.get("status") or {}).get("lastRun")
        for t in triggers
        if ((t.get("spec") or {}).get("rollout") or {}).get("deployment") == name
    ]
    found = [r for r in runs if r]
    if not found:
        return "—", None
    run = max(found, key=lambda r: str(r.get("createdAt")))
    return f"run {run.get('id')} of {run.get('trigger')}: {run.get('state')}", run.get("createdAt")


def overview_row(
    view: Mapping[str, Any],
    revisions: Sequence[Mapping[str, Any]],
    monitors: Sequence[Mapping[str, Any]],
    triggers: Sequence[Mapping[str, Any]],
) -> OverviewRow:
    """One deployment's row from its API view, its revisions, every monitor and trigger, on
    either engine (the step and split read by :mod:`loopline.ui.rollout`)."""
    spec = at(view, "spec") or {}
    status = at(view, "status") or {}
    model = at(status, "model") or {}
    name = str(at(view, "metadata", "name"))
    drift, drifted = drift_summary(name, monitors)
    retrain, when = last_retrain(name, triggers)
    return OverviewRow(
        name=name,
        model=str(model.get("pinned") or spec.get("model")),
        ref=str(spec.get("model")),
        phase=str(status.get("phase") or "Unknown"),
        ready=int(status.get("readyReplicas") or 0),
        desired=int(spec.get("replicas") or 0),
        step=step_of(view, rollout_of(view)),
        split=traffic_split(view, revisions),
        drift=drift,
        drifted=drifted,
        retrain=retrain,
        retrain_at=when,
    )
