"""`loopline render --target kubernetes`: manifests on stdout, warnings on stderr, validation
before printing, the model pinned through the registry, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from loopline.artifacts import FsspecArtifactStore
from loopline.metadata.entities import ArtifactState
from loopline.metadata.urls import open_store
from loopline.registry import ModelRegistry

REPO = Path(__file__).resolve().parents[2]
TAXI = str(REPO / "examples/taxi/deployment.yaml")


def render(*args: str, env: dict[str, str] | None = None) -> Result:
    from loopline.cli.main import cli

    return CliRunner().invoke(cli, ["render", *args], env=env)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "deployment.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_output_is_kubectl_multi_document_yaml_and_warnings_go_to_stderr() -> None:
    result = render("-f", TAXI, "--target", "kubernetes", "--image", "img:1")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "PodDisruptionBudget"]
    assert result.stdout.startswith("---\napiVersion: apps/v1\n")
    assert "warning: Model 'taxi@champion' is not pinned" in result.stderr


def test_json_output_is_a_v1_list() -> None:
    result = render("-f", TAXI, "-o", "json", "-n", "ml")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["apiVersion"], body["kind"]) == ("v1", "List")
    assert {item["metadata"]["namespace"] for item in body["items"]} == {"ml"}


BAD_LABEL = """\
apiVersion: loopline/v1
kind: Deployment
metadata: {name: taxi, labels: {team: "%s"}}
spec: {model: taxi/1}
""" % ("x" * 64)


def test_manifests_that_do_not_validate_are_not_printed(tmp_path: Path) -> None:
    result = render("-f", write(tmp_path, BAD_LABEL))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Deployment/taxi metadata.labels.team: label value" in result.stderr


def test_no_validate_prints_them_anyway(tmp_path: Path) -> None:
    result = render("-f", write(tmp_path, BAD_LABEL), "--no-validate")
    assert result.exit_code == 0, result.output
    assert "x" * 64 in result.stdout


def test_a_document_that_is_not_a_deployment_is_refused_naming_it() -> None:
    result = render("-f", str(REPO / "examples/taxi/analysis.yaml"))
    assert result.exit_code == 1
    assert "Document 1 of" in result.stderr and "'AnalysisTemplate'" in result.stderr


def test_a_malformed_spec_fails_naming_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: loopline/v1\nkind: Deployment\nmetadata: {name: taxi}\n"
                           "spec: {model: taxi/1, replicas: -2}\n")  # fmt: skip
    result = render("-f", path)
    assert result.exit_code == 1
    assert "spec.replicas" in result.stderr


def test_a_malformed_gateway_fails_naming_it() -> None:
    result = render("-f", TAXI, "--gateway", "Infra/public")
    assert result.exit_code == 1
    assert "Gateway 'Infra/public': the namespace 'Infra' is not a DNS-1123 label" in (
        result.stderr.replace("\n", " "))


def test_model_dir_needs_pin() -> None:
    result = render("-f", TAXI, "--model-dir", "/models/taxi")
    assert result.exit_code == 1
    assert "add --pin" in " ".join(result.stderr.split())  # however the terminal wraps it


@pytest.fixture()
def registry_env(tmp_path: Path) -> tuple[dict[str, str], str]:
    """A registry where taxi@champion is version 1, and its digest."""
    env = {"LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
           "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
           "LOOPLINE_HOME": str(tmp_path / "home")}  # fmt: skip
    metadata = open_store(env["LOOPLINE_DB_URL"])
    artifacts = FsspecArtifactStore(env["LOOPLINE_ARTIFACT_ROOT"])
    try:
        uri = artifacts.allocate("Model", "run-1/trainer")
        with artifacts.staging() as staged:
            (Path(staged) / "model.bin").write_bytes(b"taxi")
            digest = artifacts.publish(staged, uri)
        art = metadata.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE)
        registry = ModelRegistry(metadata, artifacts)
        registry.register("taxi", art.id, who="test", why="render test")
        registry.set_alias("taxi", "champion", 1, who="test", why="render test")
    finally:
        metadata.close()
    return env, digest


def test_pin_serves_the_version_the_alias_points_at_and_annotates_its_digest(
    registry_env: tuple[dict[str, str], str],
) -> None:
    env, digest = registry_env
    result = render("-f", TAXI, "--pin", env=env)
    assert result.exit_code == 0, result.output
    deployment = next(yaml.safe_load_all(result.stdout))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "taxi/1"
    assert deployment["metadata"]["annotations"]["loopline.dev/model-digest"] == digest
    assert "not pinned" not in result.stderr


def test_pin_with_model_dir_serves_the_baked_model_checked_against_the_digest(
    registry_env: tuple[dict[str, str], str],
) -> None:
    env, digest = registry_env
    result = render("-f", TAXI, "--pin", "--model-dir", "/models/taxi", env=env)
    assert result.exit_code == 0, result.output
    container = next(yaml.safe_load_all(result.stdout))["spec"]["template"]["spec"][
        "containers"][0]  # fmt: skip
    assert container["args"][:1] == ["/models/taxi"]
    assert container["args"][container["args"].index("--expected-digest") + 1] == digest
    assert "envFrom" not in container


def test_pin_of_a_model_the_registry_does_not_know_fails(tmp_path: Path) -> None:
    env = {"LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
           "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
           "LOOPLINE_HOME": str(tmp_path / "home")}  # fmt: skip
    result = render("-f", TAXI, "--pin", env=env)
    assert result.exit_code == 4
    assert "taxi" in result.stderr
