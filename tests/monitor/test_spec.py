"""kind: Monitor parses into frozen values, round-trips, and names the field it rejects."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.errors import InvalidDefinitionError
from loopline.monitor import AlertRule, MonitorSpec, Task, WindowSpec


def doc(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"deployment": "taxi", "window": {"rows": 500}}
    body.update(spec)
    return {"apiVersion": "loopline/v1", "kind": "Monitor", "metadata": {"name": "m"}, "spec": body}


def test_a_full_monitor_parses_and_round_trips_through_its_document() -> None:
    text = """
apiVersion: loopline/v1
kind: Monitor
metadata: {name: taxi-watch}
spec:
  deployment: taxi
  model: taxi
  window: {duration: 10m}
  reference: {falseAlarmRate: 0.05, chunks: 20}
  features: [distance, company]
  label: {task: classification, positiveClass: "yes"}
  rules:
    - {name: drift, metric: driftShare, op: ">=", threshold: 0.3, forWindows: 2, clearAfter: 3,
       severity: critical}
    - {name: distance, metric: "feature:distance"}
    - {name: decay, metric: "estimated:accuracy", op: "<", threshold: 0.8}
"""
    spec = MonitorSpec.from_yaml(text)
    assert spec.window == WindowSpec(duration=600.0)
    assert spec.reference.false_alarm_rate == 0.05 and spec.reference.chunks == 20
    assert spec.features == ("distance", "company")
    assert spec.label.task is Task.CLASSIFICATION and spec.label.positive_class == "yes"
    assert spec.rules[0] == AlertRule("drift", "driftShare", ">=", 0.3, 2, 3, "critical")
    assert spec.rules[1].feature == "distance" and spec.rules[1].op is None
    assert spec.rules[2].estimated == "accuracy"
    assert MonitorSpec.from_dict(spec.to_doc()) == spec
    assert spec.to_doc()["spec"]["window"] == {"duration": "10m"}  # type: ignore[index]


def test_defaults_fill_what_a_minimal_monitor_leaves_out() -> None:
    spec = MonitorSpec.from_dict(doc(rules=[{"name": "d", "metric": "driftShare"}]))
    assert spec.model is None and spec.features is None
    assert spec.reference.false_alarm_rate == 0.01 and spec.reference.chunks == 30
    assert spec.rules[0].op == ">=" and spec.rules[0].threshold == 0.5
    assert (spec.rules[0].for_windows, spec.rules[0].clear_after) == (3, 2)
    assert MonitorSpec.from_dict(spec.to_doc()) == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"window": {"rows": 0}},
            r"spec\.window\.rows = 0 is invalid: it must be a positive "
            "integer",
        ),
        ({"window": {"rows": 5, "duration": "1m"}}, "must set exactly one of rows or duration"),
        ({"window": {"duration": "soon"}}, r"spec\.window\.duration = 'soon' is invalid"),
        ({"deployment": ""}, r"spec\.deployment = '' is invalid"),
        ({"reference": {"falseAlarmRate": 0.9}}, r"spec\.reference\.falseAlarmRate = 0\.9"),
        ({"label": {"task": "ranking"}}, "must be classification or regression"),
        ({"rules": [{"name": "x", "metric": "vibes"}]}, r"spec\.rules\[0\]\.metric = 'vibes'"),
        (
            {"rules": [{"name": "x", "metric": "accuracy"}]},
            r"spec\.rules\[0\]\.threshold = None is invalid: it is required",
        ),
        (
            {"rules": [{"name": "x", "metric": "driftShare", "op": "=="}]},
            "must set op and threshold together",
        ),
        (
            {"rules": [{"name": "x", "metric": "driftShare", "op": "==", "threshold": 1}]},
            r"spec\.rules\[0\]\.op = '=='",
        ),
        (
            {"rules": [{"name": "x", "metric": "prediction"}] * 2},
            r"spec\.rules\[1\]\.name = 'x' is invalid: it must be unique",
        ),
        ({"colour": "red"}, r"spec has unknown key\(s\) \['colour'\]"),
    ],
)
def test_a_bad_field_is_named_in_the_error(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDefinitionError, match=message):
        MonitorSpec.from_dict(doc(**spec))


def test_the_kind_and_api_version_are_checked() -> None:
    with pytest.raises(InvalidDefinitionError, match="kind = 'Deployment' is invalid"):
        MonitorSpec.from_dict({**doc(), "kind": "Deployment"})
    with pytest.raises(InvalidDefinitionError, match="Monitor YAML does not parse"):
        MonitorSpec.from_yaml("spec: [")
