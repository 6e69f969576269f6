"""Fixtures for component tests: a real SQLite metadata store, a local artifact store and the
local runner, plus small real data sets written as span files."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.metadata.entities import Artifact
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.pipeline import Pipeline, RunResult, Step
from loopline.pipeline.runner import LocalRunner


@dataclass
class Harness:
    """Runs pipelines against real stores under one temporary directory."""

    root: Path
    metadata: MetadataStore
    artifacts: FsspecArtifactStore
    runner: LocalRunner

    def run(self, name: str, steps: Sequence[Step], **params: Any) -> RunResult:
        return self.runner.run(Pipeline(name, list(steps)), params=params)

    def artifact(self, result: RunResult, step: str, port: str) -> Artifact:
        aid = result.output(step, port)
        assert aid is not None, f"{step}.{port} produced nothing: {result.steps[step]}"
        return self.metadata.get_artifact(aid)

    def read_table(self, result: RunResult, step: str, port: str, split: str) -> pa.Table:
        import pyarrow.parquet as pq

        art = self.artifact(result, step, port)
        with self.artifacts.open_local(art.uri) as local:
            return pq.read_table(Path(local) / f"{split}.parquet")

    def error(self, result: RunResult, step: str) -> str:
        """The full error recorded on the step's execution."""
        execution_id = result.steps[step].execution_id
        assert execution_id is not None
        return str(self.metadata.get_execution(execution_id).properties.get("error"))

    def read(self, artifact: Artifact, name: str) -> str:
        with self.artifacts.open_local(artifact.uri) as local:
            return (Path(local) / name).read_text()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    md = open_store(f"sqlite:///{tmp_path / 'md.db'}")
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    runner = LocalRunner(md, store, log_dir=tmp_path / "logs", console=None)
    yield Harness(tmp_path, md, store, runner)
    md.close()


def write_csv(path: Path, columns: dict[str, list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.table(columns), path)
    return path


@pytest.fixture
def iris_dir(tmp_path: Path) -> Path:
    """scikit-learn's bundled iris data as span 1 (CSV)."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame["species"] = frame.pop("target").map({0: "setosa", 1: "versicolor", 2: "virginica"})
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    out = tmp_path / "iris" / "span-1" / "iris.csv"
    out.parent.mkdir(parents=True)
    frame.to_csv(out, index=False)
    return tmp_path / "iris"


@pytest.fixture
def cancer_dir(tmp_path: Path) -> Path:
    """scikit-learn's bundled breast-cancer data (binary), a few features, as span 1."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame[["mean radius", "mean texture", "mean smoothness", "worst area"]].copy()
    frame.columns = ["radius", "texture", "smoothness", "worst_area"]
    frame["size"] = (frame["radius"] > 14).map({True: "large", False: "small"})
    frame["label"] = data.target.map({0: "malignant", 1: "benign"})
    out = tmp_path / "cancer" / "span-1" / "data.csv"
    out.parent.mkdir(parents=True)
    frame.to_csv(out, index=False)
    return tmp_path / "cancer"


@pytest.fixture(scope="session")
def taxi_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Span 1 of the taxi example (the real January–March trips), written once per session
    by the example's own ``taxi_data.ensure_span_one`` into a folder of the session's own."""
    path = Path(__file__).resolve().parents[2] / "examples" / "taxi" / "taxi_data.py"
    spec = importlib.util.spec_from_file_location("taxi_data_for_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written: Path = module.ensure_span_one(tmp_path_factory.mktemp("taxi-data"))
    return written
