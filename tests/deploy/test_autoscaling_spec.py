"""``spec.autoscaling``: HPA v2 field names, defaults filled field by field, validation when
built, ``to_dict`` the exact inverse."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.deploy.autoscaling import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Autoscaling,
    Behavior,
    MetricSourceType,
    MetricSpec,
    MetricTargetType,
    ScaleToZero,
    ScalingPolicy,
    ScalingPolicyType,
    SelectPolicy,
    format_quantity,
    parse_quantity,
)
from loopline.deploy.spec import DeploymentSpec, template_hash
from loopline.errors import InvalidDefinitionError

YAML = """
apiVersion: loopline/v1
kind: Deployment
metadata: {name: taxi}
spec:
  model: taxi@champion
  autoscaling:
    minReplicas: 0
    maxReplicas: 5
    metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
    - type: Pods
      pods: {metric: {name: in_flight_requests}, target: {type: AverageValue, averageValue: "8"}}
    - type: Pods
      pods: {metric: {name: queue_delay_seconds}, target: {type: AverageValue, averageValue: 50m}}
    behavior:
      scaleUp:
        stabilizationWindowSeconds: 0
        selectPolicy: Max
        policies:
        - {type: Pods, value: 4, periodSeconds: 15}
        - {type: Percent, value: 100, periodSeconds: 15}
      scaleDown:
        stabilizationWindowSeconds: 300
        selectPolicy: Min
        policies: [{type: Percent, value: 50, periodSeconds: 60}]
        tolerance: 50m
    scaleToZero: {idleSeconds: 120, graceSeconds: 10}
"""


def _doc(autoscaling: Any) -> dict[str, Any]:
    return {"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"model": "iris/1", "autoscaling": autoscaling}}  # fmt: skip


def _parse(autoscaling: Any) -> Autoscaling:
    a = DeploymentSpec.from_dict(_doc(autoscaling)).autoscaling
    assert a is not None
    return a


def test_parses_every_field_of_the_block_from_yaml() -> None:
    a = DeploymentSpec.from_yaml(YAML).autoscaling
    assert a is not None
    assert (a.min_replicas, a.max_replicas) == (0, 5)
    assert a.metrics[0] == MetricSpec.cpu_utilization(70)
    assert a.metrics[1].type is MetricSourceType.PODS and a.metrics[1].name == "in_flight_requests"
    assert a.metrics[1].target.type is MetricTargetType.AVERAGE_VALUE
    assert a.metrics[1].target.average_value == 8.0
    assert a.metrics[2].target.average_value == 0.05
    assert a.behavior is not None
    assert a.behavior.scale_up == DEFAULT_SCALE_UP
    assert a.behavior.scale_down.select_policy is SelectPolicy.MIN
    assert a.behavior.scale_down.policies == (ScalingPolicy(ScalingPolicyType.PERCENT, 50, 60),)
    assert a.behavior.scale_down.tolerance == 0.05
    assert a.scale_to_zero == ScaleToZero(idle_seconds=120, grace_seconds=10)


def test_defaults_are_the_hpa_defaults_cpu_80_percent_and_the_legacy_path() -> None:
    a = _parse({"maxReplicas": 3})
    assert a.min_replicas == 1
    assert a.metrics == (MetricSpec.cpu_utilization(80),)
    assert a.behavior is None  # no behavior: the legacy normalization, as in Kubernetes
    assert a.scale_to_zero is None
    assert _parse({"maxReplicas": 3, "metrics": []}).metrics == a.metrics


def test_behavior_defaults_are_filled_field_by_field() -> None:
    given = {"scaleUp": {"selectPolicy": "Min"}, "scaleDown": {"stabilizationWindowSeconds": 60}}
    a = _parse({"maxReplicas": 3, "behavior": given})
    assert a.behavior is not None
    up, down = a.behavior.scale_up, a.behavior.scale_down
    assert up.select_policy is SelectPolicy.MIN
    assert (up.stabilization_window_seconds, up.policies) == (0, DEFAULT_SCALE_UP.policies)
    assert down.stabilization_window_seconds == 60
    assert (down.select_policy, down.policies) == (SelectPolicy.MAX, DEFAULT_SCALE_DOWN.policies)
    assert _parse({"maxReplicas": 3, "behavior": {}}).behavior == Behavior()
    assert DEFAULT_SCALE_DOWN.stabilization_window_seconds == 300


def test_min_replicas_zero_gets_the_knative_scale_to_zero_defaults() -> None:
    a = _parse({"minReplicas": 0, "maxReplicas": 2})
    assert a.scale_to_zero == ScaleToZero(idle_seconds=60, grace_seconds=30)
    assert Autoscaling(max_replicas=2, min_replicas=0).scale_to_zero == ScaleToZero()


@pytest.mark.parametrize(
    "block",
    [
        {"maxReplicas": 3},
        {"minReplicas": 0, "maxReplicas": 1},
        {"minReplicas": 2, "maxReplicas": 9, "behavior": {"scaleDown": {"tolerance": 0}}},
        {"maxReplicas": 4, "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "AverageValue", "averageValue": "1500m"}}}]},
        {"maxReplicas": 4, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": 40}}}]},
    ],
)  # fmt: skip
def test_to_dict_is_the_exact_inverse(block: dict[str, Any]) -> None:
    a = _parse(block)
    assert Autoscaling.from_dict(a.to_dict()) == a
    spec = DeploymentSpec.from_dict(_doc(block))
    assert DeploymentSpec.from_dict(spec.to_dict()) == spec
    full = DeploymentSpec.from_yaml(YAML)
    assert DeploymentSpec.from_dict(full.to_dict()) == full


def test_to_dict_writes_quantities_in_canonical_form() -> None:
    a = _parse({"maxReplicas": 4, "metrics": [{"type": "Pods", "pods": {
        "metric": {"name": "in_flight_requests"},
        "target": {"type": "AverageValue", "averageValue": 0.5}}}]})  # fmt: skip
    assert a.to_dict()["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "in_flight_requests"},
        "target": {"type": "AverageValue", "averageValue": "500m"}}}]  # fmt: skip


def test_a_spec_without_autoscaling_has_none_and_omits_the_key() -> None:
    spec = DeploymentSpec.from_dict(_doc(None))
    assert spec.autoscaling is None
    assert "autoscaling" not in spec.to_dict()["spec"]


def test_autoscaling_is_not_part_of_the_template() -> None:
    a = DeploymentSpec.from_dict(_doc({"maxReplicas": 3}))
    b = DeploymentSpec.from_dict(_doc({"maxReplicas": 7, "minReplicas": 2}))
    assert template_hash(a.template) == template_hash(b.template)


@pytest.mark.parametrize(
    ("text", "value"),
    [("8", 8.0), (8, 8.0), ("500m", 0.5), ("1.5", 1.5), ("2k", 2000.0), ("1e3", 1000.0),
     ("1Ki", 1024.0), (0.25, 0.25)],
)  # fmt: skip
def test_quantities_read_like_kubernetes(text: object, value: float) -> None:
    assert parse_quantity(text, "x") == value
    assert parse_quantity(format_quantity(value), "x") == value


PREFIX = r"Deployment field spec\.autoscaling\."


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({}, PREFIX + r"maxReplicas = None is invalid: it must be set"),
        ({"maxReplicas": 0},
         PREFIX + r"maxReplicas = 0 is invalid: it must be at least 1 and at most 1000\."),
        ({"minReplicas": 4, "maxReplicas": 3},
         PREFIX + r"maxReplicas = 3 is invalid: it must be at least 4 and at most 1000\."),
        ({"minReplicas": -1, "maxReplicas": 3}, PREFIX + r"minReplicas = -1 is invalid"),
        ({"maxReplicas": 3, "targetCPUUtilizationPercentage": 50},
         r"spec\.autoscaling has unknown key\(s\) \['targetCPUUtilizationPercentage'\]"),
        ({"maxReplicas": 3, "metrics": [{"type": "External"}]},
         PREFIX + r"metrics\[0\]\.type = 'External' is invalid: it must be 'Resource' or 'Pods'"),
        ({"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
            "name": "memory", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
         PREFIX + r"metrics\[0\]\.resource\.name = 'memory' is invalid: it must be 'cpu'"),
        ({"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]},
         PREFIX + r"metrics\[0\]\.resource\.target\.averageUtilization = 0 is invalid"),
        ({"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization"}}}]},
         PREFIX + r"metrics\[0\]\.resource\.target\.averageUtilization = None is invalid: it "
                  r"must be set"),
        ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "gpu_seconds"}, "target": {"type": "AverageValue",
                                                          "averageValue": 1}}}]},
         PREFIX + r"metrics\[0\]\.pods\.metric\.name = 'gpu_seconds' is invalid: it must be one "
                  r"of 'in_flight_requests'"),
        ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "in_flight_requests"},
            "target": {"type": "Utilization", "averageUtilization": 50}}}]},
         PREFIX + r"metrics\[0\]\.pods\.target\.type = 'Utilization' is invalid: it must be "
                  r"'AverageValue' for a Pods metric"),
        ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "in_flight_requests"},
            "target": {"type": "AverageValue", "averageValue": "lots"}}}]},
         PREFIX + r"metrics\[0\]\.pods\.target\.averageValue = 'lots' is invalid: it must be a "
                  r"positive number or a quantity"),
        ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "in_flight_requests"},
            "target": {"type": "AverageValue", "averageValue": "100u"}}}]},
         PREFIX + r"metrics\[0\]\.pods\.target\.averageValue = '100u' is invalid"),
        ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "in_flight_requests"},
            "target": {"type": "AverageValue", "averageValue": 0.0005}}}]},
         PREFIX + r"metrics\[0\]\.pods\.target\.averageValue = 0\.0005 is invalid: it must be a "
                  r"whole number of milli-units"),
        ({"maxReplicas": 3, "behavior": {"scaleUp": {"selectPolicy": "Sometimes"}}},
         PREFIX + r"behavior\.scaleUp\.selectPolicy = 'Sometimes' is invalid: it must be 'Max' "
                  r"or 'Min' or 'Disabled'"),
        ({"maxReplicas": 3, "behavior": {"scaleDown": {"policies": []}}},
         PREFIX + r"behavior\.scaleDown\.policies = \[\] is invalid: it must be a list of at "
                  r"least one policy"),
        ({"maxReplicas": 3, "behavior": {"scaleDown": {"policies": [
            {"type": "Pods", "value": 1, "periodSeconds": 1801}]}}},
         PREFIX + r"behavior\.scaleDown\.policies\[0\]\.periodSeconds = 1801 is invalid: it must "
                  r"be at least 1 and at most 1800"),
        ({"maxReplicas": 3, "behavior": {"scaleDown": {"policies": [
            {"type": "Pods", "value": 0, "periodSeconds": 15}]}}},
         PREFIX + r"behavior\.scaleDown\.policies\[0\]\.value = 0 is invalid"),
        ({"maxReplicas": 3, "behavior": {"scaleUp": {"policies": [
            {"type": "Replicas", "value": 1, "periodSeconds": 15}]}}},
         PREFIX + r"behavior\.scaleUp\.policies\[0\]\.type = 'Replicas' is invalid"),
        ({"maxReplicas": 3, "behavior": {"scaleUp": {"stabilizationWindowSeconds": 3601}}},
         PREFIX + r"behavior\.scaleUp\.stabilizationWindowSeconds = 3601 is invalid: it must be "
                  r"at least 0 and at most 3600"),
        ({"maxReplicas": 3, "scaleToZero": {"idleSeconds": 30}},
         PREFIX + r"scaleToZero = \{'idleSeconds': 30, 'graceSeconds': 30\} is invalid: it may "
                  r"only be set when minReplicas is 0"),
        ({"minReplicas": 0, "maxReplicas": 3, "scaleToZero": {"idleSeconds": 0}},
         PREFIX + r"scaleToZero\.idleSeconds = 0 is invalid: it must be at least 1"),
    ],
)  # fmt: skip
def test_bad_blocks_are_rejected_naming_the_field(block: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidDefinitionError, match=match):
        DeploymentSpec.from_dict(_doc(block))


def test_building_the_block_directly_checks_the_bounds() -> None:
    with pytest.raises(InvalidDefinitionError, match=PREFIX + r"maxReplicas = 2 is invalid: it "
                       r"must be at least 1 and at least minReplicas \(3\)"):  # fmt: skip
        Autoscaling(max_replicas=2, min_replicas=3)
    with pytest.raises(InvalidDefinitionError, match=PREFIX + r"metrics = \[\] is invalid"):
        Autoscaling(max_replicas=2, metrics=())
