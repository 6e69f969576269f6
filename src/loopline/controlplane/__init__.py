"""The control plane: one daemon with the deployment REST API and the controllers.

Key contracts:

- **One process, state in the database.** ``loopline controlplane`` (alias ``up``) serves the
  REST API (Starlette; OpenAPI at ``/openapi.json``) and runs the
  :class:`~loopline.deploy.manager.DeploymentManager` loop. Every spec, revision, replica and
  router record lives in the metadata database, so a restart, even after ``kill -9``, loses
  nothing: on start it re-adopts live replicas and routers and finishes rollouts in progress.
- **Replicas outlive it.** Replicas and routers run in their own sessions; SIGTERM stops the
  API and the loop and leaves them serving.
- **Auth.** A token is created on first start in ``$LOOPLINE_HOME/controlplane/token``
  (mode 0600). The ``Host`` must be loopback or listed in ``LOOPLINE_CONTROLPLANE_HOSTS``
  (421 otherwise: DNS rebinding). Every POST/PUT/PATCH/DELETE needs ``Authorization: Bearer
  <token>`` (401 otherwise); reads go without it only when client and ``Host`` are both
  loopback. The API binds 127.0.0.1 by default.
- **One controller per database.** The controllers run only in the holder of the
  database's ``controllers`` lease; another control plane on the same database serves the
  API as a standby and takes over when the lease expires.
- **Errors.** ``{"error": <sentence>, "reason": <kind>}`` with 400 (invalid spec; ``field``
  names it), 401, 404, 409 (exists, paused, being deleted), 504; never a traceback.
- **Discovery.** ``$LOOPLINE_HOME/controlplane/endpoint.json`` records URL, pid and process
  start time; ``LOOPLINE_CONTROLPLANE_URL`` overrides it. The CLI starts a control plane
  (detached, logging to ``controlplane.log``) when none is alive, and says so on stderr.
- **Pinned models.** Storing a spec resolves ``name@alias`` through the registry and pins
  the template to ``name/version`` (recorded with its digest as a ``DeploymentModelPin``
  execution), so a revision serves exactly one model; an alias move reaches a deployment
  only through ``apply`` / ``set model`` (a new revision), never behind its back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.controlplane.client import ControlPlaneClient
    from loopline.controlplane.events import DeploymentEvent, EventLog
    from loopline.controlplane.files import ControlPlaneFiles, Endpoint
    from loopline.controlplane.pinning import ModelPin, ModelPinner, PinnedSpec
    from loopline.controlplane.rollout import RolloutStatus, rollout_status
    from loopline.controlplane.service import ControlPlane

# Imported on first use, so importing one module of the package does not pay for the
# registry, SQLAlchemy and httpx.
_EXPORTS = {
    "ControlPlane": "loopline.controlplane.service",
    "ControlPlaneClient": "loopline.controlplane.client",
    "ControlPlaneFiles": "loopline.controlplane.files",
    "DeploymentEvent": "loopline.controlplane.events",
    "Endpoint": "loopline.controlplane.files",
    "EventLog": "loopline.controlplane.events",
    "ModelPin": "loopline.controlplane.pinning",
    "ModelPinner": "loopline.controlplane.pinning",
    "PinnedSpec": "loopline.controlplane.pinning",
    "RolloutStatus": "loopline.controlplane.rollout",
    "rollout_status": "loopline.controlplane.rollout",
}

__all__ = [
    "ControlPlane",
    "ControlPlaneClient",
    "ControlPlaneFiles",
    "DeploymentEvent",
    "Endpoint",
    "EventLog",
    "ModelPin",
    "ModelPinner",
    "PinnedSpec",
    "RolloutStatus",
    "rollout_status",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopline.controlplane' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
