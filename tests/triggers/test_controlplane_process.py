"""A Trigger in a real control plane process: applied with the CLI, it runs a real pipeline
for a new span once — across a kill -9 and restart of the control plane while the run is in
flight (the run is found again, not started twice) — and records the lineage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.controlplane.test_process import Daemon

from loopline.controlplane.wire import TriggerRun
from loopline.metadata import open_store
from loopline.metadata.entities import EventType
from loopline.testing.artifacts import wait_for

PIPELINE = Path(__file__).parent / "pipelines" / "retrain.py"

TRIGGER = """\
apiVersion: loopline/v1
kind: Trigger
metadata:
  name: retrain
spec:
  model: taxi
  on:
    newSpan: {inputDir: data, pattern: "span-{SPAN}/rows.csv"}
  cooldown: 1s
  run:
    pipeline: retrain.py
    params: {span: "{{span}}", hold: "%(hold)s"}
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    d.env["RETRAIN_DATA"] = str(tmp_path / "project" / "data")
    try:
        yield d
    finally:
        d.cleanup()


def cli(daemon: Daemon, *args: str, cwd: Path) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        env={**daemon.env, "COLUMNS": "240"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def write_span(project: Path, n: int) -> None:
    (project / "data" / f"span-{n}").mkdir(parents=True)
    (project / "data" / f"span-{n}" / "rows.csv").write_text(f"x\n{n}\n{n + 1}\n")


def test_a_span_trigger_runs_once_across_a_control_plane_restart_and_records_lineage(
    daemon: Daemon, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PIPELINE, project / "retrain.py")
    write_span(project, 1)
    release = tmp_path / "release"
    (project / "trigger.yaml").write_text(TRIGGER % {"hold": release})
    endpoint = daemon.start()
    assert cli(daemon, "apply", "-f", "trigger.yaml", cwd=tmp_path / "project") == (
        "trigger/retrain created\n"
    )
    [listed] = cli(daemon, "triggers", "list", "--json", cwd=tmp_path)["items"]
    assert listed["spec"]["run"]["pipeline"] == str(project / "retrain.py")
    assert listed["spec"]["on"]["newSpan"]["inputDir"] == str(project / "data")

    def history() -> list[TriggerRun]:
        with daemon.client(daemon.files.live_endpoint() or endpoint) as c:
            return list(c.trigger_history("retrain"))

    with daemon.client(endpoint) as c:  # the first round only sets the baseline (span 1)
        wait_for(
            lambda: (c.get_trigger("retrain").status or {}).get("cursor") == 1,
            timeout=60,
            what="the trigger's baseline",
        )
    write_span(project, 2)
    wait_for(
        lambda: [r.state for r in history()] == ["running"],
        timeout=60,
        what="the run for span 2 to start",
    )
    [run] = history()
    pid = run.process["pid"]

    daemon.procs[-1].send_signal(signal.SIGKILL)  # the control plane dies mid-run
    daemon.procs[-1].wait(30)
    os.kill(pid, 0)  # the pipeline run lives on in its own session
    restarted = daemon.start()
    assert restarted.pid != endpoint.pid
    release.write_text("go")
    wait_for(
        lambda: history()[0].state == "succeeded", timeout=120, what="the adopted run to finish"
    )
    [run] = history()  # one run: found again, not started a second time
    assert (run.process["pid"], run.params) == (pid, {"span": 2, "hold": str(release)})
    assert run.message == "pushed taxi/1; no rollout configured"
    with daemon.client(restarted) as c:
        wait_for(
            lambda: (
                "span:2: span 2 already trained by run 1"
                in (c.get_trigger("retrain").status or {}).get("waiting", [])
            ),
            timeout=60,
            what="a decision after the restart that skips span 2",
        )
    table = cli(daemon, "triggers", "history", "retrain", cwd=tmp_path)
    assert "succeeded" in table and "span 2 arrived" in table
    assert len(cli(daemon, "triggers", "history", "retrain", "--json", cwd=tmp_path)["items"]) == 1

    meta = open_store(daemon.settings.db_url)
    try:
        assert run.execution_id is not None
        execution = meta.get_execution(run.execution_id)
        events = {
            (e.type, e.port): e.artifact_id for e in meta.get_events(execution_ids=[execution.id])
        }
        span = meta.get_artifact(events[(EventType.INPUT, "cause")])
        assert (span.type_name, span.properties["span"]) == ("DataSpan", 2)
        [version] = meta.list_model_versions("taxi")
        assert events[(EventType.INPUT, "candidate")] == version.artifact_id
        assert execution.properties["state"] == "succeeded"
    finally:
        meta.close()
