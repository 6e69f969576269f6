"""Lineage query latency on a SQLite store holding 100,000 artifacts.

Builds (once, then reuses) a store shaped like many runs of a TFX pipeline — ExampleGen,
StatisticsGen, SchemaGen, ExampleValidator, Transform, Trainer, Evaluator (with the previous
run's model as baseline), Pusher — and times 5-hop upstream and downstream lineage queries
through the public ``MetadataStore.lineage`` API. Prints the median and p95 per direction.

    .venv/bin/python benchmarks/lineage.py [--path /tmp/loopline-lineage-bench.db]
        [--artifacts 100000] [--repeat 200] [--rebuild]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

# One pipeline run: (component, inputs, outputs); names are local to the run, "prev:" is the
# previous run's artifact.
RUN = [
    ("ExampleGen", [], [("examples", "Examples")]),
    ("StatisticsGen", ["examples"], [("statistics", "ExampleStatistics")]),
    ("SchemaGen", ["statistics"], [("schema", "Schema")]),
    ("ExampleValidator", ["statistics", "schema"], [("anomalies", "ExampleAnomalies")]),
    (
        "Transform",
        ["examples", "schema"],
        [("transformed", "Examples"), ("graph", "TransformGraph")],
    ),
    ("Trainer", ["transformed", "graph", "schema"], [("model", "Model"), ("run", "ModelRun")]),
    (
        "Evaluator",
        ["examples", "model", "prev:model"],
        [("evaluation", "ModelEvaluation"), ("blessing", "ModelBlessing")],
    ),
    ("Pusher", ["model", "blessing"], [("pushed", "PushedModel")]),
]
PER_RUN = sum(len(outputs) for _, _, outputs in RUN)


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


def time_queries(
    store: MetadataStore, starts: list[int], direction: Direction, repeat: int
) -> tuple[list[float], int]:
    timings: list[float] = []
    nodes = 0
    for i in range(repeat):
        start = starts[i % len(starts)]
        begin = time.perf_counter()
        graph = store.lineage(artifact_id=start, direction=direction, hops=5)
        timings.append((time.perf_counter() - begin) * 1000)
        nodes = max(nodes, len(graph.hops))
    return timings, nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=Path("/tmp/loopline-lineage-bench.db"))
    parser.add_argument("--artifacts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true")
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

    rng = random.Random(7)
    runs = wanted // PER_RUN
    picks = [rng.randrange(1, runs - 1) for _ in range(50)]
    # Upstream from a PushedModel (last output of a run), downstream from the run's raw
    # Examples (first output), both ways from its Model (7th output).
    pushed = [(run + 1) * PER_RUN for run in picks]
    examples = [run * PER_RUN + 1 for run in picks]
    models = [run * PER_RUN + 7 for run in picks]
    time_queries(store, pushed[:5], Direction.UPSTREAM, 10)  # warm the page cache
    print(f"store: {count_artifacts(store)} artifacts, sqlite file {args.path}")
    for label, starts, direction in (
        ("upstream", pushed, Direction.UPSTREAM),
        ("downstream", examples, Direction.DOWNSTREAM),
        ("both", models, Direction.BOTH),
    ):
        timings, nodes = time_queries(store, starts, direction, args.repeat)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        print(
            f"lineage 5 hops {label:<10} median {statistics.median(timings):6.2f} ms  "
            f"p95 {p95:6.2f} ms  (n={len(timings)}, up to {nodes} nodes)"
        )
    store.close()


if __name__ == "__main__":
    main()
