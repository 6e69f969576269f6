"""Models of any framework that save themselves: the ``python`` flavor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from tests.bundle.selfsaving import Centroids

from loopline.artifacts.digest import tree_digest
from loopline.bundle import Trust, infer_signature, load_model, save_model
from loopline.errors import InvalidInputError


@pytest.fixture
def iris() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_iris(as_frame=True)
    return data.data, data.target.to_numpy()


def test_a_self_saving_model_round_trips_with_its_transform(tmp_path: Path, iris) -> None:
    x, y = iris
    scaler = StandardScaler().fit(x)
    model = Centroids.fit(scaler.transform(x), y)
    path = save_model(model, tmp_path / "m", signature=infer_signature(x), flavor="python",
                      transform=scaler, input_example=x.head(3))  # fmt: skip
    trust = Trust(loaders=frozenset({"tests.bundle.selfsaving:Centroids"}))
    loaded = load_model(path, expected_digest=tree_digest(path), trust=trust)
    assert loaded.manifest.loader == "tests.bundle.selfsaving:Centroids"
    batch = {c: x[c].to_numpy() for c in x.columns}
    assert (loaded.predict(batch)["predict"] == model.predict(scaler.transform(x))).all()
    assert (loaded.predict(loaded.example_batch())["predict"] == model.predict(
        scaler.transform(x.head(3)))).all()  # fmt: skip


def test_a_changed_file_of_the_model_is_refused_before_its_code_runs(
    tmp_path: Path, iris
) -> None:
    x, y = iris
    path = save_model(Centroids.fit(x.to_numpy(), y), tmp_path / "m",
                      signature=infer_signature(x), flavor="python")  # fmt: skip
    (path / "model" / "labels.npy").write_bytes(b"\x93NUMPY tampered")
    with pytest.raises(InvalidInputError, match="labels.npy' has sha256"):
        load_model(path)


def test_a_file_smuggled_into_the_bundle_is_refused(tmp_path: Path, iris) -> None:
    x, y = iris
    path = save_model(Centroids.fit(x.to_numpy(), y), tmp_path / "m",
                      signature=infer_signature(x), flavor="python")  # fmt: skip
    (path / "model" / "extra.pkl").write_bytes(b"not listed")
    with pytest.raises(InvalidInputError, match="extra.pkl', which its manifest does not list"):
        load_model(path)


def test_a_model_that_cannot_save_itself_is_refused_with_the_protocol(
    tmp_path: Path, iris
) -> None:
    from sklearn.dummy import DummyClassifier

    x, y = iris
    with pytest.raises(InvalidInputError, match=r"needs a save\(directory\) method"):
        save_model(DummyClassifier().fit(x, y), tmp_path / "m", signature=infer_signature(x),
                   flavor="python")  # fmt: skip


def test_a_class_defined_in_a_function_is_refused_because_servers_import_it(
    tmp_path: Path,
) -> None:
    class Local(Centroids):
        pass

    model = Local(np.zeros((1, 2)), np.array([0]))
    with pytest.raises(InvalidInputError, match="define the class in an importable module"):
        save_model(model, tmp_path / "m", signature=infer_signature(np.zeros((2, 2))),
                   flavor="python")  # fmt: skip


def test_transform_is_refused_for_the_sklearn_flavor(tmp_path: Path, iris) -> None:
    x, _ = iris
    with pytest.raises(InvalidInputError, match="transform= goes with flavor 'python'"):
        save_model(StandardScaler().fit(x), tmp_path / "m", signature=infer_signature(x),
                   methods=("transform",), transform=StandardScaler())  # fmt: skip
