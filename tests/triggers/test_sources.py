"""Trigger sources: a baseline first (the past never fires), then cron ticks, new spans,
published alerts and registry moves after the cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.triggers.helpers import trigger

from loopline.metadata import open_store
from loopline.metadata.entities import ArtifactState
from loopline.metadata.store import MetadataStore
from loopline.triggers import observe
from loopline.types import Json


@pytest.fixture
def meta() -> Iterator[MetadataStore]:
    store = open_store("sqlite://")
    yield store
    store.close()


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_schedule_fires_once_for_the_latest_tick_and_counts_the_missed_ones(
    meta: MetadataStore,
) -> None:
    hourly = trigger({"schedule": {"cron": "0 * * * *"}})
    first = observe(hourly, None, meta, at("2026-12-06T10:30:00"))
    assert (first.events, first.scanned_to) == ((), at("2026-12-06T10:30:00"))
    assert observe(hourly, first.scanned_to, meta, at("2026-12-06T10:59:59")).events == ()
    seen = observe(hourly, first.scanned_to, meta, at("2026-12-06T12:10:00"))
    [event] = seen.events
    assert (event.key, event.summary) == (
        "schedule:2026-12-06T12:00:00Z",
        "cron tick 2026-12-06T12:00:00Z (0 * * * *), 1 earlier tick(s) missed",
    )
    assert (event.variables, seen.scanned_to) == (
        {"tick": "2026-12-06T12:00:00Z"},
        at("2026-12-06T12:00:00"),
    )


def test_spans_above_the_baseline_are_events_and_a_missing_directory_is_none(
    meta: MetadataStore, tmp_path: Path
) -> None:
    spec = trigger({"newSpan": {"inputDir": str(tmp_path / "d"), "pattern": "s-{SPAN}.csv"}})
    assert observe(spec, None, meta, 0.0).scanned_to == -1  # no directory yet
    (tmp_path / "d").mkdir()
    for n in (3, 4):
        (tmp_path / "d" / f"s-{n}.csv").write_text("x\n1\n")
    baseline = observe(spec, None, meta, 0.0)
    assert (baseline.events, baseline.scanned_to) == ((), 4)
    (tmp_path / "d" / "s-5.csv").write_text("x\n1\n")
    seen = observe(spec, 4, meta, 0.0)
    assert [(e.key, e.level, e.cause.properties["files"]) for e in seen.events] == [
        ("span:5", True, ["s-5.csv"])
    ]
    assert seen.scanned_to == 4  # spans are level-triggered: de-duplication says what ran


def alert(meta: MetadataStore, state: ArtifactState = ArtifactState.LIVE, **props: Json) -> int:
    properties: dict[str, Json] = {
        "monitor": "taxi",
        "rule": "drift",
        "model": "taxi",
        "version": "1",
        "state": "firing",
        "severity": "warning",
        "metric": "trip_miles",
        "value": 0.3,
        "first_window": 1,
        "last_window": 3,
        "reason": "drifted",
        **props,
    }
    return meta.put_artifact("Alert", "monitor://x", properties=properties, state=state).id


def test_published_matching_alerts_are_events_and_a_pending_one_holds_the_cursor(
    meta: MetadataStore,
) -> None:
    spec = trigger({"alert": {"monitor": "taxi"}})
    old = alert(meta)
    assert observe(spec, None, meta, 0.0).scanned_to == old  # alerts before the trigger
    other = alert(meta, model="bike")
    fired = alert(meta)
    seen = observe(spec, old, meta, 0.0)
    assert [e.key for e in seen.events] == [f"alert:{fired}"]
    assert seen.scanned_to == fired  # the other model's alert is passed over
    assert seen.events[0].variables["alert"] == {
        "id": fired,
        "monitor": "taxi",
        "rule": "drift",
        "model": "taxi",
        "version": "1",
        "severity": "warning",
        "metric": "trip_miles",
        "value": 0.3,
        "first_window": 1,
        "last_window": 3,
        "reason": "drifted",
    }
    pending = alert(meta, state=ArtifactState.PENDING)
    later = alert(meta)
    seen = observe(spec, fired, meta, 0.0)
    assert [e.key for e in seen.events] == [f"alert:{later}"]
    assert seen.scanned_to == pending - 1  # read the pending one again once it is published
    assert other < fired


def test_registry_events_follow_versions_and_one_alias_with_who_moved_it(
    meta: MetadataStore, tmp_path: Path
) -> None:
    from loopline.artifacts.fs import FsspecArtifactStore
    from loopline.registry import ModelRegistry

    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    registry = ModelRegistry(meta, artifacts)

    def model() -> int:
        uri = artifacts.allocate("Model", "test")
        with artifacts.staging() as staged:
            (staged / "model.bin").write_bytes(b"model bytes")
            digest = artifacts.publish(staged, uri)
        return meta.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE).id

    new_versions = trigger({"registry": {"model": "taxi", "event": "newVersion"}})
    moves = trigger({"registry": {"model": "taxi", "event": "aliasMoved", "alias": "gold"}})
    assert observe(new_versions, None, meta, 0.0).scanned_to == 0
    v1 = registry.register("taxi", model(), who="ci", why="nightly")
    registry.set_alias("taxi", "gold", v1.version, who="ana", why="reviewed")
    registry.set_alias("taxi", "silver", v1.version, who="ana", why="reviewed")
    [registered] = observe(new_versions, 0, meta, 0.0).events
    assert registered.variables["event"] == {
        "kind": "newVersion",
        "model": "taxi",
        "version": 1,
        "alias": None,
        "execution": registered.position,
    }
    assert registered.origin == "ci"
    [moved] = observe(moves, 0, meta, 0.0).events
    assert (moved.summary, moved.origin) == ("taxi@gold moved to version 1", "ana")
