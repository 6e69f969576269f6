"""`loopline build`: the context and Dockerfile, Cloud Build's config with rendered manifests,
and clear refusals. (The real build, push and run: tests/deploy/images/test_image_integration.)"""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner, Result

REPO = Path(__file__).resolve().parents[2]
TAXI = str(REPO / "examples/taxi/deployment.yaml")


def build(*args: str) -> Result:
    from loopline.cli.main import cli

    return CliRunner().invoke(cli, ["build", *args])


def said(result: Result) -> str:
    """stderr with the console's line wrapping undone."""
    return " ".join(result.stderr.split())


def test_dockerfile_only_writes_the_context_and_prints_its_path(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    result = build("--dockerfile-only", "--no-wheelhouse", "--context", str(ctx),
                   "--extras", "serve")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{ctx}\n"
    text = (ctx / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text and "ENTRYPOINT" not in text
    assert "starlette==" in (ctx / "requirements.txt").read_text()


def test_cloudbuild_writes_a_valid_config_and_the_rendered_manifests(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    result = build("--cloudbuild", "--push", "us-central1-docker.pkg.dev/proj/ml",
                   "--deployment", TAXI, "--context", str(ctx), "-n", "ml")  # fmt: skip
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((ctx / "cloudbuild.yaml").read_text())
    assert config["substitutions"]["_IMAGE"] == "us-central1-docker.pkg.dev/proj/ml/loopline"
    assert [s["id"] for s in config["steps"]] == ["test", "build", "push", "deploy"]
    objects = list(yaml.safe_load_all((ctx / "k8s/manifests.yaml").read_text()))
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("us-central1-docker.pkg.dev/proj/ml/loopline:")
    assert not (ctx / "wheels").exists()  # Cloud Build's builders reach PyPI themselves
    assert "gcloud builds submit" in said(result)


def test_cloudbuild_without_a_registry_is_refused() -> None:
    result = build("--cloudbuild")
    assert result.exit_code != 0
    assert "--cloudbuild pushes to a registry Cloud Build can reach; pass --push" in said(result)


def test_a_deployment_without_cloudbuild_is_refused() -> None:
    result = build("--deployment", TAXI)
    assert "rendered for Cloud Build's deploy step only; add --cloudbuild" in said(result)


def test_a_malformed_tag_is_refused_naming_it() -> None:
    result = build("--tag", "Loopline:1", "--dockerfile-only")
    assert result.exit_code != 0
    assert "Tag 'Loopline:1' is not an image name" in said(result)
