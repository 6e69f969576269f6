"""``loopline serve name@champion`` of registered XGBoost and LightGBM bundles: the real server
(two forked workers) answers what the library answers in process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from loopline.artifacts import FsspecArtifactStore
from loopline.bundle import infer_signature, save_model
from loopline.metadata import ArtifactState, open_store
from loopline.registry import ModelRegistry
from loopline.testing.artifacts import wait_for

pytestmark = pytest.mark.slow

BOTH = ("predict", "predict_proba")


def _register(env: dict[str, str], name: str, bundle: Path) -> None:
    metadata = open_store(env["LOOPLINE_DB_URL"])
    artifacts = FsspecArtifactStore(env["LOOPLINE_ARTIFACT_ROOT"])
    try:
        uri = artifacts.allocate("Model", f"{name}/model")
        with artifacts.staging() as staged:
            shutil.copytree(bundle, staged, dirs_exist_ok=True)
            digest = artifacts.publish(staged, uri)
        art = metadata.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE)
        registry = ModelRegistry(metadata, artifacts)
        registry.register(name, art.id, who="test", why="native flavor serving test")
        registry.set_alias(name, "champion", 1, who="test", why="native flavor serving test")
    finally:
        metadata.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
        "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "LOOPLINE_HOME": str(tmp_path / "home"),
    }


class _Server:
    def __init__(self, env: dict[str, str], ref: str) -> None:
        cmd = [sys.executable, "-c", "from loopline.cli.main import main; main()", "serve", ref,
               "--port", "0", "--workers", "2"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise AssertionError(f"the server did not start: {line}{self.stderr}")
        self.url = line.split("listening on ")[1].split()[0]
        self.stderr = ""

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="the model server to be ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            _, self.stderr = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, self.stderr = self.proc.communicate()


@pytest.fixture
def serve(env: dict[str, str]) -> Iterator[Any]:
    servers: list[_Server] = []

    def start(ref: str) -> _Server:
        servers.append(_Server(env, ref))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
        assert "Traceback" not in server.stderr, server.stderr


def _infer(url: str, model: str, inputs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """One V2 request on a new connection (so both workers answer some); outputs by name."""
    reply = httpx.post(f"{url}/v2/models/{model}/infer", json={"inputs": inputs}, timeout=30)
    assert reply.status_code == 200, reply.text
    return {
        o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in reply.json()["outputs"]
    }


def _column(name: str, values: np.ndarray) -> dict[str, Any]:
    datatype = "BYTES" if values.dtype.kind in "OU" else "FP64"
    return {"name": name, "shape": [len(values)], "datatype": datatype,
            "data": values.tolist()}  # fmt: skip


def test_an_xgboost_classifier_served_answers_as_xgbclassifier(
    tmp_path: Path, env: dict[str, str], serve: Any
) -> None:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    clf = xgb.XGBClassifier(n_estimators=40, max_depth=4, n_jobs=1).fit(x, y)
    bundle = save_model(clf, tmp_path / "bundle", signature=infer_signature(x, y),
                        methods=BOTH, input_example=x.head(3))  # fmt: skip
    _register(env, "cancer-xgb", bundle)
    server = serve("cancer-xgb@champion")
    want_proba, want = clf.predict_proba(x), clf.predict(x)
    for start in range(0, 320, 32):  # ten requests of 32 rows
        rows = x.iloc[start : start + 32]
        out = _infer(server.url, "cancer-xgb",
                     [_column(str(c), rows[c].to_numpy()) for c in x.columns])  # fmt: skip
        np.testing.assert_array_equal(out["predict"], want[start : start + 32])
        np.testing.assert_array_equal(out["predict_proba"], want_proba[start : start + 32])


def test_a_lightgbm_classifier_with_a_categorical_column_served_answers_as_lgbmclassifier(
    tmp_path: Path, env: dict[str, str], serve: Any
) -> None:
    rng = np.random.default_rng(3)
    n = 800
    frame = pd.DataFrame({
        "fare": rng.random(n) * 100,
        "city": pd.Categorical(rng.choice(["paris", "lyon", "nice"], n)),
    })  # fmt: skip
    labels = np.where((frame.fare > 50) ^ (frame.city == "nice"), "tip", "no tip")
    clf = lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1).fit(frame, labels)
    bundle = save_model(clf, tmp_path / "bundle", signature=infer_signature(frame, labels),
                        methods=BOTH, input_example=frame.head(3))  # fmt: skip
    _register(env, "taxi-lgb", bundle)
    server = serve("taxi-lgb@champion")
    want_proba, want = clf.predict_proba(frame), clf.predict(frame)
    for start in range(0, 320, 32):
        rows = frame.iloc[start : start + 32]
        out = _infer(server.url, "taxi-lgb", [
            _column("fare", rows.fare.to_numpy()),
            _column("city", rows.city.astype(str).to_numpy()),
        ])  # fmt: skip
        np.testing.assert_array_equal(out["predict"], want[start : start + 32])
        np.testing.assert_array_equal(out["predict_proba"], want_proba[start : start + 32])
