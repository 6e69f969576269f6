"""``loopline monitor status|report`` and ``get monitors``, end to end: the real CLI starts the
real control plane, which runs a real ``loopline serve`` replica of the pipeline-trained taxi
model with prediction logging on; real HTTP traffic through the router (normal trips, then
shifted ones) is windowed by the control plane's monitor loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from rich.console import Console

from loopline.cli import monitor as monitor_cli
from loopline.cli.monitor import BAR_CELLS, bar, sparkline
from loopline.controlplane.build import open_state_store
from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.files import ControlPlaneFiles
from loopline.controlplane.timestamps import shown
from loopline.controlplane.wire import Document, ObjectMeta
from loopline.errors import NotFoundError
from loopline.monitor import FeatureDrift, MonitorStatus, VersionStatus
from loopline.platform import Platform
from loopline.settings import Settings
from loopline.testing.artifacts import wait_for
from tests.cli.test_deploy import stop_controlplane
from tests.controlplane.live import kill_all_processes
from tests.monitor.conftest import Trained, shifted, taxi_frame, trained

__all__ = ["taxi_frame", "trained"]  # the session fixtures of tests/monitor

Run = Callable[..., subprocess.CompletedProcess[str]]

SPEC = """\
apiVersion: loopline/v1
kind: Deployment
metadata: {name: taxi-cli}
spec:
  model: taxi/1
  replicas: 1
  progressDeadlineSeconds: 120
  template:
    logging: {enabled: true}
---
apiVersion: loopline/v1
kind: Monitor
metadata: {name: taxi-cli}
spec:
  deployment: taxi-cli
  window: {rows: 200}
  label: {task: classification, positiveClass: "yes"}
  rules:
    - {name: distance, metric: "feature:distance", forWindows: 2, severity: critical}
"""


@pytest.fixture
def env(trained: Trained, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The CLI's environment: the taxi model's database, a fresh LOOPLINE_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env.update(
        COLUMNS="220",
        LOOPLINE_DB_URL=f"sqlite:///{trained.root / 'md.db'}",
        LOOPLINE_ARTIFACT_ROOT=str(trained.root / "artifacts"),
        LOOPLINE_HOME=str(tmp_path / "home"),
    )
    settings = Settings.from_env(env, cwd=tmp_path)
    try:
        yield env
    finally:
        files = ControlPlaneFiles(settings.home)
        endpoint = files.read_endpoint()
        try:
            if endpoint is not None and endpoint.is_alive():
                with ControlPlaneClient(endpoint.url, token=files.read_token()) as client:
                    try:
                        client.delete_monitor("taxi-cli")  # the database outlives this test
                    except NotFoundError:
                        pass
            stop_controlplane(settings.home)
        finally:
            with Platform(settings) as platform:
                kill_all_processes(open_state_store(platform))


def run_cli(env: dict[str, str], cwd: Path) -> Run:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "loopline.cli", *args],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"loopline {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")  # fmt: skip
        return proc

    return run


def infer_body(part: pd.DataFrame) -> dict[str, Any]:
    def tensor(name: str, datatype: str, values: list[Any]) -> dict[str, Any]:
        return {"name": name, "shape": [len(values)], "datatype": datatype, "data": values}

    return {
        "inputs": [
            tensor("distance", "FP64", [float(v) for v in part["distance"]]),
            *(
                tensor(c, "BYTES", [str(v) for v in part[c]])
                for c in ("company", "local", "dow", "month")
            ),
            tensor("hour", "INT64", [int(v) for v in part["hour"]]),
        ]
    }


def send(url: str, frame: pd.DataFrame, per_request: int = 50) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(frame), per_request):
            r = client.post(
                "/v2/models/taxi/infer", json=infer_body(frame.iloc[start : start + per_request])
            )
            assert r.status_code == 200, r.text


@pytest.mark.slow
def test_monitor_verbs_end_to_end(env: dict[str, str], tmp_path: Path, trained: Trained) -> None:
    loopline = run_cli(env, tmp_path)
    (tmp_path / "taxi.yaml").write_text(SPEC)
    applied = loopline("apply", "-f", "taxi.yaml").stdout
    assert "deployment/taxi-cli created" in applied and "monitor/taxi-cli created" in applied
    (tmp_path / "bad.yaml").write_text(SPEC.split("---\n")[1].replace("rows: 200", "rows: -1"))
    refused = loopline("apply", "-f", "bad.yaml", check=False)
    assert refused.returncode == 1 and "spec.window.rows = -1 is invalid" in refused.stderr

    loopline("rollout", "status", "deployment/taxi-cli", "--timeout", "2m")
    url = json.loads(loopline("get", "deployment", "taxi-cli", "-o", "json").stdout)["status"][
        "router"
    ]["url"]
    rows = trained.data.sample(frac=1.0, random_state=21)
    send(url, rows.iloc[:400])
    send(url, shifted(rows.iloc[400:1000]))

    seen: dict[str, Any] = {}

    def five_windows_and_an_alert() -> bool:
        seen.update(json.loads(loopline("monitor", "status", "taxi-cli", "--json").stdout))
        return bool(seen["windows"] >= 5 and seen["firing"])

    wait_for(five_windows_and_an_alert, timeout=120, what="5 windows and an alert")
    doc = seen
    assert (doc["model"], doc["deployment"], doc["error"]) == ("taxi", "taxi-cli", None)
    (version,) = doc["versions"]
    assert version["version"] == "1" and version["rows"] == 200
    assert [a["rule"] for a in doc["firing"]] == ["distance"]

    text = loopline("monitor", "status", "taxi-cli").stdout
    for needle in ("Monitor taxi-cli", "deployment taxi-cli", "Version 1", "distance",
                   "DRIFTED", "(calibrated)", "ESTIMATED (CBPE)", "firing"):  # fmt: skip
        assert needle in text, needle
    listing = loopline("get", "monitors").stdout
    header, row = listing.splitlines()[:2]
    assert header.split() == [
        "NAME",
        "DEPLOYMENT",
        "VERSION",
        "WINDOWS",
        "DRIFTED",
        "ALERTS",
        "AGE",
    ]
    assert row.split()[:3] == ["taxi-cli", "taxi-cli", "1"]

    report = tmp_path / "report.html"
    written = loopline("monitor", "report", "taxi-cli", "-o", str(report)).stdout
    assert f"Wrote {report}" in written
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "distance: latest window vs reference" in html
    assert "<script" not in html and 'src="http' not in html
    missing = loopline("monitor", "status", "nope", check=False)
    assert missing.returncode == 4 and "Monitor 'nope' does not exist" in missing.stderr


def test_bars_and_sparklines_put_the_threshold_half_way() -> None:
    assert bar(1.0) == "█████     " and bar(2.0) == bar(9.0) == "█" * BAR_CELLS
    assert bar(0.0) == " " * BAR_CELLS and bar(None) == ""
    assert bar(0.1) == "▌         "  # half a cell (a cell is a fifth of the threshold)
    assert sparkline([0.0, 0.5, 1.0, None], ceiling=1.0) == "▁▄█ "
    assert sparkline([0.1, 0.2], ceiling=0.4) == "▂▄"  # scaled to the threshold when higher


def test_the_status_prints_names_with_markup_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = "[red]x[/red]"
    feature = FeatureDrift(hostile, "numeric", True, "psi", 0.5, 0.25, True, None, (0.1, 0.5))
    status = MonitorStatus(
        name=hostile,
        deployment="taxi",
        model="taxi",
        window={"rows": 300},
        generation=1,
        created_at=0.0,
        rows=300,
        versions=(VersionStatus("1", 1, 0, 0.0, 60.0, 300, 1.0, (feature,)),),
    )
    recorder = Console(width=160, record=True, force_terminal=False)
    monkeypatch.setattr(monitor_cli, "console", recorder)
    monitor_cli.print_status(status)
    text = recorder.export_text()
    assert f"Monitor {hostile}" in text and f" {hostile} " in text
    assert "0.25 (calibrated)" in text and "██████████ 2.00×" in text and "DRIFTED" in text
    assert "Alerts: none." in text
    table = Console(width=160, record=True, force_terminal=False)
    listed = Document("loopline/v1", "Monitor", ObjectMeta(status.name, 1, None), {},
                      shown(status.to_dict()))  # fmt: skip
    table.print(monitor_cli.monitors_table([listed]))
    assert table.export_text().split("\n")[1].split()[:5] == [hostile, "taxi", "1", "1", "1/1"]
