from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from loopline.metadata import ArtifactState, ExecutionState

PIPELINE = """
import time
from pathlib import Path
from loopline.pipeline import Dataset, Input, Output, Pipeline, component

MARKER = Path({marker!r})

@component
def quick(out: Output[Dataset]) -> None:
    (out.path / "data.txt").write_text("complete")

@component
def slow(data: Input[Dataset], out: Output[Dataset]) -> None:
    (out.path / "half.txt").write_text("half-written")
    if MARKER.exists():
        MARKER.write_text("started")
        time.sleep(60)

q = quick()
pipeline = Pipeline("crashy", [q, slow(data=q.outputs.out)])
"""

DRIVER = """
import sys
from pathlib import Path
from loopline.artifacts.fs import FsspecArtifactStore
from loopline.metadata.urls import open_store
from loopline.pipeline.loader import load_pipeline
from loopline.pipeline.runner import LocalRunner

root = Path(sys.argv[1])
md = open_store(f"sqlite:///{root / 'loopline.db'}")
art = FsspecArtifactStore(str(root / "artifacts"))
LocalRunner(md, art, log_dir=root / "logs").run(load_pipeline(sys.argv[2]))
"""


def test_kill_9_mid_run_then_rerun_resumes_from_cache_with_nothing_half_written(env) -> None:
    root: Path = env.root
    marker = root / "marker"
    marker.write_text("armed")
    pipeline_file = root / "crashy.py"
    pipeline_file.write_text(textwrap.dedent(PIPELINE.format(marker=str(marker))))
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(root), str(pipeline_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while marker.read_text() != "started":
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.stderr:
        proc.stderr.close()

    md = env.metadata
    slow_exec = next(e for e in md.list_executions() if e.name == "slow")
    assert slow_exec.state is ExecutionState.RUNNING
    pending = md.list_artifacts(state=ArtifactState.PENDING)
    assert len(pending) == 1
    assert not env.artifacts.exists(pending[0].uri), "half-written bytes are visible"
    assert [a.name for a in md.list_artifacts(state=ArtifactState.LIVE)] == ["quick.out"]

    marker.unlink()  # the slow step is quick on the second attempt
    from loopline.pipeline.loader import load_pipeline

    result = env.runner.run(load_pipeline(pipeline_file))
    assert result.ok
    assert result.steps["quick"].state is ExecutionState.CACHED
    assert result.steps["slow"].state is ExecutionState.COMPLETE
    assert md.get_execution(slow_exec.id).state is ExecutionState.FAILED
    assert "died before it finished" in str(md.get_execution(slow_exec.id).properties["error"])
    assert md.list_artifacts(state=ArtifactState.PENDING) == []
    assert md.get_artifact(pending[0].id).state is ArtifactState.DELETED
    crashed = [c for c in md.list_contexts(type_name="run") if c.id != result.run_id]
    assert crashed[0].properties["status"] == "crashed"
    staging = root / "artifacts" / ".staging"
    leftovers = [p for p in staging.iterdir()] if staging.exists() else []
    assert leftovers == [], leftovers
