"""The same Deployment spec as Kubernetes objects, validated offline.

- :func:`render` / :func:`render_manifests` (pure, plain dicts, no client import) turn a
  :class:`~loopline.deploy.DeploymentSpec` into Deployment, Service, HorizontalPodAutoscaler
  (``autoscaling/v2`` with ``behavior``), PodDisruptionBudget and, for canaries and
  blue-green with a Gateway, a Gateway API ``HTTPRoute`` with exact weights;
  :class:`Manifests` carries the warnings (what does not map exactly).
- :func:`controlplane_manifests`: the control plane in-cluster (ServiceAccount, least-privilege
  Role and RoleBinding, Deployment, Service), ``loopline render --controller``.
- :func:`validate` / :func:`check` validate them for Kubernetes 1.25 and 1.37 (strict
  schemas), the HTTPRoute CRD (Gateway API v1.6.1, package data) and loopline's own rules;
  they need the ``k8s-validate`` extra.

docs/kubernetes.md says what maps and what does not.
"""

from loopline.deploy.engines.kubernetes.checks import Problem, check_objects
from loopline.deploy.engines.kubernetes.controlplane_manifest import controlplane_manifests
from loopline.deploy.engines.kubernetes.pod import ModelSource, Resources
from loopline.deploy.engines.kubernetes.render import (
    INSTANCE_LABEL,
    NAME_LABEL,
    TRACK_LABEL,
    Manifests,
    render,
    render_manifests,
)
from loopline.deploy.engines.kubernetes.traffic import GatewayRef, RolloutPosition
from loopline.deploy.engines.kubernetes.validate import SUPPORTED_VERSIONS, check, validate

__all__ = [
    "INSTANCE_LABEL",
    "NAME_LABEL",
    "SUPPORTED_VERSIONS",
    "TRACK_LABEL",
    "GatewayRef",
    "Manifests",
    "ModelSource",
    "Problem",
    "Resources",
    "RolloutPosition",
    "check",
    "check_objects",
    "controlplane_manifests",
    "render",
    "render_manifests",
    "validate",
]
