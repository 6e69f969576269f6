"""Finding one logged request by its request id, across models whose inputs differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loopline.errors import InvalidInputError, NotFoundError
from loopline.serving import LogOptions, find_request
from loopline.serving.prediction_log import LogRecord, SegmentWriter


def _taxi(request_id: str, rows: int, version: str = "3") -> LogRecord:
    return LogRecord(
        request_id,
        1_800_000_000.0 + rows,
        "taxi",
        version,
        rows,
        {
            "inputs": {"miles": np.arange(rows, dtype=np.float64) + 0.5},
            "outputs": {"predict": np.arange(rows, dtype=np.int64) % 2},
        },
    )


def _fare(request_id: str) -> LogRecord:
    return LogRecord(
        request_id,
        1_800_000_100.0,
        "fare",
        "1",
        1,
        {
            "inputs": {"x": np.ones((1, 4))},  # a [-1, 4] tensor: another schema entirely
            "outputs": {"predict": np.array([12.5])},
        },
    )


def _write(directory: Path, stream: str, records: list[LogRecord]) -> None:
    writer = SegmentWriter(directory, stream, LogOptions(directory))
    for record in records:
        writer.offer(record)
        writer.flush()  # one segment each


def test_a_request_is_found_among_segments_of_models_with_other_inputs(tmp_path: Path) -> None:
    _write(tmp_path, "predictions", [_taxi("a1", 1), _fare("b2"), _taxi("c3", 3), _fare("d4")])
    found = find_request(tmp_path, "c3")
    assert (found.request_id, found.model, found.version, found.rows) == ("c3", "taxi", "3", 3)
    assert [dict(o) for o in found.outputs] == [{"predict": 0}, {"predict": 1}, {"predict": 0}]
    assert [dict(i) for i in found.inputs] == [{"miles": 0.5}, {"miles": 1.5}, {"miles": 2.5}]
    assert found.ts.timestamp() == pytest.approx(1_800_000_003.0)
    assert len(found.segments) == 1 and found.segments[0].parent.name == "version=3"
    assert found.labels == ()
    other = find_request(tmp_path, "d4")
    assert (other.model, other.rows, dict(other.outputs[0])) == ("fare", 1, {"predict": 12.5})


def test_feedback_labels_of_the_request_come_with_it(tmp_path: Path) -> None:
    _write(tmp_path, "predictions", [_taxi("a1", 2)])
    label = LogRecord(
        "a1", 1_800_000_010.0, "taxi", "3", 2, {"label": {"label": np.array([1, 0])}}
    )
    _write(tmp_path, "feedback", [label])
    assert find_request(tmp_path, "a1").labels == (1, 0)


def test_segments_being_written_are_not_searched(tmp_path: Path) -> None:
    _write(tmp_path, "predictions", [_taxi("a1", 1)])
    published = next((tmp_path / "predictions").rglob("*.parquet"))
    (published.parent / f".tmp-{published.name}").write_bytes(published.read_bytes())
    published.unlink()
    with pytest.raises(NotFoundError, match=r"\(no segments\)"):
        find_request(tmp_path, "a1")


def test_an_unknown_request_id_names_the_directory_searched(tmp_path: Path) -> None:
    _write(tmp_path, "predictions", [_taxi("a1", 1), _fare("b2")])
    where = str(tmp_path / "predictions")
    with pytest.raises(NotFoundError, match=rf"request id 'zz'.*'{where}' \(2 segments\)"):
        find_request(tmp_path, "zz")
    with pytest.raises(NotFoundError, match=r"\(no segments\)"):
        find_request(tmp_path / "elsewhere", "a1")
    with pytest.raises(InvalidInputError, match="Request id '' is not valid"):
        find_request(tmp_path, "")
