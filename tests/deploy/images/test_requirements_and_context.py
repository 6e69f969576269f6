"""The image's pinned requirements and the build context written around the Dockerfile."""

from __future__ import annotations

import importlib.metadata
import stat
from pathlib import Path

import pytest

from loopline.artifacts.digest import tree_digest
from loopline.deploy.images import (
    BakedModel,
    ImageRecipe,
    loopline_source,
    pinned_requirements,
    write_context,
)
from loopline.errors import AlreadyExistsError, GateFailedError, InvalidInputError


def test_pins_are_the_installed_versions_of_the_extras_closure_without_loopline() -> None:
    pins = {p.name: p.version for p in pinned_requirements(["serve"])}
    assert pins["starlette"] == importlib.metadata.version("starlette")
    assert "anyio" in pins  # starlette's own dependency: the closure, not only direct ones
    assert "loopline" not in pins
    assert "scikit-learn" not in pins  # not asked for
    assert "scikit-learn" in {p.name for p in pinned_requirements(["sklearn"])}


def test_an_extra_loopline_does_not_declare_is_refused_naming_the_known_ones() -> None:
    known = r"Extra 'gpu' is not one of loopline's extras \(.*serve"
    with pytest.raises(InvalidInputError, match=known):
        pinned_requirements(["gpu"])


def bundle(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "model.bin").write_bytes(b"weights")
    (root / "sub" / "meta.json").write_text("{}")
    (root / "model.bin").chmod(0o600)
    return root


def test_the_context_holds_what_the_dockerfile_copies_with_readable_modes(tmp_path: Path) -> None:
    source = loopline_source()
    assert source is not None  # the tests run from a checkout
    model = bundle(tmp_path / "bundle")
    app = tmp_path / "project"
    (app / "__pycache__").mkdir(parents=True)
    (app / "pipeline.py").write_text("print('hi')\n")
    (app / "loopline.db").write_text("not for the image")
    recipe = ImageRecipe("0.1.0", app=True,
                         model=BakedModel("iris", "iris/1", tree_digest(model)))  # fmt: skip
    ctx = tmp_path / "ctx"
    write_context(ctx, recipe, pinned_requirements(["serve"]), source=source, app=app,
                  model=model)  # fmt: skip
    assert (ctx / "loopline/src/loopline/__init__.py").is_file()
    assert (ctx / "loopline/pyproject.toml").is_file()
    assert sorted(p.name for p in (ctx / "app").iterdir()) == ["pipeline.py"]
    assert "starlette==" in (ctx / "requirements.txt").read_text()
    copied = ctx / "models/iris/model.bin"
    assert stat.S_IMODE(copied.stat().st_mode) == 0o644
    assert tree_digest(ctx / "models/iris") == tree_digest(model)
    # A rebuild replaces its own context.
    write_context(ctx, ImageRecipe("0.1.0"), [], source=source)
    assert not (ctx / "models").exists()


def test_a_directory_with_someone_elses_files_is_not_used_as_a_context(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AlreadyExistsError, match="already holds files loopline build did not"):
        write_context(tmp_path, ImageRecipe("0.1.0", from_source=False), [])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_model_whose_bytes_changed_since_registration_is_not_baked(tmp_path: Path) -> None:
    model = bundle(tmp_path / "bundle")
    recipe = ImageRecipe("0.1.0", from_source=False,
                         model=BakedModel("iris", "iris/1", "sha256:" + "0" * 64))  # fmt: skip
    with pytest.raises(GateFailedError, match=r"The bundle of iris/1 .* not the registry's"):
        write_context(tmp_path / "ctx", recipe, [], model=model)


def test_a_missing_model_directory_is_named(tmp_path: Path) -> None:
    recipe = ImageRecipe("0.1.0", from_source=False,
                         model=BakedModel("iris", "iris/1", "sha256:" + "0" * 64))  # fmt: skip
    with pytest.raises(InvalidInputError, match="needs the model's bundle, but 'None'"):
        write_context(tmp_path / "ctx", recipe, [])
