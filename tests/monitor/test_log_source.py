"""The log layout contract: segments written by the model server's SegmentWriter read back by
the monitor's LogSource, with the cursor's new/forgotten segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from loopline.monitor.log_source import LogSource
from loopline.serving.options import LogOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter


def writer(root: Path, stream: str) -> SegmentWriter:
    return SegmentWriter(root, stream, LogOptions(directory=root, flush_rows=10**9))


def record(rid: str, version: str, ts: float, rows: int = 2) -> LogRecord:
    inputs = {
        "distance": np.arange(rows, dtype=np.float64),
        "company": np.array(["a"] * rows, dtype=object),
        "vec": np.ones((rows, 3)),
    }
    outputs = {
        "predict": np.array(["yes"] * rows, dtype=object),
        "predict_proba": np.tile([0.25, 0.75], (rows, 1)),
    }
    return LogRecord(rid, ts, "taxi", version, rows, {"inputs": inputs, "outputs": outputs})


def test_segments_of_the_server_writer_read_back_with_inputs_outputs_and_keys(
    tmp_path: Path,
) -> None:
    w = writer(tmp_path, "predictions")
    w.offer(record("r1", "1", 1_700_000_000.5))
    w.offer(record("r2", "1", 1_700_000_001.0, rows=3))
    w.flush()
    fb = writer(tmp_path, "feedback")
    fb.offer(
        LogRecord(
            "r1",
            1_700_000_002.0,
            "taxi",
            "1",
            2,
            {"label": {"label": np.array(["yes", "no"], dtype=object)}},
        )
    )
    fb.flush()
    source = LogSource(tmp_path, "taxi")
    new, gone = source.pending(frozenset())
    assert [(s.stream, s.version) for s in new] == [("feedback", "1"), ("predictions", "1")]
    assert gone == frozenset()
    preds = source.read_predictions(new)
    assert preds.rows == 5
    assert preds.keys["request_id"].to_list() == ["r1", "r1", "r2", "r2", "r2"]
    assert preds.keys["row"].to_list() == [0, 1, 0, 1, 2]
    assert preds.keys["ts"].to_list()[:2] == [1_700_000_000.5, 1_700_000_000.5]
    assert preds.inputs.columns == ["distance", "company"]  # the tensor input is left out
    assert preds.inputs["distance"].to_list() == [0.0, 1.0, 0.0, 1.0, 2.0]
    assert preds.outputs["predict"].to_list() == ["yes"] * 5
    assert preds.outputs["predict_proba"].to_list()[0] == [0.25, 0.75]
    labels = source.read_feedback(new)
    assert labels.select("request_id", "row", "label").rows() == [("r1", 0, "yes"), ("r1", 1, "no")]


def test_the_cursor_skips_consumed_and_dot_files_and_forgets_rotated_segments(
    tmp_path: Path,
) -> None:
    w = writer(tmp_path, "predictions")
    w.offer(record("r1", "1", 1.0))
    w.flush()
    w.offer(record("r2", "2", 2.0))
    w.flush()
    source = LogSource(tmp_path, "taxi")
    first, _ = source.pending(frozenset())
    assert [s.version for s in first] == ["1", "2"]
    consumed = frozenset(s.path for s in first)
    folder = tmp_path / "predictions" / "model=taxi" / "version=1"
    (folder / ".tmp-half-written.parquet").write_bytes(b"not yet")
    w.offer(record("r3", "1", 3.0))
    w.flush()
    new, gone = source.pending(consumed)
    assert [s.version for s in new] == ["1"] and gone == frozenset()
    assert source.read_predictions(new).keys["request_id"].to_list() == ["r3", "r3"]
    (tmp_path / first[0].path).unlink()  # rotated away
    new, gone = source.pending(consumed | {new[0].path})
    assert new == [] and gone == {first[0].path}


def test_another_models_logs_are_not_read(tmp_path: Path) -> None:
    w = writer(tmp_path, "predictions")
    w.offer(
        LogRecord(
            "x",
            1.0,
            "iris",
            "1",
            1,
            {"inputs": {"a": np.ones(1)}, "outputs": {"predict": np.ones(1)}},
        )
    )
    w.flush()
    assert LogSource(tmp_path, "taxi").pending(frozenset()) == ([], frozenset())
    assert LogSource(tmp_path / "nowhere", "taxi").segments() == []
    empty = LogSource(tmp_path, "taxi").read_predictions([])
    assert empty.rows == 0 and isinstance(empty.inputs, pl.DataFrame)
