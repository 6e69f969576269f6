"""``spec.autoscaling`` as a ``HorizontalPodAutoscaler`` (``autoscaling/v2``).

The block already uses the HPA's field names (:mod:`loopline.deploy.autoscaling`), so most of
it maps one to one:

- ``minReplicas``, ``maxReplicas``; ``metrics``: ``Resource`` cpu (Utilization of the
  request — one core per worker, as locally — or AverageValue) and ``Pods`` metrics
  (``in_flight_requests``, ``requests_per_second``, ``queue_delay_seconds``; they need a
  custom-metrics adapter such as prometheus-adapter to serve them under these names);
- ``behavior``: each direction's ``stabilizationWindowSeconds``, ``selectPolicy`` and
  ``policies`` exactly as given (the defaults already filled in); no ``behavior`` renders
  none, so the cluster applies its own defaults as the local autoscaler does.

What does not map, returned as warnings:

- ``behavior.scaleUp/scaleDown.tolerance`` is a Kubernetes 1.33 alpha field (feature gate
  ``HPAConfigurableTolerance``) that 1.25–1.32 reject: not rendered; the cluster's 0.1 applies.
- ``minReplicas: 0`` and ``scaleToZero`` need the alpha gate ``HPAScaleToZero``: rendered as
  ``minReplicas: 1`` (use KEDA or Knative to scale to zero).
"""

from __future__ import annotations

from dataclasses import replace

from loopline.deploy.autoscaling import Autoscaling, Behavior, ScalingRules
from loopline.types import JsonDict


def horizontal_pod_autoscaler(
    autoscaling: Autoscaling,
    *,
    name: str,
    namespace: str,
    target: str,
    labels: JsonDict,
) -> tuple[JsonDict, list[str]]:
    """The HPA scaling Deployment ``target``, and what of the block could not be rendered."""
    warnings: list[str] = []
    min_replicas = autoscaling.min_replicas
    if min_replicas == 0:
        warnings.append(
            f"HorizontalPodAutoscaler/{name}: minReplicas 0 (scale to zero) needs the alpha "
            "feature gate HPAScaleToZero; rendered as minReplicas 1. Use KEDA or Knative to "
            "scale to zero on Kubernetes."
        )
        min_replicas = 1
    spec: JsonDict = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metrics": [m.to_dict() for m in autoscaling.metrics],
    }
    if autoscaling.behavior is not None:
        behavior = autoscaling.behavior
        if behavior.scale_up.tolerance is not None or behavior.scale_down.tolerance is not None:
            warnings.append(
                f"HorizontalPodAutoscaler/{name}: behavior tolerance is a Kubernetes 1.33 "
                "alpha field (HPAConfigurableTolerance) that older clusters reject; not "
                "rendered, so the cluster's tolerance (0.1) applies."
            )
            behavior = Behavior(_without_tolerance(behavior.scale_up),
                                _without_tolerance(behavior.scale_down))  # fmt: skip
        spec["behavior"] = behavior.to_dict()
    hpa: JsonDict = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }
    return hpa, warnings


def _without_tolerance(rules: ScalingRules) -> ScalingRules:
    return replace(rules, tolerance=None)
