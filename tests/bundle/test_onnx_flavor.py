"""Flavor onnx: ONNX models served by onnxruntime, loaded from checked bytes, nothing executed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.bundle import (
    Manifest,
    Signature,
    TensorSpec,
    coerce_batch,
    infer_signature,
    load_model,
    save_model,
)
from loopline.bundle.onnx_flavor import refuse_external_data
from loopline.bundle.onnx_part import TOLERANCE
from loopline.bundle.sklearn_onnx import convert
from loopline.errors import DependencyMissingError, InvalidInputError

BOTH = ("predict", "predict_proba")


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def tensor_model(cancer: Any) -> tuple[Any, bytes]:
    x, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    return model, convert(model, infer_signature(x, y), BOTH).data


def column_model(frame: Any) -> tuple[Pipeline, pd.DataFrame]:
    df, y = frame
    df = df.drop(columns=["member"])
    model = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "fare"]),
                        ("cat", OneHotEncoder(sparse_output=False), ["city"]),
                    ]
                ),
            ),
            ("model", LogisticRegression()),
        ]
    ).fit(df, y)
    return model, df


def test_a_column_model_answers_as_sklearn_with_one_input_per_column(
    tmp_path: Path, frame: Any
) -> None:
    model, df = column_model(frame)
    sig = infer_signature(df)
    converted = convert(model, sig, BOTH, ints_as_floats=True)  # age: int64, as double
    path = save_model(
        converted.data, tmp_path / "m", signature=sig, flavor="onnx", methods=BOTH,
        input_example=df.head(3),
    )  # fmt: skip
    manifest = Manifest.read(path)
    assert set(manifest.files) == {"model.onnx"}
    assert manifest.onnx is not None and manifest.onnx.outputs == {
        "predict": "label",
        "predict_proba": "probabilities",
    }
    assert [s.to_dict() for s in manifest.signature.outputs] == [
        {"name": "predict", "dtype": "int64", "shape": [-1]},
        {"name": "predict_proba", "dtype": "float64", "shape": [-1, 2]},
    ]
    loaded = load_model(path)
    assert loaded.serving_path == "onnx"
    batch, _ = coerce_batch(loaded.signature, {c: df[c].to_numpy() for c in df.columns})
    out = loaded.predict(batch)
    assert np.array_equal(out["predict"], model.predict(df))
    assert np.abs(out["predict_proba"] - model.predict_proba(df)).max() <= TOLERANCE
    assert np.array_equal(loaded.estimator.predict(df), model.predict(df))  # a frame, too
    with pytest.raises(InvalidInputError, match="Missing input 'city'"):
        loaded.predict({"age": batch["age"], "fare": batch["fare"]})


def test_a_tensor_model_round_trips_from_a_model_proto(
    tmp_path: Path, cancer: Any, tensor_model: Any
) -> None:
    x, y = cancer
    model, data = tensor_model
    path = save_model(
        onnx.load_model_from_string(data), tmp_path / "m", signature=infer_signature(x, y),
        flavor="onnx", methods=BOTH, input_example=x[:2],
    )  # fmt: skip
    loaded = load_model(path)
    out = loaded.predict(x)
    assert out["predict"].dtype == np.int64
    assert np.array_equal(out["predict"], model.predict(x))
    assert np.abs(out["predict_proba"] - model.predict_proba(x)).max() <= TOLERANCE
    with pytest.raises(InvalidInputError, match="The ONNX model refused the input"):
        loaded.predict({"input": x[:, :3]})


def test_a_regressor_answers_one_value_per_row(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x, y)
    sig = infer_signature(x)
    data = convert(model, sig, ("predict",)).data
    path = save_model(data, tmp_path / "m", signature=sig, flavor="onnx", input_example=x[:2])
    out = load_model(path).predict(x)["predict"]
    assert out.shape == (len(x),)
    assert np.allclose(out, model.predict(x), rtol=1e-12)


def test_a_tampered_model_onnx_is_refused_by_its_digest(
    tmp_path: Path, cancer: Any, tensor_model: Any
) -> None:
    x, y = cancer
    path = save_model(
        tensor_model[1], tmp_path / "m", signature=infer_signature(x, y), flavor="onnx",
        methods=BOTH,
    )  # fmt: skip
    raw = bytearray((path / "model.onnx").read_bytes())
    raw[-20] ^= 0xFF
    (path / "model.onnx").write_bytes(bytes(raw))
    with pytest.raises(InvalidInputError, match="'model.onnx' has sha256 .* manifest records"):
        load_model(path)


def test_inputs_that_are_not_the_signatures_are_refused_naming_both(
    tmp_path: Path, cancer: Any, tensor_model: Any, frame: Any
) -> None:
    df, _ = frame
    with pytest.raises(InvalidInputError, match=r"has inputs \['input'\] but the signature has"):
        save_model(tensor_model[1], tmp_path / "m", signature=infer_signature(df), flavor="onnx")


def test_a_method_without_an_output_is_refused_naming_the_outputs(
    tmp_path: Path, cancer: Any, tensor_model: Any
) -> None:
    x, y = cancer
    with pytest.raises(InvalidInputError, match=r"outputs \['label', 'probabilities'\] and none"):
        save_model(
            tensor_model[1], tmp_path / "m", signature=infer_signature(x, y), flavor="onnx",
            methods=("predict", "decision_function"),
        )  # fmt: skip


def add_one_model(op_domain: str = "", op: str = "Add") -> onnx.ModelProto:
    """``y = x + 1`` over a [None, 2] float input (or an operator ``op`` of ``op_domain``)."""
    one = numpy_helper.from_array(np.ones(2, dtype=np.float32), "one")
    node = helper.make_node(op, ["input", "one"], ["predict"], domain=op_domain)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("predict", TensorProto.FLOAT, [None, 2])],
        initializer=[one],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17)]
    if op_domain:
        opsets.append(helper.make_opsetid(op_domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def test_a_hand_built_model_serves_its_output_named_after_the_method(tmp_path: Path) -> None:
    sig = Signature(
        inputs=(TensorSpec("input", "float32", (-1, 2)),),
        outputs=(TensorSpec("predict", "float32", (-1, 2)),),
    )
    path = save_model(add_one_model(), tmp_path / "m", signature=sig, flavor="onnx")
    out = load_model(path).predict(np.array([[1.0, 2.0]], dtype=np.float32))
    assert out["predict"].tolist() == [[2.0, 3.0]]


def test_an_operator_of_an_unknown_domain_is_refused_not_run(tmp_path: Path) -> None:
    sig = Signature(inputs=(TensorSpec("input", "float32", (-1, 2)),))
    model = add_one_model(op_domain="com.example.custom", op="RunShell")
    with pytest.raises(InvalidInputError, match="onnxruntime cannot load The ONNX model"):
        save_model(model, tmp_path / "m", signature=sig, flavor="onnx")


def test_a_model_whose_tensors_live_in_external_files_is_refused(tmp_path: Path) -> None:
    model = add_one_model()
    onnx.save_model(
        model, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
        location="weights.bin", size_threshold=0,
    )  # fmt: skip
    assert (tmp_path / "weights.bin").exists()
    data = (tmp_path / "ext.onnx").read_bytes()
    with pytest.raises(InvalidInputError, match="stores tensor 'one' in an external file"):
        refuse_external_data(data, "'ext.onnx'")
    sig = Signature(inputs=(TensorSpec("input", "float32", (-1, 2)),))
    with pytest.raises(InvalidInputError, match="external file"):
        save_model(tmp_path / "ext.onnx", tmp_path / "m", signature=sig, flavor="onnx")


def test_bytes_that_are_not_onnx_are_refused(tmp_path: Path) -> None:
    sig = Signature(inputs=(TensorSpec("input", "float32", (-1, 2)),))
    with pytest.raises(InvalidInputError, match="is not a readable ONNX model"):
        save_model(b"\x08\x07not onnx at all", tmp_path / "m", signature=sig, flavor="onnx")
    with pytest.raises(InvalidInputError, match="not dict"):
        save_model({}, tmp_path / "m", signature=sig, flavor="onnx")


def test_loading_without_onnxruntime_names_the_extra_to_install(
    tmp_path: Path, cancer: Any, tensor_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = cancer
    path = save_model(tensor_model[1], tmp_path / "m", signature=infer_signature(x, y),
                      flavor="onnx", methods=BOTH)  # fmt: skip
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(DependencyMissingError, match=r"pip install 'loopline\[onnx\]'"):
        load_model(path)
