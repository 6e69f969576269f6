"""Evaluator (blessing vs the latest blessed model), InfraValidator and Pusher, end to end
on scikit-learn's breast-cancer data, with the real registry and model server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from loopline.bundle import tree_digest
from loopline.components import (
    Evaluator,
    ExampleGen,
    InfraValidator,
    Pusher,
    Trainer,
    latest_blessed_model,
)
from loopline.components.infra_validator import _Refused, validate_serving
from loopline.pipeline import RunStatus, Step
from loopline.registry import ModelRegistry
from tests.components.conftest import Harness

THRESHOLDS: list[dict[str, Any]] = [
    {"metric": "auc", "lower": 0.8},
    {"metric": "auc", "direction": "higher_is_better", "absolute": -0.01, "slices": ["overall"]},
]


def good_model(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    return LogisticRegression(max_iter=2000).fit(x[["radius", "texture", "worst_area"]], y)


def weak_model(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    return DummyClassifier(strategy="prior").fit(x[["radius", "texture", "worst_area"]], y)


def pipeline(root: Path, train_fn: Any, *, infra: bool, **evaluator: Any) -> list[Step]:
    gen = ExampleGen(input_dir=str(root), pattern="span-{SPAN}/*.csv")
    trainer = Trainer(examples=gen.outputs.examples, train_fn=train_fn, label="label")
    baseline = latest_blessed_model().with_id("baseline")
    evaluate = Evaluator(
        examples=gen.outputs.examples,
        model=trainer.outputs.model,
        baseline_model=baseline.outputs.artifact,
        label="label",
        positive_label="benign",
        slicing_features=["size"],
        thresholds=evaluator.pop("thresholds", THRESHOLDS),
        **evaluator,
    )
    steps: list[Step] = [gen, trainer, baseline, evaluate]
    infra_out = None
    if infra:
        check = InfraValidator(model=trainer.outputs.model, examples=gen.outputs.examples)
        steps.append(check)
        infra_out = check.outputs.infra_blessing
    steps.append(
        Pusher(
            model=trainer.outputs.model,
            blessing=evaluate.outputs.blessing,
            infra_blessing=infra_out,
            model_name="cancer",
            require_infra_blessing=infra,
        )
    )
    return steps


def test_first_run_blesses_pushes_and_sets_champion_then_a_regression_is_refused(
    harness: Harness, cancer_dir: Path
) -> None:
    first = harness.run("cancer", pipeline(cancer_dir, train_fn=good_model, infra=True))
    assert first.ok, {k: v.error for k, v in first.steps.items()}
    blessing = harness.artifact(first, "Evaluator", "blessing")
    model = harness.artifact(first, "Trainer", "model")
    assert blessing.properties["blessed"] == 1
    assert blessing.properties["current_model_id"] == model.id
    assert blessing.properties["baseline_model_id"] is None
    verdict = json.loads(harness.read(blessing, "blessing.json"))
    assert "change thresholds skipped" in verdict["notes"][0]
    assert {c["slice"] for c in verdict["checks"]} == {"overall", "size=large", "size=small"}
    evaluation = json.loads(
        harness.read(harness.artifact(first, "Evaluator", "evaluation"), "evaluation.json")
    )
    assert evaluation["slices"]["overall"]["auc"] > 0.9
    infra = harness.artifact(first, "InfraValidator", "infra_blessing")
    assert infra.properties["blessed"] == 1, infra.properties["reason"]
    registry = ModelRegistry(harness.metadata, harness.artifacts)
    assert registry.get_model("cancer").aliases == {"champion": 1, "challenger": 1}
    move = registry.alias_history("cancer", "challenger")[0]
    assert set(move.evidence) == {blessing.id, infra.id} and "pipeline run" in move.who

    # a much weaker model: compared with the blessed baseline, refused at the Pusher
    second = harness.run("cancer", pipeline(cancer_dir, train_fn=weak_model, infra=False))
    assert second.status is RunStatus.BLOCKED
    refused = harness.artifact(second, "Evaluator", "blessing")
    assert refused.properties["blessed"] == 0
    assert refused.properties["baseline_model_id"] == model.id
    reasons = refused.properties["reasons"]
    assert isinstance(reasons, list)
    assert "auc on slice overall: 0.5 < lower bound 0.8" in reasons
    assert any(str(r).startswith("auc on slice overall: 0.5 < baseline 0.9") for r in reasons)
    assert "is not blessed, so it is not pushed" in harness.error(second, "Pusher")
    assert second.steps["Pusher"].gate
    assert registry.get_model("cancer").aliases == {"champion": 1, "challenger": 1}

    # the same weak model, force-blessed by a named person: pushed as challenger only
    forced = harness.run(
        "cancer",
        pipeline(
            cancer_dir,
            train_fn=weak_model,
            infra=False,
            force_bless=True,
            force_bless_by="ana",
            force_bless_reason="schema change, baseline not comparable (TICKET-7)",
        ),
    )
    assert forced.ok
    props = harness.artifact(forced, "Evaluator", "blessing").properties
    assert props["blessed"] == 1 and props["forced"] == 1 and props["forced_by"] == "ana"
    assert props["reasons"]  # the overridden verdict is kept
    assert registry.get_model("cancer").aliases == {"champion": 1, "challenger": 2}


def test_rerun_with_unchanged_code_and_data_is_cached_downstream(
    harness: Harness, cancer_dir: Path
) -> None:
    steps = pipeline(cancer_dir, train_fn=good_model, infra=False)
    harness.run("again", steps)
    second = harness.run("again", pipeline(cancer_dir, train_fn=good_model, infra=False))
    third = harness.run("again", pipeline(cancer_dir, train_fn=good_model, infra=False))
    # the baseline is now the candidate itself: the blessing has the same bytes, so the
    # Pusher is cached and nothing is registered twice
    assert second.steps["Trainer"].cached and second.steps["Pusher"].cached
    assert all(s.cached for k, s in third.steps.items() if k != "baseline")
    note = harness.artifact(second, "Evaluator", "blessing").properties["baseline_note"]
    assert "is the candidate itself" in str(note)
    assert len(harness.metadata.list_model_versions("cancer")) == 1


def test_force_bless_requires_who_and_why(harness: Harness, cancer_dir: Path) -> None:
    result = harness.run(
        "force", pipeline(cancer_dir, train_fn=good_model, infra=False, force_bless=True)
    )
    assert "force_bless needs force_bless_by (who) and force_bless_reason (why)" in harness.error(
        result, "Evaluator"
    )


def test_no_thresholds_is_not_blessed_by_default(harness: Harness, cancer_dir: Path) -> None:
    result = harness.run(
        "none", pipeline(cancer_dir, train_fn=good_model, infra=False, thresholds=[])
    )
    assert result.status is RunStatus.BLOCKED
    blessing = harness.artifact(result, "Evaluator", "blessing")
    assert blessing.properties["blessed"] == 0
    assert "no thresholds configured" in str(blessing.properties["reasons"])


def test_infra_validation_refuses_a_directory_the_server_cannot_load(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "loopline-model.yaml").write_text("format: nonsense\n")
    with pytest.raises(_Refused, match="the model server exited with code"):
        validate_serving(
            tmp_path / "model", [], timeout=60, digest=tree_digest(tmp_path / "model")
        )


def test_pusher_refuses_a_model_that_failed_infra_validation(
    harness: Harness, cancer_dir: Path, iris_dir: Path
) -> None:
    steps = pipeline(cancer_dir, train_fn=good_model, infra=False)
    gen, trainer, baseline, evaluate = steps[:4]
    wrong = ExampleGen(input_dir=str(iris_dir), pattern="span-{SPAN}/*.csv", id="iris")
    infra = InfraValidator(model=trainer.outputs.model, examples=wrong.outputs.examples)
    push = Pusher(
        model=trainer.outputs.model,
        blessing=evaluate.outputs.blessing,
        infra_blessing=infra.outputs.infra_blessing,
        model_name="cancer",
    )
    result = harness.run("infra", [gen, trainer, baseline, evaluate, wrong, infra, push])
    assert result.status is RunStatus.BLOCKED
    verdict = harness.artifact(result, "InfraValidator", "infra_blessing")
    assert verdict.properties["blessed"] == 0
    assert "lacks model input column(s)" in str(verdict.properties["reason"])
    assert "failed infra validation, so it is not pushed" in harness.error(result, "Pusher")
    assert harness.metadata.list_model_versions("cancer") == []


def regressor(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge().fit(x[["sepal_length", "sepal_width", "petal_length"]], y)


def test_regression_metrics_and_lower_is_better_thresholds(
    harness: Harness, iris_dir: Path
) -> None:
    gen = ExampleGen(input_dir=str(iris_dir), pattern="span-{SPAN}/*.csv")
    trainer = Trainer(examples=gen.outputs.examples, train_fn=regressor, label="petal_width")
    evaluate = Evaluator(
        examples=gen.outputs.examples,
        model=trainer.outputs.model,
        label="petal_width",
        slicing_features=["species"],
        min_examples_per_slice=5,
        thresholds=[
            {"metric": "rmse", "upper": 0.3, "slices": ["overall"]},
            {"metric": "r2", "lower": 0.5, "slices": ["species"]},
        ],
    )
    result = harness.run("regression", [gen, trainer, evaluate])
    assert result.ok
    blessing = harness.artifact(result, "Evaluator", "blessing")
    evaluation = json.loads(
        harness.read(harness.artifact(result, "Evaluator", "evaluation"), "evaluation.json")
    )
    assert evaluation["slices"]["overall"]["rmse"] < 0.3
    # within one species petal width barely varies: r2 is low there, and that slice fails
    assert blessing.properties["blessed"] == 0
    assert any("r2 on slice species=" in str(r) for r in blessing.properties["reasons"])  # type: ignore[union-attr]
