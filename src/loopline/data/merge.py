"""merge(a, b): the profile of the concatenation of the two tables a and b describe.

Exact (up to floating-point rounding) for row/null/NaN/inf/zero counts, min/max, mean and M2
(Chan et al.'s parallel update), numeric histograms (both sides must share edges), and exact
categorical counts. When the union of categorical values passes ``max_exact`` the counts turn
into a Misra–Gries sketch and the distinct count into HyperLogLog (:mod:`loopline.data.sketch`).
Numeric atoms (exact value counts) merge exactly while the union has at most ``max_atoms``
values; past that, or when one side has none, the merged profile keeps none.
"""

from __future__ import annotations

import math

import polars as pl

from loopline.data.atoms import MAX_ATOMS, merge_atoms
from loopline.data.counts import MAX_EXACT, SKETCH_SIZE, categorical_stats, counts_frame
from loopline.data.profile import CategoricalStats, FeatureProfile, NumericStats, Profile
from loopline.data.sketch import hll_merge, hll_registers
from loopline.errors import InvalidInputError


def merge(
    a: Profile,
    b: Profile,
    *,
    max_exact: int = MAX_EXACT,
    sketch_size: int = SKETCH_SIZE,
    max_atoms: int = MAX_ATOMS,
) -> Profile:
    """Merge two profiles of tables with the same columns.

    Raises:
        InvalidInputError: the column sets, a column's type or a histogram's edges differ.
    """
    if a.names != b.names:
        raise InvalidInputError(
            f"Cannot merge profiles with different columns: {list(a.names)} and "
            f"{list(b.names)}. Profile both tables with the same columns."
        )
    feats = tuple(
        _feature(fa, fb, max_exact, sketch_size, max_atoms)
        for fa, fb in zip(a.features, b.features, strict=True)
    )
    return Profile(num_rows=a.num_rows + b.num_rows, features=feats)


def _feature(
    a: FeatureProfile, b: FeatureProfile, max_exact: int, sketch: int, max_atoms: int
) -> FeatureProfile:
    # A column with no values at all (all null) adopts the other side's type and statistics.
    if a.dtype != b.dtype:
        if _empty(a):
            a = FeatureProfile(
                a.name,
                b.dtype,
                a.num_rows,
                a.null_count,
                _no_numeric(b.numeric),
                _no_categorical(b.categorical),
            )
        elif _empty(b):
            b = FeatureProfile(
                b.name,
                a.dtype,
                b.num_rows,
                b.null_count,
                _no_numeric(a.numeric),
                _no_categorical(a.categorical),
            )
        else:
            raise InvalidInputError(
                f"Column {a.name!r} is {a.dtype.value} in one profile and {b.dtype.value} in "
                "the other; cast it to one type before profiling."
            )
    rows, nulls = a.num_rows + b.num_rows, a.null_count + b.null_count
    if a.numeric is not None and b.numeric is not None:
        return FeatureProfile(
            a.name,
            a.dtype,
            rows,
            nulls,
            numeric=merge_numeric(a.name, a.numeric, b.numeric, max_atoms),
        )
    if a.categorical is not None and b.categorical is not None:
        cat = merge_categorical(a.categorical, b.categorical, max_exact, sketch)
        return FeatureProfile(a.name, a.dtype, rows, nulls, categorical=cat)
    raise InvalidInputError(f"Column {a.name!r} has inconsistent statistics in the two profiles.")


def _empty(f: FeatureProfile) -> bool:
    return f.num_rows == f.null_count


def _no_numeric(s: NumericStats | None) -> NumericStats | None:
    if s is None:
        return None
    zero = (0,) * len(s.bucket_counts)
    nan = math.nan
    return NumericStats(
        0, 0, 0, 0, nan, 0.0, nan, nan, s.edges, zero, (0.0,) * len(zero), atoms=(), atom_counts=()
    )


def _no_categorical(s: CategoricalStats | None) -> CategoricalStats | None:
    return None if s is None else CategoricalStats(0, (), (), 0, 0)


def _atoms(s: NumericStats) -> tuple[tuple[float, ...], tuple[int, ...]] | None:
    if s.count == 0:
        return (), ()
    if s.atoms is None or s.atom_counts is None:
        return None
    return s.atoms, s.atom_counts


def merge_numeric(
    name: str, a: NumericStats, b: NumericStats, max_atoms: int = MAX_ATOMS
) -> NumericStats:
    if a.edges != b.edges:
        if a.count == 0 and not a.edges:
            a = _no_numeric(b)  # type: ignore[assignment]
        elif b.count == 0 and not b.edges:
            b = _no_numeric(a)  # type: ignore[assignment]
        else:
            raise InvalidInputError(
                f"Column {name!r} was bucketed on different histogram edges in the two "
                "profiles; profile the second table with reference=<the first profile>."
            )
    n = a.count + b.count
    if a.count == 0 or b.count == 0:
        mean, m2 = (b.mean, b.m2) if a.count == 0 else (a.mean, a.m2)
    else:
        delta = b.mean - a.mean
        mean = a.mean + delta * b.count / n
        m2 = a.m2 + b.m2 + delta * delta * a.count * b.count / n
    atoms = merge_atoms(_atoms(a), _atoms(b), max_atoms)
    return NumericStats(
        count=n,
        nan_count=a.nan_count + b.nan_count,
        inf_count=a.inf_count + b.inf_count,
        zeros=a.zeros + b.zeros,
        mean=mean if n else math.nan,
        m2=m2 if n else 0.0,
        min=_nan_min(a.min, b.min),
        max=_nan_max(a.max, b.max),
        edges=a.edges,
        bucket_counts=tuple(x + y for x, y in zip(a.bucket_counts, b.bucket_counts, strict=True)),
        bucket_sums=tuple(x + y for x, y in zip(a.bucket_sums, b.bucket_sums, strict=True)),
        atoms=None if atoms is None else atoms[0],
        atom_counts=None if atoms is None else atoms[1],
    )


def _nan_min(x: float, y: float) -> float:
    return y if math.isnan(x) else x if math.isnan(y) else min(x, y)


def _nan_max(x: float, y: float) -> float:
    return y if math.isnan(x) else x if math.isnan(y) else max(x, y)


def merge_categorical(
    a: CategoricalStats, b: CategoricalStats, max_exact: int, sketch_size: int
) -> CategoricalStats:
    if not a.exact and not b.exact and a.hash_id != b.hash_id:
        raise InvalidInputError(
            f"The two distinct-count sketches were made with different hashes ({a.hash_id!r} "
            f"and {b.hash_id!r}); re-profile one side with the same loopline/Polars version."
        )
    both = pl.concat([counts_frame(a), counts_frame(b)])
    summed = both.group_by("value").agg(pl.col("count").sum())
    hll = None
    for side in (a, b):
        if side.hll is not None:
            hll = side.hll if hll is None else hll_merge(hll, side.hll)
    if hll is not None:  # one side is a sketch: register the other side's exact values too
        for side in (a, b):
            if side.exact and side.values:
                regs = hll_registers(pl.Series(list(side.values), dtype=pl.String))
                hll = hll_merge(hll, bytes(regs.tobytes()))
    return categorical_stats(
        summed,
        count=a.count + b.count,
        total_length=a.total_length + b.total_length,
        max_exact=max_exact,
        sketch_size=sketch_size,
        error=a.count_error + b.count_error,
        hll=hll,
    )
