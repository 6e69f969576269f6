"""loopline's main job, end to end, on embedded defaults (``./scripts/demo``).

Everything happens in a fresh workspace (``./demo-workspace`` unless a path is given): its
own SQLite metadata database, artifact directory and copy of the data, so the demo never
touches anything else. Each step is a real ``loopline`` command, printed before it runs.

1. Run the Chicago-taxi pipeline on span 1: validation, training, tuning, blessing, the
   model server as infra validation, registration as ``taxi/1`` (champion and challenger).
2. Run it again: every step comes from the cache.
3. A drifted span 2 lands: the data-validation gate blocks the run (exit code 3).
4. A reviewed override lets it through; ``taxi/2`` becomes the challenger.
5. Show the registry and the lineage of the champion.
6. Serve ``taxi@champion`` (2 replicas behind one endpoint, as a canary deployment; the
   control plane starts on demand), watched by a Monitor, with a Trigger on its drift alert.
7. The loop, by itself: April's trips arrive as traffic with their labels; the monitor finds
   that trips got longer (real drift, against thresholds calibrated on the training data);
   the alert fires the trigger, which retrains on the data to date; the Evaluator blesses the
   new model; the deployment rolls it out as a canary whose analyses (agreement with the
   stable model on mirrored requests, prediction drift, 5xx rate, p90 latency) decide; the
   champion alias moves. Zero failed requests.
8. The timeline, the trigger's history, the analyses, the monitor's status, its HTML report
   (``monitor-report.html`` in the workspace) and the new champion's lineage.
9. Clean up: delete the deployment and stop the control plane.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

sys.path.insert(0, str(Path(__file__).resolve().parent / "taxi"))  # taxi_data
from demo_loop import close_the_loop, summary

REPO = Path(__file__).resolve().parents[1]
TAXI = REPO / "examples" / "taxi"
console = Console()


def loopline(*args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> str:
    console.print(f"[bold cyan]$ loopline {' '.join(args)}[/]")
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args], env=env, text=True, capture_output=True
    )
    if proc.stdout.strip() and "--json" not in args:
        sys.stdout.write(proc.stdout)
        sys.stdout.flush()
    if proc.returncode not in ok:
        console.print(proc.stderr, style="red", highlight=False)
        raise SystemExit(f"demo: 'loopline {' '.join(args)}' exited {proc.returncode}")
    if proc.stderr.strip():
        console.print(proc.stderr.rstrip(), style="yellow", highlight=False)
    return proc.stdout


def run_pipeline(env: dict[str, str], *params: str, expect: int = 0) -> dict[str, object]:
    args = ["run", str(TAXI / "pipeline.py"), "--json"]
    for p in params:
        args += ["--param", p]
    start = time.monotonic()
    out = json.loads(loopline(*args, env=env, ok=(expect,)))
    steps = out["steps"]
    cached = sum(1 for s in steps if s["cached"])
    console.print(
        f"→ {out['status']} in {time.monotonic() - start:.1f} s: {len(steps)} steps, "
        f"{cached} from cache"
    )
    for s in steps:
        if s["error"]:
            console.print(f"  [yellow]{s['name']}[/]: {s['error']}", highlight=False)
    return out


def show_analyses(doc: dict[str, object]) -> None:
    """The canary's analysis runs, one line per metric: what was measured and the verdict."""
    status = doc["status"]
    assert isinstance(status, dict)
    rollout = status.get("rollout") or {}
    lines = []
    for run in rollout.get("analysisRuns", []):
        for result in run["metricResults"]:
            values = [m.get("value") for m in result.get("measurements", [])]
            shown = ", ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values)
            lines.append(f"{run['kind']:<11} {result['name']:<17} {result['phase']:<13} [{shown}]")
    message = rollout.get("message", "")
    console.print(Panel("\n".join(lines) or "no analysis ran", title=f"analysis — {message}"))


def serve(env: dict[str, str]) -> str:
    console.rule("6. serve the champion, watched: a canary deployment, a monitor and a trigger")
    loopline("apply", "-f", str(TAXI / "analysis.yaml"), env=env)
    loopline("apply", "-f", str(TAXI / "canary.yaml"), env=env)
    loopline("rollout", "status", "deployment/taxi", "--timeout", "3m", env=env)
    loopline("apply", "-f", str(TAXI / "monitor.yaml"), env=env)
    loopline("apply", "-f", str(TAXI / "trigger.yaml"), env=env)
    loopline("get", "deployments", env=env)
    doc = json.loads(loopline("get", "deployment", "taxi", "--json", env=env))
    return str(doc["status"]["router"]["url"])


def wait_until_logged(directory: Path, request_id: str, timeout: float = 30.0) -> None:
    """Replicas write their prediction logs in segments every few seconds (``flush_seconds``):
    wait until the newest request's segment is there (the lineage command says why if not)."""
    from loopline.errors import NotFoundError
    from loopline.serving import find_request

    deadline = time.monotonic() + timeout
    while True:
        try:
            find_request(directory, request_id)
            return
        except NotFoundError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.5)


def the_loop(env: dict[str, str], workspace: Path, url: str) -> None:
    console.rule("7. April arrives: monitor → alert → retrain → bless → canary → promote")
    timeline, counts = close_the_loop(env, workspace, url, console)

    console.rule("8. what happened, and why")
    summary(timeline, counts, console)
    loopline("triggers", "history", "taxi-drift", env=env)
    doc = json.loads(loopline("get", "deployment", "taxi", "--json", env=env))
    show_analyses(doc)
    loopline("models", "alias", "history", "taxi", env=env)
    loopline("monitor", "status", "taxi", env=env)
    report = workspace / "monitor-report.html"
    loopline("monitor", "report", "taxi", "-o", str(report), env=env)
    loopline("lineage", "promotion/taxi/champion", env=env)  # the last move, back to its alert
    newest = max(counts.last_request, key=lambda v: int(v.split("/")[1]))
    request_id = counts.last_request[newest]
    wait_until_logged(Path(env["LOOPLINE_HOME"]) / "predictions", request_id)
    loopline("lineage", f"prediction/{request_id}", env=env)
    if counts.failures:
        raise SystemExit("demo: requests failed during the loop")
    promoted = any(what.startswith("trigger run") and "promoted" in detail
                   for _, what, detail in timeline.events)  # fmt: skip
    if not promoted:
        raise SystemExit("demo: the loop did not promote a retrained model (see the timeline)")


def main() -> None:
    workspace = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-workspace").resolve()
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    env = {
        **os.environ,
        "LOOPLINE_DB_URL": f"sqlite:///{workspace / 'loopline.db'}",
        "LOOPLINE_ARTIFACT_ROOT": str(workspace / "artifacts"),
        "LOOPLINE_HOME": str(workspace / ".loopline"),
        "LOOPLINE_USER": "demo",
        "TAXI_DATA_DIR": str(workspace / "data"),
        "COLUMNS": os.environ.get("COLUMNS", "120"),
    }
    console.print(Panel(f"loopline demo in {workspace}", style="bold"))

    console.rule("1. span 1: from raw data to a blessed, registered model")
    first = run_pipeline(env)
    loopline("models", "show", "taxi", env=env)

    console.rule("2. the same run again: everything reusable comes from the cache")
    run_pipeline(env)
    loopline("why-rerun", "Evaluator", env=env)

    console.rule("3. a drifted span 2 lands: the validation gate stops the run")
    subprocess.run([sys.executable, str(TAXI / "taxi_data.py"), "shift"], env=env, check=True)
    run_pipeline(env, expect=3)

    console.rule("4. a reviewed override lets it through, on the record")
    run_pipeline(
        env, "allow_anomalies=true", "override_reason=longer trips after the airport contract"
    )
    loopline("models", "alias", "history", "taxi", env=env)

    console.rule("5. where the champion came from")
    loopline("lineage", "taxi@champion", "--hops", "4", env=env)

    os.environ.update(env)  # the loop's watcher reads the control plane as the CLI does
    try:
        url = serve(env)
        the_loop(env, workspace, url)
    finally:
        console.rule("9. clean up")
        loopline("down", "--delete-deployments", env=env)
    console.print(
        Panel(
            f"Done. Explore it yourself:\n"
            f"  export LOOPLINE_DB_URL={env['LOOPLINE_DB_URL']}\n"
            f"  export LOOPLINE_ARTIFACT_ROOT={env['LOOPLINE_ARTIFACT_ROOT']}\n"
            f"  export LOOPLINE_HOME={env['LOOPLINE_HOME']}\n"
            f"  loopline runs list; loopline runs show {first['id']}; loopline models show taxi\n"
            f"  open {workspace / 'monitor-report.html'}",
            style="green",
        )
    )


if __name__ == "__main__":
    main()
