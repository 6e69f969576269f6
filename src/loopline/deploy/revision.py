"""Revision: one immutable template of a deployment (the Kubernetes ReplicaSet equivalent)."""

from __future__ import annotations

from dataclasses import dataclass

from loopline.deploy.spec import Template


@dataclass(frozen=True, slots=True)
class Revision:
    """A template version of a deployment and how many replicas it should run.

    ``hash`` is :func:`~loopline.deploy.spec.template_hash` of ``template`` (the
    pod-template-hash); ``number`` is the Kubernetes ``deployment.kubernetes.io/revision``
    annotation, bumped to max+1 when an old revision is re-activated (undo), the old number
    then being appended to ``history``. ``desired_replicas``/``max_replicas`` are the
    annotations proportional scaling reads (the deployment's replicas and replicas+maxSurge
    when this revision was last sized).
    """

    deployment: str
    hash: str
    number: int
    template: Template
    created_at: float
    replicas: int = 0
    desired_replicas: int | None = None
    max_replicas: int | None = None
    history: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        """``<deployment>-<hash>``, like a ReplicaSet name."""
        return f"{self.deployment}-{self.hash}"
