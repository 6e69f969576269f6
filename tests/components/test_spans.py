from __future__ import annotations

from pathlib import Path

import pytest

from loopline.components import SpanPattern, discover, input_fingerprint, select_spans
from loopline.errors import InvalidInputError, NotFoundError


def touch(root: Path, rel: str, text: str = "a\n1\n") -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_discovers_spans_and_keeps_the_highest_version(tmp_path: Path) -> None:
    touch(tmp_path, "span-1/v1/a.csv")
    touch(tmp_path, "span-1/v2/a.csv")
    touch(tmp_path, "span-1/v2/b.csv")
    touch(tmp_path, "span-3/v1/a.csv")
    touch(tmp_path, "span-2/v1/notes.txt")
    spans = discover(tmp_path, "span-{SPAN}/v{VERSION}/*.csv")
    assert [(s.span, s.version, s.files) for s in spans] == [
        (1, 2, ("span-1/v2/a.csv", "span-1/v2/b.csv")),
        (3, 1, ("span-3/v1/a.csv",)),
    ]


def test_date_pattern_counts_days_since_the_epoch(tmp_path: Path) -> None:
    touch(tmp_path, "2026-01-02/data.csv")
    touch(tmp_path, "2026-02-31/data.csv")  # not a date: ignored
    (span,) = discover(tmp_path, "{YYYY}-{MM}-{DD}/data.csv")
    assert span.span == 20455  # date(2026, 1, 2) - date(1970, 1, 1)


def test_pattern_without_span_is_span_zero(tmp_path: Path) -> None:
    touch(tmp_path, "x.csv")
    assert [s.span for s in discover(tmp_path, "*.csv")] == [0]


def test_fixed_width_span_matches_only_that_many_digits(tmp_path: Path) -> None:
    touch(tmp_path, "s01.csv")
    touch(tmp_path, "s100.csv")
    assert [s.span for s in discover(tmp_path, "s{SPAN:2}.csv")] == [1]


def test_wildcards_do_not_cross_directories(tmp_path: Path) -> None:
    touch(tmp_path, "span-1/deep/a.csv")
    with pytest.raises(NotFoundError, match="No file under .* matches pattern"):
        discover(tmp_path, "span-{SPAN}/*.csv")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("/abs/{SPAN}.csv", "must be a relative path"),
        ("../{SPAN}.csv", "must be a relative path"),
        ("{SPAN}/{SPAN}.csv", "uses \\{SPAN\\} more than once"),
        ("{YYYY}-{MM}.csv", "names a date partly"),
        ("{SPAN}/{YYYY}{MM}{DD}.csv", "mixes \\{SPAN\\} with a date"),
        ("{DAY}.csv", "unknown placeholder \\{DAY\\}"),
    ],
)
def test_rejects_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        SpanPattern.parse(pattern)


def test_selects_latest_single_range_and_last_n(tmp_path: Path) -> None:
    for s in (1, 2, 4, 5):
        touch(tmp_path, f"span-{s}/a.csv")
    spans = discover(tmp_path, "span-{SPAN}/a.csv")
    assert [s.span for s in select_spans(spans)] == [5]
    assert [s.span for s in select_spans(spans, span=2)] == [2]
    assert [s.span for s in select_spans(spans, span_range=[2, 4])] == [2, 4]
    assert [s.span for s in select_spans(spans, last_n=3)] == [4, 5]  # start = 5 - 3 + 1
    assert [s.span for s in select_spans(spans, last_n=10)] == [1, 2, 4, 5]
    with pytest.raises(
        NotFoundError, match=r"Span 3 does not exist; the input has spans \[1, 2, 4, 5\]"
    ):
        select_spans(spans, span=3)
    with pytest.raises(InvalidInputError, match="at most one of"):
        select_spans(spans, span=1, last_n=2)
    with pytest.raises(InvalidInputError, match="must be \\[first, last\\]"):
        select_spans(spans, span_range=[4, 2])


def test_fingerprint_changes_with_a_new_span_or_edited_content(tmp_path: Path) -> None:
    touch(tmp_path, "span-1/a.csv")
    first = input_fingerprint(tmp_path, "span-{SPAN}/a.csv")
    assert input_fingerprint(tmp_path, "span-{SPAN}/a.csv") == first
    touch(tmp_path, "span-1/a.csv", "a\n2\n")
    second = input_fingerprint(tmp_path, "span-{SPAN}/a.csv")
    touch(tmp_path, "span-2/a.csv")
    third = input_fingerprint(tmp_path, "span-{SPAN}/a.csv")
    assert len({first, second, third}) == 3
