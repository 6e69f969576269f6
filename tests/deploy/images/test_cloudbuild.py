"""cloudbuild.yaml: test → build → push → deploy, checked by loopline's schema of that subset
and, when gcloud is installed, by gcloud's own loader (offline)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopline.deploy.images import CloudBuildPlan, cloudbuild_config, validate_cloudbuild
from loopline.errors import InvalidDefinitionError

PLAN = CloudBuildPlan(image="us-central1-docker.pkg.dev/proj/ml/loopline",
                      test_command="loopline --version", deploy=True)  # fmt: skip


def config() -> dict[str, Any]:
    return copy.deepcopy(cloudbuild_config(PLAN))


def test_the_steps_run_test_and_build_together_then_push_then_deploy() -> None:
    steps = {s["id"]: s for s in config()["steps"]}
    assert list(steps) == ["test", "build", "push", "deploy"]
    assert steps["build"]["waitFor"] == ["-"]
    assert steps["push"]["waitFor"] == ["test", "build"]
    assert steps["deploy"]["name"] == "gcr.io/cloud-builders/gke-deploy"
    assert "--image=${_IMAGE}:$BUILD_ID" in steps["deploy"]["args"]
    assert "BASE_IMAGE=python:3.11-slim" in steps["build"]["args"]
    validate_cloudbuild(config())


def test_without_manifests_there_is_no_deploy_step() -> None:
    steps = cloudbuild_config(CloudBuildPlan(image="x/loopline", test_command="true"))["steps"]
    assert [s["id"] for s in steps] == ["test", "build", "push"]


@pytest.mark.parametrize(("break_it", "message"), [
    (lambda c: c["steps"][3].update(waitfor=["push"]),
     r"steps\.3: Additional properties are not allowed \('waitfor' was unexpected\)"),
    (lambda c: c["substitutions"].update(_cluster="x"),
     r"substitutions: '_cluster' does not match"),
    (lambda c: c.update(timeout="30 minutes"), r"timeout: '30 minutes' does not match"),
    (lambda c: c["steps"][2].update(waitFor=["tests"]),
     r"steps\.2\.waitFor: 'tests' is not the id of an earlier step; name one of build, test"),
    (lambda c: c["steps"][0].pop("name"), r"steps\.0: 'name' is a required property"),
])  # fmt: skip
def test_a_broken_config_fails_naming_the_field(break_it: Any, message: str) -> None:
    broken = config()
    break_it(broken)
    with pytest.raises(InvalidDefinitionError, match=message):
        validate_cloudbuild(broken)


def _gcloud_python() -> tuple[str, Path]:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed: its own cloudbuild.yaml loader cannot be run")
    info = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root,basic.python_location)"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()  # fmt: skip
    return info[1], Path(info[0])


LOADER = """
import sys
sys.path[:0] = [sys.argv[2] + "/lib", sys.argv[2] + "/lib/third_party"]
from googlecloudsdk.api_lib.cloudbuild import cloudbuild_util, config
build = config.LoadCloudbuildConfigFromPath(sys.argv[1], cloudbuild_util.GetMessagesModule())
print(len(build.steps), [s.id for s in build.steps], [list(s.waitFor) for s in build.steps])
"""


def test_gclouds_own_loader_reads_the_config_and_rejects_a_typo(tmp_path: Path) -> None:
    python, sdk = _gcloud_python()
    good = tmp_path / "cloudbuild.yaml"
    good.write_text(yaml.safe_dump(config(), sort_keys=False))
    done = subprocess.run([python, "-c", LOADER, str(good), str(sdk)], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("4 ['test', 'build', 'push', 'deploy']")
    broken = config()
    broken["steps"][3]["waitfor"] = broken["steps"][3].pop("waitFor")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(broken, sort_keys=False))
    done = subprocess.run([python, "-c", LOADER, str(bad), str(sdk)], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode != 0 and "waitfor" in done.stderr
