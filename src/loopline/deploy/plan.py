"""The controller's working copy of one deployment during a single reconcile.

Strategies read observed counts and change desired sizes here; every change is also
recorded as an :mod:`~loopline.deploy.actions` action, in order. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from loopline.deploy.actions import (
    Action,
    CreateRevision,
    RecordRevisionNumber,
    ScaleRevision,
)
from loopline.deploy.deployment import Deployment
from loopline.deploy.fenceposts import max_surge
from loopline.deploy.replica import Replica, ReplicaPhase
from loopline.deploy.revision import Revision
from loopline.deploy.spec import DeploymentSpec, StrategyType, template_hash
from loopline.deploy.status import Condition, ConditionType, DeploymentStatus, Reason


@dataclass(slots=True)
class RevisionState:
    """A revision's desired size (mutable here) and what its replicas look like now."""

    revision: Revision
    replicas: int
    desired_replicas: int | None
    max_replicas: int | None
    number: int
    history: tuple[int, ...]
    observed: int = 0  # live replica slots (not terminating): status.replicas
    ready: int = 0
    available: int = 0
    any_process: bool = False  # a record with a possibly-running process (Recreate waits)

    @property
    def hash(self) -> str:
        return self.revision.hash

    @property
    def created_at(self) -> float:
        return self.revision.created_at

    def current(self) -> Revision:
        return replace(
            self.revision,
            replicas=self.replicas,
            desired_replicas=self.desired_replicas,
            max_replicas=self.max_replicas,
            number=self.number,
            history=self.history,
        )


def creation_key(rs: RevisionState) -> tuple[float, str]:
    """Kubernetes ``ReplicaSetsByCreationTimestamp`` (ties by name)."""
    return (rs.created_at, rs.hash)


@dataclass(slots=True)
class Plan:
    """One deployment, its revisions and replicas, as seen at ``now``."""

    deployment: Deployment
    now: float
    revisions: list[RevisionState]
    replicas: list[Replica]
    conditions: list[Condition]  # d.Status.Conditions as updated in-sync (paused, new RS)
    actions: list[Action] = field(default_factory=list)
    new: RevisionState | None = None

    @classmethod
    def build(
        cls, deployment: Deployment, revisions: list[Revision], replicas: list[Replica], now: float
    ) -> Plan:
        states = [
            RevisionState(
                revision=r,
                replicas=r.replicas,
                desired_replicas=r.desired_replicas,
                max_replicas=r.max_replicas,
                number=r.number,
                history=r.history,
            )
            for r in revisions
        ]
        by_hash = {s.hash: s for s in states}
        min_ready = deployment.spec.min_ready_seconds
        for rep in replicas:
            s = by_hash.get(rep.revision)
            if s is None:
                continue
            if rep.phase is not ReplicaPhase.FAILED:
                s.any_process = True
            if rep.phase is ReplicaPhase.TERMINATING:
                continue
            s.observed += 1
            if rep.phase is ReplicaPhase.RUNNING and rep.ready:
                s.ready += 1
            if rep.is_available(min_ready, now):
                s.available += 1
        plan = cls(
            deployment=deployment,
            now=now,
            revisions=states,
            replicas=list(replicas),
            conditions=list(deployment.status.conditions),
        )
        want = template_hash(deployment.spec.template)
        plan.new = by_hash.get(want)
        return plan

    @property
    def spec(self) -> DeploymentSpec:
        return self.deployment.spec

    @property
    def old(self) -> list[RevisionState]:
        return [s for s in self.revisions if s is not self.new]

    def all(self) -> list[RevisionState]:
        return list(self.revisions)

    # ---- mutations (each records an action) -------------------------------------------------

    def scale(self, rs: RevisionState, size: int) -> bool:
        """``scaleReplicaSet``: update size and/or annotations; True iff the size changed."""
        surge = max_surge(self.spec)
        desired, maximum = self.spec.replicas, self.spec.replicas + surge
        size_changed = rs.replicas != size
        annotations_changed = rs.desired_replicas != desired or rs.max_replicas != maximum
        if not size_changed and not annotations_changed:
            return False
        rs.replicas, rs.desired_replicas, rs.max_replicas = size, desired, maximum
        self.actions.append(ScaleRevision(rs.hash, size, desired, maximum))
        return size_changed

    def scale_and_record(self, rs: RevisionState, size: int) -> bool:
        """``scaleReplicaSetAndRecordEvent``: a no-op when the size is already right."""
        if rs.replicas == size:
            return False
        return self.scale(rs, size)

    def set_condition(self, cond: Condition) -> None:
        self.conditions = set_condition(self.conditions, cond)

    def sync_revision(self, create: bool) -> None:
        """``getAllReplicaSetsAndSyncRevision``: find, re-number or create the new revision."""
        max_old = max((s.number for s in self.old), default=0)
        new_number = max_old + 1
        spec = self.spec
        if self.new is not None:
            rs = self.new
            if rs.number < new_number:
                history = (*rs.history, rs.number) if rs.number else rs.history
                rs.number, rs.history = new_number, history
                self.actions.append(RecordRevisionNumber(rs.hash, new_number, history))
            if _get(self.conditions, ConditionType.PROGRESSING) is None:
                self.set_condition(
                    new_condition(
                        ConditionType.PROGRESSING,
                        "True",
                        Reason.FOUND_NEW_REVISION,
                        f"Found new revision {rs.revision.name!r}.",
                        self.now,
                    )
                )
            return
        if not create:
            return
        template = spec.template
        revision = Revision(
            deployment=spec.name,
            hash=template_hash(template),
            number=new_number,
            template=template,
            created_at=self.now,
        )
        rs = RevisionState(
            revision=revision,
            replicas=0,
            desired_replicas=spec.replicas,
            max_replicas=spec.replicas + max_surge(spec),
            number=new_number,
            history=(),
        )
        rs.replicas = new_revision_replicas(spec, self.revisions, rs)
        self.revisions.append(rs)
        self.new = rs
        self.actions.append(CreateRevision(rs.current()))
        self.set_condition(
            new_condition(
                ConditionType.PROGRESSING,
                "True",
                Reason.NEW_REVISION_CREATED,
                f"Created new revision {revision.name!r}.",
                self.now,
            )
        )


def new_revision_replicas(
    spec: DeploymentSpec, all_rs: list[RevisionState], new: RevisionState
) -> int:
    """``NewRSNewReplicas``: how far the new revision may grow this sync (progressive
    strategies size it themselves, from zero)."""
    if spec.strategy.progressive:
        return 0
    if spec.strategy.type is StrategyType.RECREATE:
        return spec.replicas
    max_total = spec.replicas + max_surge(spec)
    current = sum(s.replicas for s in all_rs)
    if current >= max_total:
        return new.replicas
    return new.replicas + min(max_total - current, spec.replicas - new.replicas)


def new_condition(
    kind: ConditionType, status: str, reason: str, message: str, now: float
) -> Condition:
    """``NewDeploymentCondition``: both times set to ``now``."""
    return Condition(kind, status, reason, message, now, now)


def _get(conditions: list[Condition], kind: ConditionType) -> Condition | None:
    for c in conditions:
        if c.type is kind:
            return c
    return None


def set_condition(conditions: list[Condition], cond: Condition) -> list[Condition]:
    """``SetDeploymentCondition``: same status+reason → unchanged; keep transition time."""
    current = _get(conditions, cond.type)
    if current is not None and current.status == cond.status and current.reason == cond.reason:
        return conditions
    if current is not None and current.status == cond.status:
        cond = replace(cond, last_transition_time=current.last_transition_time)
    return [c for c in conditions if c.type is not cond.type] + [cond]


def remove_condition(conditions: list[Condition], kind: ConditionType) -> list[Condition]:
    return [c for c in conditions if c.type is not kind]


def get_condition(conditions: list[Condition], kind: ConditionType) -> Condition | None:
    return _get(conditions, kind)


def status_with(status: DeploymentStatus, conditions: list[Condition]) -> DeploymentStatus:
    return replace(status, conditions=tuple(conditions))
