"""Transform, Tuner and Trainer on scikit-learn's bundled data sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.bundle import Trust, load_model
from loopline.components import (
    ExampleGen,
    ExampleValidator,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
)
from loopline.data import Schema
from loopline.pipeline import RunStatus, Step
from tests.components.conftest import Harness

PATTERN = "span-{SPAN}/*.csv"


def preprocess(schema: Schema) -> ColumnTransformer:
    numeric = [f.name for f in schema.features if f.dtype.is_numeric]
    strings = [f.name for f in schema.features if not f.dtype.is_numeric]
    return ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(sparse_output=False), strings)]
    )


def preprocess_numbers_only(schema: Schema) -> ColumnTransformer:
    numeric = [f.name for f in schema.features if f.dtype.is_numeric]
    return ColumnTransformer([("num", StandardScaler(), numeric)])


def train(x: Any, y: Any, hp: dict[str, Any]) -> LogisticRegression:
    return LogisticRegression(C=float(hp.get("C", 1.0)), max_iter=500).fit(x, y)


def space(trial: Any) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 0.01, 10.0, log=True)}


def data_steps(root: Path) -> list[Step]:
    gen = ExampleGen(input_dir=str(root), pattern=PATTERN)
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    check = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema)
    return [gen, stats, schema, check]


def transform_step(steps: list[Step], fn: Any = preprocess, label: str = "label") -> Step:
    gen, _, schema, check = steps
    return Transform(
        examples=gen.outputs.examples,
        schema=schema.outputs.schema,
        preprocessing_fn=fn,
        label=label,
        anomalies=check.outputs.anomalies,
    )


def test_transform_fits_on_train_only_and_the_bundle_carries_it(
    harness: Harness, cancer_dir: Path
) -> None:
    steps = data_steps(cancer_dir)
    transform = transform_step(steps)
    trainer = Trainer(
        examples=steps[0].outputs.examples,
        transform_graph=transform.outputs.transform_graph,
        train_fn=train,
        label="label",
        hyperparameters={"C": 0.5},
    )
    result = harness.run("cancer", [*steps, transform, trainer])
    assert result.ok, result.steps
    train_rows = harness.read_table(result, "ExampleGen", "examples", "train")
    eval_rows = harness.read_table(result, "ExampleGen", "examples", "eval")
    transformed = harness.read_table(result, "Transform", "transformed_examples", "train")
    # standardised with the train split's statistics: mean 0 on train
    assert abs(float(np.mean(transformed.column("num__radius").to_numpy()))) < 1e-9
    transformed_eval = harness.read_table(result, "Transform", "transformed_examples", "eval")
    assert transformed_eval.num_rows == eval_rows.num_rows
    assert abs(float(np.mean(transformed_eval.column("num__radius").to_numpy()))) > 1e-6

    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["hyperparameters"] == {"C": 0.5}
    with harness.artifacts.open_local(model.uri) as local:
        loaded = load_model(local, expected_digest=model.digest)
        columns = [s.name for s in loaded.signature.inputs]
        assert columns == ["radius", "texture", "smoothness", "worst_area", "size"]
        assert "scikit-learn" in loaded.manifest.environment
        batch = {c: train_rows.column(c).to_numpy(zero_copy_only=False)[:20] for c in columns}
        served = loaded.predict(batch)
    assert set(served) == {"predict", "predict_proba"}
    assert served["predict_proba"].shape == (20, 2)
    assert (
        np.mean(served["predict"] == np.asarray(train_rows.column("label").to_pylist()[:20])) > 0.8
    )


def train_centroids(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    from tests.bundle.selfsaving import Centroids

    return Centroids.fit(np.asarray(x, dtype=np.float64), np.asarray(y))


def test_a_model_of_another_framework_saves_itself_with_the_transform(
    harness: Harness, cancer_dir: Path
) -> None:
    steps = data_steps(cancer_dir)
    transform = transform_step(steps, preprocess_numbers_only)
    trainer = Trainer(
        examples=steps[0].outputs.examples,
        transform_graph=transform.outputs.transform_graph,
        train_fn=train_centroids,
        label="label",
    )
    result = harness.run("centroids", [*steps, transform, trainer])
    assert result.ok, result.steps
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["flavor"] == "python"
    rows = harness.read_table(result, "ExampleGen", "examples", "eval")
    with harness.artifacts.open_local(model.uri) as local:
        trust = Trust(loaders=frozenset({"tests.bundle.selfsaving:Centroids"}))
        loaded = load_model(local, expected_digest=model.digest, trust=trust)
        assert loaded.manifest.loader == "tests.bundle.selfsaving:Centroids"
        assert loaded.manifest.has_transform
        columns = [s.name for s in loaded.signature.inputs]
        batch = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in columns}
        served = loaded.predict(batch)["predict"]
    truth = np.asarray(rows.column("label").to_pylist())
    assert np.mean(served == truth) > 0.7  # nearest centroid on standardised features


def test_editing_the_preprocessing_function_reruns_only_what_depends_on_it(
    harness: Harness, cancer_dir: Path
) -> None:
    first = harness.run("edit", [*data_steps(cancer_dir), transform_step(data_steps(cancer_dir))])
    steps = data_steps(cancer_dir)
    changed = harness.run("edit", [*steps, transform_step(steps, preprocess_numbers_only)])
    assert first.ok and changed.ok
    assert changed.steps["SchemaGen"].cached and changed.steps["ExampleValidator"].cached
    assert not changed.steps["Transform"].cached
    steps = data_steps(cancer_dir)
    back = harness.run("edit", [*steps, transform_step(steps)])
    assert back.steps["Transform"].cached


def test_tuner_best_hyperparameters_feed_the_trainer(harness: Harness, cancer_dir: Path) -> None:
    steps = data_steps(cancer_dir)
    transform = transform_step(steps)
    tuner = Tuner(
        examples=steps[0].outputs.examples,
        transform_graph=transform.outputs.transform_graph,
        train_fn=train,
        search_space=space,
        label="label",
        metric="auc",
        positive_label="benign",
        n_trials=3,
    )
    trainer = Trainer(
        examples=steps[0].outputs.examples,
        transform_graph=transform.outputs.transform_graph,
        tuned_hyperparameters=tuner.outputs.best_hyperparameters,
        train_fn=train,
        label="label",
        hyperparameters={"C": 123.0},
    )
    result = harness.run("tune", [*steps, transform, tuner, trainer])
    assert result.ok, result.steps
    best = json.loads(
        harness.read(
            harness.artifact(result, "Tuner", "best_hyperparameters"), "hyperparameters.json"
        )
    )
    assert len(best["trials"]) == 3 and best["metric"] == "auc" and best["best_value"] > 0.8
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["hyperparameters"] == best["best"]  # tuned values win


def test_trainer_without_transform_on_iris_is_multiclass(harness: Harness, iris_dir: Path) -> None:
    gen = ExampleGen(input_dir=str(iris_dir), pattern=PATTERN)
    trainer = Trainer(examples=gen.outputs.examples, train_fn=train, label="species")
    result = harness.run("iris", [gen, trainer])
    assert result.ok
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["feature_columns"] == [
        "sepal_length", "sepal_width", "petal_length", "petal_width"
    ]  # fmt: skip


def failing_train(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    raise ValueError("no convergence")


def not_a_transformer(schema: Schema) -> Any:
    return "scale everything"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda gen: Trainer(
                examples=gen.outputs.examples, train_fn=failing_train, label="species"
            ),
            "ComponentError: train_fn raised ValueError: no convergence",
        ),
        (
            lambda gen: Trainer(examples=gen.outputs.examples, train_fn=train, label="colour"),
            "Label column 'colour' is not in split 'train'",
        ),
    ],
    ids=["train-fn-raises", "missing-label"],
)
def test_trainer_errors_are_clear(
    harness: Harness, iris_dir: Path, build: Any, message: str
) -> None:
    gen = ExampleGen(input_dir=str(iris_dir), pattern=PATTERN)
    result = harness.run("bad", [gen, build(gen)])
    assert result.status is RunStatus.FAILED
    assert message in harness.error(result, "Trainer")


def test_preprocessing_must_return_a_transformer(harness: Harness, cancer_dir: Path) -> None:
    steps = data_steps(cancer_dir)
    result = harness.run("bad", [*steps, transform_step(steps, not_a_transformer)])
    assert "preprocessing_fn returned 'scale everything'" in harness.error(result, "Transform")
