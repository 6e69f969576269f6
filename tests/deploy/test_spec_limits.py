"""Every spec kind refuses NaN and Infinity wherever they appear, replica counts are bounded,
and names and numbers in text are ASCII, matched in full (issue #11)."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from loopline.deploy.analysis import AnalysisTemplate
from loopline.deploy.autoscaling import Autoscaling
from loopline.deploy.fields import MAX_REPLICAS
from loopline.deploy.spec import DeploymentSpec
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.monitor import MonitorSpec
from loopline.triggers import TriggerSpec
from loopline.types import ModelRef, check_name, non_finite


def deployment(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"model": "iris/1", **spec}}  # fmt: skip


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"template": {"logging": {"sampleRate": "BAD"}}}, "spec.template.logging.sampleRate"),
        ({"template": {"batching": {"maxLatencyMs": "BAD"}}},
         "spec.template.batching.maxLatencyMs"),
        ({"template": {"logging": {"maxAge": "BAD"}}}, "spec.template.logging.maxAge"),
        ({"autoscaling": {"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "rps"}, "target": {"type": "AverageValue",
                                                  "averageValue": "BAD"}}}]}},
         "spec.autoscaling.metrics[0].pods.target.averageValue"),
    ],
)
def test_a_deployment_with_nan_or_infinity_anywhere_is_refused_naming_the_field(
    spec: dict[str, Any], path: str, bad: float
) -> None:
    doc = deployment(**_replace(spec, bad))
    pattern = rf"Deployment field {re.escape(path)} = .* finite"
    with pytest.raises(InvalidDefinitionError, match=pattern):
        DeploymentSpec.from_dict(doc)


def test_a_nan_written_in_yaml_is_refused_too() -> None:
    text = """
apiVersion: loopline/v1
kind: Deployment
metadata: {name: web}
spec:
  model: iris/1
  template: {logging: {enabled: true, sampleRate: .nan}}
"""
    with pytest.raises(InvalidDefinitionError, match=r"spec\.template\.logging\.sampleRate = nan"):
        DeploymentSpec.from_yaml(text)


def test_the_autoscaling_block_alone_refuses_infinity() -> None:
    block = {"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": math.inf}}}]}
    with pytest.raises(InvalidDefinitionError, match=r"averageUtilization = inf .* finite"):
        Autoscaling.from_dict(block)


def test_an_analysis_template_with_nan_is_refused_naming_the_field() -> None:
    doc = {"apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": "q"},
           "spec": {"metrics": [{"name": "agreement", "successCondition": "result >= 0.95",
                                 "provider": {"agreement": {}}, "failureLimit": math.nan}]}}
    with pytest.raises(
        InvalidDefinitionError, match=r"AnalysisTemplate field spec\.metrics\[0\]\.failureLimit"
    ):
        AnalysisTemplate.from_dict(doc)


def test_a_monitor_with_infinity_is_refused_naming_the_field() -> None:
    doc = {"apiVersion": "loopline/v1", "kind": "Monitor", "metadata": {"name": "m"},
           "spec": {"deployment": "taxi", "window": {"rows": 500},
                    "rules": [{"name": "d", "metric": "driftShare", "op": ">=",
                              "threshold": math.inf}]}}
    with pytest.raises(InvalidDefinitionError, match=r"Monitor field spec\.rules\[0\]\.threshold"):
        MonitorSpec.from_dict(doc)


def test_a_trigger_with_nan_in_its_parameters_is_refused_naming_the_field() -> None:
    doc = {"apiVersion": "loopline/v1", "kind": "Trigger", "metadata": {"name": "t"},
           "spec": {"model": "taxi", "on": {"schedule": {"cron": "0 * * * *"}},
                    "run": {"pipeline": "p.py", "params": {"lr": math.nan}}}}
    with pytest.raises(InvalidDefinitionError, match=r"Trigger field spec\.run\.params\.lr = nan"):
        TriggerSpec.from_dict(doc)


def test_non_finite_finds_the_path_of_the_first_bad_number() -> None:
    found = non_finite({"a": [1, 2.5, {"b": math.nan}]})
    assert found is not None and found[0] == "a[2].b" and math.isnan(found[1])
    assert non_finite({"a": [1, 2.5, {"b": -math.inf}]}) == ("a[2].b", -math.inf)
    assert non_finite({"a": [1, 2.5, "inf"], "b": 10**400}) is None


@pytest.mark.parametrize("replicas", [MAX_REPLICAS + 1, 10**30])
def test_replicas_are_bounded(replicas: int) -> None:
    with pytest.raises(InvalidDefinitionError, match=rf"spec\.replicas = {replicas} .* at most "
                                                     rf"{MAX_REPLICAS}"):  # fmt: skip
        DeploymentSpec.from_dict(deployment(replicas=replicas))
    assert DeploymentSpec.from_dict(deployment(replicas=MAX_REPLICAS)).replicas == MAX_REPLICAS


def test_autoscaling_max_replicas_is_bounded() -> None:
    with pytest.raises(InvalidDefinitionError, match=r"maxReplicas = 1001 .* at most 1000"):
        Autoscaling.from_dict({"maxReplicas": MAX_REPLICAS + 1})


def test_any_integer_field_is_bounded_so_arithmetic_on_it_cannot_overflow() -> None:
    with pytest.raises(InvalidDefinitionError, match=r"progressDeadlineSeconds = 1000000000000"):
        DeploymentSpec.from_dict(deployment(progressDeadlineSeconds=10**12))


@pytest.mark.parametrize("surge", ["²%", "1\n%", "٣%"])
def test_a_percent_with_non_ascii_digits_is_a_field_error_not_a_crash(surge: str) -> None:
    doc = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge}})
    with pytest.raises(InvalidDefinitionError, match=r"rollingUpdate\.maxSurge"):
        DeploymentSpec.from_dict(doc)


@pytest.mark.parametrize("name", ["nl\n", "taxi\n", "ｔａｘｉ", "", "a b", "-a"])
def test_names_match_in_full_and_in_ascii(name: str) -> None:
    with pytest.raises(InvalidInputError, match="is not valid"):
        check_name("Deployment", name)


def test_a_deployment_named_with_a_trailing_newline_is_refused() -> None:
    doc = deployment()
    doc["metadata"]["name"] = "nl\n"
    with pytest.raises(InvalidDefinitionError, match=r"metadata\.name"):
        DeploymentSpec.from_dict(doc)


@pytest.mark.parametrize("text", ["taxi/²", "taxi/٣", "taxi/3\n"])
def test_a_model_version_in_other_digits_is_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidInputError, match="versions are integers"):
        ModelRef.parse(text)


def _replace(value: Any, bad: float) -> Any:
    if value == "BAD":
        return bad
    if isinstance(value, dict):
        return {k: _replace(v, bad) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, bad) for v in value]
    return value
