"""The taxi example compiled to KFP IR: its resolvers are steps that query loopline's store from
inside the container (``loopline step exec``), its data and schema paths point into the image's
/app, and the IR parses with kfp-pipeline-spec and loads with kfp. A path the image cannot
have is refused, naming the step and the parameter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopline.artifacts.digest import tree_digest
from loopline.artifacts.fs import FsspecArtifactStore
from loopline.errors import InvalidDefinitionError
from loopline.metadata.entities import ArtifactState
from loopline.metadata.urls import open_store
from loopline.pipeline import Dataset, Output, Pipeline, component
from loopline.pipeline.kubeflow import KfpTarget, compile_pipeline

REPO = Path(__file__).resolve().parents[3]
TAXI = REPO / "examples" / "taxi"
Env = Callable[..., dict[str, str]]


@component
def load(data: Output[Dataset], source: str, columns: list[str] | None = None) -> None:
    shutil.copy(source, data.path / "data.csv")


@pytest.fixture(scope="module")
def taxi_ir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("taxi") / "taxi.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "compile", str(TAXI / "pipeline.py"), "-o",
         str(out), "--image", "localhost/loopline:test"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Compiled 12 steps of 'taxi'" in proc.stdout
    spec: dict[str, Any] = yaml.safe_load(out.read_text())
    spec["_file"] = str(out)
    return spec


def _args(spec: dict[str, Any], task: str) -> list[str]:
    comp = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]
    container = spec["deploymentSpec"]["executors"][comp["executorLabel"]]["container"]
    assert container["command"] == ["loopline", "step", "exec"]
    return list(container["args"])


def test_the_taxi_resolvers_compile_to_steps_that_query_the_store_from_inside_the_container(
    taxi_ir: dict[str, Any],
) -> None:
    tasks = taxi_ir["root"]["dag"]["tasks"]
    assert len(tasks) == 12
    for task, step in (("baseline-model", "baseline_model"),
                       ("previous-statistics", "previous_statistics")):  # fmt: skip
        args = _args(taxi_ir, task)
        assert args[args.index("--step") + 1] == step
        assert "dependentTasks" not in tasks[task]  # they read the store, not upstream tasks
    # What a resolver may not find (a first run) reaches optional inputs only.
    evaluator = taxi_ir["components"]["comp-evaluator"]["inputDefinitions"]["artifacts"]
    assert evaluator["baseline_model"]["isOptional"] is True
    assert tasks["evaluator"]["inputs"]["artifacts"]["baseline_model"] == {
        "taskOutputArtifact": {"producerTask": "baseline-model", "outputArtifactKey": "artifact"}
    }
    validator = taxi_ir["components"]["comp-examplevalidator"]["inputDefinitions"]["artifacts"]
    assert validator["previous_statistics"]["isOptional"] is True


def test_the_taxi_data_and_schema_paths_point_into_the_image_project_directory(
    taxi_ir: dict[str, Any],
) -> None:
    tasks = taxi_ir["root"]["dag"]["tasks"]
    gen = tasks["examplegen"]["inputs"]["parameters"]
    assert gen["input_dir"] == {"runtimeValue": {"constant": "/app/data"}}
    assert tasks["previous-statistics"]["inputs"]["parameters"]["input_dir"] == gen["input_dir"]
    assert tasks["schemagen"]["inputs"]["parameters"]["curated_source"] == {
        "runtimeValue": {"constant": "/app/schema.yaml"}
    }
    assert str(REPO) not in Path(taxi_ir["_file"]).read_text()
    # Every parameter of every step is one KFP can carry: the run-time knobs are pipeline
    # parameters with their defaults.
    root = taxi_ir["root"]["inputDefinitions"]["parameters"]
    assert root["allow_anomalies"] == {
        "parameterType": "BOOLEAN", "isOptional": True, "defaultValue": False
    }  # fmt: skip
    assert root["tuner_trials"]["parameterType"] == "NUMBER_INTEGER"


def test_the_compiled_taxi_parses_with_kfp_pipeline_spec_and_loads_in_kfp(
    taxi_ir: dict[str, Any], tmp_path: Path
) -> None:
    pytest.importorskip("kfp.dsl", reason="kfp is not installed (pip install 'loopline[dev]')")
    from google.protobuf import json_format
    from kfp import compiler, components, dsl
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = {k: v for k, v in taxi_ir.items() if k != "_file"}
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    loaded = components.load_component_from_file(taxi_ir["_file"])
    assert loaded.name == "taxi"

    @dsl.pipeline(name="taxi-override")
    def outer():  # type: ignore[no-untyped-def]  # kfp reads real (not string) annotations
        loaded(allow_anomalies=True, override_reason="reviewed", tuner_trials=2)

    compiler.Compiler().compile(outer, str(tmp_path / "outer.yaml"))
    outer_spec = yaml.safe_load((tmp_path / "outer.yaml").read_text())
    assert "comp-taxi" in outer_spec["components"]


def _run_task(spec: dict[str, Any], task: str, root: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one compiled task as its container would: the IR's command and args, with an
    ExecutorInput built from the task's constants."""
    comp = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]
    params = {
        name: src["runtimeValue"]["constant"]
        for name, src in spec["root"]["dag"]["tasks"][task].get("inputs", {})
        .get("parameters", {})
        .items()
        if "runtimeValue" in src
    }
    outs = {
        port: {"artifacts": [{"name": port, "type": d["artifactType"], "uri": str(root / port)}]}
        for port, d in comp["outputDefinitions"]["artifacts"].items()
    }
    output_file = str(root / "executor_output.json")
    ei = {"inputs": {"parameterValues": params},
          "outputs": {"artifacts": outs, "outputFile": output_file}}  # fmt: skip
    container = spec["deploymentSpec"]["executors"][comp["executorLabel"]]["container"]
    argv = [a.replace("{{$}}", json.dumps(ei)).replace("{{$.pipeline_job_name}}", "taxi-job")
            for a in container["args"]]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "step", "exec", *argv],
        cwd=TAXI, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads((root / "executor_output.json").read_text())
    return out


def test_the_compiled_baseline_resolver_finds_the_latest_blessed_model_in_the_store(
    taxi_ir: dict[str, Any], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env |= {"LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "store"),
            "LOOPLINE_HOME": str(tmp_path / "home")}  # fmt: skip

    # A first run: nothing blessed yet, the output is empty (and only an optional input
    # accepts it).
    first = _run_task(taxi_ir, "baseline-model", tmp_path / "run-1", env)
    assert first["artifacts"]["artifact"]["artifacts"][0]["metadata"]["loopline.empty"] == 1

    store = open_store(env["LOOPLINE_DB_URL"])
    artifacts = FsspecArtifactStore(env["LOOPLINE_ARTIFACT_ROOT"])
    try:
        ctx = store.ensure_context("pipeline", "taxi")
        ids = []
        for n in (1, 2):
            uri = artifacts.allocate("Model", f"taxi/model-{n}")
            with artifacts.staging() as staged:
                (staged / "model.txt").write_text(f"model {n}")
                digest = artifacts.publish(staged, uri)
            model = store.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE)
            blessing = store.put_artifact(
                "ModelBlessing", artifacts.allocate("ModelBlessing", f"taxi/blessing-{n}"),
                properties={"blessed": 1, "current_model_id": model.id},
                state=ArtifactState.LIVE,
            )  # fmt: skip
            store.attribute(ctx.id, [model.id, blessing.id])
            ids.append((model.id, digest))
    finally:
        store.close()

    found = _run_task(taxi_ir, "baseline-model", tmp_path / "run-2", env)
    meta = found["artifacts"]["artifact"]["artifacts"][0]["metadata"]
    newest_id, newest_digest = ids[-1]
    assert meta["loopline.artifact_id"] == newest_id
    assert meta["loopline.digest"] == newest_digest == tree_digest(tmp_path / "run-2" / "artifact")
    assert (tmp_path / "run-2" / "artifact" / "model.txt").read_text() == "model 2"


def test_a_path_on_this_machine_outside_the_project_is_refused_naming_the_step_and_parameter(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "elsewhere" / "trips.csv"
    outside.parent.mkdir()
    outside.write_text("tip\n1\n")
    project = tmp_path / "project"
    step = load(source=str(outside)).with_id("load_trips")
    target = KfpTarget(image="localhost/loopline:test", pipeline_file="pipeline.py",
                       project_dir=str(project))  # fmt: skip
    with pytest.raises(
        InvalidDefinitionError,
        match=r"Step 'load_trips' parameter 'source' is '.*/elsewhere/trips.csv', a path on this "
        r"machine outside the project directory .* cannot read it",
    ):
        compile_pipeline(Pipeline("trips", [step]), target, exists=lambda p: Path(p).exists())
    # Inside the project, the same file is the image's /app copy; a path that does not exist
    # here (a mount on the cluster) is left alone.
    inside = project / "data" / "trips.csv"
    for given, expected in ((str(inside), "/app/data/trips.csv"), ("/gcs/b/trips.csv",
                                                                  "/gcs/b/trips.csv")):  # fmt: skip
        spec = compile_pipeline(Pipeline("trips", [load(source=given, columns=[str(inside)])]),
                                target, exists=lambda p: Path(p).exists())  # fmt: skip
        params = spec["root"]["dag"]["tasks"]["load"]["inputs"]["parameters"]
        assert params["source"] == {"runtimeValue": {"constant": expected}}
        assert params["columns"] == {"runtimeValue": {"constant": ["/app/data/trips.csv"]}}


def test_compile_with_a_stores_secret_writes_the_platform_document_after_the_pipeline(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    quickstart = REPO / "examples" / "quickstart" / "pipeline.py"
    out = tmp_path / "q.yaml"
    base = [sys.executable, "-m", "loopline.cli", "compile", str(quickstart), "-o", str(out)]
    subprocess.run([*base, "--stores-secret", "loopline-stores"], env=env, cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    spec, platform = yaml.safe_load_all(out.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert sorted(executors) == sorted(spec["deploymentSpec"]["executors"])
    bad = subprocess.run([*base, "--stores-secret", "Stores"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0
    assert "Secret name 'Stores' is not a Kubernetes name" in " ".join(bad.stderr.split())
