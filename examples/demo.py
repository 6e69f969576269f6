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
