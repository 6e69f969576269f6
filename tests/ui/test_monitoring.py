"""The Monitoring screen over a real MonitorOperations with stored windows: the heat table
with sparklines, a feature's distribution in a chosen window, performance with its interval
and the CBPE estimate, alerts, deep links and bad selections named in 400/404."""

from __future__ import annotations

import re
import time

import pytest
from tests.ui.conftest import Console

from loopline.controlplane.monitors import MonitorOperations
from loopline.monitor import AlertEvent, InMemoryMonitorStore, MonitorSpec
from loopline.monitor.store import Commit
from loopline.monitor.window_result import (
    Check,
    FeatureResult,
    Histogram,
    PerformanceValue,
    WindowResult,
)

NOW = 1_800_000_000.0


def window(index: int, distance: float) -> WindowResult:
    drifted = distance >= 0.2
    hist = Histogram((0.5, 0.5), (0.5 - distance, 0.5 + distance), edges=(3.0,))
    return WindowResult(
        monitor="bc-watch", model="bc", version="1", index=index,
        start_ts=NOW + index * 60, end_ts=NOW + index * 60 + 59, rows=300,
        features=(
            FeatureResult("distance", "numeric", drifted, {"js": distance},
                          (Check("js", distance, 0.2, drifted),), histogram=hist),
            FeatureResult("hour", "numeric", False, {"js": 0.01},
                          (Check("js", 0.01, 0.2, False),), histogram=hist),
        ),
        performance=(PerformanceValue("accuracy", 0.9, 0.85, 0.94, 300, "wilson"),),
        estimated=(PerformanceValue("accuracy", 0.88, 0.84, 0.92, 300, "cbpe",
                                    alert_lower=0.8, alert_upper=0.97),),
        labelled_rows=300,
    )  # fmt: skip


@pytest.fixture
def monitored(console: Console) -> Console:
    return attach_monitor(console)


def attach_monitor(console: Console) -> Console:
    """A MonitorOperations on ``console`` with monitor ``bc-watch``: three stored windows of
    ``bc`` version 1 (``distance`` drifts from window 1) and a firing alert."""
    store = InMemoryMonitorStore()
    console.service.monitors_ops = MonitorOperations(
        store,
        deployments=console.service.store,
        metadata=console.metadata,
        registry=console.registry,
        artifacts=console.runner.artifacts,
        log_root=console.runner.log_dir,
    )
    spec = MonitorSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Monitor", "metadata": {"name": "bc-watch"},
        "spec": {"deployment": "bc", "model": "bc", "window": {"rows": 300}},
    })  # fmt: skip
    store.apply(spec, NOW)
    alert = AlertEvent("bc-watch", "distance", "bc", "1", "firing", "warning",
                       "distance drifted 2 windows in a row", 1, 2, "feature:distance", 0.3)
    commit = Commit(state={"versions": {"1": {}}, "rows": 900},
                    windows=(window(0, 0.05), window(1, 0.3), window(2, 0.3)),
                    alerts=(alert,))  # fmt: skip
    store.commit("bc-watch", 0, commit, time.time(), keep_windows=100)
    return console


def test_the_monitors_list_links_each_monitor(monitored: Console) -> None:
    page = monitored.client().get("/ui/monitors")
    assert page.status_code == 200
    assert 'href="/ui/monitors/bc-watch"' in page.text and "1 of 2 drifted" in page.text
    filtered = monitored.client().get("/ui/monitors?deployment=other")
    assert "bc-watch" not in filtered.text and "No monitors" in filtered.text


def test_the_heat_table_shows_each_feature_per_window_against_its_threshold(
    monitored: Console,
) -> None:
    page = monitored.client().get("/ui/monitors/bc-watch")
    assert page.status_code == 200
    cells = re.findall(r'<tr data-feature="(\w+)">', page.text)
    assert cells == ["distance", "hour"]
    drift = re.findall(r'data-window="(\d)" data-drifted="(\w+)"', page.text)
    assert drift[:3] == [("0", "false"), ("1", "true"), ("2", "true")]
    assert page.text.count('<td class="spark"><svg') == 2  # the report's line_chart
    assert 'id="distribution"' in page.text and "distance: window 2 vs reference" in page.text
    assert "CBPE estimate" in page.text and "0.85 – 0.94" in page.text
    assert "distance drifted 2 windows in a row" in page.text
    assert "No trigger listens" in page.text


def test_a_deep_link_selects_the_feature_and_the_window(monitored: Console) -> None:
    page = monitored.client().get("/ui/monitors/bc-watch?version=1&feature=hour&window=0")
    assert page.status_code == 200
    assert "hour: window 0 vs reference" in page.text
    assert '<th scope="row">≥ 3</th><td>50.0%</td><td>55.0%</td>' in page.text


def test_bad_selections_answer_400_or_404_naming_them(monitored: Console) -> None:
    c = monitored.client()
    bad = c.get("/ui/monitors/bc-watch?window=x")
    assert bad.status_code == 400 and "window=" in bad.text
    assert "feature=" in c.get("/ui/monitors/bc-watch?feature=nope").text
    assert c.get("/ui/monitors/bc-watch?feature=nope").status_code == 404
    assert c.get("/ui/monitors/bc-watch?window=9").status_code == 404
    assert c.get("/ui/monitors/bc-watch?version=7").status_code == 404
    missing = c.get("/ui/monitors/nothing")
    assert missing.status_code == 404 and "nothing" in missing.text


def test_the_overview_drift_column_links_to_the_deployments_monitors(monitored: Console) -> None:
    from tests.ui.conftest import deployment

    monitored.service.apply(deployment())
    page = monitored.client().get("/ui/").text
    assert 'href="/ui/monitors?deployment=bc"' in page


def live_data(console: Console, path: str) -> str:
    """The first ``update`` event of the console's live stream at ``path``, as HTML."""
    with console.client().stream("GET", f"{path}?max_events=1" if "?" not in path
                                 else f"{path}&max_events=1") as r:  # fmt: skip
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    assert "event: update\n" in body
    return "\n".join(line[6:] for line in body.splitlines() if line.startswith("data: "))


def test_the_monitor_page_streams_its_live_part_with_the_deep_links_selection(
    monitored: Console,
) -> None:
    page = monitored.client().get("/ui/monitors/bc-watch?feature=hour&window=0")
    assert 'sse-connect="/ui/live/monitors/bc-watch?feature=hour&amp;window=0"' in page.text
    data = live_data(monitored, "/ui/live/monitors/bc-watch?feature=hour&window=0")
    assert "<html" not in data and 'id="heat"' in data
    assert "hour: window 0 vs reference" in data


def test_a_window_recorded_after_the_page_opened_reaches_the_live_stream(
    monitored: Console,
) -> None:
    before = live_data(monitored, "/ui/live/monitors/bc-watch")
    assert 'data-window="3"' not in before
    ops = monitored.service.monitors()
    ops.store.commit("bc-watch", 1, Commit(state={"versions": {"1": {}}, "rows": 1200},
                                           windows=(window(3, 0.02),), alerts=()),
                     time.time(), keep_windows=100)  # fmt: skip
    after = live_data(monitored, "/ui/live/monitors/bc-watch")
    assert 'data-window="3"' in after and "distance: window 3 vs reference" in after
    bad = live_data(monitored, "/ui/live/monitors/bc-watch?feature=nope")
    assert 'role="alert"' in bad and "feature=" in bad


def test_the_runs_its_alerts_triggered_link_to_their_pipeline_run(monitored: Console) -> None:
    from tests.triggers.helpers import trigger
    from tests.ui.conftest import tiny_pipeline

    from loopline.controlplane.triggers import TriggerOperations
    from loopline.triggers.controller import TriggerController
    from loopline.triggers.process import ProcessLauncher
    from loopline.triggers.run import RunChange, RunState
    from loopline.triggers.store import InMemoryTriggerStore

    monitored.runner.run(tiny_pipeline())
    run_id = re.findall(r'<tr data-run="(\d+)"', monitored.client().get("/ui/runs").text)[0]
    store = InMemoryTriggerStore()
    controller = TriggerController(  # its loop is not started: the runs are written below
        store=store, metadata=monitored.metadata, registry=monitored.registry,
        launcher=ProcessLauncher(monitored.runner.log_dir), rollouts=None, clock=time.time,
    )  # fmt: skip
    monitored.service.triggers_ops = TriggerOperations(store, controller)
    store.apply(trigger({"alert": {"monitor": "bc-watch"}}, name="retrain-bc"), NOW)
    store.apply(trigger({"alert": {"monitor": "elsewhere"}}, name="other"), NOW)
    cause = {"summary": "distance drifted"}
    started = store.create_run(trigger="retrain-bc", model="bc", keys=("alert:1",), params={},
                               cause=cause, detail={}, now=NOW)  # fmt: skip
    store.update_run(started.id, RunState.PENDING,
                     RunChange(state=RunState.RUNNING, detail={"pipeline_run": int(run_id)}),
                     NOW + 1)  # fmt: skip
    page = monitored.client().get("/ui/monitors/bc-watch").text
    assert "<code>retrain-bc</code>" in page and "<code>other</code>" not in page
    row = re.search(rf'<tr data-trigger-run="{started.id}">.*?</tr>', page, re.S)
    assert row is not None and f'href="/ui/runs/{run_id}">run {run_id}</a>' in row.group()
    assert "distance drifted" in row.group()


def test_a_monitor_without_a_window_yet_says_so_on_the_page_and_the_stream(
    monitored: Console,
) -> None:
    spec = MonitorSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Monitor", "metadata": {"name": "fresh"},
        "spec": {"deployment": "bc", "model": "bc", "window": {"rows": 300}},
    })  # fmt: skip
    monitored.service.monitors().store.apply(spec, NOW)
    page = monitored.client().get("/ui/monitors/fresh")
    assert page.status_code == 200, page.text
    assert "No window has closed yet" in page.text
    assert "No window has closed yet" in live_data(monitored, "/ui/live/monitors/fresh")
    # A deep link's selection is kept until windows arrive (it cannot be checked before).
    held = monitored.client().get("/ui/monitors/fresh?feature=distance&window=3")
    assert held.status_code == 200 and "No window has closed yet" in held.text


def test_the_drift_score_and_performance_series_travel_as_chart_data_for_uplot(
    monitored: Console,
) -> None:
    import json

    page = monitored.client().get("/ui/monitors/bc-watch?feature=distance").text
    assert 'src="/ui/static/vendor/uPlot.iife.min.js"' in page
    assert 'src="/ui/static/charts.js"' in page
    found = re.findall(r'<script type="application/json" class="chart-data">(.*?)</script>', page)
    charts = {c["id"]: c for c in map(json.loads, found)}
    drift = charts["drift-chart"]
    assert drift["x"] == [0, 1, 2] and drift["x_label"] == "window" and drift["y_label"] == "js"
    assert [s["label"] for s in drift["series"]] == ["distance", "threshold", "drifted"]
    assert drift["series"][2]["values"] == [None, 0.3, 0.3] and drift["series"][2]["width"] == 0
    assert drift["series"][0]["values"] == [0.05, 0.3, 0.3]
    assert drift["series"][1]["values"] == [0.2, 0.2, 0.2] and drift["series"][1]["dashed"]
    (perf,) = [c for i, c in charts.items() if i.startswith("perf-chart-")]
    by_label = {s["label"]: s["values"] for s in perf["series"]}
    assert by_label["accuracy (realised from labels)"] == [0.9, 0.9, 0.9]
    assert by_label["interval, lower"] == [0.85, 0.85, 0.85]
    assert by_label["accuracy (CBPE estimate)"] == [0.88, 0.88, 0.88]
    assert by_label["alert band, lower"] == [0.8, 0.8, 0.8]
    assert 'role="img" aria-label="distance: js per window' in page


def test_the_monitors_list_streams_its_rows_with_the_new_window_counts(
    monitored: Console,
) -> None:
    page = monitored.client().get("/ui/monitors?deployment=bc")
    assert 'sse-connect="/ui/live/monitors?deployment=bc"' in page.text
    before = live_data(monitored, "/ui/live/monitors?deployment=bc")
    assert "<html" not in before and 'data-monitor="bc-watch"' in before
    store = monitored.service.monitors().store
    store.commit("bc-watch", 1, Commit(state={"versions": {"1": {}}, "rows": 1200},
                                       windows=(window(3, 0.02),), alerts=()),
                 time.time(), keep_windows=100)  # fmt: skip
    after = live_data(monitored, "/ui/live/monitors?deployment=bc")
    row = re.search(r'<tr data-monitor="bc-watch">.*?</tr>', after, re.S)
    assert row is not None and "<td>4</td>" in row.group() and "no drift" in row.group()
