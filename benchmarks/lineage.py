"""Lineage query latency on a SQLite store holding 100,000 artifacts, with MLMD as the peer.

Builds (once, then reuses) a store shaped like many runs of a TFX pipeline — ExampleGen,
StatisticsGen, SchemaGen, ExampleValidator, Transform, Trainer, Evaluator (with the previous
run's model as baseline), Pusher (``lineage_graph.py``) — and times 5-hop upstream,
downstream and both-way lineage queries through the public ``MetadataStore.lineage`` API
from 50 random runs. Prints the median and p95 per direction.

The peer is Google's ml-metadata (MLMD) 1.17.1 on SQLite, in its own virtual environment
(``lineage_mlmd.py``): the same graph (same ids), the same start artifacts, measured in the
same run, rounds interleaved with loopline's; the table gives both medians and p95 and the
ratio, and whether both returned the same nodes for every start. Without ``--mlmd-python``
only loopline is measured (and the output says so). Set the peer up once with:

    python3.11 -m venv /tmp/mlmd-venv && /tmp/mlmd-venv/bin/pip install ml-metadata==1.17.1

    .venv/bin/python benchmarks/lineage.py [--path /tmp/loopline-lineage-bench.db]
        [--artifacts 100000] [--repeat 300] [--rounds 3] [--rebuild]
        [--mlmd-python /tmp/mlmd-venv/bin/python] [--mlmd-path PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lineage_graph import PER_RUN, RUN  # this folder (the script's) is on sys.path
from sqlalchemy import func, insert, select

from loopline.metadata import Direction, EventType, MetadataStore, open_store
from loopline.metadata.sql import SqlMetadataStore
from loopline.metadata.sql.schema import (
    ArtifactRow,
    AssociationRow,
    AttributionRow,
    ContextRow,
    EventRow,
    ExecutionRow,
)


def build(path: Path, artifacts: int) -> None:
    """Write the benchmark store with bulk inserts (one transaction)."""
    if path.exists():
        path.unlink()
    store = open_store(f"sqlite:///{path}")
    if not isinstance(store, SqlMetadataStore):
        raise TypeError("the benchmark builds a SQL store")
    runs = -(-artifacts // PER_RUN)  # enough runs for at least `artifacts`
    now = datetime.now(UTC)
    a_rows: list[dict[str, Any]] = []
    e_rows: list[dict[str, Any]] = []
    ev_rows: list[dict[str, Any]] = []
    attr_rows: list[dict[str, Any]] = []
    assoc_rows: list[dict[str, Any]] = []
    ctx_rows: list[dict[str, Any]] = [
        {"id": 1, "type_name": "Pipeline", "name": "taxi", "properties": {}, "created_at": now}
    ]
    prev: dict[str, int] = {}
    for run in range(runs):
        run_ctx = run + 2
        ctx_rows.append(
            {
                "id": run_ctx,
                "type_name": "PipelineRun",
                "name": f"taxi-{run}",
                "properties": {},
                "created_at": now,
            }
        )
        local: dict[str, int] = {}
        for component, inputs, outputs in RUN:
            e_id = len(e_rows) + 1
            e_rows.append(
                {
                    "id": e_id,
                    "type_name": component,
                    "name": f"{component}-{run}",
                    "state": "complete",
                    "cache_key": f"{component}:{run}",
                    "properties": {"run": run},
                    "log_uri": None,
                    "created_at": now,
                    "started_at": now,
                    "ended_at": now,
                }
            )
            assoc_rows.extend({"context_id": c, "execution_id": e_id} for c in (1, run_ctx))
            for port in inputs:
                a_id = prev.get(port[5:]) if port.startswith("prev:") else local[port]
                if a_id is None:
                    continue
                ev_rows.append(_event(a_id, e_id, EventType.INPUT, port, now))
            for port, type_name in outputs:
                a_id = len(a_rows) + 1
                local[port] = a_id
                props: dict[str, Any] = {"run": run}
                if type_name == "ModelBlessing":
                    props |= {
                        "blessed": 1,
                        "current_model_id": local["model"],
                        "baseline_model_id": prev.get("model", 0),
                    }
                a_rows.append(
                    {
                        "id": a_id,
                        "type_name": type_name,
                        "uri": f"file:///artifacts/{run}/{component}/{port}",
                        "name": port,
                        "digest": f"sha256:{a_id:064x}",
                        "state": "live",
                        "properties": props,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                attr_rows.extend({"context_id": c, "artifact_id": a_id} for c in (1, run_ctx))
                ev_rows.append(_event(a_id, e_id, EventType.OUTPUT, port, now))
        prev = local
    with store.engine.begin() as connection:
        for model, rows in (
            (ArtifactRow, a_rows),
            (ExecutionRow, e_rows),
            (ContextRow, ctx_rows),
            (EventRow, ev_rows),
            (AttributionRow, attr_rows),
            (AssociationRow, assoc_rows),
        ):
            for start in range(0, len(rows), 20_000):
                connection.execute(insert(model), rows[start : start + 20_000])
    with store.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    store.close()


def _event(a_id: int, e_id: int, kind: EventType, port: str, now: datetime) -> dict[str, Any]:
    return {
        "artifact_id": a_id,
        "execution_id": e_id,
        "type": kind.value,
        "port": port,
        "idx": 0,
        "created_at": now,
    }


def count_artifacts(store: SqlMetadataStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ArtifactRow)).scalar_one())


DIRECTIONS = {
    "upstream": Direction.UPSTREAM,
    "downstream": Direction.DOWNSTREAM,
    "both": Direction.BOTH,
}
Graphs = dict[int, tuple[list[int], list[int]]]  # start -> (artifact ids, execution ids)


def time_loopline(
    store: MetadataStore, starts: list[int], direction: Direction, hops: int
) -> tuple[list[float], Graphs]:
    timings: list[float] = []
    graphs: Graphs = {}
    for start in starts:
        begin = time.perf_counter()
        graph = store.lineage(artifact_id=start, direction=direction, hops=hops)
        timings.append((time.perf_counter() - begin) * 1000)
        graphs[start] = (
            sorted(a.id for a in graph.artifacts),
            sorted(e.id for e in graph.executions),
        )
    return timings, graphs


class MlmdPeer:
    """``lineage_mlmd.py`` running in the MLMD virtual environment, answering over a pipe."""

    def __init__(self, python: str, path: Path, artifacts: int, rebuild: bool) -> None:
        script = Path(__file__).resolve().parent / "lineage_mlmd.py"
        command = [python, str(script), "--path", str(path), "--artifacts", str(artifacts)]
        self._process = subprocess.Popen(
            [*command, *(["--rebuild"] if rebuild else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read()
        self.version = str(ready["mlmd"])
        self.built_s = ready["built_s"]

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise RuntimeError(f"the MLMD peer exited with code {code} (its error is above)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def time(self, starts: list[int], direction: str, hops: int) -> tuple[list[float], Graphs]:
        assert self._process.stdin is not None
        request = {"direction": direction, "starts": starts, "hops": hops}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = self._read()
        graphs = {int(k): (v[0], v[1]) for k, v in answer["graphs"].items()}
        return [float(t) for t in answer["timings_ms"]], graphs

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=60)


def _p95(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _nodes(graphs: Graphs) -> int:
    return max(len(a) + len(e) for a, e in graphs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--path", type=Path, default=Path("/tmp/loopline-lineage-bench.db"))
    parser.add_argument("--artifacts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=300, help="queries per direction and side")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per side")
    parser.add_argument("--hops", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--mlmd-python",
        default=os.environ.get("LOOPLINE_BENCH_MLMD_PYTHON"),
        help="python of a venv with ml-metadata==1.17.1 (env LOOPLINE_BENCH_MLMD_PYTHON)",
    )
    parser.add_argument("--mlmd-path", type=Path, help="MLMD's SQLite file (default: beside --path)")
    args = parser.parse_args()

    wanted = -(-args.artifacts // PER_RUN) * PER_RUN
    store = open_store(f"sqlite:///{args.path}")
    if not isinstance(store, SqlMetadataStore):
        raise TypeError("the benchmark reads a SQL store")
    if args.rebuild or count_artifacts(store) != wanted:
        store.close()
        began = time.perf_counter()
        build(args.path, args.artifacts)
        print(f"built {args.path} with {wanted} artifacts in {time.perf_counter() - began:.1f} s")
        store = open_store(f"sqlite:///{args.path}")
    print(f"loopline store: {count_artifacts(store)} artifacts, sqlite file {args.path}")

    peer: MlmdPeer | None = None
    if args.mlmd_python:
        mlmd_path = args.mlmd_path or args.path.with_name(f"{args.path.stem}-mlmd.db")
        try:
            peer = MlmdPeer(args.mlmd_python, mlmd_path, args.artifacts, args.rebuild)
        except (OSError, RuntimeError) as exc:
            print(f"MLMD peer: not measured — {args.mlmd_python} could not run it: {exc}")
        else:
            built = f", built in {peer.built_s} s" if peer.built_s is not None else ""
            print(f"MLMD peer: ml-metadata {peer.version}, sqlite file {mlmd_path}{built}")
    else:
        print(
            "MLMD peer: not measured — pass --mlmd-python (a venv with ml-metadata==1.17.1: "
            "python3.11 -m venv /tmp/mlmd-venv && /tmp/mlmd-venv/bin/pip install "
            "ml-metadata==1.17.1)"
        )

    rng = random.Random(7)
    runs = wanted // PER_RUN
    picks = [rng.randrange(1, runs - 1) for _ in range(50)]
    # Upstream from a PushedModel (last output of a run), downstream from the run's raw
    # Examples (first output), both ways from its Model (7th output).
    cases = {
        "upstream": [(run + 1) * PER_RUN for run in picks],
        "downstream": [run * PER_RUN + 1 for run in picks],
        "both": [run * PER_RUN + 7 for run in picks],
    }
    per_round = max(1, args.repeat // args.rounds)
    warm = cases["upstream"][:5] * 4  # page caches and prepared statements, both sides
    time_loopline(store, warm, Direction.UPSTREAM, args.hops)
    if peer is not None:
        peer.time(warm, "upstream", args.hops)

    ours: dict[str, list[float]] = {label: [] for label in cases}
    theirs: dict[str, list[float]] = {label: [] for label in cases}
    our_graphs: dict[str, Graphs] = {label: {} for label in cases}
    their_graphs: dict[str, Graphs] = {label: {} for label in cases}
    for round_ in range(args.rounds):
        for label, starts in cases.items():
            batch = [starts[(round_ * per_round + i) % len(starts)] for i in range(per_round)]
            sides = ["loopline", "mlmd"] if round_ % 2 == 0 else ["mlmd", "loopline"]
            for side in sides:
                if side == "loopline":
                    timings, graphs = time_loopline(store, batch, DIRECTIONS[label], args.hops)
                    ours[label] += timings
                    our_graphs[label].update(graphs)
                elif peer is not None:
                    timings, graphs = peer.time(batch, label, args.hops)
                    theirs[label] += timings
                    their_graphs[label].update(graphs)
    store.close()
    if peer is not None:
        peer.close()

    print(f"\nlineage, {args.hops} hops, SQLite, {wanted} artifacts, {args.rounds} interleaved rounds")
    header = f"{'direction':<11} {'loopline median (p95)':>23}"
    if peer is not None:
        header += f" {'MLMD median (p95)':>21} {'MLMD/loopline':>14}  same nodes"
    print(header)
    for label in cases:
        median = statistics.median(ours[label])
        line = (
            f"{label:<11} {median:>9.3f} ms ({_p95(ours[label]):6.3f})"
            f"  n={len(ours[label])} ≤{_nodes(our_graphs[label])} nodes"
        )
        if peer is not None:
            their_median = statistics.median(theirs[label])
            same = sum(our_graphs[label][s] == their_graphs[label].get(s) for s in our_graphs[label])
            line = (
                f"{label:<11} {median:>9.3f} ms ({_p95(ours[label]):6.3f})"
                f" {their_median:>9.3f} ms ({_p95(theirs[label]):6.3f})"
                f" {their_median / median:>13.2f}×  {same}/{len(our_graphs[label])}"
            )
            if same < len(our_graphs[label]):
                start = next(
                    s for s in our_graphs[label] if our_graphs[label][s] != their_graphs[label].get(s)
                )
                ours_n = sum(map(len, our_graphs[label][start]))
                theirs_n = sum(map(len, their_graphs[label].get(start, ([], []))))
                line += f" (e.g. from artifact {start}: loopline {ours_n} nodes, MLMD {theirs_n})"
        print(line)
    if peer is not None:
        print(
            "(MLMD's BIDIRECTIONAL follows every edge either way at each hop, so it also reaches "
            "siblings; loopline's BOTH is ancestors plus descendants: the node sets differ by "
            "design.)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
