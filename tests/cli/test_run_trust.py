"""``loopline run`` hands the operator's trust (``LOOPLINE_TRUSTED_LOADERS``) to the steps:
a pipeline whose Trainer saves a python-flavor model is evaluated, also in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import REPO

PIPELINE = '''
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import StandardScaler

from loopline.components import Evaluator, ExampleGen, SchemaGen, StatisticsGen, Trainer, Transform
from loopline.pipeline import Pipeline


def numbers_only(schema: Any) -> Any:
    numeric = [f.name for f in schema.features if f.dtype.is_numeric]
    return ColumnTransformer([("num", StandardScaler(), numeric)])


def train_centroids(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    from tests.bundle.selfsaving import Centroids

    return Centroids.fit(np.asarray(x, dtype=np.float64), np.asarray(y))


gen = ExampleGen(input_dir="data", pattern="span-{SPAN}/*.csv")
stats = StatisticsGen(examples=gen.outputs.examples)
schema = SchemaGen(statistics=stats.outputs.statistics)
transform = Transform(examples=gen.outputs.examples, schema=schema.outputs.schema,
                      preprocessing_fn=numbers_only, label="label")
trainer = Trainer(examples=gen.outputs.examples, train_fn=train_centroids, label="label",
                  transform_graph=transform.outputs.transform_graph)
evaluate = Evaluator(examples=gen.outputs.examples, model=trainer.outputs.model, label="label",
                     thresholds=[{"metric": "accuracy", "lower": 0.6}]
                     ).with_options(isolation="process")
pipeline = Pipeline("centroids", [gen, stats, schema, transform, trainer, evaluate])
'''


def _run(tmp_path: Path, loaders: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env["PYTHONPATH"] = str(REPO)
    env["LOOPLINE_TRUSTED_LOADERS"] = loaders
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli", "run", "pipeline.py", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _write(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame[["mean radius", "mean texture", "worst area"]].copy()
    frame.columns = ["radius", "texture", "worst_area"]
    frame["label"] = data.target.map({0: "malignant", 1: "benign"})
    span = tmp_path / "data" / "span-1" / "data.csv"
    span.parent.mkdir(parents=True)
    frame.to_csv(span, index=False)
    (tmp_path / "pipeline.py").write_text(PIPELINE)


def test_loopline_run_evaluates_a_python_flavor_model_whose_loader_the_operator_trusts(
    tmp_path: Path,
) -> None:
    _write(tmp_path)
    proc = _run(tmp_path, "tests.bundle.selfsaving:Centroids")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in json.loads(proc.stdout)["steps"]}
    assert steps["Evaluator"]["status"] == "complete", steps["Evaluator"]["error"]


def test_loopline_run_refuses_a_trusted_loader_that_is_not_an_exact_name(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = _run(tmp_path, "tests.bundle.*")
    assert proc.returncode != 0
    assert "LOOPLINE_TRUSTED_LOADERS" in proc.stderr
    assert "'tests.bundle.*' is not an exact name" in proc.stderr
