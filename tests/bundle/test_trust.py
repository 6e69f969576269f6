"""No code runs from a bundle unless an operator trusts it (issue #11, model loading)."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from tests.bundle.selfsaving import Centroids

from loopline.artifacts import FsspecArtifactStore
from loopline.bundle import (
    MANIFEST_NAME,
    TRUSTED_TYPES,
    Trust,
    infer_signature,
    load_model,
    save_model,
)
from loopline.errors import InvalidInputError

CENTROIDS = "tests.bundle.selfsaving:Centroids"


class _RunsShell:
    """Unpickling this runs a shell command (what a hostile bundle would ship)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def _hostile_python_bundle(root: Path, marker: Path, loader: str) -> Path:
    """A bundle whose loader unpickles a file that writes ``marker`` (via os.system)."""
    root.mkdir()
    payload = pickle.dumps(_RunsShell(f"touch {marker}"))
    (root / "model").write_bytes(payload)
    manifest = {
        "format_version": 1,
        "flavor": "python",
        "signature": {"inputs": [{"name": "x", "dtype": "float64", "shape": [-1]}]},
        "methods": ["predict"],
        "input_kind": "array",
        "files": {"model": hashlib.sha256(payload).hexdigest()},
        "loader": loader,
        "has_transform": False,
    }
    (root / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    return root


def test_a_bundle_naming_joblib_as_its_loader_is_refused_before_any_code_runs(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    path = _hostile_python_bundle(tmp_path / "m", marker, "joblib:numpy_pickle")
    with pytest.raises(
        InvalidInputError,
        match=r"names loader 'joblib:numpy_pickle', which is not a trusted loader .*"
        r"add it to LOOPLINE_TRUSTED_LOADERS",
    ):
        load_model(path)
    assert not marker.exists()


def test_a_trusted_loader_is_the_only_one_a_bundle_may_name(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _hostile_python_bundle(tmp_path / "m", marker, "joblib:numpy_pickle")
    with pytest.raises(InvalidInputError, match=r"trusted: \['tests.bundle.selfsaving:Centroids'"):
        load_model(path, trust=Trust(loaders=frozenset({CENTROIDS})))
    assert not marker.exists()


def test_a_self_saving_model_loads_only_once_its_loader_is_trusted(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    path = save_model(Centroids.fit(x, y), tmp_path / "m", signature=infer_signature(x),
                      flavor="python")  # fmt: skip
    with pytest.raises(InvalidInputError, match=f"names loader '{CENTROIDS}', which is not"):
        load_model(path)
    loaded = load_model(path, trust=Trust(loaders=frozenset({CENTROIDS})))
    assert (loaded.predict(x)["predict"] == Centroids.fit(x, y).predict(x)).all()


def test_no_trust_given_is_the_built_in_trust(tmp_path: Path) -> None:
    """A step's ``ctx.trust`` is None when the operator set no trust; passing it on loads what
    the built-in list allows and refuses the rest."""
    x, y = load_iris(return_X_y=True)
    path = save_model(Centroids.fit(x, y), tmp_path / "m", signature=infer_signature(x),
                      flavor="python")  # fmt: skip
    with pytest.raises(InvalidInputError, match=f"names loader '{CENTROIDS}', which is not"):
        load_model(path, trust=None)
    lr = save_model(LogisticRegression(max_iter=500).fit(x, y), tmp_path / "lr",
                    signature=infer_signature(x))  # fmt: skip
    assert load_model(lr, trust=None).predict(x[:2])["predict"].shape == (2,)


def test_trusted_names_must_be_exact() -> None:
    with pytest.raises(InvalidInputError, match=r"Trusted loader 'joblib' is not an exact name"):
        Trust(loaders=frozenset({"joblib"}))
    with pytest.raises(InvalidInputError, match=r"Trusted type 'numpy\.\*' is not an exact name"):
        Trust(types=frozenset({"numpy.*"}))


def test_a_function_transformer_calling_numpy_save_is_refused_with_the_function_named(
    tmp_path: Path,
) -> None:
    x, y = load_iris(return_X_y=True)
    hostile = make_pipeline(FunctionTransformer(func=np.save), LogisticRegression())
    hostile.steps[-1] = ("logisticregression", LogisticRegression(max_iter=300).fit(x, y))
    path = save_model(hostile, tmp_path / "m", signature=infer_signature(x))
    with pytest.raises(
        InvalidInputError,
        match=r"contains type 'numpy\.save', which is not a trusted type.*LOOPLINE_TRUSTED_TYPES",
    ):
        load_model(path)


def test_an_operator_can_trust_one_more_exact_function(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    model = make_pipeline(FunctionTransformer(func=np.abs), LogisticRegression(max_iter=300))
    path = save_model(model.fit(x, y), tmp_path / "m", signature=infer_signature(x))
    assert load_model(path).predict(x)["predict"].shape == (150,)  # ufuncs: skops' defaults
    hostile = make_pipeline(
        FunctionTransformer(func=np.nan_to_num), LogisticRegression(max_iter=300)
    )
    path = save_model(hostile.fit(x, y), tmp_path / "r", signature=infer_signature(x))
    with pytest.raises(InvalidInputError, match=r"'numpy\.nan_to_num'"):
        load_model(path)
    loaded = load_model(path, trust=Trust(types=frozenset({"numpy.nan_to_num"})))
    assert loaded.predict(x)["predict"].shape == (150,)


def _taxi_like() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "trip_miles": rng.random(200) * 10,
        "fare": rng.random(200) * 40,
        "company": rng.choice(["Flash Cab", "Taxi Affiliation", "Sun Taxi"], 200).astype(object),
    })  # fmt: skip
    return frame, (frame.fare > 20).to_numpy().astype(np.int64)


def _column_pipeline(model: Any) -> Pipeline:
    transform = ColumnTransformer([
        ("numeric", StandardScaler(), ["trip_miles", "fare"]),
        ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["company"]),
    ])  # fmt: skip
    return Pipeline([("transform", transform), ("model", model)])


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=5, random_state=0),
        HistGradientBoostingClassifier(max_iter=5),
        KNeighborsClassifier(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_the_models_the_examples_train_load_with_the_built_in_list(
    tmp_path: Path, model: Any
) -> None:
    x, y = _taxi_like()
    taxi = _column_pipeline(model).fit(x, y)
    path = save_model(taxi, tmp_path / "taxi", signature=infer_signature(x, y),
                      methods=("predict", "predict_proba"), input_example=x.head(3))  # fmt: skip
    loaded = load_model(path)
    batch = {c: x[c].to_numpy() for c in x.columns}
    assert (loaded.predict(batch)["predict"] == taxi.predict(x)).all()
    ix, iy = load_iris(return_X_y=True, as_frame=True)
    iris = make_pipeline(StandardScaler(), type(model)(**model.get_params())).fit(ix, iy)
    path = save_model(iris, tmp_path / "iris", signature=infer_signature(ix, iy))
    iris_batch = {c: ix[c].to_numpy() for c in ix.columns}
    assert (load_model(path).predict(iris_batch)["predict"] == iris.predict(ix)).all()


def test_the_built_in_list_names_exact_types_not_modules() -> None:
    assert all("." in t and not t.endswith("*") for t in TRUSTED_TYPES)
    assert "numpy.save" not in TRUSTED_TYPES


def test_a_file_swapped_in_the_store_after_hashing_is_never_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time of check vs time of use: the bytes loaded are the bytes whose digest was checked."""
    import skops.io as sio

    x, y = load_iris(return_X_y=True)
    store = FsspecArtifactStore(str(tmp_path / "store"))
    genuine = LogisticRegression(max_iter=300).fit(x, y)
    with store.staging() as staged:
        save_model(genuine, staged / "bundle", signature=infer_signature(x))
        for f in (staged / "bundle").iterdir():
            f.rename(staged / f.name)
        (staged / "bundle").rmdir()
        uri = store.allocate("Model", "iris")
        digest = store.publish(staged, uri)
    swapped = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, 1 - y)
    other = tmp_path / "other"
    save_model(swapped, other, signature=infer_signature(x))
    real_check = sio.get_untrusted_types

    def swap_then_check(**kwargs: Any) -> list[str]:
        # Runs after the digest check, right before skops reads the model: the moment an
        # attacker with write access to the store folder would swap the file.
        with store.open_local(uri) as live:
            os.replace(other / "model.skops", live / "model.skops")
        return real_check(**kwargs)

    monkeypatch.setattr(sio, "get_untrusted_types", swap_then_check)
    with store.open_local(uri) as local:
        loaded = load_model(local, expected_digest=digest)
    assert type(loaded.estimator) is LogisticRegression
    assert (loaded.predict(x)["predict"] == genuine.predict(x)).all()
