from __future__ import annotations

from typing import Any

import pytest

from loopline.deploy.spec import (
    DeploymentSpec,
    Strategy,
    StrategyType,
    Template,
    template_hash,
)
from loopline.errors import InvalidDefinitionError

YAML = """
apiVersion: loopline/v1
kind: Deployment
metadata:
  name: taxi
spec:
  model: taxi@champion
  replicas: 3
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: "0%"}
  minReadySeconds: 5
  progressDeadlineSeconds: 120
  revisionHistoryLimit: 4
  template:
    workers: 2
    batching: {enabled: true, maxBatchSize: 16, maxLatencyMs: 5}
    logging: {enabled: true, sampleRate: 0.5}
  port: 8080
"""


def _doc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"model": "iris/1", **spec}}  # fmt: skip


def test_parses_every_field_from_yaml() -> None:
    s = DeploymentSpec.from_yaml(YAML)
    assert s.name == "taxi" and s.model == "taxi@champion" and s.replicas == 3
    assert s.strategy == Strategy(StrategyType.ROLLING_UPDATE, 1, "0%")
    assert (s.min_ready_seconds, s.progress_deadline_seconds, s.revision_history_limit) == (
        5, 120, 4,
    )  # fmt: skip
    assert s.template.workers == 2 and s.template.batching.max_batch_size == 16
    assert s.template.logging.sample_rate == 0.5 and s.port == 8080


def test_applies_kubernetes_defaults() -> None:
    s = DeploymentSpec.from_dict(_doc())
    assert s.replicas == 1 and s.strategy == Strategy()
    assert s.strategy.max_surge == "25%" and s.strategy.max_unavailable == "25%"
    assert (s.min_ready_seconds, s.progress_deadline_seconds, s.revision_history_limit) == (
        0, 600, 10,
    )  # fmt: skip
    assert s.paused is False and s.port is None and s.template.workers == 1


@pytest.mark.parametrize("text", [YAML])
def test_to_dict_round_trips(text: str) -> None:
    s = DeploymentSpec.from_yaml(text)
    assert DeploymentSpec.from_dict(s.to_dict()) == s
    recreate = DeploymentSpec.from_dict(_doc(strategy={"type": "Recreate"}))
    assert DeploymentSpec.from_dict(recreate.to_dict()) == recreate


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (
            _doc(strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
            r"spec\.strategy\.rollingUpdate\.maxUnavailable = '0%' is invalid: it may not be 0 "
            "when maxSurge is 0",
        ),
        (
            _doc(strategy={"rollingUpdate": {"maxUnavailable": "120%"}}),
            r"maxUnavailable = '120%' is invalid: it must not be greater than 100%",
        ),
        (
            _doc(strategy={"rollingUpdate": {"maxSurge": "ten"}}),
            r"maxSurge = 'ten' is invalid: it must be a non-negative integer or a percent",
        ),
        (_doc(strategy={"rollingUpdate": {"maxSurge": -1}}), r"maxSurge = -1 is invalid"),
        (
            _doc(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
            r"spec\.strategy\.rollingUpdate = .* may not be specified when strategy type is "
            "'Recreate'",
        ),
        (
            _doc(strategy={"type": "Shadow"}),
            r"spec\.strategy\.type = 'Shadow' is invalid: it must be one of 'RollingUpdate', "
            "'Recreate', 'Canary' or 'BlueGreen'",
        ),
        (_doc(replicas=-1), r"spec\.replicas = -1 is invalid: it must be at least 0"),
        (_doc(replicas="3"), r"spec\.replicas = '3' is invalid: it must be an integer"),
        (
            _doc(minReadySeconds=30, progressDeadlineSeconds=30),
            r"spec\.progressDeadlineSeconds = 30 is invalid: it must be greater than "
            r"minReadySeconds \(30\)",
        ),
        (_doc(template={"workers": 0}), r"spec\.template\.workers = 0 is invalid"),
        (
            _doc(template={"logging": {"sampleRate": 1.5}}),
            r"spec\.template\.logging\.sampleRate = 1\.5 is invalid: it must be at least 0\.0 "
            r"and at most 1\.0",
        ),
        (_doc(template={"gpus": 1}), r"spec\.template has unknown key\(s\) \['gpus'\]"),
        (_doc(port=70000), r"spec\.port = 70000 is invalid"),
        (_doc(paused="yes"), r"spec\.paused = 'yes' is invalid: it must be true or false"),
        (_doc(model="bad ref!"), r"spec\.model: Model name 'bad ref!' is not valid"),
        ({**_doc(), "kind": "Service"}, r"kind = 'Service' is invalid: it must be 'Deployment'"),
        ({**_doc(), "apiVersion": "apps/v1"}, r"apiVersion = 'apps/v1' is invalid"),
        ({**_doc(), "metadata": {"name": "../x"}}, r"metadata\.name: Deployment name '\.\./x'"),
    ],
)
def test_rejects_invalid_fields_naming_path_and_value(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidDefinitionError, match=match):
        DeploymentSpec.from_dict(doc)


def test_rejects_yaml_that_does_not_parse() -> None:
    with pytest.raises(InvalidDefinitionError, match="Deployment YAML does not parse"):
        DeploymentSpec.from_yaml("spec: [unclosed")


def test_template_hash_is_stable_and_ignores_rollout_settings() -> None:
    a = DeploymentSpec.from_dict(_doc(replicas=3, template={"workers": 2}))
    b = DeploymentSpec.from_dict(_doc(replicas=9, paused=True, template={"workers": 2}))
    c = DeploymentSpec.from_dict(_doc(template={"workers": 3}))
    assert template_hash(a.template) == template_hash(b.template) != template_hash(c.template)
    assert len(template_hash(a.template)) == 10
    assert template_hash(Template(model="iris/1")) == template_hash(Template(model="iris/1"))
    assert template_hash(Template(model="iris/1")) != template_hash(Template(model="iris/2"))


def test_labels_and_annotations_are_kept_and_round_trip() -> None:
    doc = {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": "taxi", "labels": {"team": "ml"}, "annotations": {"owner": "ada"}},
        "spec": {"model": "taxi@champion"},
    }
    spec = DeploymentSpec.from_dict(doc)
    assert spec.labels == (("team", "ml"),) and spec.annotations == (("owner", "ada"),)
    assert DeploymentSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["metadata"] == doc["metadata"]


def test_labels_must_map_strings_to_strings() -> None:
    doc = {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": "taxi", "labels": {"replicas": 3}},
        "spec": {"model": "taxi@champion"},
    }
    with pytest.raises(InvalidDefinitionError, match="metadata.labels"):
        DeploymentSpec.from_dict(doc)
