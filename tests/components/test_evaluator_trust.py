"""The operator's trust reaches the Evaluator: a python-flavor model (the Trainer saves a
model of another framework with its own loader) is evaluated only when its loader is trusted,
in a thread step and in a child-process step alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import StandardScaler

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.bundle import Trust
from loopline.components import Evaluator, ExampleGen, SchemaGen, StatisticsGen, Trainer, Transform
from loopline.data import Schema
from loopline.metadata import MetadataStore, open_store
from loopline.pipeline import Pipeline, RunResult, Step
from loopline.pipeline.runner import LocalRunner

LOADER = "tests.bundle.selfsaving:Centroids"


def numbers_only(schema: Schema) -> ColumnTransformer:
    numeric = [f.name for f in schema.features if f.dtype.is_numeric]
    return ColumnTransformer([("num", StandardScaler(), numeric)])


def train_centroids(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    from tests.bundle.selfsaving import Centroids

    return Centroids.fit(np.asarray(x, dtype=np.float64), np.asarray(y))


def steps(data: Path, isolation: str = "thread") -> list[Step]:
    gen = ExampleGen(input_dir=str(data), pattern="span-{SPAN}/*.csv")
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    transform = Transform(
        examples=gen.outputs.examples,
        schema=schema.outputs.schema,
        preprocessing_fn=numbers_only,
        label="label",
    )
    trainer = Trainer(
        examples=gen.outputs.examples,
        transform_graph=transform.outputs.transform_graph,
        train_fn=train_centroids,
        label="label",
    )
    evaluate = Evaluator(
        examples=gen.outputs.examples,
        model=trainer.outputs.model,
        label="label",
        thresholds=[{"metric": "accuracy", "lower": 0.6}],
    ).with_options(isolation=isolation)
    return [gen, stats, schema, transform, trainer, evaluate]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[MetadataStore, FsspecArtifactStore]]:
    metadata = open_store(f"sqlite:///{tmp_path / 'md.db'}")
    yield metadata, FsspecArtifactStore(str(tmp_path / "artifacts"))
    metadata.close()


def run(
    stores: tuple[MetadataStore, FsspecArtifactStore],
    root: Path,
    data: Path,
    trust: Trust,
    isolation: str = "thread",
) -> RunResult:
    metadata, artifacts = stores
    runner = LocalRunner(metadata, artifacts, log_dir=root / "logs", console=None, trust=trust)
    return runner.run(Pipeline("centroids", steps(data, isolation)))


def error_of(stores: tuple[MetadataStore, FsspecArtifactStore], result: RunResult) -> str:
    execution_id = result.steps["Evaluator"].execution_id
    assert execution_id is not None
    return str(stores[0].get_execution(execution_id).properties.get("error"))


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_python_flavor_model_is_evaluated_when_the_operator_trusts_its_loader(
    stores: tuple[MetadataStore, FsspecArtifactStore],
    tmp_path: Path,
    cancer_dir: Path,
    isolation: str,
) -> None:
    trust = Trust(loaders=frozenset({LOADER}))
    result = run(stores, tmp_path, cancer_dir, trust, isolation)
    assert result.ok, {k: v.error for k, v in result.steps.items()}
    model_id = result.output("Trainer", "model")
    assert model_id is not None
    assert stores[0].get_artifact(model_id).properties["flavor"] == "python"
    blessing_id = result.output("Evaluator", "blessing")
    assert blessing_id is not None
    blessing = stores[0].get_artifact(blessing_id)
    assert blessing.properties["blessed"] == 1, blessing.properties["reasons"]


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_python_flavor_model_whose_loader_is_not_trusted_fails_the_evaluator_naming_it(
    stores: tuple[MetadataStore, FsspecArtifactStore],
    tmp_path: Path,
    cancer_dir: Path,
    isolation: str,
) -> None:
    result = run(stores, tmp_path, cancer_dir, Trust(), isolation)
    assert not result.ok
    assert result.steps["Trainer"].error is None
    error = error_of(stores, result)
    assert f"names loader {LOADER!r}, which is not a trusted loader" in error
    assert "LOOPLINE_TRUSTED_LOADERS" in error
