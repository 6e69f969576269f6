"""A small stand-in for KFP's driver: runs a compiled pipeline's tasks in order, each as the
real ``loopline step exec`` process with the container's command and args from the IR, and
an ExecutorInput built the way KFP's driver builds it (local URIs under a pipeline root,
parameters from the pipeline's, the task's constants and the component defaults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
QUICKSTART = REPO / "examples" / "quickstart" / "pipeline.py"


@dataclass
class TaskRun:
    returncode: int
    stderr: str
    executor_input: dict[str, Any]
    executor_output: dict[str, Any] | None


@dataclass
class DriverRun:
    root: Path
    tasks: dict[str, TaskRun] = field(default_factory=dict)

    def output_path(self, task: str, port: str) -> Path:
        ei = self.tasks[task].executor_input
        return Path(ei["outputs"]["artifacts"][port]["artifacts"][0]["uri"])


def _order(tasks: dict[str, Any]) -> list[str]:
    done: list[str] = []
    while len(done) < len(tasks):
        for name, task in sorted(tasks.items()):
            if name not in done and all(d in done for d in task.get("dependentTasks", [])):
                done.append(name)
    return done


def _drive(
    spec: dict[str, Any],
    root: Path,
    *,
    cwd: Path,
    params: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    job: str = "job-1",
) -> DriverRun:
    """Run every task of ``spec``; stops at the first failed task."""
    run = DriverRun(root)
    defaults = {
        k: v.get("defaultValue")
        for k, v in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    }
    values = {**defaults, **(params or {})}
    tasks = spec["root"]["dag"]["tasks"]
    produced: dict[tuple[str, str], dict[str, Any]] = {}
    for name in _order(tasks):
        task = tasks[name]
        comp = spec["components"][task["componentRef"]["name"]]
        container = spec["deploymentSpec"]["executors"][comp["executorLabel"]]["container"]
        inputs = task.get("inputs", {})
        pvalues: dict[str, Any] = {}
        for pname, src in inputs.get("parameters", {}).items():
            if "componentInputParameter" in src:
                pvalues[pname] = values[src["componentInputParameter"]]
            else:
                pvalues[pname] = src["runtimeValue"]["constant"]
        for pname, pdef in comp.get("inputDefinitions", {}).get("parameters", {}).items():
            if pname not in pvalues and "defaultValue" in pdef:
                pvalues[pname] = pdef["defaultValue"]
        arts: dict[str, Any] = {}
        for port, src in inputs.get("artifacts", {}).items():
            ref = src["taskOutputArtifact"]
            arts[port] = {"artifacts": [produced[(ref["producerTask"], ref["outputArtifactKey"])]]}
        outs: dict[str, Any] = {}
        for port, odef in comp.get("outputDefinitions", {}).get("artifacts", {}).items():
            outs[port] = {
                "artifacts": [
                    {
                        "name": port,
                        "type": odef["artifactType"],
                        "uri": str(root / job / name / port),
                        "metadata": {},
                    }
                ]
            }
        output_file = root / job / name / "executor_output.json"
        ei = {
            "inputs": {"parameterValues": pvalues, "artifacts": arts},
            "outputs": {"artifacts": outs, "outputFile": str(output_file)},
        }
        argv = [
            a.replace("{{$}}", json.dumps(ei)).replace("{{$.pipeline_job_name}}", job)
            for a in [*container["command"], *container["args"]]
        ]
        assert argv[0] == "loopline"
        proc = subprocess.run(
            [sys.executable, "-m", "loopline.cli", *argv[1:]],
            cwd=cwd,
            env=env if env is not None else _clean_env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        out = json.loads(output_file.read_text()) if output_file.exists() else None
        run.tasks[name] = TaskRun(proc.returncode, proc.stderr, ei, out)
        if proc.returncode != 0:
            break
        assert out is not None
        for port, entry in out.get("artifacts", {}).items():
            art = entry["artifacts"][0]
            produced[(name, port)] = {
                "name": port,
                "type": outs[port]["artifacts"][0]["type"],
                "uri": art["uri"],
                "metadata": art["metadata"],
            }
    return run


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env.update(extra)
    return env


@pytest.fixture
def quickstart_app(tmp_path: Path) -> Path:
    """A copy of the quickstart project, as loopline build --app copies it to /app."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "pipeline.py").write_text(QUICKSTART.read_text())
    return app


@pytest.fixture
def drive() -> Callable[..., DriverRun]:
    """Run a compiled pipeline task by task as loopline step exec processes."""
    return _drive


@pytest.fixture
def clean_env() -> Callable[..., dict[str, str]]:
    """This process's environment without LOOPLINE_* settings, plus the given ones."""
    return _clean_env
