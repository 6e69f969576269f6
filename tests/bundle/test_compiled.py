"""The compiled path: scikit-learn models saved with an ONNX model beside them, checked at save
and at load, with scikit-learn serving whenever the check fails."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.bundle.taxi_model import taxi

from loopline.bundle import (
    Manifest,
    Signature,
    TensorSpec,
    coerce_batch,
    file_sha256,
    infer_signature,
    load_model,
    save_model,
)
from loopline.bundle.compiler import compile_sklearn
from loopline.bundle.onnx_part import TOLERANCE, Check, OnnxPart, compare
from loopline.bundle.signature import _columns_of
from loopline.errors import InvalidInputError

BOTH = ("predict", "predict_proba")


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)  # type: ignore[return-value]


def scaled_lr(x: Any, y: Any) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)


def with_decision_function(x: Any, y: Any) -> Signature:
    sig = infer_signature(x, y)
    spec = TensorSpec("decision_function", "float64", (-1,))
    return Signature(inputs=sig.inputs, outputs=(*sig.outputs, spec))


def save_compiled(model: Any, path: Path, x: Any, y: Any = None, **kw: Any) -> Path:
    kw.setdefault("compile", "auto")
    return save_model(
        model, path, signature=infer_signature(x, y), methods=BOTH, input_example=x[:5],
        check_data=x, **kw,
    )  # fmt: skip


def test_the_taxi_model_compiles_with_identical_labels_and_probabilities_within_tolerance(
    tmp_path: Path,
) -> None:
    pipeline, x, _ = taxi()
    path = save_model(
        pipeline, tmp_path / "taxi", signature=infer_signature(x), methods=BOTH,
        input_example=x.head(5), compile="auto", check_data=x,
    )  # fmt: skip
    manifest = Manifest.read(path)
    assert set(manifest.files) == {"model.skops", "model.onnx"}
    part = manifest.onnx
    assert part is not None and part.serves == "onnx" and part.check is not None
    assert part.check.rows == len(x) == 6822
    assert part.check.tolerance == TOLERANCE
    assert 0 < part.check.max_abs_diff <= TOLERANCE  # float32 inside onnxruntime
    assert part.example_outputs is not None  # what the load-time check compares against
    assert part.example_outputs["predict"] == pipeline.predict(x.head(5)).tolist()
    assert part.example_outputs["predict_proba"] == pipeline.predict_proba(x.head(5)).tolist()
    model = load_model(path)
    assert model.serving_path == "onnx"
    batch, _ = coerce_batch(model.signature, dict(_columns_of(x) or []))
    out = model.predict(batch)
    assert out["predict"].dtype == object and out["predict_proba"].dtype == np.float64
    assert np.array_equal(out["predict"], pipeline.predict(x))
    assert np.abs(out["predict_proba"] - pipeline.predict_proba(x)).max() <= TOLERANCE
    one = model.predict({k: v[:1] for k, v in batch.items()})
    assert one["predict"].tolist() == pipeline.predict(x.head(1)).tolist()


@pytest.mark.parametrize(
    "make",
    [scaled_lr, lambda x, y: RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)],
    ids=["logistic-regression", "forest"],
)
def test_tensor_models_compile_and_serve_through_onnx(
    tmp_path: Path, cancer: Any, make: Any
) -> None:
    x, y = cancer
    model = make(x, y)
    path = save_compiled(model, tmp_path / "m", x, y)
    loaded = load_model(path)
    assert loaded.serving_path == "onnx"
    out = loaded.predict(x)
    assert np.array_equal(out["predict"], model.predict(x))
    assert np.abs(out["predict_proba"] - model.predict_proba(x)).max() <= TOLERANCE
    assert load_model(path, compiled=False).serving_path == "sklearn"


def test_compile_off_writes_no_onnx_model_and_no_entry(tmp_path: Path, cancer: Any) -> None:
    x, y = cancer
    path = save_compiled(scaled_lr(x, y), tmp_path / "m", x, y, compile="off")
    manifest = Manifest.read(path)
    assert manifest.onnx is None and set(manifest.files) == {"model.skops"}
    assert load_model(path).serving_path == "sklearn"


def test_auto_keeps_sklearn_and_records_why_when_the_model_does_not_compile(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    model = scaled_lr(x, y)
    path = save_model(
        model, tmp_path / "m", signature=with_decision_function(x, y),
        methods=("predict", "decision_function"), input_example=x[:5], compile="auto",
        check_data=x,
    )  # fmt: skip
    manifest = Manifest.read(path)
    assert manifest.onnx == OnnxPart(
        serves="sklearn",
        reason="skl2onnx cannot convert it (InvalidInputError: Only predict and predict_proba "
        "compile to ONNX; the model also serves 'decision_function'.)",
    )
    assert set(manifest.files) == {"model.skops"}
    assert load_model(path).serving_path == "sklearn"


def test_require_fails_with_the_reason(tmp_path: Path, cancer: Any) -> None:
    x, y = cancer
    with pytest.raises(
        InvalidInputError,
        match=r"compile='require' but Pipeline does not compile to ONNX: skl2onnx cannot "
        r"convert it .*'decision_function'.*Use compile='auto'",
    ):
        save_model(
            scaled_lr(x, y), tmp_path / "m", signature=with_decision_function(x, y),
            methods=("predict", "decision_function"), compile="require", check_data=x,
        )  # fmt: skip
    assert not (tmp_path / "m").exists()
    with pytest.raises(InvalidInputError, match=r"compile='sometimes' is not one of"):
        save_compiled(scaled_lr(x, y), tmp_path / "n", x, y, compile="sometimes")


def test_a_compiled_model_outside_the_tolerance_is_not_kept_and_the_reason_says_by_how_much(
    cancer: Any,
) -> None:
    x, y = cancer
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)
    sig = infer_signature(x, y)
    compiled = compile_sklearn(forest, sig, "array", BOTH, x, tolerance=0.0)
    assert compiled.data is None and compiled.part.serves == "sklearn"
    assert compiled.part.reason is not None
    assert "with double inputs its predict_proba differs from scikit-learn's by up to" in (
        compiled.part.reason
    )
    assert "(tolerance 0) on 569 rows" in compiled.part.reason


def rewrite(path: Path, **changes: Any) -> None:
    manifest = Manifest.read(path)
    manifest = dataclasses.replace(manifest, **changes)
    manifest.write(path)


def test_a_compiled_model_that_disagrees_at_load_falls_back_to_sklearn_with_a_warning(
    tmp_path: Path, cancer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = cancer
    model = scaled_lr(x, y)
    path = save_compiled(model, tmp_path / "m", x, y)
    other = save_compiled(scaled_lr(x, 1 - y), tmp_path / "other", x, 1 - y)
    (path / "model.onnx").write_bytes((other / "model.onnx").read_bytes())
    manifest = Manifest.read(path)
    rewrite(path, files={**manifest.files, "model.onnx": file_sha256(path / "model.onnx")})
    with caplog.at_level(logging.WARNING, logger="loopline.bundle.compiler"):
        loaded = load_model(path)
    assert loaded.serving_path == "sklearn"
    assert "does not answer as scikit-learn on the example batch: its predict differs" in (
        caplog.text
    )
    assert np.array_equal(loaded.predict(x)["predict"], model.predict(x))


def test_a_compiled_model_without_recorded_example_outputs_is_not_served(
    tmp_path: Path, cancer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = cancer
    path = save_compiled(scaled_lr(x, y), tmp_path / "m", x, y)
    part = Manifest.read(path).onnx
    assert part is not None
    rewrite(path, onnx=dataclasses.replace(part, example_outputs=None))
    with caplog.at_level(logging.WARNING, logger="loopline.bundle.compiler"):
        assert load_model(path).serving_path == "sklearn"
    assert "comes without scikit-learn's outputs on the example rows" in caplog.text


def test_without_an_input_example_the_first_check_rows_become_the_example(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    path = save_model(
        scaled_lr(x, y), tmp_path / "m", signature=infer_signature(x, y), methods=BOTH,
        compile="auto", check_data=x,
    )  # fmt: skip
    loaded = load_model(path)
    assert loaded.serving_path == "onnx"
    assert loaded.manifest.example == {"input": x[:5].tolist()}


def test_a_tampered_compiled_model_is_refused(tmp_path: Path, cancer: Any) -> None:
    x, y = cancer
    path = save_compiled(scaled_lr(x, y), tmp_path / "m", x, y)
    raw = bytearray((path / "model.onnx").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (path / "model.onnx").write_bytes(bytes(raw))
    with pytest.raises(InvalidInputError, match="'model.onnx' has sha256"):
        load_model(path)


def test_without_onnxruntime_at_load_sklearn_serves_with_a_warning(
    tmp_path: Path, cancer: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = cancer
    path = save_compiled(scaled_lr(x, y), tmp_path / "m", x, y)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.WARNING, logger="loopline.bundle.compiler"):
        loaded = load_model(path)
    assert loaded.serving_path == "sklearn"
    assert "pip install 'loopline[onnx]'" in caplog.text


def test_without_the_onnx_extra_at_save_auto_records_it_and_sklearn_serves(
    tmp_path: Path, cancer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = cancer
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    path = save_compiled(scaled_lr(x, y), tmp_path / "m", x, y)
    part = Manifest.read(path).onnx
    assert part is not None and part.serves == "sklearn"
    assert part.reason == "the onnx extra is not installed (pip install 'loopline[onnx]')"


def test_the_manifest_entry_round_trips_and_a_damaged_one_is_refused_naming_the_field(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    path = save_compiled(scaled_lr(x, y), tmp_path / "m", x, y)
    part = Manifest.read(path).onnx
    assert part is not None and OnnxPart.from_dict(part.to_dict()) == part
    text = (path / "loopline-model.yaml").read_text()
    (path / "loopline-model.yaml").write_text(text.replace("serves: onnx", "serves: gpu"))
    with pytest.raises(InvalidInputError, match="mangles field 'onnx.serves'"):
        Manifest.read(path)
    (path / "loopline-model.yaml").write_text(text.replace("rows: 569", "rows: many"))
    with pytest.raises(InvalidInputError, match="mangles field 'onnx.check.rows'"):
        Manifest.read(path)


def test_compare_requires_equal_labels_and_close_values() -> None:
    labels = np.array(["a", "b", "a"], dtype=object)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    same = compare({"predict": labels, "predict_proba": proba},
                   {"predict": labels.copy(), "predict_proba": proba + 5e-7})  # fmt: skip
    assert same.check is not None and same.check.rows == 3
    assert same.check.max_abs_diff == pytest.approx(5e-7)
    other = compare({"predict": labels}, {"predict": np.array(["a", "a", "a"], dtype=object)})
    assert other.check is None and other.reason == (
        "its predict differs from scikit-learn's on 1 of 3 rows"
    )
    big = compare({"predict": np.array([1e6])}, {"predict": np.array([1e6 + 0.5])})
    assert big.check is not None  # relative beyond 1: 5e-7
    nan = compare({"predict": np.array([np.nan, 1.0])}, {"predict": np.array([0.0, 1.0])})
    assert nan.reason == "its predict has NaN where scikit-learn's has not"
    shape = compare({"predict_proba": proba}, {"predict_proba": proba[:, :1]})
    assert shape.reason == "its predict_proba has shape [3, 1] where scikit-learn's has [3, 2]"
    with pytest.raises(InvalidInputError, match="Tolerance -1"):
        compare({}, {}, tolerance=-1)
    assert Check.from_dict(same.check.to_dict()) == same.check
