"""Prediction-log rotation: the oldest segments go beyond the size or age bound, counted;
a segment being written never goes; readers tolerate segments that disappear."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.deploy.spec import Template, template_hash
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.serving import LogOptions, ServeCommand, read_prediction_logs
from loopline.serving.log_rotation import (
    RotationReason,
    Segment,
    list_segments,
    plan_rotation,
    segment_time,
)
from loopline.serving.prediction_log import LogRecord, SegmentWriter
from loopline.testing.artifacts import wait_for
from loopline.types import format_age, parse_age, parse_byte_size

DAY = 86_400.0


def _segment(name: str, size: int, at: float) -> Segment:
    return Segment(Path(f"predictions/model=m/version=1/{name}"), size, at)


def _record(model: str = "m", version: str = "1", rows: int = 50) -> LogRecord:
    return LogRecord(
        request_id=f"r{time.monotonic_ns()}",
        ts=time.time(),
        model=model,
        version=version,
        rows=rows,
        columns={
            "inputs": {"x": np.arange(rows, dtype=np.float64)},
            "outputs": {"predict": np.zeros(rows, dtype=np.int64)},
        },
    )


def _write_segments(directory: Path, count: int, **models: str) -> list[Path]:
    """``count`` real segments, one flush each, oldest first."""
    writer = SegmentWriter(directory, "predictions", LogOptions(directory))
    for i in range(count):
        model, version = list(models.items())[i % len(models)] if models else ("m", "1")
        writer.offer(_record(model, version))
        writer.flush()
    return sorted(
        (s.path for s in list_segments(directory)), key=lambda p: segment_time(p, 0.0)
    )


# ---- the pure plan ---------------------------------------------------------------------------


def test_segments_older_than_max_age_are_deleted_first_whatever_the_size() -> None:
    now = 100 * DAY
    old, fresh = _segment("a", 10, now - 31 * DAY), _segment("b", 10, now - 29 * DAY)
    plan = plan_rotation([fresh, old], max_bytes=1000, max_age=30 * DAY, now=now)
    assert [(d.segment, d.reason) for d in plan] == [(old, RotationReason.AGE)]


def test_the_oldest_segments_go_until_the_rest_fits_in_max_bytes() -> None:
    segments = [_segment(n, 40, float(t)) for t, n in enumerate("abcde")]
    plan = plan_rotation(reversed(segments), max_bytes=100, max_age=DAY, now=10.0)
    assert [d.segment.path.name for d in plan] == ["a", "b", "c"]
    assert {d.reason for d in plan} == {RotationReason.SIZE}
    assert plan_rotation(segments, max_bytes=200, max_age=DAY, now=10.0) == []


def test_the_flush_time_comes_from_the_segment_name_else_the_fallback() -> None:
    named = Path("20261206T235630123456Z-41-7.parquet")
    assert segment_time(named, 0.0) == pytest.approx(1796601390.123456)
    assert segment_time(Path("copied.parquet"), 12.5) == 12.5


# ---- real segments ---------------------------------------------------------------------------


def test_rotation_deletes_the_oldest_real_segments_and_counts_them(tmp_path: Path) -> None:
    paths = _write_segments(tmp_path, 6, a="1", b="2")
    sizes = [p.stat().st_size for p in paths]
    budget = sum(sizes[-3:])
    counted: list[tuple[RotationReason, int]] = []
    writer = SegmentWriter(
        tmp_path,
        "predictions",
        LogOptions(tmp_path, max_bytes=budget),
        rotates=True,
        on_rotated=lambda reason, n: counted.append((reason, n)),
    )
    result = writer.rotate(time.time())
    assert [d.segment.path for d in result.deleted] == paths[:3]
    assert sorted(s.path for s in list_segments(tmp_path)) == sorted(paths[3:])
    assert result.kept_bytes == budget and result.deleted_bytes == sum(sizes[:3])
    assert counted == [(RotationReason.SIZE, 3)]
    assert (writer.rotated_segments, writer.rotated_bytes) == (3, sum(sizes[:3]))
    # Both models lost their oldest segments; what is left still reads.
    assert len(read_prediction_logs(tmp_path, model="a")) + len(
        read_prediction_logs(tmp_path, model="b")
    ) == 3 * 50


def test_age_rotation_covers_both_streams_and_never_a_segment_being_written(
    tmp_path: Path,
) -> None:
    _write_segments(tmp_path, 2)
    feedback = SegmentWriter(tmp_path, "feedback", LogOptions(tmp_path))
    feedback.offer(
        LogRecord("r", time.time(), "m", "1", 2, {"label": {"label": np.array([0, 1])}})
    )
    feedback.flush()
    in_flight = tmp_path / "predictions/model=m/version=1/.tmp-20200101T000000000000Z-1-0.parquet"
    in_flight.write_bytes(b"half a segment")
    os.utime(in_flight, (0, 0))
    writer = SegmentWriter(tmp_path, "predictions", LogOptions(tmp_path, max_age=30 * DAY))
    result = writer.rotate(time.time() + 31 * DAY)
    assert len(result.deleted) == 3
    assert {d.reason for d in result.deleted} == {RotationReason.AGE}
    assert list_segments(tmp_path) == []
    assert in_flight.exists()


def test_the_writer_thread_rotates_at_start_off_the_request_path(tmp_path: Path) -> None:
    paths = _write_segments(tmp_path, 4)
    keep = paths[-1].stat().st_size
    writer = SegmentWriter(
        tmp_path,
        "predictions",
        LogOptions(tmp_path, max_bytes=keep, flush_seconds=0.05),
        rotates=True,
    )
    writer.start()
    try:
        wait_for(lambda: writer.rotated_segments == 3, timeout=10, what="the start rotation")
        assert [s.path for s in list_segments(tmp_path)] == paths[-1:]
    finally:
        writer.close()


def test_a_writer_that_does_not_rotate_leaves_the_directory_alone(tmp_path: Path) -> None:
    paths = _write_segments(tmp_path, 3)
    writer = SegmentWriter(tmp_path, "predictions", LogOptions(tmp_path, max_bytes=1))
    writer.start()
    writer.offer(_record())
    writer.close()
    assert set(paths) < {s.path for s in list_segments(tmp_path)}
    assert writer.rotated_segments == 0


def test_the_reader_skips_a_segment_rotated_away_while_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _write_segments(tmp_path, 3)
    real = pl.read_parquet

    def rotated_underneath(source: Path, *args: Any, **kwargs: Any) -> pl.DataFrame:
        if Path(source) == paths[0]:  # rotated between the listing and the read
            paths[0].unlink()
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pl, "read_parquet", rotated_underneath)
    assert len(read_prediction_logs(tmp_path)) == 2 * 50


# ---- options, flags and the template ---------------------------------------------------------


def test_log_options_default_to_one_gib_and_thirty_days() -> None:
    options = LogOptions(Path("logs"))
    assert (options.max_bytes, options.max_age) == (1 << 30, 30 * DAY)
    with pytest.raises(InvalidInputError, match=r"max_bytes 0 must be ≥ 1"):
        LogOptions(Path("logs"), max_bytes=0)
    with pytest.raises(InvalidInputError, match=r"max_age \(0 s\)"):
        LogOptions(Path("logs"), max_age=0)


def test_serve_flags_take_units_and_reach_the_log_options(tmp_path: Path) -> None:
    command = ServeCommand.from_argv(
        ["m", "--log-dir", str(tmp_path), "--log-max-bytes", "500MB", "--log-max-age", "12h"]
    )
    assert (command.log_max_bytes, command.log_max_age) == (500_000_000, 12 * 3600.0)
    log = command.server_options().log
    assert log is not None and (log.max_bytes, log.max_age) == (500_000_000, 12 * 3600.0)
    assert ServeCommand.from_argv(command.to_argv()) == command


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--log-max-bytes", "2GiB"], r"--log-max-bytes 2147483648 has no effect without"),
        (["--log-dir", "d", "--log-max-bytes", "lots"], r"--log-max-bytes 'lots' is not a size"),
        (["--log-dir", "d", "--log-max-age", "-1d"], r"--log-max-age '-1d' is not an age"),
        (["--log-dir", "d", "--log-max-age", "0"], r"--log-max-age '0' must be a positive"),
    ],
)
def test_bad_rotation_flags_are_errors_naming_the_flag(argv: list[str], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        ServeCommand.from_argv(["m", *argv])


def test_sizes_and_ages_parse_and_print_in_their_units() -> None:
    assert parse_byte_size("1GiB", "f") == 1 << 30
    assert parse_byte_size("2 kb", "f") == 2000
    assert parse_age("2w", "f") == 14 * DAY
    assert parse_age("90", "f") == 90.0
    assert [format_age(s) for s in (30 * DAY, 90.0, 7200.0, 1.5)] == ["30d", "90s", "2h", "1.5s"]


def test_the_template_logging_block_takes_rotation_bounds(tmp_path: Path) -> None:
    from loopline.deploy.engines.local import LocalEngine

    template = Template.from_dict(
        {"model": "m", "logging": {"enabled": True, "maxBytes": "2GiB", "maxAge": "7d"}}
    )
    assert (template.logging.max_bytes, template.logging.max_age) == (2 << 30, 7 * DAY)
    assert Template.from_dict(template.to_dict()) == template
    command = LocalEngine(log_dir=tmp_path, prediction_log_root=tmp_path).serve_command(
        template, 8080
    )
    assert (command.log_max_bytes, command.log_max_age) == (2 << 30, 7 * DAY)
    with pytest.raises(InvalidDefinitionError, match=r"spec.template.logging.maxAge 'soon'"):
        Template.from_dict({"model": "m", "logging": {"maxAge": "soon"}})


def test_templates_without_rotation_bounds_keep_their_hash() -> None:
    # A template written before the bounds existed must not become a new revision.
    template = Template.from_dict({"model": "m", "logging": {"enabled": True}})
    assert "maxBytes" not in template.to_dict()["logging"]  # type: ignore[operator]
    assert template_hash(template) == template_hash(Template.from_dict(template.to_dict()))


def test_a_server_rotates_its_log_directory_and_counts_it_in_its_metrics(
    models: Any, serve_models: Any, tmp_path: Path, v2_body: Any
) -> None:
    import httpx

    from loopline.serving import ServedModel, ServerOptions

    old = _write_segments(tmp_path, 3)
    log = LogOptions(tmp_path, flush_seconds=0.05, max_bytes=1, rotate_seconds=0.05)
    served = [ServedModel("lr", "1", models.lr)]
    with serve_models(served, ServerOptions(log=log)) as s, httpx.Client(base_url=s.url) as c:
        assert c.post("/v2/models/lr/infer", json=v2_body(models.x[:2])).status_code == 200

        def counted() -> bool:
            text = c.get("/metrics").text
            line = 'loopline_prediction_log_segments_deleted_total{reason="size"} '
            return any(
                ln.startswith(line) and float(ln.split()[-1]) >= 4 for ln in text.splitlines()
            )

        # The three old segments and the one this request wrote: max_bytes=1 keeps none.
        wait_for(counted, timeout=20, what="the rotation counter to reach 4")
    assert not any(p.exists() for p in old)
