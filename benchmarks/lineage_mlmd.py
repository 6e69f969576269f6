"""The MLMD peer of ``benchmarks/lineage.py``: Google's ml-metadata on SQLite, the same graph.

Runs in its own virtual environment (ml-metadata pins its own protobuf and cannot share
loopline's), started by ``lineage.py --mlmd-python VENV/bin/python``; not meant to be run by
hand. It builds (once, then reuses) an MLMD store holding the same runs as loopline's bench
store — ids line up, because both write executions and artifacts run by run in the same
order — then answers timing requests on stdin, one JSON object per line::

    {"direction": "upstream"|"downstream"|"both", "starts": [artifact ids], "hops": 5}
    → {"timings_ms": [...], "graphs": {"<start>": [[artifact ids], [execution ids]]}}

Each query is one ``get_lineage_subgraph`` call from one artifact (``filter_query "id = N"``)
returning artifacts, executions and events, which is what loopline's ``lineage`` returns.
Needs ``pip install ml-metadata==1.17.1`` (Python 3.9–3.11).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from lineage_graph import PER_RUN, RUN  # this folder (the script's) is on sys.path
from ml_metadata import __version__ as mlmd_version
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

CHUNK_RUNS = 500  # runs per bulk put (one MLMD transaction each)


def open_store(path: Path) -> Any:
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def _event(kind: int, port: str, artifact_id: int, execution_id: int) -> Any:
    event = pb.Event(type=kind, artifact_id=artifact_id, execution_id=execution_id)
    event.path.steps.add().key = port
    event.path.steps.add().index = 0
    return event


def build(path: Path, runs: int) -> None:
    """The bench graph in MLMD with its bulk APIs, CHUNK_RUNS runs per call."""
    store = open_store(path)
    a_types = {
        name: store.put_artifact_type(pb.ArtifactType(name=name))
        for name in sorted({t for _, _, outs in RUN for _, t in outs})
    }
    e_types = {c: store.put_execution_type(pb.ExecutionType(name=c)) for c, _, _ in RUN}
    c_types = {n: store.put_context_type(pb.ContextType(name=n)) for n in ("Pipeline", "PipelineRun")}
    [pipeline] = store.put_contexts([pb.Context(type_id=c_types["Pipeline"], name="taxi")])
    previous_model: int | None = None
    for first in range(0, runs, CHUNK_RUNS):
        chunk = range(first, min(runs, first + CHUNK_RUNS))
        contexts = store.put_contexts(
            [pb.Context(type_id=c_types["PipelineRun"], name=f"taxi-{r}") for r in chunk]
        )
        executions: list[Any] = []
        artifacts: list[Any] = []
        # (execution index, artifact index or None for the previous model, port, kind)
        edges: list[tuple[int, int | None, str, int]] = []
        members: list[tuple[int, list[int], list[int]]] = []  # (context, artifacts, executions)
        model_index: list[int] = []
        for k, run in enumerate(chunk):
            local: dict[str, int] = {}
            run_a: list[int] = []
            run_e: list[int] = []
            for component, inputs, outputs in RUN:
                e_index = len(executions)
                run_e.append(e_index)
                execution = pb.Execution(
                    type_id=e_types[component],
                    name=f"{component}-{run}",
                    last_known_state=pb.Execution.COMPLETE,
                )
                execution.custom_properties["run"].int_value = run
                execution.custom_properties["cache_key"].string_value = f"{component}:{run}"
                executions.append(execution)
                for port in inputs:
                    if port.startswith("prev:"):
                        edges.append((e_index, None, port, pb.Event.INPUT))
                    else:
                        edges.append((e_index, local[port], port, pb.Event.INPUT))
                for port, type_name in outputs:
                    a_index = len(artifacts)
                    local[port] = a_index
                    run_a.append(a_index)
                    artifact = pb.Artifact(
                        type_id=a_types[type_name],
                        uri=f"file:///artifacts/{run}/{component}/{port}",
                        name=f"{run}:{port}",  # MLMD: (type, name) is unique
                        state=pb.Artifact.LIVE,
                    )
                    artifact.custom_properties["run"].int_value = run
                    artifacts.append(artifact)
                    edges.append((e_index, a_index, port, pb.Event.OUTPUT))
            model_index.append(local["model"])
            members.append((contexts[k], run_a, run_e))
        e_ids = store.put_executions(executions)
        a_ids = store.put_artifacts(artifacts)
        events = []
        for e_index, a_index, port, kind in edges:
            if a_index is None:
                run_k = e_index // len(RUN)
                prior = previous_model if run_k == 0 else a_ids[model_index[run_k - 1]]
                if prior is None:
                    continue
                events.append(_event(kind, port, prior, e_ids[e_index]))
            else:
                events.append(_event(kind, port, a_ids[a_index], e_ids[e_index]))
        store.put_events(events)
        attributions = []
        associations = []
        for context, run_a, run_e in members:
            for c in (pipeline, context):
                attributions += [pb.Attribution(context_id=c, artifact_id=a_ids[i]) for i in run_a]
                associations += [pb.Association(context_id=c, execution_id=e_ids[i]) for i in run_e]
        store.put_attributions_and_associations(attributions, associations)
        previous_model = a_ids[model_index[-1]]


def holds(path: Path, wanted: int) -> bool:
    """True when the store at ``path`` has exactly ``wanted`` artifacts (ids 1..wanted)."""
    if not path.exists():
        return False
    store = open_store(path)
    return len(store.get_artifacts_by_id([wanted, wanted + 1])) == 1


DIRECTIONS = {
    "upstream": pb.LineageSubgraphQueryOptions.UPSTREAM,
    "downstream": pb.LineageSubgraphQueryOptions.DOWNSTREAM,
    "both": pb.LineageSubgraphQueryOptions.BIDIRECTIONAL,
}


def query(store: Any, artifact_id: int, direction: str, hops: int) -> Any:
    options = pb.LineageSubgraphQueryOptions(
        starting_artifacts=pb.LineageSubgraphQueryOptions.StartingNodes(
            filter_query=f"id = {artifact_id}"
        ),
        max_num_hops=hops,
        direction=DIRECTIONS[direction],
    )
    return store.get_lineage_subgraph(options, ["artifacts", "executions", "events"])


def serve(store: Any) -> None:
    for line in sys.stdin:
        request = json.loads(line)
        timings: list[float] = []
        graphs: dict[str, list[list[int]]] = {}
        for start in request["starts"]:
            began = time.perf_counter()
            graph = query(store, start, request["direction"], request["hops"])
            timings.append((time.perf_counter() - began) * 1000)
            graphs[str(start)] = [
                sorted(a.id for a in graph.artifacts),
                sorted(e.id for e in graph.executions),
            ]
        print(json.dumps({"timings_ms": timings, "graphs": graphs}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--artifacts", type=int, required=True)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    runs = -(-args.artifacts // PER_RUN)
    wanted = runs * PER_RUN
    built = None
    if args.rebuild or not holds(args.path, wanted):
        if args.path.exists():
            args.path.unlink()
        began = time.perf_counter()
        build(args.path, runs)
        built = round(time.perf_counter() - began, 1)
    print(json.dumps({"mlmd": mlmd_version, "built_s": built, "artifacts": wanted}), flush=True)
    serve(open_store(args.path))


if __name__ == "__main__":
    main()
