"""What ``loopline serve MODEL_REF`` loads: a reference always goes to the registry and is
checked against its digest; a directory only when written as a path, and only with a digest
or ``--allow-unverified`` (said loudly); python-flavor loaders only when the operator trusts
them (issue #11, model loading)."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from loopline.artifacts import FsspecArtifactStore
from loopline.bundle import MANIFEST_NAME, infer_signature, save_model, tree_digest
from loopline.cli.serve_process import load_models, model_source
from loopline.errors import ConfigurationError, InvalidInputError, NotFoundError
from loopline.metadata import ArtifactState, open_store
from loopline.registry import ModelRegistry
from loopline.serving import ServeCommand
from loopline.settings import Settings
from loopline.testing.artifacts import wait_for
from loopline.types import ModelRef
from tests.bundle.selfsaving import Centroids

CENTROIDS = "tests.bundle.selfsaving:Centroids"


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def _hostile_bundle(root: Path, marker: Path) -> Path:
    """A python-flavor bundle whose loader (joblib) unpickles a file that writes ``marker``."""
    root.mkdir(parents=True)
    payload = pickle.dumps(_RunsShell(f"touch {marker}"))
    (root / "model").write_bytes(payload)
    (root / MANIFEST_NAME).write_text(yaml.safe_dump({
        "format_version": 1, "flavor": "python", "methods": ["predict"], "input_kind": "array",
        "signature": {"inputs": [{"name": "x", "dtype": "float64", "shape": [-1]}]},
        "files": {"model": hashlib.sha256(payload).hexdigest()},
        "loader": "joblib:numpy_pickle", "has_transform": False,
    }))  # fmt: skip
    return root


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
            "LOOPLINE_HOME": str(tmp_path / "home"),
            **env,
        },
        cwd=tmp_path,
    )


def _register(settings: Settings, name: str, bundle: Path) -> str:
    """Publish ``bundle`` as a live Model artifact, register it; return its digest."""
    metadata = open_store(settings.db_url)
    artifacts = FsspecArtifactStore(settings.artifact_root)
    try:
        uri = artifacts.allocate("Model", f"{name}/model")
        with artifacts.staging() as staged:
            shutil.copytree(bundle, staged, dirs_exist_ok=True)
            digest = artifacts.publish(staged, uri)
        art = metadata.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE)
        ModelRegistry(metadata, artifacts).register(name, art.id, who="test", why="trust test")
    finally:
        metadata.close()
    return digest


@pytest.fixture(scope="module")
def iris_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("iris") / "iris"
    return save_model(LogisticRegression(max_iter=300).fit(x, y), path,
                      signature=infer_signature(x), input_example=x[:2])  # fmt: skip


def test_a_reference_and_a_path_are_told_apart_by_how_they_are_written() -> None:
    assert model_source("taxi/3") == ModelRef("taxi", version=3)
    assert model_source("taxi@champion") == ModelRef("taxi", alias="champion")
    assert model_source("taxi") == ModelRef("taxi")
    assert model_source("./taxi/3") == Path("taxi/3")
    assert model_source("/srv/models/taxi") == Path("/srv/models/taxi")
    assert model_source("../m") == Path("../m")
    with pytest.raises(InvalidInputError, match=r"write it as a path, e\.g\. \./models/lr\."):
        model_source("models/lr")


def test_name_slash_version_goes_to_the_registry_even_when_such_a_folder_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    _hostile_bundle(tmp_path / "taxi" / "3", marker)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFoundError, match=r"'taxi' is not registered.*a reference is never "
                       r"read from a folder; to serve it .* write \./taxi/3"):  # fmt: skip
        load_models(ServeCommand(models=("taxi/3",)), _settings(tmp_path))
    assert not marker.exists()


def test_a_directory_without_a_digest_is_refused_unless_allowed_unverified(
    tmp_path: Path, iris_bundle: Path
) -> None:
    with pytest.raises(InvalidInputError, match=r"has no digest to check it against.*"
                       r"--expected-digest sha256:<hex>.*--allow-unverified"):  # fmt: skip
        load_models(ServeCommand(models=(str(iris_bundle),)), _settings(tmp_path))
    (served,) = load_models(
        ServeCommand(models=(str(iris_bundle),), allow_unverified=True), _settings(tmp_path)
    )
    assert served.name == "iris"


def test_a_directory_is_served_against_the_expected_digest(
    tmp_path: Path, iris_bundle: Path
) -> None:
    digest = tree_digest(iris_bundle)
    command = ServeCommand(models=(str(iris_bundle),), expected_digest=digest)
    assert load_models(command, _settings(tmp_path))[0].model.digest == digest
    wrong = ServeCommand(models=(str(iris_bundle),), expected_digest="sha256:" + "0" * 64)
    with pytest.raises(InvalidInputError, match="but the registry recorded sha256:000"):
        load_models(wrong, _settings(tmp_path))


def test_directory_flags_are_refused_for_registry_references(tmp_path: Path) -> None:
    command = ServeCommand(models=("taxi/3",), allow_unverified=True)
    with pytest.raises(InvalidInputError, match="--allow-unverified applies to model directories"):
        load_models(command, _settings(tmp_path))


def test_a_registered_python_model_loads_only_with_its_loader_trusted(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    bundle = save_model(Centroids.fit(x, y), tmp_path / "bundle", signature=infer_signature(x),
                        flavor="python")  # fmt: skip
    settings = _settings(tmp_path)
    _register(settings, "centroids", bundle)
    with pytest.raises(InvalidInputError, match=f"loader '{CENTROIDS}'.*LOOPLINE_TRUSTED_LOADERS"):
        load_models(ServeCommand(models=("centroids/1",)), settings)
    trusted = _settings(tmp_path, LOOPLINE_TRUSTED_LOADERS=f" {CENTROIDS} ,")
    (served,) = load_models(ServeCommand(models=("centroids/1",)), trusted)
    assert (served.name, served.version) == ("centroids", "1")


def test_a_malformed_trusted_loader_setting_names_the_variable(
    tmp_path: Path, iris_bundle: Path
) -> None:
    settings = _settings(tmp_path, LOOPLINE_TRUSTED_LOADERS="joblib")
    command = ServeCommand(models=(str(iris_bundle),), allow_unverified=True)
    with pytest.raises(ConfigurationError, match="LOOPLINE_TRUSTED_LOADERS.*'joblib'"):
        load_models(command, settings)


@pytest.mark.slow
def test_serving_a_directory_unverified_says_so_loudly_on_start(
    tmp_path: Path, iris_bundle: Path
) -> None:
    command = ServeCommand(models=(str(iris_bundle),), port=0, allow_unverified=True,
                           graceful_timeout=5.0)  # fmt: skip
    proc = subprocess.Popen(command.process_argv(sys.executable), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert "listening on" in line
        warning = proc.stderr.readline()
        assert warning.startswith("loopline serve: WARNING: serving UNVERIFIED model directory")
        assert str(iris_bundle) in warning
        url = line.split("listening on ")[1].split()[0]

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="the unverified model to be served")
    finally:
        proc.terminate()
        proc.wait(60)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
