"""Golden files: the taxi example's deployment.yaml and canary.yaml as ``loopline render``
prints them. A change to the rendering shows up here as a diff; when it is intended, rewrite
the files with ``LOOPLINE_UPDATE_GOLDEN=1 pytest tests/deploy/engines/kubernetes`` and review
the diff like code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from loopline.cli.main import cli
from loopline.deploy.engines.kubernetes import check

REPO = Path(__file__).resolve().parents[4]
GOLDEN = Path(__file__).parent / "golden"
IMAGE = "registry.example.com/ml/loopline:1.0"
CASES = {
    "taxi-deployment.yaml": ["-f", "examples/taxi/deployment.yaml"],
    "taxi-canary.yaml": ["-f", "examples/taxi/canary.yaml", "--gateway", "infra/public"],
}


@pytest.mark.parametrize("golden", list(CASES))
def test_the_taxi_example_renders_to_its_golden_manifests(
    golden: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    args = ["render", *CASES[golden], "--target", "kubernetes", "--image", IMAGE, "-n", "taxi"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    path = GOLDEN / golden
    if os.environ.get("LOOPLINE_UPDATE_GOLDEN") == "1":
        path.write_text(result.stdout)
    assert result.stdout == path.read_text()
    assert check(list(yaml.safe_load_all(result.stdout))) == []
