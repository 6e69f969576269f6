"""A damaged bundle is an InvalidInputError naming what is wrong, never another exception
(findings of the manifest fuzz suite, issue #11)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from tests.bundle.selfsaving import Centroids

from loopline.bundle import MANIFEST_NAME, Trust, infer_signature, load_model, save_model
from loopline.errors import InvalidInputError


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    x, y = load_iris(return_X_y=True)
    root = tmp_path_factory.mktemp("bundles")
    return {
        "sklearn": save_model(LogisticRegression(max_iter=300).fit(x, y), root / "sklearn",
                              signature=infer_signature(x)),
        "centroids": save_model(Centroids.fit(x, y), root / "centroids",
                                signature=infer_signature(x), flavor="python"),
    }  # fmt: skip


@pytest.mark.parametrize("methods", [[["predict"]], [None], [1], [], [""]])
def test_a_method_that_is_not_a_name_is_refused_naming_the_field(
    bundles: dict[str, Path], tmp_path: Path, methods: list[Any]
) -> None:
    directory = shutil.copytree(bundles["sklearn"], tmp_path / "bundle")
    manifest = yaml.safe_load((directory / MANIFEST_NAME).read_text())
    manifest["methods"] = methods
    (directory / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match="lacks or mangles field 'methods'"):
        load_model(directory)


@pytest.mark.parametrize("text", ["[" * 100_000, "a: " + "[" * 5_000, "- " * 3_000 + "x"])
def test_a_deeply_nested_manifest_is_refused(
    bundles: dict[str, Path], tmp_path: Path, text: str
) -> None:
    directory = shutil.copytree(bundles["sklearn"], tmp_path / "bundle")
    (directory / MANIFEST_NAME).write_text(text)
    with pytest.raises(InvalidInputError, match="loopline-model.yaml' nests too deeply"):
        load_model(directory)


def test_a_huge_manifest_is_refused_before_it_is_parsed(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    directory = shutil.copytree(bundles["sklearn"], tmp_path / "bundle")
    (directory / MANIFEST_NAME).write_bytes(b"a: 1\n" + b"#" * (16 << 20))
    with pytest.raises(InvalidInputError, match=r"a manifest holds at most 16777216"):
        load_model(directory)


def test_a_trusted_loader_failing_on_the_files_names_the_loader_and_the_bundle(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    directory = shutil.copytree(bundles["centroids"], tmp_path / "bundle")
    manifest = yaml.safe_load((directory / MANIFEST_NAME).read_text())
    (directory / "model" / "labels.npy").write_bytes(b"not numpy")
    manifest["files"]["model/labels.npy"] = hashlib.sha256(b"not numpy").hexdigest()
    (directory / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    trust = Trust(loaders=frozenset({"tests.bundle.selfsaving:Centroids"}))
    with pytest.raises(
        InvalidInputError,
        match=r"loader 'tests\.bundle\.selfsaving:Centroids' could not load the bundle .*"
        r"\(ValueError: ",
    ):
        load_model(directory, trust=trust)


def test_a_link_or_a_fifo_in_a_bundle_is_refused_without_reading_it(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    directory = shutil.copytree(bundles["sklearn"], tmp_path / "linked")
    (directory / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInputError, match=r"holds 'passwd', a symbolic link"):
        load_model(directory)
    directory = shutil.copytree(bundles["sklearn"], tmp_path / "fifo")
    os.mkfifo(directory / "pipe")  # opening it for reading would wait for a writer forever
    with pytest.raises(InvalidInputError, match=r"holds 'pipe', a special file"):
        load_model(directory)
