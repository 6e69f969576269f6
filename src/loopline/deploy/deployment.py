"""Deployment: a stored spec with its generation and last observed status."""

from __future__ import annotations

from dataclasses import dataclass, field

from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.status import DeploymentStatus


@dataclass(frozen=True, slots=True)
class RouterProcess:
    """The deployment's router process: its stable port, its admin port (loopback) and
    the port that serves only the preview revision (0: none)."""

    pid: int
    process_start: int
    port: int
    admin_port: int
    preview_port: int = 0


@dataclass(frozen=True, slots=True)
class Deployment:
    """The desired state (``spec``, bumped ``generation`` on every change) and ``status``."""

    spec: DeploymentSpec
    generation: int
    created_at: float
    status: DeploymentStatus = field(default_factory=DeploymentStatus)
    router: RouterProcess | None = None

    @property
    def name(self) -> str:
        return self.spec.name
