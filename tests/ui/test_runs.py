"""The Runs screens at scale and in depth: keyset pages read from the store, two runs
compared, a step's log tail and why it ran, the timeline of runs too big for a graph, and
the registry's versions paged in SQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.ui.conftest import Console, ingest, stats, train

from loopline.metadata.entities import ArtifactState, ExecutionState
from loopline.pipeline import Param, Pipeline
from loopline.pipeline.runs import RunHistory
from loopline.ui.dag import DagNode, timeline


def param_pipeline() -> Pipeline:
    """``tiny`` with its row count as the run parameter ``rows``."""
    i = ingest(rows=Param("rows", 3))
    s = stats(data=i.outputs.out)
    return Pipeline("tiny", [i, s, train(data=i.outputs.out, metrics=s.outputs.result)])


def two_runs(console: Console) -> tuple[int, int]:
    """Run ``tiny`` with rows=3, then rows=4 (every step re-runs); the ids of both runs."""
    first = console.runner.run(param_pipeline(), params={"rows": 3})
    second = console.runner.run(param_pipeline(), params={"rows": 4})
    history = RunHistory(console.metadata)
    return history.find(first.run_name).id, history.find(second.run_name).id


def rows_of(html: str, table: str) -> dict[str, tuple[str, str, str]]:
    """``label → (a, b, data-differs)`` of a compare table."""
    body = re.search(rf'<table[^>]*id="{table}".*?</table>', html, re.S)
    assert body is not None, table
    found = re.findall(r'<tr class="\w+" data-differs="(\w+)"><th scope="row">([^<]+)</th>'
                       r"<td>([^<]*)</td><td>([^<]*)</td>", body.group())  # fmt: skip
    return {label: (a, b, differs) for differs, label, a, b in found}


# ---- the runs list ------------------------------------------------------------------------


def test_the_runs_list_pages_newest_first_and_a_deep_link_reopens_the_same_page(
    console: Console,
) -> None:
    ids = [console.metadata.put_context("run", f"r{i}", properties={"pipeline": "p",
           "status": "succeeded"}).id for i in range(53)]  # fmt: skip
    console.metadata.put_context("pipeline", "p")  # another kind of context is not a run
    c = console.client()
    first = c.get("/ui/runs").text
    shown = [int(i) for i in re.findall(r'<tr data-run="(\d+)"', first)]
    assert shown == ids[::-1][:50]
    assert f'href="/ui/runs?after={ids[3]}"' in first
    second = c.get(f"/ui/runs?after={ids[3]}")
    assert [int(i) for i in re.findall(r'<tr data-run="(\d+)"', second.text)] == ids[2::-1]
    assert 'rel="next"' not in second.text
    assert c.get(f"/ui/runs?after={ids[3]}").text == second.text


def test_the_runs_list_counts_steps_and_cache_hits_and_offers_compare(console: Console) -> None:
    console.runner.run(param_pipeline())
    console.runner.run(param_pipeline())
    text = console.client().get("/ui/runs").text
    assert "<td>3/3</td>" in text and "<td>0/3</td>" in text
    assert len(re.findall(r'<input type="checkbox" name="runs" value="\d+"', text)) == 2
    assert '<form method="get" action="/ui/compare"' in text


# ---- compare ------------------------------------------------------------------------------


def test_compare_shows_parameters_metrics_digests_and_the_cache_key_change(
    console: Console,
) -> None:
    a, b = two_runs(console)
    r = console.client().get(f"/ui/compare?runs={a},{b}")
    assert r.status_code == 200
    assert rows_of(r.text, "compare-params")["rows"] == ("3", "4", "true")
    assert rows_of(r.text, "compare-runs")["pipeline"] == ("tiny", "tiny", "false")
    ingest_rows = rows_of(r.text, "step-ingest")
    assert ingest_rows["cache"] == ("miss", "miss", "false")
    digest_a, digest_b, differs = ingest_rows["output out"]
    assert differs == "true" and digest_a != digest_b and re.fullmatch(r"[0-9a-f]{16}", digest_a)
    assert rows_of(r.text, "step-stats")["metric rows"] == ("3", "4", "true")
    reasons = re.search(r'id="step-ingest".*?</table>', r.text, re.S)
    assert reasons is not None
    assert "parameter &#39;rows&#39; changed: 3 → 4" in reasons.group()
    stats_table = re.search(r'id="step-stats".*?</table>', r.text, re.S)
    assert stats_table is not None and "input &#39;data&#39; changed" in stats_table.group()
    assert f"loopline runs diff {a} {b}" in r.text


def test_only_differences_is_kept_in_the_url_and_hides_what_is_equal(console: Console) -> None:
    a, b = two_runs(console)
    c = console.client()
    everything = c.get(f"/ui/compare?runs={a},{b}").text
    assert f'href="/ui/compare?runs={a},{b}&amp;only=diff"' in everything
    only = c.get(f"/ui/compare?runs={a},{b}&only=diff").text
    assert "pipeline" not in rows_of(only, "compare-runs")
    assert all(d == "true" for _, _, d in rows_of(only, "step-ingest").values())
    assert f'href="/ui/compare?runs={b},{a}&amp;only=diff"' in only  # swap keeps the view


def test_a_cached_rerun_differs_only_in_cache_hits(console: Console) -> None:
    first = console.runner.run(param_pipeline())
    second = console.runner.run(param_pipeline())
    history = RunHistory(console.metadata)
    a, b = history.find(first.run_name).id, history.find(second.run_name).id
    text = console.client().get(f"/ui/compare?runs={a}&runs={b}&only=diff").text
    assert rows_of(text, "compare-runs")["cache hits"] == ("0/3", "3/3", "true")
    step = rows_of(text, "step-train")
    assert step["cache"] == ("miss", "hit", "true") and "output model" not in step
    assert 'class="differs reasons"' not in text  # a hit records the key parts it reused


def test_compare_needs_two_run_ids_and_names_the_parameter(console: Console) -> None:
    c = console.client()
    for query in ("", "?runs=1", "?runs=1,2,3", "?runs=a,b"):
        r = c.get(f"/ui/compare{query}")
        assert r.status_code == 400 and "runs = " in r.text and "two run ids" in r.text
    missing = c.get("/ui/compare?runs=998,999")
    assert missing.status_code == 404 and "No run &#39;998&#39;" in missing.text


# ---- a step: log and why ------------------------------------------------------------------


def test_a_steps_log_tail_is_bounded_and_escaped(console: Console) -> None:
    _, b = two_runs(console)
    record = RunHistory(console.metadata).show(str(b))
    uri = console.metadata.get_execution(record.step("ingest").execution_id).log_uri
    assert uri is not None
    lines = [f"line-{i:04d}|" for i in range(300)] + ["<script>alert(1)</script>"]
    Path(uri).write_text("\n".join(lines) + "\n")
    c = console.client()
    page = c.get(f"/ui/runs/{b}?step=ingest").text
    log = re.search(r'<pre class="log" id="log" tabindex="0">(.*?)</pre>', page, re.S)
    assert log is not None
    assert "line-0101|" in log.group(1) and "line-0100|" not in log.group(1)  # the last 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in log.group(1)
    assert "<script>alert" not in page and "(the log is longer)" in page
    longer = c.get(f"/ui/runs/{b}?step=ingest&tail=1000").text
    assert "line-0000|" in longer and 'tail=1000#step-panel" aria-current="true"' in longer


def test_a_step_says_why_it_ran_or_was_reused(console: Console) -> None:
    _, b = two_runs(console)
    c = console.client()
    ran = c.get(f"/ui/runs/{b}?step=ingest").text
    why = re.search(r'<ul id="why">(.*?)</ul>', ran, re.S)
    assert why is not None and "parameter &#39;rows&#39; changed: 3 → 4" in why.group(1)
    again = console.runner.run(param_pipeline(), params={"rows": 4})
    cached = RunHistory(console.metadata).find(again.run_name).id
    hit = c.get(f"/ui/runs/{cached}?step=train").text
    assert "Why it was reused" in hit and "cache hit: reused the outputs of execution" in hit


def test_a_missing_log_an_unknown_step_and_a_bad_tail_say_so(console: Console) -> None:
    _, b = two_runs(console)
    record = RunHistory(console.metadata).show(str(b))
    uri = console.metadata.get_execution(record.step("stats").execution_id).log_uri
    assert uri is not None
    Path(uri).unlink()
    c = console.client()
    gone = c.get(f"/ui/runs/{b}?step=stats")
    assert gone.status_code == 200 and "does not exist (any more)" in gone.text
    unknown = c.get(f"/ui/runs/{b}?step=nope")
    assert unknown.status_code == 404 and "has no step &#39;nope&#39;" in unknown.text
    bad = c.get(f"/ui/runs/{b}?step=stats&tail=0")
    assert bad.status_code == 400 and "tail = &#39;0&#39; is invalid" in bad.text


# ---- big runs: the timeline ---------------------------------------------------------------


def test_a_run_of_more_than_200_steps_is_drawn_as_a_timeline(console: Console) -> None:
    md = console.metadata
    run = md.put_context("run", "big", properties={"pipeline": "wide", "status": "running"})
    t0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    for i in range(201):
        e = md.put_execution("Step", name=f"s{i:03d}", state=ExecutionState.RUNNING,
                             started_at=t0 + timedelta(seconds=i), contexts=[run.id])  # fmt: skip
        if i < 200:
            md.update_execution(e.id, state=ExecutionState.COMPLETE,
                                ended_at=t0 + timedelta(seconds=i + 2))  # fmt: skip
    text = console.client().get(f"/ui/runs/{run.id}").text
    assert 'id="dag"' not in text and "more than the 200" in text
    bars = re.findall(r'<g class="bar \w+" id="bar-(s\d+)" data-status="(\w+)"', text)
    assert len(bars) == 201 and bars[0] == ("s000", "complete") and bars[-1][1] == "running"


def test_timeline_bars_share_one_axis_and_running_steps_end_now() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    done, running, waiting = DagNode("a", "a", "complete"), DagNode("b", "b", "running"), \
        DagNode("c", "c", "new")  # fmt: skip
    t = timeline([(done, t0, t0 + timedelta(seconds=10)),
                  (running, t0 + timedelta(seconds=10), None),
                  (waiting, None, None)], now=t0 + timedelta(seconds=40))  # fmt: skip
    a, b, c = t.bars
    assert t.span_seconds == 40 and a.x == t.label_width and a.width == 180  # 720 px / 40 s
    assert (b.x, b.width, b.seconds) == (t.label_width + 180, 540, 30)
    assert (c.x, c.width, c.seconds) == (t.label_width, 2, None)
    assert a.y < b.y < c.y


# ---- the registry, paged in SQL -----------------------------------------------------------


def test_a_models_versions_page_newest_first_from_the_store(console: Console) -> None:
    md = console.metadata
    for i in range(51):  # bc has 1 and 2 already
        art = md.put_artifact("Model", f"mem://bc/{i}", state=ArtifactState.LIVE)
        md.create_model_version("bc", art.id)
    c = console.client()
    first = c.get("/ui/models/bc").text
    versions = [int(v) for v in re.findall(r'<tr data-version="(\d+)">', first)]
    assert versions == list(range(53, 3, -1))
    assert 'href="/ui/models/bc?after=4"' in first
    rest = c.get("/ui/models/bc?after=4").text
    assert [int(v) for v in re.findall(r'<tr data-version="(\d+)">', rest)] == [3, 2, 1]
    assert "@champion" in rest  # the alias chip sits on version 1, on the last page
    assert c.get("/ui/models/nope").status_code == 404


# ---- artifacts, paged in SQL --------------------------------------------------------------


def test_artifacts_page_newest_first_and_the_next_link_keeps_the_filters(
    console: Console,
) -> None:
    md = console.metadata
    run = md.put_context("run", "many", properties={"pipeline": "p"})
    ids = [md.put_artifact("Examples", f"mem://e/{i}", state=ArtifactState.LIVE).id
           for i in range(53)]  # fmt: skip
    md.put_artifact("Schema", "mem://s", state=ArtifactState.LIVE)
    md.attribute(run.id, ids)
    c = console.client()
    first = c.get("/ui/artifacts?type=Examples").text
    shown = [int(i) for i in re.findall(r'<tr data-artifact="(\d+)">', first)]
    assert shown == ids[::-1][:50]
    assert f'href="/ui/artifacts?after={ids[3]}&amp;type=Examples"' in first
    rest = c.get(f"/ui/artifacts?after={ids[3]}&type=Examples").text
    assert [int(i) for i in re.findall(r'<tr data-artifact="(\d+)">', rest)] == ids[2::-1]
    in_run = c.get(f"/ui/artifacts?run={run.id}&after={ids[1]}").text
    assert [int(i) for i in re.findall(r'<tr data-artifact="(\d+)">', in_run)] == [ids[0]]
    assert f'href="/ui/lineage?from=artifact/{ids[0]}"' in in_run


def test_the_artifacts_filters_name_a_bad_value(console: Console) -> None:
    c = console.client()
    bad = c.get("/ui/artifacts?run=x")
    assert bad.status_code == 400 and "run = &#39;x&#39; is invalid" in bad.text
    pipeline = console.metadata.put_context("pipeline", "p")
    missing = c.get(f"/ui/artifacts?run={pipeline.id}")
    assert missing.status_code == 404 and f"run = {pipeline.id} is not a run" in missing.text
    long = c.get("/ui/artifacts?type=" + "t" * 300)
    assert long.status_code == 400 and "an artifact type name is at most 255" in long.text
