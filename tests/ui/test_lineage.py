"""The Lineage screen: a run's, a model version's and an artifact's graph, node links that
open their own lineage, and bad references answered 400/404 naming them."""

from __future__ import annotations

import re

from tests.ui.conftest import Console, tiny_pipeline

from loopline.ui.lineage import parse_ref

NODE = re.compile(r'id="node-(artifact|execution)-(\d+)" data-kind="\w+" data-state="(\w+)"')


def test_a_runs_lineage_draws_its_artifacts_and_executions_in_columns(console: Console) -> None:
    console.runner.run(tiny_pipeline())
    c = console.client()
    run_id = re.findall(r'<tr data-run="(\d+)"', c.get("/ui/runs").text)[0]
    page = c.get(f"/ui/lineage?from=run/{run_id}")
    assert page.status_code == 200
    nodes = NODE.findall(page.text)
    kinds = [k for k, _, _ in nodes]
    assert kinds.count("execution") == 3 and kinds.count("artifact") == 3
    assert len(re.findall(r'<path class="edge"', page.text)) == 6  # 3 writes, 3 reads
    assert f"loopline lineage run/{run_id}" in page.text
    xs = dict(re.findall(r'id="node-(\w+-\d+)"[^>]*transform="translate\((\d+),', page.text))
    executions = sorted(int(i) for k, i, _ in nodes if k == "execution")
    ingest, train = f"execution-{executions[0]}", f"execution-{executions[-1]}"
    assert int(xs[ingest]) < int(xs[train])  # upstream on the left


def test_a_model_versions_lineage_links_each_node_to_its_own_view(console: Console) -> None:
    c = console.client()
    page = c.get("/ui/lineage?from=model/bc/1")
    assert page.status_code == 200 and "Model bc version 1" in page.text
    artifact = console.metadata.get_model_version("bc", 1).artifact_id
    assert f'data-node="a:{artifact}" aria-current="true"' in page.text
    assert f'href="/ui/lineage?from=artifact/{artifact}"' in page.text
    deep = c.get(f"/ui/lineage?from=artifact/{artifact}")
    assert deep.status_code == 200 and f"Artifact {artifact}" in deep.text


def test_the_registry_and_runs_screens_link_to_lineage(console: Console) -> None:
    console.runner.run(tiny_pipeline())
    c = console.client()
    assert 'href="/ui/lineage?from=model/bc/1"' in c.get("/ui/models/bc").text
    run_id = re.findall(r'<tr data-run="(\d+)"', c.get("/ui/runs").text)[0]
    assert f'href="/ui/lineage?from=run/{run_id}"' in c.get(f"/ui/runs/{run_id}").text


def test_a_bad_reference_answers_400_and_an_unknown_one_404_naming_it(console: Console) -> None:
    c = console.client()
    bad = c.get("/ui/lineage?from=table/7")
    assert bad.status_code == 400 and "from=" in bad.text and "table/7" in bad.text
    assert c.get("/ui/lineage?from=artifact/x").status_code == 400
    missing = c.get("/ui/lineage?from=model/bc/99")
    assert missing.status_code == 404 and "99" in missing.text
    assert c.get("/ui/lineage?from=run/999999").status_code == 404
    pipeline = console.metadata.ensure_context("pipeline", "not-a-run")
    not_a_run = c.get(f"/ui/lineage?from=run/{pipeline.id}")
    assert not_a_run.status_code == 404 and f"no run {pipeline.id}" in not_a_run.text
    prediction = c.get("/ui/lineage?from=prediction/abc")
    assert prediction.status_code == 404 and "prediction-log directory" in prediction.text


def test_parse_ref_reads_each_kind() -> None:
    assert parse_ref("model/bc/2") == ("model", ("bc", "2"))
    assert parse_ref("prediction/req-1") == ("prediction", ("req-1",))
    assert parse_ref("run/3") == ("run", ("3",))


def test_a_prediction_opens_the_lineage_of_the_version_that_answered(console: Console) -> None:
    import numpy as np

    from loopline.controlplane.monitors import MonitorOperations
    from loopline.monitor import InMemoryMonitorStore
    from loopline.serving import LogOptions
    from loopline.serving.prediction_log import LogRecord, SegmentWriter

    logs = console.runner.log_dir / "predictions"
    console.service.monitors_ops = MonitorOperations(
        InMemoryMonitorStore(), deployments=console.service.store, metadata=console.metadata,
        registry=console.registry, artifacts=console.runner.artifacts, log_root=logs,
    )  # fmt: skip
    writer = SegmentWriter(logs, "predictions", LogOptions(logs))
    writer.offer(LogRecord("req-42", 1_800_000_000.0, "bc", "2", 1,
                           {"inputs": {"x": np.array([3.0])},
                            "outputs": {"predict": np.array([1])}}))  # fmt: skip
    writer.flush()
    page = console.client().get("/ui/lineage?from=prediction/req-42")
    assert page.status_code == 200 and "answered by bc version 2" in page.text
    rows = re.search(r'<table class="grid" id="request-rows">.*?</table>', page.text, re.S)
    assert rows is not None
    heads = re.findall(r'<th scope="col">([^<]*)</th>', rows.group())
    assert heads == ["Row", "input x", "output predict"]
    assert '<th scope="row">0</th><td>3</td><td>1</td>' in rows.group()
    artifact = console.metadata.get_model_version("bc", 2).artifact_id
    assert f'data-node="a:{artifact}" aria-current="true"' in page.text
    missing = console.client().get("/ui/lineage?from=prediction/req-0")
    assert missing.status_code == 404 and "req-0" in missing.text


def test_a_model_versions_lineage_shows_its_aliases_promotion_history_and_deployments(
    console: Console,
) -> None:
    from tests.ui.conftest import deployment

    from loopline.testing.artifacts import wait_for

    console.registry.set_alias("bc", "champion", 2, who="alice", why="better on the holdout")
    console.registry.set_alias("bc", "challenger", 1, who="bob", why="keep the old one warm")
    console.service.apply(deployment(model="bc@champion", canary=False))
    wait_for(lambda: console.settle(1) or console.service.get_deployment("bc")["status"]
             ["model"]["pinned"] == "bc/2", timeout=20, what="bc to pin bc/2")  # fmt: skip
    page = console.client().get("/ui/lineage?from=model/bc/2")
    assert page.status_code == 200
    section = re.search(r'<section aria-labelledby="registry-h".*?</section>', page.text, re.S)
    assert section is not None
    v2 = re.search(r'data-version="bc/2">.*?</table>', section.group(), re.S)
    assert v2 is not None
    assert '<span class="chip">@champion</span>' in v2.group()
    assert 'href="/ui/deployments/bc">bc</a>' in v2.group()
    moves = re.findall(r'<th scope="row">@(\w+)</th>\s*<td>(\w+): (\S+) → (\S+)</td>'
                       r'<td>([^<]*)</td><td>([^<]*)</td>', v2.group())  # fmt: skip
    assert moves == [("champion", "set", "1", "2", "alice", "better on the holdout")]
    # Version 1 is not in version 2's graph: it is not listed.
    assert 'data-version="bc/1"' not in section.group()
    v1 = console.client().get("/ui/lineage?from=model/bc/1").text
    assert '<span class="chip">@challenger</span>' in v1 and "no deployment" in v1
    assert "bob" in v1 and "baseline" in v1  # champion's first move set it to version 1


def test_a_data_sets_lineage_starts_at_that_artifact_and_other_types_are_refused(
    console: Console,
) -> None:
    console.runner.run(tiny_pipeline())
    data = [a for a in console.metadata.list_artifacts() if a.type_name == "Dataset"]
    page = console.client().get(f"/ui/lineage?from=dataset/{data[0].id}")
    assert page.status_code == 200 and f"Data set {data[0].id} · Dataset" in page.text
    assert f'data-node="a:{data[0].id}" aria-current="true"' in page.text
    model = console.metadata.get_model_version("bc", 1).artifact_id
    refused = console.client().get(f"/ui/lineage?from=dataset/{model}")
    assert refused.status_code == 400
    assert f"artifact {model} is a Model, not a data set" in refused.text
    assert f"use artifact/{model}" in refused.text


def test_a_graph_over_200_nodes_is_listed_not_drawn(console: Console) -> None:
    from loopline.metadata.entities import ArtifactState, ExecutionState

    md = console.metadata
    data = md.put_artifact("Dataset", "file:///wide/in", state=ArtifactState.LIVE)
    parts = [md.put_artifact("Dataset", f"file:///wide/{i}", state=ArtifactState.LIVE).id
             for i in range(205)]  # fmt: skip
    md.put_execution("Split", name="split", state=ExecutionState.COMPLETE,
                     inputs=[("data", data.id)], outputs=[("part", p) for p in parts])  # fmt: skip
    page = console.client().get(f"/ui/lineage?from=dataset/{data.id}")
    assert page.status_code == 200
    assert '<svg id="lineage"' not in page.text and "more than 200 nodes" in page.text
    assert len(re.findall(r'<tr data-node="', page.text)) == 207  # 206 artifacts, 1 execution


def test_a_requests_view_shows_its_first_rows_with_their_labels_and_cuts_long_values() -> None:
    from datetime import UTC, datetime

    import numpy as np

    from loopline.serving import LoggedRequest
    from loopline.ui.lineage import ROWS_SHOWN, request_view

    n = ROWS_SHOWN + 2
    request = LoggedRequest(
        request_id="req-7", model="taxi", version="3", ts=datetime(2026, 12, 7, tzinfo=UTC),
        segments=(),
        inputs=tuple({"miles": np.float64(i + 0.123456), "vec": np.arange(30.0)}
                     for i in range(n)),
        outputs=tuple({"predict": np.int64(i % 2)} for i in range(n)),
        labels=tuple("yes" if i % 2 else "no" for i in range(n)),
    )  # fmt: skip
    view = request_view(request)
    assert view.columns == ("input miles", "input vec", "output predict", "label")
    assert view.total == n and len(view.rows) == ROWS_SHOWN
    assert view.rows[1][0] == "1.123" and view.rows[1][2:] == ("1", "yes")
    assert view.rows[0][1].startswith("[0, 1, 2") and view.rows[0][1].endswith("…")
    assert len(view.rows[0][1]) == 40
