"""Window planners (pure): rows split over tumbling windows, duration buckets, lateness."""

from __future__ import annotations

import numpy as np

from loopline.monitor.windows import OpenWindow, Piece, buckets, due, plan_duration, plan_rows


def test_rows_fill_the_open_window_then_whole_windows_then_stay_open() -> None:
    assert plan_rows(open_rows=300, new_rows=1000, size=400) == [
        Piece(0, 100, True),
        Piece(100, 400, True),
        Piece(500, 400, True),
        Piece(900, 100, False),
    ]
    assert plan_rows(0, 400, 400) == [Piece(0, 400, True)]
    assert plan_rows(10, 5, 400) == [Piece(0, 5, False)]
    assert plan_rows(0, 0, 400) == []


def test_duration_rows_are_cut_per_window_and_late_rows_join_the_open_one() -> None:
    ts = np.array([605.0, 10.0, 1210.0, 650.0, 1199.0])
    b = buckets(ts, 600.0)
    assert b.tolist() == [1, 0, 2, 1, 1]
    order, pieces = plan_duration(open_bucket=1, row_buckets=b)
    assert order.tolist() == [0, 1, 3, 4, 2]  # the row of window 0 is late: window 1 takes it
    assert pieces == [Piece(0, 4, True, bucket=1), Piece(4, 1, False, bucket=2)]
    order, pieces = plan_duration(None, b)
    assert [(p.bucket, p.length) for p in pieces] == [(0, 1), (1, 3), (2, 1)]


def test_a_duration_window_is_due_after_its_end_plus_lateness_and_only_with_rows() -> None:
    w = OpenWindow(index=0, rows=5, bucket=1)
    assert not due(w, 600.0, now=1200 + 14.9, lateness=15.0)
    assert due(w, 600.0, now=1200 + 15.0, lateness=15.0)
    assert not due(OpenWindow(index=0, rows=0, bucket=1), 600.0, now=10**9, lateness=15.0)
    assert not due(OpenWindow(index=0, rows=5), 600.0, now=10**9, lateness=15.0)
