from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from loopline.deploy.analysis import (
    AccuracyMetric,
    AccuracyQuery,
    AgreementQuery,
    AnalysisTemplate,
    DriftMeasure,
    DriftQuery,
    PrometheusQuery,
    RouterMetric,
    RouterQuery,
    Side,
    templates_from_yaml,
)
from loopline.errors import InvalidDefinitionError

EXAMPLE = Path(__file__).parents[3] / "examples" / "taxi" / "analysis.yaml"

YAML = """
apiVersion: loopline/v1
kind: AnalysisTemplate
metadata: {name: taxi-quality, labels: {team: taxi}}
spec:
  metrics:
  - name: agreement
    interval: 10s
    count: 5
    initialDelay: 30s
    successCondition: result >= 0.95
    failureCondition: result < 0.9
    failureLimit: 1
    inconclusiveLimit: 2
    consecutiveErrorLimit: 3
    consecutiveSuccessLimit: 2
    dryRun: true
    minSampleSize: 200
    sampleTimeout: 5m
    measurementRetention: 3
    provider:
      agreement: {}
  - name: drift
    provider:
      predictionDrift: {measure: psi, output: fare}
"""


def doc(**metric: Any) -> dict[str, Any]:
    m = {"name": "m", "provider": {"agreement": {}}, **metric}
    return {"apiVersion": "loopline/v1", "kind": "AnalysisTemplate",
            "metadata": {"name": "t"}, "spec": {"metrics": [m]}}  # fmt: skip


def test_parses_every_metric_field_from_yaml() -> None:
    t = AnalysisTemplate.from_yaml(YAML)
    assert t.name == "taxi-quality" and t.labels == (("team", "taxi"),)
    m = t.metric("agreement")
    assert (m.interval, m.count, m.initial_delay) == (10.0, 5, 30.0)
    assert m.success_condition is not None and m.success_condition.text == "result >= 0.95"
    assert m.failure_condition is not None and m.failure_condition.text == "result < 0.9"
    assert (m.failure_limit, m.inconclusive_limit, m.consecutive_error_limit) == (1, 2, 3)
    assert m.consecutive_success_limit == 2 and m.dry_run is True
    assert (m.min_sample_size, m.sample_timeout, m.measurement_retention) == (200, 300.0, 3)
    assert m.provider == AgreementQuery()
    assert t.metric("drift").provider == DriftQuery(DriftMeasure.PSI, "fare")


def test_applies_argo_defaults_and_loopline_sample_defaults() -> None:
    m = AnalysisTemplate.from_dict(doc()).metrics[0]
    assert m.interval is None and m.count == 0 and m.initial_delay == 0.0
    assert m.success_condition is None and m.failure_condition is None
    assert (m.failure_limit, m.inconclusive_limit, m.consecutive_error_limit) == (0, 0, 4)
    assert m.consecutive_success_limit == 0 and m.dry_run is False
    assert (m.min_sample_size, m.sample_timeout, m.measurement_retention) == (1, 300.0, 10)


def test_effective_count_is_argos() -> None:
    one = AnalysisTemplate.from_dict(doc()).metrics[0]
    forever = AnalysisTemplate.from_dict(doc(interval="1m")).metrics[0]
    three = AnalysisTemplate.from_dict(doc(interval="1m", count=3)).metrics[0]
    assert (one.effective_count, forever.effective_count, three.effective_count) == (1, None, 3)


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ({"router": {"metric": "errorRate"}}, RouterQuery(RouterMetric.ERROR_RATE, Side.CANARY)),
        ({"router": {"metric": "latencyP99", "revision": "stable"}},
         RouterQuery(RouterMetric.LATENCY_P99, Side.STABLE)),
        ({"agreement": None}, AgreementQuery()),
        ({"predictionDrift": {}}, DriftQuery(DriftMeasure.JENSEN_SHANNON)),
        ({"predictionDrift": {"measure": "wasserstein"}}, DriftQuery(DriftMeasure.WASSERSTEIN)),
        ({"accuracy": {"metric": "rmse"}}, AccuracyQuery(AccuracyMetric.RMSE)),
        ({"accuracy": {}}, AccuracyQuery(AccuracyMetric.ACCURACY)),
        ({"prometheus": {"address": "http://prom:9090/", "query": "up"}},
         PrometheusQuery("http://prom:9090", "up")),
        ({"prometheus": {"address": "https://p", "query": "up", "samplesQuery": "sum(x)",
                         "timeout": "2s"}},
         PrometheusQuery("https://p", "up", "sum(x)", 2.0)),
    ],
)  # fmt: skip
def test_parses_each_provider_kind(provider: dict[str, Any], expected: object) -> None:
    t = AnalysisTemplate.from_dict(doc(provider=provider))
    assert t.metrics[0].provider == expected
    assert AnalysisTemplate.from_dict(t.to_dict()) == t


def test_to_dict_is_the_exact_inverse_of_from_dict() -> None:
    t = AnalysisTemplate.from_yaml(YAML)
    assert AnalysisTemplate.from_dict(t.to_dict()) == t
    again = AnalysisTemplate.from_dict(t.to_dict())
    assert again.to_dict() == t.to_dict()


def test_odd_durations_round_trip_as_numbers() -> None:
    t = AnalysisTemplate.from_dict(doc(interval=1.5, sampleTimeout="90s"))
    d = t.to_dict()["spec"]["metrics"][0]  # type: ignore[index]
    assert d["interval"] == 1.5 and d["sampleTimeout"] == "1m30s"  # type: ignore[index]
    assert AnalysisTemplate.from_dict(t.to_dict()) == t


def test_reads_several_templates_from_one_yaml_text() -> None:
    two = templates_from_yaml(YAML + "\n---\n" + YAML.replace("taxi-quality", "other"))
    assert [t.name for t in two] == ["taxi-quality", "other"]


def test_the_taxi_example_parses() -> None:
    names = [t.name for t in templates_from_yaml(EXAMPLE.read_text())]
    assert names == ["taxi-quality", "taxi-errors"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"apiVersion": "v1"}, r"field apiVersion = 'v1' is invalid: it must be 'loopline/v1'"),
        ({"kind": "Deployment"}, r"field kind = 'Deployment' is invalid"),
        ({"metadata": {"name": "bad name"}}, r"field metadata.name: AnalysisTemplate name"),
        ({"metadata": {"name": "t", "owner": 1}},
         r"field metadata has unknown key\(s\) \['owner'\]"),
        ({"metadata": {"name": "t", "labels": {"a": 1}}},
         r"metadata.labels = .* strings to strings"),
        ({"spec": {"metrics": []}},
         r"field spec.metrics = \[\] is invalid: it must be a non-empty"),
        ({"spec": {}}, r"field spec.metrics = None is invalid"),
        ({"spec": {"metrics": [], "args": []}}, r"field spec has unknown key\(s\) \['args'\]"),
        ({"extra": 1}, r"field \(document\) has unknown key\(s\) \['extra'\]"),
    ],
)  # fmt: skip
def test_rejects_bad_documents_naming_the_field(change: dict[str, Any], match: str) -> None:
    d = doc()
    d.update(change)
    with pytest.raises(InvalidDefinitionError, match=match):
        AnalysisTemplate.from_dict(d)


def test_rejects_a_document_that_is_not_a_mapping() -> None:
    with pytest.raises(InvalidDefinitionError, match=r"field \(document\) = \[1\] is invalid"):
        AnalysisTemplate.from_dict([1])
    with pytest.raises(InvalidDefinitionError, match="YAML does not parse"):
        AnalysisTemplate.from_yaml("a: [")


M = r"AnalysisTemplate field spec.metrics\[0\]"


@pytest.mark.parametrize(
    ("metric", "match"),
    [
        ({"name": "has space"}, rf"{M}.name: Metric name 'has space' is not valid"),
        ({"interval": "soon"}, rf"{M}.interval = 'soon' is invalid: it must be a duration"),
        ({"interval": 0}, rf"{M}.interval = 0 is invalid: it must be longer than zero"),
        ({"initialDelay": -1}, rf"{M}.initialDelay = -1 is invalid"),
        ({"count": -1}, rf"{M}.count = -1 is invalid: it must be at least 0"),
        ({"count": "5"}, rf"{M}.count = '5' is invalid: it must be an integer"),
        ({"count": 3}, rf"{M}.count = 3 is invalid: it needs an interval when it is more than 1"),
        ({"failureLimit": -2}, rf"{M}.failureLimit = -2 is invalid: it must be at least -1"),
        ({"failureLimit": -1}, rf"{M}.failureLimit = -1 is invalid: it may not be -1"),
        ({"inconclusiveLimit": -1}, rf"{M}.inconclusiveLimit = -1 is invalid"),
        ({"consecutiveErrorLimit": -1}, rf"{M}.consecutiveErrorLimit = -1 is invalid"),
        ({"consecutiveSuccessLimit": -1}, rf"{M}.consecutiveSuccessLimit = -1 is invalid"),
        ({"interval": "1m", "count": 2, "failureLimit": 2, "consecutiveSuccessLimit": 1},
         rf"{M}.count = 2 is invalid: it must be at least failureLimit \+ consecutiveSuccessLimit"),
        ({"interval": "1m", "count": 2, "failureLimit": -1, "consecutiveSuccessLimit": 3},
         rf"{M}.count = 2 is invalid: it must be at least consecutiveSuccessLimit"),
        ({"interval": "1m", "count": 2, "inconclusiveLimit": 3},
         rf"{M}.count = 2 is invalid: it must be at least inconclusiveLimit"),
        ({"dryRun": "yes"}, rf"{M}.dryRun = 'yes' is invalid: it must be true or false"),
        ({"minSampleSize": -5}, rf"{M}.minSampleSize = -5 is invalid"),
        ({"sampleTimeout": "forever"}, rf"{M}.sampleTimeout = 'forever' is invalid"),
        ({"measurementRetention": 0}, rf"{M}.measurementRetention = 0 is invalid"),
        ({"successCondition": "result >"}, rf"{M}.successCondition = 'result >' is invalid: "
                                           "it does not parse"),
        ({"failureCondition": "__import__('os')"}, rf"{M}.failureCondition = .* is invalid"),
        ({"successCondition": ""}, rf"{M}.successCondition = '' is invalid"),
        ({"successCondition": 0.9}, rf"{M}.successCondition = 0.9 is invalid"),
        ({"threshold": 1}, rf"{M} has unknown key\(s\) \['threshold'\]"),
        ({"provider": {}}, rf"{M}.provider = {{}} is invalid: it must name exactly one of"),
        ({"provider": {"agreement": {}, "accuracy": {}}}, rf"{M}.provider = .* exactly one"),
        ({"provider": {"datadog": {}}}, rf"{M}.provider has unknown key\(s\) \['datadog'\]"),
        ({"provider": {"router": {"metric": "cpu"}}},
         rf"{M}.provider.router.metric = 'cpu' is invalid: it must be one of requestRate"),
        ({"provider": {"router": {"metric": "errorRate", "revision": "blue"}}},
         rf"{M}.provider.router.revision = 'blue' is invalid: it must be one of canary \| stable"),
        ({"provider": {"agreement": {"min": 1}}},
         rf"{M}.provider.agreement has unknown key\(s\) \['min'\]"),
        ({"provider": {"predictionDrift": {"measure": "ks"}}},
         rf"{M}.provider.predictionDrift.measure = 'ks' is invalid"),
        ({"provider": {"predictionDrift": {"output": ""}}},
         rf"{M}.provider.predictionDrift.output = '' is invalid: it must be a non-empty string"),
        ({"provider": {"accuracy": {"metric": "f1"}}},
         rf"{M}.provider.accuracy.metric = 'f1' is invalid: it must be one of accuracy \| rmse"),
        ({"provider": {"prometheus": {"query": "up"}}},
         rf"{M}.provider.prometheus.address = None is invalid: it must be an http"),
        ({"provider": {"prometheus": {"address": "prom:9090", "query": "up"}}},
         rf"{M}.provider.prometheus.address = 'prom:9090' is invalid"),
        ({"provider": {"prometheus": {"address": "http://p"}}},
         rf"{M}.provider.prometheus.query = None is invalid: it must be a PromQL query"),
        ({"provider": {"prometheus": {"address": "http://p", "query": "up", "timeout": 0}}},
         rf"{M}.provider.prometheus.timeout = 0 is invalid: it must be longer than zero"),
    ],
)  # fmt: skip
def test_rejects_each_bad_metric_field_naming_its_path(metric: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidDefinitionError, match=match):
        AnalysisTemplate.from_dict(doc(**metric))


def test_rejects_a_metric_without_a_provider() -> None:
    d = doc()
    del d["spec"]["metrics"][0]["provider"]
    with pytest.raises(InvalidDefinitionError, match=rf"{M}.provider = None is invalid"):
        AnalysisTemplate.from_dict(d)


def test_rejects_two_metrics_with_one_name() -> None:
    d = doc()
    d["spec"]["metrics"].append(copy.deepcopy(d["spec"]["metrics"][0]))
    with pytest.raises(InvalidDefinitionError, match=r"metrics\[1\].name = 'm' .* repeats"):
        AnalysisTemplate.from_dict(d)


def test_templates_are_frozen_values() -> None:
    a, b = AnalysisTemplate.from_yaml(YAML), AnalysisTemplate.from_yaml(YAML)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.name = "other"  # type: ignore[misc]
