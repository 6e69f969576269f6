"""Value counts to :class:`CategoricalStats`, exact or sketched (shared by profiler and merge)."""

from __future__ import annotations

import polars as pl

from loopline.data.profile import CategoricalStats
from loopline.data.sketch import HASH_ID, hll_estimate, hll_merge, hll_registers, misra_gries

MAX_EXACT = 100_000
SKETCH_SIZE = 10_000


def categorical_stats(
    counts: pl.DataFrame,
    *,
    count: int,
    total_length: int,
    max_exact: int,
    sketch_size: int,
    error: int = 0,
    hll: bytes | None = None,
) -> CategoricalStats:
    """Stats from a frame of distinct ``value`` (str) and ``count`` (int) rows.

    Stays exact while there are at most ``max_exact`` values and no input was a sketch;
    otherwise the counts go through Misra–Gries (``sketch_size`` counters) and the distinct
    count through HyperLogLog. ``error`` and ``hll`` carry an input sketch's state.
    """
    counts = counts.sort(["count", "value"], descending=[True, False])
    if hll is None and error == 0 and counts.height <= max_exact:
        col = counts["count"]
        return CategoricalStats(
            count=count,
            values=tuple(counts["value"].to_list()),
            counts=tuple(col.to_list()),
            distinct=counts.height,
            total_length=total_length,
            singletons=int((col == 1).sum()),
        )
    regs = hll_registers(counts["value"])
    merged = bytes(regs.tobytes()) if hll is None else hll_merge(hll, bytes(regs.tobytes()))
    vals, cnts, cut = misra_gries(
        counts["value"].to_numpy(), counts["count"].to_numpy(), sketch_size
    )
    return CategoricalStats(
        count=count,
        values=tuple(str(v) for v in vals),
        counts=tuple(int(c) for c in cnts),
        distinct=hll_estimate(merged),
        total_length=total_length,
        exact=False,
        count_error=error + cut,
        hll=merged,
        hash_id=HASH_ID,
    )


def counts_frame(stats: CategoricalStats) -> pl.DataFrame:
    """The stats' counters as a ``value``/``count`` frame."""
    return pl.DataFrame(
        {"value": list(stats.values), "count": list(stats.counts)},
        schema={"value": pl.String, "count": pl.Int64},
    )
