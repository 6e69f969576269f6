from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopline.artifacts.digest import tree_digest
from loopline.artifacts.fs import FsspecArtifactStore
from loopline.errors import InvalidInputError
from loopline.metadata.entities import EventType, ExecutionState
from loopline.metadata.urls import open_store
from loopline.pipeline.kubeflow import ExecutorInput, local_path
from loopline.pipeline.loader import load_pipeline
from loopline.pipeline.runner import LocalRunner

Drive = Callable[..., Any]
Env = Callable[..., dict[str, str]]


def _compile(app: Path, out: Path, clean_env: Env) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "compile", str(app / "pipeline.py"), "-o", str(out),
         "--image", "localhost/loopline:test"],
        cwd=app, env=clean_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "Compiled 5 steps" in proc.stdout
    spec: dict[str, Any] = yaml.safe_load(out.read_text())
    return spec


def test_uris_map_to_local_paths_as_kfp_mounts_them() -> None:
    assert local_path("gs://bucket/run/model") == Path("/gcs/bucket/run/model")
    assert local_path("s3://bucket/k") == Path("/s3/bucket/k")
    assert local_path("minio://mlpipeline/v2/x") == Path("/minio/mlpipeline/v2/x")
    assert local_path("oci://reg.io/m:1") == Path("/oci/reg.io_m:1/models")
    assert local_path("/tmp/local_outputs/p/t/o") == Path("/tmp/local_outputs/p/t/o")
    with pytest.raises(InvalidInputError, match=r"Artifact URI 'ftp://h/x' is neither"):
        local_path("ftp://h/x")


def test_an_executor_input_without_an_output_file_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInputError, match=r"outputs.outputFile is missing"):
        ExecutorInput.parse(json.dumps({"outputs": {"artifacts": {}}}))
    with pytest.raises(InvalidInputError, match=r"is not JSON"):
        ExecutorInput.parse("{{$}}")


def _same_content(kfp_dir: Path, local_dir: Path) -> None:
    """Equal bytes, except for a skops zip, whose entries carry the time they were written and
    are named by object ids: its arrays are compared (and the downstream report, computed
    from these models, must have the same digest)."""
    kfp_files = sorted(p.relative_to(kfp_dir) for p in kfp_dir.rglob("*") if p.is_file())
    local_files = sorted(p.relative_to(local_dir) for p in local_dir.rglob("*") if p.is_file())
    assert kfp_files == local_files
    for rel in kfp_files:
        a, b = kfp_dir / rel, local_dir / rel
        if zipfile.is_zipfile(a):
            with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
                assert len(za.namelist()) == len(zb.namelist())
                arrays_a = sorted(za.read(n) for n in za.namelist() if n.endswith(".npy"))
                arrays_b = sorted(zb.read(n) for n in zb.namelist() if n.endswith(".npy"))
                assert arrays_a == arrays_b, str(rel)
        else:
            assert a.read_bytes() == b.read_bytes(), str(rel)


def test_the_compiled_quickstart_run_step_by_step_equals_the_local_runner_and_records_lineage(
    tmp_path: Path, quickstart_app: Path, drive: Drive, clean_env: Env
) -> None:
    spec = _compile(quickstart_app, tmp_path / "quickstart.yaml", clean_env)
    db = tmp_path / "lineage.db"
    env = clean_env(LOOPLINE_DB_URL=f"sqlite:///{db}", LOOPLINE_HOME=str(tmp_path / "home"),
                    LOOPLINE_ARTIFACT_ROOT=str(tmp_path / "store"))  # fmt: skip
    run = drive(spec, tmp_path / "kfp-root", cwd=quickstart_app, env=env, job="quickstart-job-7")
    failed = {n: t.stderr[-2000:] for n, t in run.tasks.items() if t.returncode}
    assert not failed
    assert sorted(run.tasks) == ["compare", "ingest", "split", "train-logreg", "train-tree"]
    assert "lineage on:" in run.tasks["compare"].stderr

    md = open_store(f"sqlite:///{tmp_path / 'local.db'}")
    store = FsspecArtifactStore(str(tmp_path / "artifacts"))
    try:
        local = LocalRunner(md, store, log_dir=tmp_path / "logs").run(
            load_pipeline(quickstart_app / "pipeline.py")
        )
        assert local.ok
        same_digest = 0
        for step_id, result in local.steps.items():
            task = step_id.replace("_", "-")
            reported = run.tasks[task].executor_output
            assert reported is not None
            for port, artifact_id in result.outputs.items():
                assert artifact_id is not None
                mine = md.get_artifact(artifact_id)
                theirs = reported["artifacts"][port]["artifacts"][0]["metadata"]
                assert theirs["loopline.type"] == mine.type_name
                assert theirs["loopline.digest"] == tree_digest(run.output_path(task, port))
                if theirs["loopline.digest"] == mine.digest:
                    same_digest += 1
                else:
                    with store.open_local(mine.uri) as local_dir:
                        _same_content(run.output_path(task, port), local_dir)
                props = {k: v for k, v in theirs.items() if not k.startswith("loopline.")}
                assert props == {k: mine.properties.get(k) for k in props}
        assert same_digest >= 4  # the data sets and the metrics; the models hold zip times
    finally:
        md.close()

    lineage = open_store(f"sqlite:///{db}")
    try:
        ctx = lineage.find_context("run", "quickstart-job-7")
        assert ctx is not None and ctx.properties["engine"] == "kubeflow"
        executions = lineage.list_executions(context_id=ctx.id, newest_first=False)
        assert sorted(e.name or "" for e in executions) == [
            "compare", "ingest", "split", "train_logreg", "train_tree"
        ]  # fmt: skip
        assert all(e.state is ExecutionState.COMPLETE for e in executions)
        by_name = {e.name: e for e in executions}
        compare = by_name["compare"]
        producers = {
            e.execution_id
            for ev in lineage.get_events(execution_ids=[compare.id])
            if ev.type is EventType.INPUT
            for e in lineage.get_events(artifact_ids=[ev.artifact_id])
            if e.type is EventType.OUTPUT
        }
        assert producers == {by_name[n].id for n in ("split", "train_logreg", "train_tree")}
        metrics = lineage.get_metrics(compare.id)
        assert {m.key for m in metrics} == {"logreg_accuracy", "tree_accuracy"}
    finally:
        lineage.close()


def test_a_failing_step_still_writes_its_executor_output_and_exits_1(
    tmp_path: Path, quickstart_app: Path, drive: Drive, clean_env: Env
) -> None:
    source = (quickstart_app / "pipeline.py").read_text()
    (quickstart_app / "pipeline.py").write_text(
        source.replace(
            '    """Deterministic 2:1 split."""\n',
            '    """Deterministic 2:1 split."""\n    raise RuntimeError("no split today")\n',
        )
    )
    spec = _compile(quickstart_app, tmp_path / "q.yaml", clean_env)
    run = drive(spec, tmp_path / "kfp-root", cwd=quickstart_app)
    assert "lineage off: LOOPLINE_DB_URL is not set" in run.tasks["ingest"].stderr
    split = run.tasks["split"]
    assert split.returncode == 1
    assert "RuntimeError: no split today" in split.stderr
    assert split.executor_output == {"artifacts": {}}
    assert not run.output_path("split", "train").exists()


def test_a_step_whose_code_changed_since_compiling_is_refused(
    tmp_path: Path, quickstart_app: Path, drive: Drive, clean_env: Env
) -> None:
    spec = _compile(quickstart_app, tmp_path / "q.yaml", clean_env)
    source = (quickstart_app / "pipeline.py").read_text()
    (quickstart_app / "pipeline.py").write_text(source.replace("max_iter=500", "max_iter=501"))
    run = drive(spec, tmp_path / "kfp-root", cwd=quickstart_app)
    assert all(run.tasks[t].returncode == 0 for t in ("ingest", "split"))
    logreg = run.tasks["train-logreg"]
    assert logreg.returncode != 0
    assert "Step 'train_logreg' in this image has code fingerprint" in logreg.stderr
    assert "rebuild the image" in logreg.stderr


STORE_PROBE = '''
from loopline.pipeline import Dataset, Output, Pipeline, StepContext, component


@component
def probe(out: Output[Dataset], ctx: StepContext) -> None:
    reached = ctx.metadata is not None and ctx.artifacts is not None
    (out.path / "stores.txt").write_text("reached" if reached else "none")


pipeline = Pipeline("probe", [probe()])
'''


def test_with_lineage_on_a_step_gets_the_stores_as_in_the_local_runner(
    tmp_path: Path, drive: Drive, clean_env: Env
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pipeline.py").write_text(STORE_PROBE)
    out = tmp_path / "probe.yaml"
    subprocess.run(
        [sys.executable, "-m", "loopline.cli", "compile", str(app / "pipeline.py"), "-o", str(out),
         "--image", "localhost/loopline:test"],
        cwd=app, env=clean_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    spec = yaml.safe_load(out.read_text())
    off = drive(spec, tmp_path / "root-off", cwd=app, job="off")
    assert (off.output_path("probe", "out") / "stores.txt").read_text() == "none"
    env = clean_env(LOOPLINE_DB_URL=f"sqlite:///{tmp_path / 'md.db'}",
                    LOOPLINE_ARTIFACT_ROOT=str(tmp_path / "store"),
                    LOOPLINE_HOME=str(tmp_path / "home"))  # fmt: skip
    on = drive(spec, tmp_path / "root-on", cwd=app, env=env, job="on")
    assert on.tasks["probe"].returncode == 0, on.tasks["probe"].stderr[-2000:]
    assert (on.output_path("probe", "out") / "stores.txt").read_text() == "reached"
