"""Conformance suite for ``loopline.monitor.MonitorStore``: every backend passes it.

Subclass :class:`MonitorStoreContract` in a test module, set ``__test__ = True`` and provide a
``store`` fixture (an empty store).
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from loopline.errors import ConflictError, NotFoundError
from loopline.monitor import (
    AlertEvent,
    Check,
    FeatureResult,
    Histogram,
    MonitorSpec,
    PerformanceValue,
    Violation,
    WindowResult,
)
from loopline.monitor.store import Commit, MonitorStore


def make_monitor(name: str = "watch", rows: int = 100) -> MonitorSpec:
    """A small valid Monitor spec."""
    return MonitorSpec.from_dict(
        {
            "apiVersion": "loopline/v1",
            "kind": "Monitor",
            "metadata": {"name": name},
            "spec": {
                "deployment": "web",
                "model": "iris",
                "window": {"rows": rows},
                "rules": [{"name": "drift", "metric": "driftShare"}],
            },
        }
    )


def make_window(index: int, version: str = "1", monitor: str = "watch") -> WindowResult:
    """A window result with every kind of field set."""
    hist = Histogram((0.5, 0.5), (0.25, 0.75), edges=(1.5,))
    feat = FeatureResult(
        "x",
        "numeric",
        True,
        {"normalized_wasserstein": 0.4, "psi": 0.2},
        (Check("normalized_wasserstein", 0.4, 0.1, True, True),),
        histogram=hist,
        missing_share=0.01,
    )
    cat = FeatureResult(
        "c",
        "categorical",
        False,
        reason="one side has no values",
        histogram=Histogram((1.0,), (0.0,), categories=("a",)),
    )
    perf = PerformanceValue("accuracy", 0.9, 0.85, 0.93, 200, "wilson")
    est = PerformanceValue("accuracy", None, None, None, 0, "cbpe", reason="no scores logged")
    return WindowResult(
        monitor,
        "iris",
        version,
        index,
        10.0 * index,
        10.0 * index + 9,
        100,
        (feat, cat),
        prediction=feat,
        violations=(Violation("x", "out_of_range", "error", "x too big"),),
        skewed=("x",),
        performance=(perf,),
        estimated=(est,),
        labelled_rows=200,
    )


def make_alert(first: int, state: str = "firing", monitor: str = "watch") -> AlertEvent:
    return AlertEvent(
        monitor,
        "drift",
        "iris",
        "1",
        state,
        "warning",
        "It drifted.",
        first,
        first + 2,
        "driftShare",
        0.75,
    )


class MonitorStoreContract:
    """Tests every :class:`MonitorStore` must pass. Needs a ``store`` fixture."""

    __test__: ClassVar[bool] = False

    def test_applying_creates_then_configures_then_is_unchanged(self, store: MonitorStore) -> None:
        first, outcome = store.apply(make_monitor(), 10.0)
        assert outcome == "created" and first.generation == 1
        assert store.apply(make_monitor(), 11.0)[1] == "unchanged"
        changed, outcome = store.apply(make_monitor(rows=200), 12.0)
        assert outcome == "configured" and changed.generation == 2
        assert changed.created_at == 10.0 and store.get("watch").spec == make_monitor(rows=200)

    def test_monitors_list_by_name_and_a_missing_one_names_the_known(
        self, store: MonitorStore
    ) -> None:
        store.apply(make_monitor("b"), 1.0)
        store.apply(make_monitor("a"), 1.0)
        assert [m.spec.name for m in store.list()] == ["a", "b"]
        with pytest.raises(
            NotFoundError,
            match=r"Monitor 'zz' does not exist; known monitors: "
            r"\['a', 'b'\]",
        ):
            store.get("zz")
        with pytest.raises(NotFoundError, match="Monitor 'zz' does not exist"):
            store.load_state("zz")

    def test_a_new_monitor_has_no_state(self, store: MonitorStore) -> None:
        store.apply(make_monitor(), 1.0)
        state = store.load_state("watch")
        assert state.revision == 0 and state.state == {}
        assert state.blob is None and state.consumed == frozenset()

    def test_a_commit_writes_state_cursor_windows_and_alerts_together(
        self, store: MonitorStore
    ) -> None:
        store.apply(make_monitor(), 1.0)
        commit = Commit(
            state={"open": {"1": {"rows": 5}}},
            blob=b"\x00arrow",
            consumed=frozenset({"predictions/a.parquet", "feedback/b.parquet"}),
            windows=(make_window(0), make_window(1)),
            alerts=(make_alert(0),),
        )
        assert store.commit("watch", 0, commit, 5.0, keep_windows=10) == 1
        state = store.load_state("watch")
        assert state.revision == 1 and state.state == {"open": {"1": {"rows": 5}}}
        assert state.blob == b"\x00arrow" and state.updated_at == 5.0
        assert state.consumed == {"predictions/a.parquet", "feedback/b.parquet"}
        assert store.windows("watch") == [make_window(0), make_window(1)]
        assert [a.event for a in store.alerts("watch")] == [make_alert(0)]

    def test_consumed_segments_grow_and_forget_the_ones_gone(self, store: MonitorStore) -> None:
        store.apply(make_monitor(), 1.0)
        store.commit("watch", 0, Commit({}, consumed=frozenset({"a", "b"})), 2.0, keep_windows=5)
        store.commit(
            "watch",
            1,
            Commit({}, consumed=frozenset({"c"}), forgotten=frozenset({"a"})),
            3.0,
            keep_windows=5,
        )
        assert store.load_state("watch").consumed == {"b", "c"}

    def test_a_stale_revision_conflicts_and_writes_nothing(self, store: MonitorStore) -> None:
        store.apply(make_monitor(), 1.0)
        store.commit("watch", 0, Commit({"n": 1}), 2.0, keep_windows=5)
        stale = Commit(
            {"n": 2}, consumed=frozenset({"x"}), windows=(make_window(0),), alerts=(make_alert(0),)
        )
        with pytest.raises(ConflictError, match="at revision 1, not 0: another runner"):
            store.commit("watch", 0, stale, 3.0, keep_windows=5)
        state = store.load_state("watch")
        assert state.state == {"n": 1} and state.consumed == set()
        assert store.windows("watch") == [] and store.alerts("watch") == []

    def test_windows_keep_the_newest_and_filter_by_version(self, store: MonitorStore) -> None:
        store.apply(make_monitor(), 1.0)
        batch = tuple(make_window(i, version="1" if i % 2 else "2") for i in range(6))
        store.commit("watch", 0, Commit({}, windows=batch[:4]), 2.0, keep_windows=5)
        store.commit("watch", 1, Commit({}, windows=batch[4:]), 3.0, keep_windows=5)
        assert [w.index for w in store.windows("watch")] == [1, 2, 3, 4, 5]
        assert [w.index for w in store.windows("watch", version="1")] == [1, 3, 5]
        assert [w.index for w in store.windows("watch", limit=2)] == [4, 5]

    def test_alert_events_are_an_outbox_recorded_once(self, store: MonitorStore) -> None:
        store.apply(make_monitor(), 1.0)
        store.commit("watch", 0, Commit({}, alerts=(make_alert(0),)), 2.0, keep_windows=5)
        again = (make_alert(0), make_alert(0, "resolved"))  # a replayed window repeats its event
        store.commit("watch", 1, Commit({}, alerts=again), 3.0, keep_windows=5)
        found = store.alerts("watch")
        assert [(a.event.state, a.artifact_id) for a in found] == [
            ("firing", None),
            ("resolved", None),
        ]
        store.mark_recorded("watch", found[0].id, 42)
        assert [a.event.state for a in store.alerts("watch", pending=True)] == ["resolved"]
        assert store.alerts("watch")[0].artifact_id == 42
        with pytest.raises(NotFoundError, match="has no alert 999"):
            store.mark_recorded("watch", 999, 1)

    def test_deleting_a_monitor_forgets_its_progress(self, store: MonitorStore) -> None:
        store.apply(make_monitor(), 1.0)
        store.commit(
            "watch",
            0,
            Commit(
                {"n": 1},
                consumed=frozenset({"a"}),
                windows=(make_window(0),),
                alerts=(make_alert(0),),
            ),
            2.0,
            keep_windows=5,
        )
        store.delete("watch")
        with pytest.raises(NotFoundError):
            store.delete("watch")
        store.apply(make_monitor(), 3.0)
        assert store.load_state("watch").revision == 0
        assert store.windows("watch") == [] and store.alerts("watch") == []
        store.commit("watch", 0, Commit({}, alerts=(make_alert(0),)), 4.0, keep_windows=5)
        assert len(store.alerts("watch")) == 1
