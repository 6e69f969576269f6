"""The kubectl-style deployment verbs, end to end: the real CLI starts the real control
plane, which runs real ``loopline serve`` replicas and a router on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import yaml

from loopline.controlplane.build import open_state_store
from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.files import ControlPlaneFiles
from loopline.platform import Platform
from loopline.settings import Settings
from tests.controlplane.conftest import bc_bundles
from tests.controlplane.live import kill_all_processes, register_models

Run = Callable[..., CompletedProcess[str]]
__all__ = ["bc_bundles"]  # the session fixture, shared with tests/controlplane

SECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
MICROS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
SPEC = """\
apiVersion: loopline/v1
kind: Deployment
metadata:
  name: bc
spec:
  model: bc@champion
  replicas: 1
  progressDeadlineSeconds: 120
"""


def stop_controlplane(home: Path) -> None:
    """Delete every deployment, then SIGTERM the control plane and wait for it."""
    files = ControlPlaneFiles(home)
    endpoint = files.read_endpoint()
    if endpoint is None or not endpoint.is_alive():
        return
    with ControlPlaneClient(endpoint.url, token=files.read_token(), timeout=60) as client:
        for d in client.list_deployments():
            client.delete(d.metadata.name, timeout=60)
    os.kill(endpoint.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while endpoint.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if endpoint.is_alive():
        os.kill(endpoint.pid, signal.SIGKILL)


@pytest.fixture
def workdir(tmp_path: Path, bc_bundles: list[Path]) -> Iterator[Path]:
    """A working directory whose default registry holds bc versions 1, 2 and a broken 3."""
    with Platform(Settings.from_env({}, cwd=tmp_path)) as platform:
        register_models(platform, bc_bundles)  # bc/1, bc/2, and bc/3 that fails to load
    try:
        yield tmp_path
    finally:
        home = tmp_path / ".loopline"
        try:
            stop_controlplane(home)
        finally:
            with Platform(Settings.from_env({}, cwd=tmp_path)) as platform:
                kill_all_processes(open_state_store(platform))


@pytest.mark.slow
def test_deployment_verbs_end_to_end(loopline: Run, workdir: Path) -> None:
    (workdir / "bc.yaml").write_text(SPEC)
    applied = loopline("apply", "-f", "bc.yaml")
    assert "deployment/bc created" in applied.stdout
    assert "started the control plane at http://127.0.0.1:" in applied.stderr
    assert "unchanged" in loopline("apply", "-f", "bc.yaml").stdout
    assert "started the control plane" not in loopline("get", "deployments").stderr

    status = loopline("rollout", "status", "deployment/bc", "--timeout", "2m")
    assert "deployment 'bc' successfully rolled out" in status.stdout
    listing = loopline("get", "deployments").stdout
    assert "bc@champion → bc/1" in listing and "http://127.0.0.1:" in listing
    doc = json.loads(loopline("get", "deployment", "bc", "-o", "json").stdout)
    assert doc["spec"]["model"] == "bc@champion"
    assert doc["status"]["model"]["pinned"] == "bc/1"
    as_yaml = yaml.safe_load(loopline("get", "deploy/bc", "-o", "yaml").stdout)
    assert (as_yaml["metadata"]["name"], as_yaml["spec"]) == ("bc", doc["spec"])
    # timestamps read as kubectl's: RFC 3339 in UTC, seconds in metadata and conditions
    assert re.fullmatch(SECONDS, as_yaml["metadata"]["creationTimestamp"]), as_yaml["metadata"]
    for c in as_yaml["status"]["conditions"]:
        assert re.fullmatch(SECONDS, c["lastTransitionTime"]), c

    out = loopline("set", "model", "deployment/bc", "bc/2").stdout
    assert "model updated to bc/2 (bc/2)" in out
    hurried = loopline("rollout", "status", "deployment/bc", "--timeout", "100ms", check=False)
    assert hurried.returncode == 1 and "Timed out waiting for the rollout" in hurried.stderr
    loopline("rollout", "status", "deployment/bc", "--timeout", "2m")
    history = loopline("rollout", "history", "deployment/bc").stdout
    assert "bc/1" in history and "bc/2" in history
    assert "loopline set model deployment/bc bc/2" in history

    assert "rolled back" in loopline("rollout", "undo", "deployment/bc", "--to-revision=1").stdout
    loopline("rollout", "status", "deployment/bc", "--timeout", "2m")
    assert "scaled" in loopline("scale", "deployment", "bc", "--replicas=2").stdout
    replicas = yaml.safe_load(loopline("get", "replicas", "bc", "-o", "yaml").stdout)["items"]
    assert {r["model"] for r in replicas} == {"bc/1"} and len(replicas) == 2
    assert all(re.fullmatch(MICROS, r["createdAt"]) for r in replicas), replicas
    ready = [r for r in replicas if r["ready"]]

    described = loopline("describe", "deployment", "bc").stdout
    for needle in ("Conditions", "NewRevisionAvailable", "Revisions:", "Events:",
                   "RolledBack", "bc@champion → bc/1", "RollingUpdateStrategy"):  # fmt: skip
        assert needle in described, needle
    log = loopline("logs", ready[0]["id"], "--tail", "5").stdout
    assert "listening on http://127.0.0.1:" in log

    exists = loopline("create", "deployment", "bc", "--model", "bc/1", check=False)
    assert exists.returncode == 1 and "'bc' already exists" in exists.stderr
    bad = loopline("create", "deployment", "other", "--model", "bc@nope", check=False)
    assert bad.returncode == 1 and "spec.model = 'bc@nope' cannot be resolved" in bad.stderr

    assert "paused" in loopline("rollout", "pause", "deployment/bc").stdout
    refused = loopline("rollout", "undo", "deployment/bc", check=False)
    assert refused.returncode == 1 and "is paused; resume it" in refused.stderr
    assert "resumed" in loopline("rollout", "resume", "deployment/bc").stdout

    (workdir / "broken.yaml").write_text(SPEC.replace("bc@champion", "bc/3").replace("120", "5"))
    assert "configured" in loopline("apply", "-f", "broken.yaml").stdout
    stalled = loopline("rollout", "status", "deployment/bc", "--timeout", "2m", check=False)
    assert stalled.returncode == 1
    assert "deployment 'bc' exceeded its progress deadline" in stalled.stdout

    router_pid = json.loads(loopline("get", "deployment", "bc", "--json").stdout)["status"][
        "router"
    ]["pid"]
    assert 'deployment "bc" deleted' in loopline("delete", "deployment", "bc").stdout
    assert not _alive(router_pid)
    missing = loopline("get", "deployment", "bc", check=False)
    assert missing.returncode == 4 and "'bc' does not exist" in missing.stderr
    assert not any(_alive(r["pid"]) for r in replicas if r["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return False


def test_invalid_spec_names_the_field_before_any_server_starts(
    loopline: Run, tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text(SPEC.replace("replicas: 1", "replicas: many"))
    bad = loopline("apply", "-f", "bad.yaml", check=False)
    assert bad.returncode == 1
    assert "spec.replicas = 'many' is invalid: it must be an integer" in bad.stderr
    assert not (tmp_path / ".loopline" / "controlplane").exists()


def test_resource_names_are_checked(loopline: Run) -> None:
    wrong = loopline("scale", "pod/bc", "--replicas=2", check=False)
    assert wrong.returncode == 1 and "Expected a deployment, got 'pod'" in wrong.stderr


def test_down_deletes_deployments_on_request_and_stops_the_control_plane(
    loopline: Run, workdir: Path
) -> None:
    (workdir / "bc.yaml").write_text(SPEC)
    loopline("apply", "-f", "bc.yaml")
    loopline("rollout", "status", "deployment/bc", "--timeout", "2m")
    router_pid = json.loads(loopline("get", "deployment", "bc", "--json").stdout)["status"][
        "router"
    ]["pid"]
    endpoint = ControlPlaneFiles(workdir / ".loopline").read_endpoint()
    assert endpoint is not None and endpoint.is_alive()

    out = loopline("down", "--delete-deployments")
    assert "deleted deployment bc" in out.stderr
    assert f"stopped the control plane (pid {endpoint.pid})" in out.stderr
    assert not endpoint.is_alive() and not _alive(router_pid)
    assert "nothing to stop" in loopline("down").stderr


CANARY = """\
apiVersion: loopline/v1
kind: AnalysisTemplate
metadata:
  name: errors
spec:
  metrics:
  - name: error-rate
    successCondition: result <= 0.01
    provider: {router: {metric: errorRate, revision: canary}}
---
apiVersion: loopline/v1
kind: Deployment
metadata:
  name: bc
spec:
  model: bc@champion
  replicas: 1
  progressDeadlineSeconds: 120
  strategy:
    type: Canary
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
      scaleDownDelaySeconds: 0
"""


@pytest.mark.slow
def test_a_canary_is_watched_paused_promoted_and_its_templates_listed(
    loopline: Run, workdir: Path
) -> None:
    (workdir / "canary.yaml").write_text(CANARY)
    applied = loopline("apply", "-f", "canary.yaml").stdout
    assert "analysistemplate/errors created" in applied and "deployment/bc created" in applied
    loopline("rollout", "status", "deployment/bc", "--timeout", "2m")
    assert "error-rate (router: result <= 0.01)" in loopline("get", "analysistemplates").stdout

    loopline("set", "model", "deployment/bc", "bc/2")
    deadline = time.monotonic() + 120
    while True:  # wait for the pause step (the canary took its 50 % first)
        paused = loopline("rollout", "status", "deployment/bc", "--no-watch", check=False)
        if "paused (CanaryPauseStep)" in paused.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert paused.returncode == 1 and "canary weight 50%" in paused.stdout
    listing = loopline("get", "deployments").stdout
    assert "Paused" in listing and "stable 50 / canary 50" in listing

    assert "promoted" in loopline("rollout", "promote", "deployment/bc").stdout
    done = loopline("rollout", "status", "deployment/bc", "--timeout", "2m")
    assert "successfully rolled out" in done.stdout
    doc = json.loads(loopline("get", "deployment", "bc", "-o", "json").stdout)
    assert doc["status"]["phase"] == "Healthy" and doc["status"]["model"]["pinned"] == "bc/2"
    refused = loopline("rollout", "abort", "deployment/bc", check=False)
    assert refused.returncode != 0 and "no rollout in progress" in refused.stderr
