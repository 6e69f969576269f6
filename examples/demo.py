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
6. Deploy ``taxi@champion`` with 2 replicas behind one endpoint as a canary deployment
   (the control plane starts on demand), with its AnalysisTemplates, and send it traffic.
7. Promote the challenger and roll it out as a canary under that traffic: a mirrored copy of
   every request, exact weights 10 → 50 → 100 %, and analyses of agreement with the stable
   model, prediction drift, 5xx rate and p90 latency decide; zero failed requests.
8. Clean up: delete the deployment and stop the control plane.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console
from rich.panel import Panel

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


class Traffic:
    """Closed-loop V2 inference requests from two client threads, counted by outcome and by
    the model version that answered (bounded: stops by itself after ``limit`` seconds)."""

    def __init__(self, url: str, rows: list[dict[str, str]], limit: float = 300.0) -> None:
        self.url, self.rows, self.limit = url, rows, limit
        self.versions: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(2)]

    def _body(self, row: dict[str, str]) -> dict[str, object]:
        def tensor(name: str, datatype: str, value: object) -> dict[str, object]:
            return {"name": name, "shape": [1], "datatype": datatype, "data": [value]}

        return {"inputs": [
            tensor("distance", "FP64", float(row["distance"])),
            *(tensor(c, "BYTES", row[c]) for c in ("company", "local", "dow", "month")),
            tensor("hour", "INT64", int(row["hour"])),
        ]}  # fmt: skip

    def _run(self, offset: int) -> None:
        deadline = time.monotonic() + self.limit
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = offset
            while not self._stop.is_set() and time.monotonic() < deadline:
                row = self.rows[i % len(self.rows)]
                i += 2
                try:
                    r = client.post("/v2/models/taxi/infer", json=self._body(row))
                    outcome = (
                        str(r.json().get("model_version"))
                        if r.status_code == 200
                        else (f"HTTP {r.status_code}")
                    )
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    if outcome.startswith(("HTTP", "Connect", "Read", "Remote")):
                        self.failures[outcome] += 1
                    else:
                        self.versions[f"taxi/{outcome}"] += 1

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


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


def deploy_and_roll_out(env: dict[str, str], workspace: Path) -> None:
    console.rule("6. serve the champion: 2 replicas behind one endpoint, as a canary deployment")
    loopline("apply", "-f", str(TAXI / "analysis.yaml"), env=env)
    loopline("apply", "-f", str(TAXI / "canary.yaml"), env=env)
    loopline("rollout", "status", "deployment/taxi", "--timeout", "3m", env=env)
    doc = json.loads(loopline("get", "deployment", "taxi", "--json", env=env))
    url = doc["status"]["router"]["url"]
    loopline("get", "deployments", env=env)
    with open(workspace / "data" / "span-1" / "taxi.csv") as fh:
        rows = [r for _, r in zip(range(200), csv.DictReader(fh), strict=False)]

    console.rule("7. promote the challenger: a canary with model-aware analysis, under traffic")
    runs = json.loads(loopline("runs", "show", "latest", "--json", env=env))
    blessing = next(s for s in runs["steps"] if s["name"] == "Evaluator")["outputs"]["blessing"]
    with Traffic(url, rows) as traffic:
        time.sleep(2)
        before = dict(traffic.versions)
        loopline("models", "alias", "set", "taxi", "champion", "2", "--why",
                 "challenger passed review", "--evidence", str(blessing), env=env)  # fmt: skip
        loopline("set", "model", "deployment/taxi", "taxi@champion", env=env)
        time.sleep(3)
        loopline("get", "deployments", env=env)  # STATUS Progressing, TRAFFIC stable/canary
        loopline("rollout", "status", "deployment/taxi", "--timeout", "5m", env=env,
                 ok=(0, 1))  # fmt: skip
        time.sleep(2)
    doc = json.loads(loopline("get", "deployment", "taxi", "--json", env=env))
    show_analyses(doc)
    loopline("rollout", "history", "deployment/taxi", env=env)
    loopline("get", "replicas", "taxi", env=env)
    total = sum(traffic.versions.values()) + sum(traffic.failures.values())
    style = "green" if not traffic.failures else "red"
    console.print(Panel(
        f"{total} requests through {url} during the rollout\n"
        f"answered by: {dict(traffic.versions)} (before the rollout: {before})\n"
        f"failed: {sum(traffic.failures.values())} {dict(traffic.failures) or ''}",
        title=f"canary under load: {doc['status']['phase']}", style=style,
    ))  # fmt: skip
    if traffic.failures:
        raise SystemExit("demo: requests failed during the rollout")


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

    try:
        deploy_and_roll_out(env, workspace)
    finally:
        console.rule("8. clean up")
        loopline("down", "--delete-deployments", env=env)
    console.print(
        Panel(
            f"Done. Explore it yourself:\n"
            f"  export LOOPLINE_DB_URL={env['LOOPLINE_DB_URL']}\n"
            f"  export LOOPLINE_ARTIFACT_ROOT={env['LOOPLINE_ARTIFACT_ROOT']}\n"
            f"  loopline runs list; loopline runs show {first['id']}; loopline models show taxi",
            style="green",
        )
    )


if __name__ == "__main__":
    main()
