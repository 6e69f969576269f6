"""Label join on (request_id, row): feedback before or after its prediction, per window."""

from __future__ import annotations

import numpy as np
import polars as pl

from loopline.monitor.evaluate import realised
from loopline.monitor.labels import LabelJoin, labelled
from loopline.monitor.spec import Task


def keys(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"request_id": ids, "row": [0] * len(ids)},
        schema={"request_id": pl.String, "row": pl.Int32},
    )


def feedback(ids: list[str], labels: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"request_id": ids, "row": [0] * len(ids), "label": labels},
        schema={"request_id": pl.String, "row": pl.Int32, "label": pl.String},
    )


def test_labels_join_whether_they_arrive_before_or_after_their_prediction() -> None:
    j = LabelJoin.empty(numeric=False)
    j = j.add_feedback("1", feedback(["a"], ["yes"]))  # before its prediction: waits
    assert j.pending.height == 1
    j = j.add_predictions(
        "1",
        0,
        keys(["a", "b", "c"]),
        pl.Series(["yes", "no", "yes"]),
        pl.Series([0.9, 0.2, 0.6]),
        already=0,
    )
    assert j.pending.height == 0
    j = j.add_feedback("1", feedback(["b", "zz"], ["yes", "no"]))  # zz: no prediction yet
    assert j.pending["request_id"].to_list() == ["zz"]
    j = LabelJoin.from_bytes(j.to_bytes(), numeric=False)  # through the state blob
    j, rows = j.take("1", 0)
    assert j.rows.height == 0 and rows.height == 3
    got = labelled(rows)
    assert got is not None
    assert got.labels.tolist() == ["yes", "yes"] and got.predictions.tolist() == ["yes", "no"]
    assert got.scores is not None and got.scores.tolist() == [0.9, 0.2]


def test_feedback_filed_under_another_version_still_labels_its_request() -> None:
    # the router sent the feedback post to a replica of version 2; the request was answered
    # by version 1 (and, mirrored, by version 2): both answers get the label
    j = LabelJoin.empty(numeric=False).add_predictions(
        "1", 0, keys(["a"]), pl.Series(["yes"]), None, already=0
    )
    j = j.add_predictions("2", 0, keys(["a"]), pl.Series(["no"]), None, already=0)
    j = j.add_feedback("2", feedback(["a"], ["no"]))
    assert j.pending.height == 0
    j, first = j.take("1", 0)
    _, second = j.take("2", 0)
    one, two = labelled(first), labelled(second)
    assert one is not None and one.labels.tolist() == ["no"]
    assert two is not None and two.labels.tolist() == ["no"]


def test_regression_labels_give_rmse_mae_and_mape_with_intervals() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(10.0, 2.0, 400)
    p = y + rng.normal(0.0, 1.0, 400)
    j = LabelJoin.empty(numeric=True).add_predictions(
        "1", 0, keys([f"r{i}" for i in range(400)]), pl.Series(p), None, already=0
    )
    j = j.add_feedback(
        "1",
        pl.DataFrame({"request_id": [f"r{i}" for i in range(400)], "row": [0] * 400, "label": y}),
    )
    _, rows = j.take("1", 0)
    perf = {m.name: m for m in realised(labelled(rows), Task.REGRESSION, None)}
    assert set(perf) == {"rmse", "mae", "mape"}
    rmse = perf["rmse"]
    assert rmse.value is not None and 0.85 < rmse.value < 1.15 and rmse.n == 400
    assert (
        rmse.lower is not None and rmse.upper is not None and rmse.lower < rmse.value < rmse.upper
    )
