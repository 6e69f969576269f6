"""The operator's trust reaches the monitor's reference: the prediction reference of a
python-flavor model (its own loader) is computed when that loader is trusted, and falls back
to the first window (saying why) when it is not."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import StandardScaler

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.bundle import Trust
from loopline.data import Schema
from loopline.metadata import MetadataStore, open_store
from loopline.monitor import (
    InMemoryMonitorStore,
    MonitorRunner,
    MonitorSpec,
    Reference,
    find_reference,
)
from loopline.registry import ModelRegistry
from loopline.serving.options import LogOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter

LOADER = "tests.bundle.selfsaving:Centroids"


def numbers_only(schema: Schema) -> ColumnTransformer:
    numeric = [f.name for f in schema.features if f.dtype.is_numeric]
    return ColumnTransformer([("num", StandardScaler(), numeric)])


def train_centroids(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    from tests.bundle.selfsaving import Centroids

    return Centroids.fit(np.asarray(x, dtype=np.float64), np.asarray(y))


@dataclass
class Registered:
    metadata: MetadataStore
    artifacts: FsspecArtifactStore
    registry: ModelRegistry


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    """A python-flavor model ('cancer' version 1) trained by a real pipeline, registered."""
    from sklearn.datasets import load_breast_cancer

    from loopline.components import ExampleGen, SchemaGen, StatisticsGen, Trainer, Transform
    from loopline.pipeline import Pipeline
    from loopline.pipeline.runner import LocalRunner

    root = tmp_path_factory.mktemp("centroids")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame[["mean radius", "mean texture", "worst area"]].copy()
    frame.columns = ["radius", "texture", "worst_area"]
    frame["label"] = data.target.map({0: "malignant", 1: "benign"})
    span = root / "data" / "span-1" / "data.csv"
    span.parent.mkdir(parents=True)
    frame.to_csv(span, index=False)
    metadata = open_store(f"sqlite:///{root / 'md.db'}")
    artifacts = FsspecArtifactStore(str(root / "artifacts"))
    gen = ExampleGen(input_dir=str(root / "data"), pattern="span-{SPAN}/data.csv")
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
    runner = LocalRunner(metadata, artifacts, log_dir=root / "logs", console=None)
    result = runner.run(Pipeline("centroids", [gen, stats, schema, transform, trainer]))
    assert result.ok, {k: v.error for k, v in result.steps.items()}
    model_id = result.output("Trainer", "model")
    assert model_id is not None
    registry = ModelRegistry(metadata, artifacts)
    registry.register("cancer", model_id, who="test", why="trust fixture")
    yield Registered(metadata, artifacts, registry)
    metadata.close()


def test_the_reference_of_a_python_flavor_model_is_scored_when_its_loader_is_trusted(
    registered: Registered,
) -> None:
    ref = find_reference(
        registered.metadata,
        registered.artifacts,
        "cancer",
        "1",
        registry=registered.registry,
        trust=Trust(loaders=frozenset({LOADER})),
    )
    assert ref.prediction is not None
    assert ref.classes == ("benign", "malignant")
    assert ref.features == ("radius", "texture", "worst_area")


def test_an_untrusted_loader_leaves_the_reference_without_predictions_and_says_why(
    registered: Registered, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="loopline.monitor.reference"):
        ref = find_reference(
            registered.metadata, registered.artifacts, "cancer", "1", registry=registered.registry
        )
    assert ref.prediction is None
    assert f"names loader {LOADER!r}, which is not a trusted loader" in caplog.text


def test_a_monitor_runner_loads_references_with_the_trust_it_is_given(
    registered: Registered, tmp_path: Path
) -> None:
    trust = Trust(loaders=frozenset({LOADER}))
    spec = MonitorSpec.from_dict(
        {
            "apiVersion": "loopline/v1",
            "kind": "Monitor",
            "metadata": {"name": "cancer-drift"},
            "spec": {"deployment": "cancer", "model": "cancer", "window": {"rows": 50}},
        }
    )
    found: list[Reference] = []

    def find(*args: Any, **kwargs: Any) -> Reference:
        found.append(find_reference(*args, **kwargs))
        return found[-1]

    store = InMemoryMonitorStore()
    store.apply(spec, 1.7e9)
    runner = MonitorRunner(
        spec,
        store,
        registered.metadata,
        registered.registry,
        registered.artifacts,
        tmp_path / "logs",
        find=find,
        trust=trust,
    )
    rng = np.random.default_rng(0)
    inputs = {c: rng.normal(10.0, 2.0, 50) for c in ("radius", "texture", "worst_area")}
    writer = SegmentWriter(tmp_path / "logs", "predictions", LogOptions(tmp_path / "logs"))
    outputs = {"predict": np.asarray(["benign"] * 50, dtype=object)}
    record = LogRecord("req-1", 1.7e9, "cancer", "1", 50, {"inputs": inputs, "outputs": outputs})
    assert writer.offer(record)
    writer.flush()
    result = runner.tick(1.7e9 + 60)
    assert result.errors == () and result.rows == 50
    assert len(found) == 1 and found[0].prediction is not None
