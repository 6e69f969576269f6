"""The Trainer's compiled path: compile auto (the default), off and require."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessClassifier

from loopline.bundle import Manifest, load_model
from loopline.components import Trainer
from loopline.errors import InvalidInputError
from loopline.pipeline import RunStatus
from tests.components.conftest import Harness
from tests.components.test_training import data_steps, train, transform_step


def train_gaussian_process(x: Any, y: Any, hp: dict[str, Any]) -> GaussianProcessClassifier:
    """A classifier that does not compile: skl2onnx 1.20 refuses its string labels (and
    onnxruntime cannot run the com.microsoft:Solve its conversion needs)."""
    return GaussianProcessClassifier(random_state=0).fit(x, y)


def run_trainer(harness: Harness, data: Path, train_fn: Any = train, **kw: Any) -> Any:
    steps = data_steps(data)
    transform = transform_step(steps)
    trainer = Trainer(
        examples=steps[0].outputs.examples,
        transform_graph=transform.outputs.transform_graph,
        train_fn=train_fn,
        label="label",
        **kw,
    )
    return harness.run("compile", [*steps, transform, trainer])


def test_by_default_the_trainer_compiles_and_the_onnx_model_serves(
    harness: Harness, cancer_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="loopline.components.trainer"):
        result = run_trainer(harness, cancer_dir)
    assert result.ok, result.steps
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["serving"] == "onnx"
    assert "compile_reason" not in model.properties
    assert "Trainer: the compiled ONNX model serves (max difference" in caplog.text
    rows = harness.read_table(result, "ExampleGen", "examples", "eval")
    with harness.artifacts.open_local(model.uri) as local:
        manifest = Manifest.read(Path(local))
        assert manifest.onnx is not None and manifest.onnx.check is not None
        assert manifest.onnx.check.rows == model.properties["train_rows"]
        onnx = load_model(local, expected_digest=model.digest)
        sklearn = load_model(local, expected_digest=model.digest, compiled=False)
    assert onnx.serving_path == "onnx" and sklearn.serving_path == "sklearn"
    columns = [s.name for s in onnx.signature.inputs]
    batch = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in columns}
    a, b = onnx.predict(batch), sklearn.predict(batch)
    assert np.array_equal(a["predict"], b["predict"])
    assert np.abs(a["predict_proba"] - b["predict_proba"]).max() <= manifest.onnx.check.tolerance


def test_compile_off_serves_sklearn_and_says_so(harness: Harness, cancer_dir: Path) -> None:
    result = run_trainer(harness, cancer_dir, compile="off")
    assert result.ok, result.steps
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["serving"] == "sklearn"
    assert model.properties["compile_reason"] == "compile is off"
    with harness.artifacts.open_local(model.uri) as local:
        assert not (Path(local) / "model.onnx").exists()


def test_a_model_that_does_not_compile_serves_sklearn_with_a_one_line_reason(
    harness: Harness, cancer_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="loopline.components.trainer"):
        result = run_trainer(harness, cancer_dir, train_fn=train_gaussian_process)
    assert result.ok, result.steps
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["serving"] == "sklearn"
    reason = model.properties["compile_reason"]
    assert re.match(r"(skl2onnx cannot convert it|onnxruntime cannot run it) \(\w+: ", reason)
    lines = [r.getMessage() for r in caplog.records if r.name == "loopline.components.trainer"]
    assert lines == [f"Trainer: scikit-learn serves the model, not ONNX: {reason}."]
    assert "\n" not in lines[0] and "Traceback" not in caplog.text


def test_compile_require_fails_the_step_with_the_reason(
    harness: Harness, cancer_dir: Path
) -> None:
    result = run_trainer(
        harness, cancer_dir, train_fn=train_gaussian_process, compile="require"
    )
    assert result.status is RunStatus.FAILED
    error = harness.error(result, "Trainer")
    assert re.search(
        r"compile='require' but Pipeline does not compile to ONNX: "
        r"(skl2onnx cannot convert it|onnxruntime cannot run it) \(",
        error,
    )
    assert "Use compile='auto' to serve it with scikit-learn" in error


def test_an_unknown_compile_value_is_refused_when_the_step_is_built() -> None:
    with pytest.raises(InvalidInputError, match=r"compile='always' is not one of \['auto'"):
        Trainer(examples=None, train_fn=train, label="label", compile="always")
