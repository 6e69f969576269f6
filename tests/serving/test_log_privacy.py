"""Prediction and feedback segments hold clients' inputs and labels: they are written 0600,
and the folders created for them 0700, whatever the process's umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from loopline.serving import LogOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask a process may run with: nothing is masked."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _record(stream: str) -> LogRecord:
    x = np.arange(3, dtype=np.float64)
    columns = (
        {"label": {"label": x}}
        if stream == "feedback"
        else {"inputs": {"x": x}, "outputs": {"predict": x}}
    )
    return LogRecord("req-1", 1.7e9, "taxi", "3", 3, columns)


@pytest.mark.parametrize("stream", ["predictions", "feedback"])
def test_segments_are_written_0600_in_folders_created_0700(
    tmp_path: Path, open_umask: None, stream: str
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # a folder that exists already is the operator's: left as it is
    root = home / "predictions"  # created by the writer
    writer = SegmentWriter(root, stream, LogOptions(root))
    writer.start()
    try:
        assert writer.offer(_record(stream))
        writer.flush()
    finally:
        writer.close()
    (segment,) = (root / stream / "model=taxi" / "version=3").glob("*.parquet")
    assert _mode(segment) == 0o600
    for folder in (
        root,
        root / stream,
        root / stream / "model=taxi",
        segment.parent,
    ):
        assert _mode(folder) == 0o700, folder
    assert _mode(home) == 0o755
