"""MonitorRunner end to end: real pipeline-trained taxi model, real taxi trips logged by the
server's writer, windows, calibrated drift, alerts with lineage, restarts without double
counting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loopline.errors import BackendError
from loopline.metadata import ArtifactState, Direction
from loopline.monitor import (
    Commit,
    InMemoryMonitorStore,
    MonitorRunner,
    MonitorSpec,
    MonitorStore,
    SqlMonitorStore,
)
from tests.monitor.conftest import Traffic, Trained, shifted

NOW = 1.8e9


def spec(name: str, window: dict[str, Any] | None = None, **extra: Any) -> MonitorSpec:
    body: dict[str, Any] = {
        "deployment": "taxi",
        "model": "taxi",
        "window": window or {"rows": 500},
        "label": {"task": "classification", "positiveClass": "yes"},
    }
    body.update(extra)
    return MonitorSpec.from_dict(
        {"apiVersion": "loopline/v1", "kind": "Monitor", "metadata": {"name": name}, "spec": body}
    )


def make_runner(trained: Trained, store: MonitorStore, s: MonitorSpec, logs: Path) -> MonitorRunner:
    store.apply(s, NOW)
    return MonitorRunner(s, store, trained.metadata, trained.registry, trained.artifacts, logs)


@pytest.fixture
def traffic(tmp_path: Path, trained: Trained) -> Traffic:
    return Traffic(tmp_path / "logs", trained.model)


def test_windows_of_n_rows_measure_drift_performance_and_estimates(
    trained: Trained, traffic: Traffic
) -> None:
    runner = make_runner(
        trained, InMemoryMonitorStore(), spec("steady"), traffic.predictions.root.parent
    )
    traffic.send(trained.data.sample(1200, random_state=1), labels=True)
    result = runner.tick(NOW)
    assert result.errors == () and result.rows == 1200 and result.labels == 1200
    assert [(w.index, w.rows) for w in result.windows] == [(0, 500), (1, 500)]
    w = result.windows[0]
    assert (w.model, w.version) == ("taxi", "1")
    assert {f.name for f in w.features} == {"distance", "company", "local", "dow", "month", "hour"}
    assert w.drifted_features == () and w.violations == ()
    distance = w.feature("distance")
    assert distance is not None and distance.histogram is not None
    assert distance.histogram.edges is not None and abs(sum(distance.histogram.current) - 1) < 1e-9
    assert all(c.calibrated for c in distance.checks)
    assert w.prediction is not None and not w.prediction.drifted
    accuracy = w.metric("accuracy")
    assert accuracy is not None and accuracy.n == 500 and accuracy.value is not None
    assert accuracy.lower is not None and accuracy.lower <= accuracy.value <= (accuracy.upper or 1)
    estimate = w.metric("accuracy", estimated=True)
    assert estimate is not None and estimate.value is not None
    assert abs(estimate.value - accuracy.value) < 0.1  # CBPE tracks the realised accuracy
    assert w.labelled_rows == 500
    assert runner.store.load_state("steady").state["rows"] == 1200


def test_an_injected_drift_fires_after_n_windows_clears_with_hysteresis_and_traces_to_the_model(
    trained: Trained, traffic: Traffic
) -> None:
    rules = [
        {
            "name": "distance",
            "metric": "feature:distance",
            "forWindows": 2,
            "clearAfter": 2,
            "severity": "critical",
        }
    ]
    store = InMemoryMonitorStore()
    runner = make_runner(
        trained, store, spec("drift", rules=rules), traffic.predictions.root.parent
    )
    normal = trained.data.sample(frac=1.0, random_state=3)
    traffic.send(normal.iloc[:1000])
    assert runner.tick(NOW).alerts == ()
    traffic.send(shifted(normal.iloc[1000:2500]))
    fired = runner.tick(NOW + 1)
    assert [w.feature("distance").drifted for w in fired.windows] == [True] * 3  # type: ignore[union-attr]
    assert [(a.state, a.first_window, a.last_window) for a in fired.alerts] == [("firing", 2, 3)]
    assert "feature 'distance' drifted" in fired.alerts[0].reason
    traffic.send(normal.iloc[2500:4000])
    cleared = runner.tick(NOW + 2)
    assert [(a.state, a.first_window, a.last_window) for a in cleared.alerts] == [
        ("resolved", 2, 6)
    ]
    alerts = [
        a
        for a in trained.metadata.list_artifacts(type_name="Alert", newest_first=False)
        if a.properties["monitor"] == "drift"
    ]
    assert [(a.properties["state"], a.state) for a in alerts] == [
        ("firing", ArtifactState.LIVE),
        ("resolved", ArtifactState.LIVE),
    ]
    props = alerts[0].properties
    assert (props["rule"], props["model"], props["version"], props["severity"]) == (
        "distance",
        "taxi",
        "1",
        "critical",
    )
    assert (props["first_window"], props["last_window"], props["metric"]) == (
        2,
        3,
        "feature:distance",
    )
    graph = trained.metadata.lineage(artifact_id=alerts[0].id, direction=Direction.UPSTREAM, hops=2)
    assert trained.model_artifact_id in {a.id for a in graph.artifacts}
    assert {e.type_name for e in graph.executions} == {"MonitorWindow"}
    assert [a.artifact_id for a in store.alerts("drift")] == [a.id for a in alerts]


class CrashingStore(InMemoryMonitorStore):
    """A store whose next commit fails, as a process killed between ingest and commit."""

    crash = False

    def commit(
        self, name: str, expected_revision: int, commit: Commit, now: float, *, keep_windows: int
    ) -> int:
        if self.crash:
            self.crash = False
            raise BackendError("killed before the commit")
        return super().commit(name, expected_revision, commit, now, keep_windows=keep_windows)


def test_a_restart_resumes_where_it_stopped_and_counts_nothing_twice(
    trained: Trained, traffic: Traffic, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    from loopline.metadata import open_store

    meta = open_store(url)
    store = SqlMonitorStore.from_metadata(meta)
    s = spec("restart", window={"rows": 300})
    logs = traffic.predictions.root.parent
    rows = trained.data.sample(1000, random_state=5)
    traffic.send(rows.iloc[:450], labels=True)
    first = make_runner(trained, store, s, logs).tick(NOW)
    assert [w.index for w in first.windows] == [0] and first.rows == 450
    traffic.send(rows.iloc[450:], labels=True)
    crashing = CrashingStore()
    crashing.apply(s, NOW)
    crashing.crash = True
    # killed between ingest and commit: nothing of that tick is counted
    with pytest.raises(BackendError, match="killed before the commit"):
        MonitorRunner(
            s, crashing, trained.metadata, trained.registry, trained.artifacts, logs
        ).tick(NOW)
    # a real restart on the SQL store: a new runner, a new connection
    meta.close()
    meta = open_store(url)
    store = SqlMonitorStore.from_metadata(meta)
    again = MonitorRunner(s, store, trained.metadata, trained.registry, trained.artifacts, logs)
    second = again.tick(NOW + 1)
    assert second.rows == 550 and [w.index for w in second.windows] == [1, 2]
    assert again.tick(NOW + 2).rows == 0  # after the commit: not read again
    windows = store.windows("restart")
    assert [w.rows for w in windows] == [300, 300, 300]
    state = store.load_state("restart")
    assert state.state["rows"] == 1000
    open_window = state.state["versions"]["1"]["open"]  # type: ignore[index]
    assert open_window["rows"] == 100 and open_window["index"] == 3  # type: ignore[index]
    assert sum(w.labelled_rows for w in windows) == 900
    meta.close()


def test_windows_by_duration_close_when_time_passes_their_end(
    trained: Trained, traffic: Traffic
) -> None:
    s = spec("timed", window={"duration": "10m"})
    runner = make_runner(trained, InMemoryMonitorStore(), s, traffic.predictions.root.parent)
    start = 1_800_000_000.0  # a multiple of 600 s
    rows = trained.data.sample(1200, random_state=7)
    traffic.send(rows.iloc[:600], ts=start + 10, step=10)  # 12 requests over 2 minutes
    traffic.send(rows.iloc[600:], ts=start + 600 + 10, step=10)  # the next 10 minutes
    result = runner.tick(start + 700)
    assert [(w.index, w.rows, w.start_ts, w.end_ts) for w in result.windows] == [
        (0, 600, start, start + 600)
    ]
    assert runner.tick(start + 1200 + 14).windows == ()  # within the lateness allowance
    late = runner.tick(start + 1200 + 15).windows
    assert [(w.index, w.rows, w.start_ts) for w in late] == [(1, 600, start + 600)]


def test_a_version_without_a_reference_is_reported_and_its_logs_wait(
    trained: Trained, traffic: Traffic
) -> None:
    runner = make_runner(
        trained, InMemoryMonitorStore(), spec("unknown"), traffic.predictions.root.parent
    )
    traffic.send(trained.data.iloc[:100], version="9")
    result = runner.tick(NOW)
    assert result.rows == 0 and result.segments == 0
    assert result.errors == ("version 9: Model 'taxi' has no version 9. Known versions: 1.",)
    traffic.send(trained.data.iloc[:100], version="1")
    assert runner.tick(NOW + 1).rows == 100  # the known version is read; version 9 still waits


def test_the_model_must_be_named_by_the_spec_or_the_caller(
    trained: Trained, tmp_path: Path
) -> None:
    from loopline.errors import InvalidInputError

    s = MonitorSpec.from_dict(
        {
            "apiVersion": "loopline/v1",
            "kind": "Monitor",
            "metadata": {"name": "m"},
            "spec": {"deployment": "taxi", "window": {"rows": 10}},
        }
    )
    with pytest.raises(InvalidInputError, match="names no model: set spec.model"):
        MonitorRunner(
            s,
            InMemoryMonitorStore(),
            trained.metadata,
            trained.registry,
            trained.artifacts,
            tmp_path,
        )
    runner = MonitorRunner(
        s,
        InMemoryMonitorStore(),
        trained.metadata,
        trained.registry,
        trained.artifacts,
        tmp_path,
        model="taxi",
    )
    assert runner.model == "taxi"


def test_the_shifted_frame_is_a_real_shift(trained: Trained) -> None:
    moved = shifted(trained.data)
    assert isinstance(moved, pd.DataFrame)
    assert moved["distance"].mean() > 1.5 * trained.data["distance"].mean()


def test_changing_the_window_drops_the_open_windows_partial_rows(
    trained: Trained, traffic: Traffic
) -> None:
    store = InMemoryMonitorStore()
    logs = traffic.predictions.root.parent
    rows = trained.data.sample(850, random_state=11)
    traffic.send(rows.iloc[:450])
    make_runner(trained, store, spec("resize", window={"rows": 300}), logs).tick(NOW)
    resized = make_runner(trained, store, spec("resize", window={"rows": 200}), logs)
    traffic.send(rows.iloc[450:])
    result = resized.tick(NOW + 1)
    assert [(w.index, w.rows) for w in result.windows] == [(2, 200), (3, 200)]
    assert [w.index for w in store.windows("resize")] == [0, 2, 3]


def test_unseen_categories_are_schema_violations_and_new_values(
    trained: Trained, traffic: Traffic
) -> None:
    rules = [
        {"name": "schema", "metric": "schemaViolations", "forWindows": 1},
        {"name": "new", "metric": "newValues", "forWindows": 1},
    ]
    runner = make_runner(
        trained,
        InMemoryMonitorStore(),
        spec("domain", rules=rules),
        traffic.predictions.root.parent,
    )
    rows = trained.data.sample(500, random_state=13).reset_index(drop=True)
    rows.loc[rows.index[:50], "company"] = "Brand New Cab"  # 10 % of the trips
    traffic.send(rows)
    result = runner.tick(NOW)
    (w,) = result.windows
    assert [(v.feature, v.kind, v.severity) for v in w.violations] == [
        ("company", "out_of_domain", "error")
    ]
    company = w.feature("company")
    assert company is not None and company.metrics["new_value_excess"] > 0.09
    assert sorted(a.rule for a in result.alerts) == ["new", "schema"]


class FlakyMetadata:
    """The metadata store, killed once while an alert is being recorded."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.fail = inner, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def publish_execution(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail:
            self.fail = False
            raise BackendError("killed while recording the alert")
        return self.inner.publish_execution(*args, **kwargs)


def test_an_alert_interrupted_while_recorded_is_recorded_once_by_the_next_tick(
    trained: Trained, traffic: Traffic
) -> None:
    rules = [{"name": "distance", "metric": "feature:distance", "forWindows": 1}]
    s = spec("outbox", rules=rules)
    store = InMemoryMonitorStore()
    store.apply(s, NOW)
    logs = traffic.predictions.root.parent
    flaky = FlakyMetadata(trained.metadata)
    traffic.send(shifted(trained.data.sample(500, random_state=17)))
    first = MonitorRunner(s, store, flaky, trained.registry, trained.artifacts, logs)  # type: ignore[arg-type]
    with pytest.raises(BackendError, match="killed while recording the alert"):
        first.tick(NOW)
    assert [a.artifact_id for a in store.alerts("outbox")] == [None]  # committed, not recorded
    again = make_runner(trained, store, s, logs)
    result = again.tick(NOW + 1)
    assert result.rows == 0 and len(result.recorded) == 1
    mine = [
        a
        for a in trained.metadata.list_artifacts(type_name="Alert")
        if a.properties["monitor"] == "outbox"
    ]
    assert [(a.id, a.state) for a in mine] == [(result.recorded[0], ArtifactState.LIVE)]
    assert [a.artifact_id for a in store.alerts("outbox")] == [result.recorded[0]]
    assert again.tick(NOW + 2).recorded == ()
