"""``loopline lineage prediction/ID`` and ``promotion/MODEL/ALIAS[/N]`` on a real run.

A real pipeline (ExampleGen over two CSV spans → a trainer) makes the model; the registry
versions and promotes it through the CLI; the serving log writer logs a prediction and its
label; the monitor's recorder records an ``Alert``, and a ``TriggerRun`` is recorded as
``loopline.triggers`` records it (its contract: cause, candidate, outcome).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopline.cli import trace
from loopline.metadata import ArtifactState, Event, EventType, ExecutionState, MetadataStore
from loopline.monitor import ALERT_TYPE, AlertEvent, record_alert
from loopline.platform import Platform
from loopline.serving import LogOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter
from loopline.triggers import OUTCOME_TYPE, TRIGGER_RUN_TYPE
from tests.cli.conftest import as_json

PIPELINE = '''
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from loopline.components import ExampleGen
from loopline.pipeline import Examples, Input, Model, Output, Param, Pipeline, component


@component
def train(examples: Input[Examples], model: Output[Model], c: float = 1.0) -> None:
    table = pq.read_table(examples.path / "train.parquet")
    weight = float(np.mean(table["x"].to_numpy())) * c
    (model.path / "weights.txt").write_text(str(weight))


gen = ExampleGen(input_dir=str(Path(__file__).parent / "data"),
                 pattern="span-{SPAN}/*.csv", last_n_spans=2)
trainer = train(examples=gen.outputs.examples, c=Param("c", 1.0))
pipeline = Pipeline("fares", [gen, trainer])
'''

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def project(tmp_path: Path, loopline: Run) -> Path:
    for span in (1, 2):
        folder = tmp_path / "data" / f"span-{span}"
        folder.mkdir(parents=True)
        rows = "\n".join(f"{i * span},{i % 2}" for i in range(30))
        (folder / "part.csv").write_text("x,y\n" + rows + "\n")
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


@pytest.fixture
def platform(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """The same stores the CLI subprocesses use (their working directory, no LOOPLINE_*)."""
    for key in [k for k in os.environ if k.startswith("LOOPLINE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(project)
    with Platform.from_env() as opened:
        yield opened


def _train(loopline: Run, c: float) -> dict[str, Any]:
    result = as_json(loopline("run", "pipeline.py", "--param", f"c={c}", "--json"))
    assert isinstance(result, dict) and result["status"] == "succeeded"
    return result


def _model_id(result: dict[str, Any]) -> int:
    return int(next(s for s in result["steps"] if s["name"] == "train")["outputs"]["model"])


def _log(project: Path, request_id: str, version: str) -> None:
    directory = project / ".loopline" / "predictions"  # where the control plane's replicas log
    predictions = SegmentWriter(directory, "predictions", LogOptions(directory))
    for rid in ("other-1", request_id, "other-2"):
        predictions.offer(
            LogRecord(
                rid,
                1_800_000_000.0,
                "fares",
                version,
                2,
                {"inputs": {"x": np.array([3.0, 4.0])}, "outputs": {"predict": np.array([7, 9])}},
            )
        )
        predictions.flush()
    feedback = SegmentWriter(directory, "feedback", LogOptions(directory))
    feedback.offer(
        LogRecord(request_id, 1_800_000_060.0, "fares", version, 2,
                  {"label": {"label": np.array([7, 8])}})
    )
    feedback.flush()


def _alert(md: MetadataStore, model_artifact: int) -> int:
    """An ``Alert`` recorded by the monitor's own recorder (output of a ``MonitorWindow``
    execution that read the model version's ``Model`` artifact)."""
    event = AlertEvent(
        monitor="fares-drift", rule="x-drift", model="fares", version="1", state="firing",
        severity="page", reason="x drifted (wasserstein 0.4).", first_window=3, last_window=5,
        metric="wasserstein", value=0.4,
    )
    return record_alert(md, event, model_artifact)


def _trigger_run(md: MetadataStore, alert: int, candidate: int) -> tuple[int, int]:
    """A ``TriggerRun`` as ``loopline.triggers`` records it: caused by the alert, rolling out
    ``candidate``, ending in a ``TriggerOutcome``. Returns (execution id, outcome id)."""
    run = md.put_execution(
        TRIGGER_RUN_TYPE, name="retrain-on-drift/1", state=ExecutionState.RUNNING,
        properties={"trigger": "retrain-on-drift", "run": 1, "model": "fares"},
        inputs=[("cause", alert)],
    )
    md.put_events([Event(candidate, run.id, EventType.INPUT, "candidate")])
    outcome = md.put_artifact(
        OUTCOME_TYPE, "trigger://retrain-on-drift/runs/1", name="retrain-on-drift/1",
        properties={"state": "promoted", "message": "canary passed"}, state=ArtifactState.LIVE,
    )
    md.put_events([Event(outcome.id, run.id, EventType.OUTPUT, "outcome")])
    md.update_execution(run.id, state=ExecutionState.COMPLETE, properties={"state": "promoted"})
    return run.id, outcome.id


def test_a_prediction_traces_to_its_version_run_spans_code_alerts_and_promotions(
    project: Path, platform: Platform, loopline: Run
) -> None:
    first = _train(loopline, 1.0)
    model_1 = _model_id(first)
    loopline("models", "register", "fares", str(model_1), "--why", "first")
    loopline("models", "alias", "set", "fares", "champion", "1", "--why", "first model",
             "--who", "ana")
    _log(project, "req-7f3a", "1")
    alert = _alert(platform.metadata, model_1)
    model_2 = _model_id(_train(loopline, 2.0))
    loopline("models", "register", "fares", str(model_2), "--why", "retrained on drift")
    run, outcome = _trigger_run(platform.metadata, alert, model_2)
    loopline("models", "alias", "set", "fares", "champion", "2", "--why", "canary passed",
             "--who", "trigger/retrain-on-drift", "--evidence", str(outcome))

    trace = as_json(loopline("lineage", "prediction/req-7f3a", "--json"))
    assert isinstance(trace, dict)
    prediction = trace["prediction"]
    assert (prediction["model"], prediction["version"], prediction["rows"]) == ("fares", "1", 2)
    assert prediction["outputs"] == [{"predict": 7}, {"predict": 9}]
    assert prediction["labels"] == [7, 8]
    mv = trace["model_version"]
    assert (mv["model"], mv["version"], mv["artifact"]["id"]) == ("fares", 1, model_1)
    producer = mv["produced_by"][0]
    assert producer["type"] == "train" and producer["state"] == "complete"
    assert mv["pipeline"] == "fares" and mv["pipeline_run"] == first["name"]
    assert mv["code_fingerprint"] == producer["properties"]["code_fingerprint"]
    assert mv["parameters"] == {"c": 1.0}
    assert [(a["type"], a["properties"]["spans"]) for a in mv["data"]] == [("Examples", [1, 2])]
    assert mv["aliases"] == []  # champion moved on to version 2
    assert [(m["from_version"], m["to_version"], m["who"]) for m in mv["alias_moves"]] == [
        (1, 2, "trigger/retrain-on-drift"),
        (None, 1, "ana"),
    ]
    assert [(a["id"], a["properties"]["state"]) for a in mv["alerts"]] == [(alert, "firing")]
    assert [(t["id"], t["role"], t["via_artifact"]) for t in mv["trigger_runs"]] == [
        (run, "cause", alert)
    ]
    assert {a["type"] for a in mv["upstream"]["artifacts"]} >= {"Model", "Examples"}

    tree = loopline("lineage", "prediction/req-7f3a").stdout
    for text in ("req-7f3a", "fares/1", "ExampleGen", "spans [1, 2]", "Alert", "retrain-on-drift",
                 "code fingerprint", first["name"]):
        assert text in tree, text

    # Version 2 was trained for the trigger run: its trace says so.
    v2 = as_json(loopline("lineage", "promotion/fares/champion", "--json"))
    assert isinstance(v2, dict)
    assert (v2["promotion"]["number"], v2["promotion"]["to_version"]) == (2, 2)
    [evidence] = v2["evidence"]
    assert evidence["artifact"]["id"] == outcome
    reached = {(n["type"], n["id"]) for n in evidence["upstream"]["executions"]}
    assert ("TriggerRun", run) in reached and any(t == "MonitorWindow" for t, _ in reached)
    assert alert in {a["id"] for a in evidence["upstream"]["artifacts"]}
    assert model_1 in {a["id"] for a in evidence["upstream"]["artifacts"]}
    assert v2["model_version"]["aliases"] == ["champion"]
    assert [(t["id"], t["role"]) for t in v2["model_version"]["trigger_runs"]] == [
        (run, "candidate")
    ]
    first_move = as_json(loopline("lineage", "promotion/fares/champion/1", "--json"))
    assert isinstance(first_move, dict)
    assert (first_move["promotion"]["why"], first_move["evidence"]) == ("first model", [])
    shown = loopline("lineage", "promotion/fares/champion").stdout
    assert "canary passed" in shown and "TriggerRun" in shown and "Alert" in shown


def test_an_unknown_request_id_names_the_log_directory_searched(
    project: Path, loopline: Run
) -> None:
    _log(project, "req-1", "1")
    proc = loopline("lineage", "prediction/nope", check=False)
    assert proc.returncode == 4
    where = str(project / ".loopline" / "predictions" / "predictions")
    assert "No logged prediction has request id 'nope'" in proc.stderr
    assert where in proc.stderr and "(3 segments)" in proc.stderr
    elsewhere = loopline("lineage", "prediction/req-1", "--log-dir", "other", check=False)
    assert elsewhere.returncode == 4 and "(no segments)" in elsewhere.stderr


def test_a_prediction_of_an_unregistered_version_and_bad_promotions_are_clear_errors(
    project: Path, loopline: Run
) -> None:
    _train(loopline, 1.0)
    _log(project, "req-1", "4")
    proc = loopline("lineage", "prediction/req-1", check=False)
    assert proc.returncode == 4 and "answered by fares/4" in proc.stderr
    bad = loopline("lineage", "promotion/fares", check=False)
    assert bad.returncode == 1 and "promotion/<model>/<alias>" in bad.stderr
    loopline("models", "register", "fares", str(_model_id(_train(loopline, 1.0))), "--why", "x")
    never = loopline("lineage", "promotion/fares/champion", check=False)
    assert never.returncode == 4 and "fares@champion was never moved" in never.stderr
    loopline("models", "alias", "set", "fares", "champion", "1", "--why", "first")
    beyond = loopline("lineage", "promotion/fares/champion/3", check=False)
    assert beyond.returncode == 4 and "has 1 recorded move (1 … 1), not 3" in beyond.stderr


def test_the_trace_reads_the_record_types_the_monitor_and_the_triggers_write() -> None:
    assert (trace.ALERT_TYPE, trace.TRIGGER_RUN_TYPE) == (ALERT_TYPE, TRIGGER_RUN_TYPE)


def test_the_graph_json_keeps_its_shape(project: Path, loopline: Run) -> None:
    model = _model_id(_train(loopline, 1.0))
    graph = as_json(loopline("lineage", str(model), "--hops", "2", "--json"))
    assert isinstance(graph, dict)
    assert sorted(graph) == ["artifacts", "events", "executions", "hops"]
    assert graph["hops"][f"a:{model}"] == 0
    assert json.dumps(graph)  # plain JSON
