"""The monitor status document and the self-contained HTML report, over real windows: the
pipeline-trained taxi model, real taxi trips logged by the server's writer, a drift injected
half-way, labels for part of the traffic."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loopline.monitor import (
    InMemoryMonitorStore,
    MonitorRunner,
    MonitorSpec,
    MonitorStatus,
    WindowResult,
    build_status,
    model_lineage,
    render_report,
    write_report,
)
from tests.monitor.conftest import Traffic, Trained, shifted

NOW = 1.8e9
HOSTILE = '<script>alert("x")</script>&"\'><img src=//evil.example/x>'
VOID = {"meta", "br", "img", "hr", "input", "link", "wbr", "col", "area", "base", "source"}


class Checker(HTMLParser):
    """Every element closed in order; src/href values and SVG aria-labels collected."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.links: list[str] = []
        self.labels: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        for key, value in attrs:
            if key in ("src", "href", "xlink:href", "action"):
                self.links.append(value or "")
            if tag == "svg" and key == "aria-label":
                self.labels.append(value or "")


@pytest.fixture(scope="module")
def monitored(
    tmp_path_factory: pytest.TempPathFactory, trained: Trained
) -> tuple[MonitorStatus, list[WindowResult]]:
    """Eight windows of 300 rows: four normal (labelled), four shifted (not labelled); a rule
    on distance fires after two drifted windows."""
    logs = tmp_path_factory.mktemp("report-logs")
    traffic = Traffic(logs, trained.model)
    spec = MonitorSpec.from_dict(
        {
            "apiVersion": "loopline/v1",
            "kind": "Monitor",
            "metadata": {"name": "taxi-report"},
            "spec": {
                "deployment": "taxi",
                "model": "taxi",
                "window": {"rows": 300},
                "label": {"task": "classification", "positiveClass": "yes"},
                "rules": [{"name": "distance", "metric": "feature:distance", "forWindows": 2}],
            },
        }
    )
    store = InMemoryMonitorStore()
    stored, _ = store.apply(spec, NOW)
    runner = MonitorRunner(spec, store, trained.metadata, trained.registry, trained.artifacts, logs)
    rows = trained.data.sample(frac=1.0, random_state=7)
    traffic.send(rows.iloc[:1200], labels=True, ts=NOW - 4000, step=60)
    assert runner.tick(NOW).errors == ()
    traffic.send(shifted(rows.iloc[1200:2400]), ts=NOW - 1000, step=60)
    ticked = runner.tick(NOW + 1)
    assert [a.state for a in ticked.alerts] == ["firing"]
    windows = store.windows("taxi-report")
    status = build_status(
        stored,
        store.load_state("taxi-report"),
        {"1": windows},
        store.alerts("taxi-report"),
        model="taxi",
        lineage={"1": model_lineage(trained.metadata, trained.registry, "taxi", "1")},
    )
    return status, windows


def test_the_status_names_the_drifted_features_with_history_performance_and_the_firing_alert(
    monitored: tuple[MonitorStatus, list[WindowResult]],
) -> None:
    status, _ = monitored
    assert (status.rows, status.labels, status.windows) == (2400, 1200, 8)
    (v,) = status.versions
    assert (v.version, v.windows, v.last_index, v.rows) == ("1", 8, 7, 300)
    distance = next(f for f in v.features if f.name == "distance")
    assert distance.drifted and distance.calibrated
    assert distance.value is not None and distance.threshold is not None
    assert distance.value > distance.threshold and distance.ratio is not None
    assert len(distance.history) == 8 and distance.history[-1] == distance.value
    assert "distance" in v.drifted
    # the last window had no labels: nothing realised, CBPE still estimates accuracy
    assert all(p.value is None for p in v.performance)
    estimate = next(p for p in v.estimated if p.name == "accuracy")
    assert estimate.value is not None and estimate.lower is not None
    assert [(a.rule, a.state, a.first_window) for a in status.firing] == [("distance", "firing", 4)]
    assert v.lineage is not None and v.lineage.producer == "Trainer"
    assert v.lineage.spans == (1,) and v.lineage.run is not None
    assert MonitorStatus.from_dict(status.to_dict()) == status


def test_the_report_is_one_self_contained_html_file_with_a_plot_per_feature(
    monitored: tuple[MonitorStatus, list[WindowResult]], tmp_path: Path
) -> None:
    status, windows = monitored
    html = render_report(status, windows, generated_at=NOW)
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert checker.problems == [] and checker.stack == []
    assert checker.scripts == 0 and checker.links == []
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|//)", html)
    features = [f.name for f in windows[-1].features]
    for name in features:
        assert (
            sum(lab.startswith(f"{name}: latest window vs reference") for lab in checker.labels)
            == 1
        )
        assert (
            sum(lab.startswith(f"{name}: ") and "per window" in lab for lab in checker.labels) == 1
        )
    assert "Drift of version 1" in html and "Alert timeline" in html
    assert "accuracy of version 1 over time" in html  # realised and estimated, one chart
    assert "Trainer" in html and "taxi/1" in html
    written = write_report(tmp_path / "out" / "report.html", html)
    assert written.read_text(encoding="utf-8") == html
    assert [p.name for p in written.parent.iterdir()] == ["report.html"]  # no temp file left


def test_a_hostile_feature_or_monitor_name_is_escaped_everywhere(
    monitored: tuple[MonitorStatus, list[WindowResult]],
) -> None:
    status, windows = monitored
    hostile = [
        replace(
            w,
            monitor=HOSTILE,
            features=tuple(
                replace(f, name=HOSTILE) if f.name == "company" else f for f in w.features
            ),
        )
        for w in windows
    ]
    html = render_report(
        replace(status, name=HOSTILE, deployment=HOSTILE), hostile, generated_at=NOW
    )
    assert HOSTILE not in html and "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    checker = Checker()
    checker.feed(html)
    assert checker.problems == [] and checker.links == [] and checker.scripts == 0
    assert any(lab.startswith(HOSTILE + ": latest window") for lab in checker.labels)


def test_a_monitor_without_windows_still_renders_a_report(
    monitored: tuple[MonitorStatus, list[WindowResult]],
) -> None:
    status, _ = monitored
    empty = replace(status, versions=(), firing=(), resolved=(), rows=0, labels=0)
    html = render_report(empty, [], generated_at=NOW)
    assert "No window has closed yet." in html and "No alert has fired." in html
    checker = Checker()
    checker.feed(html)
    assert checker.problems == []
