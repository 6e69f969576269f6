"""Chunks of a reference drawn from its profile alone, and the leave-chunk-out new-value rate.

Used by :func:`loopline.data.calibrate_from_profile` when the raw reference rows are gone:

* a feature with exact counts (categorical values, or numeric atoms) draws a chunk's counts as
  ``window_rows`` rows taken without replacement (multivariate hypergeometric), or with
  replacement (multinomial) when the window is larger than the reference; the chunk's
  histogram, sums and moments follow exactly from its atoms;
* a numeric feature without atoms draws bucket counts the same way and puts each bucket's
  rows at the reference bucket's mean (its within-bucket spread is not known), so its
  Wasserstein noise is somewhat underestimated;
* a sketched categorical feature draws over its kept values plus one TAIL cell.

:func:`leave_out_new_value_excess` is the new-value excess of a chunk against the rest of the
reference (reference counts minus the chunk's): a chunk compared with a reference that
contains it never has new values, so this is the only honest no-drift sample of that metric.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import polars as pl

from loopline.data.profile import CategoricalStats, FeatureProfile, NumericStats, Profile

Ints = npt.NDArray[np.int64]


def draw_counts(
    rng: np.random.Generator, counts: Ints, m: int, replace: bool
) -> npt.NDArray[np.int64]:
    """Counts of ``m`` rows drawn from cells holding ``counts`` rows."""
    if replace:
        total = counts.sum()
        return np.asarray(rng.multinomial(m, counts / total), dtype=np.int64)
    return np.asarray(rng.multivariate_hypergeometric(counts, m, method="marginals"), np.int64)


def chunk_profile(profile: Profile, m: int, rng: np.random.Generator, replace: bool) -> Profile:
    """A profile of ``m`` rows drawn from the rows ``profile`` describes (nulls dropped)."""
    feats = []
    for f in profile.features:
        if f.numeric is not None and f.numeric.count > 0:
            num = _numeric(f.numeric, m, rng, replace)
            feats.append(FeatureProfile(f.name, f.dtype, m, 0, numeric=num))
        elif f.categorical is not None and f.categorical.count > 0:
            cat = _categorical(f.categorical, m, rng, replace)
            feats.append(FeatureProfile(f.name, f.dtype, m, 0, categorical=cat))
    return Profile(num_rows=m, features=tuple(feats))


def _numeric(s: NumericStats, m: int, rng: np.random.Generator, replace: bool) -> NumericStats:
    edges = np.asarray(s.edges, dtype=np.float64)
    if s.atoms is not None and s.atom_counts is not None:
        values = np.asarray(s.atoms, dtype=np.float64)
        drawn = draw_counts(rng, np.asarray(s.atom_counts, dtype=np.int64), m, replace)
        keep = drawn > 0
        values, drawn = values[keep], drawn[keep]
        idx = np.searchsorted(edges, values, side="right")
        k = len(edges) + 1
        bucket_counts = np.bincount(idx, weights=drawn, minlength=k).astype(np.int64)
        bucket_sums = np.bincount(idx, weights=values * drawn, minlength=k)
        mean = float(np.sum(values * drawn) / m)
        m2 = float(np.sum(drawn * (values - mean) ** 2))
        lo, hi = float(values.min()), float(values.max())
        atoms: tuple[float, ...] | None = tuple(float(v) for v in values)
        atom_counts: tuple[int, ...] | None = tuple(int(c) for c in drawn)
    else:
        ref_counts = np.asarray(s.bucket_counts, dtype=np.int64)
        bucket_counts = draw_counts(rng, ref_counts, m, replace)
        means = np.divide(
            np.asarray(s.bucket_sums, dtype=np.float64),
            ref_counts,
            out=np.zeros(len(ref_counts)),
            where=ref_counts > 0,
        )
        bucket_sums = bucket_counts * means
        mean = float(bucket_sums.sum() / m)
        m2 = s.m2 / s.count * m  # the reference's variance: the spread inside buckets is unknown
        lo, hi = s.min, s.max
        atoms = atom_counts = None
    return NumericStats(
        count=m,
        nan_count=0,
        inf_count=0,
        zeros=0,
        mean=mean,
        m2=m2,
        min=lo,
        max=hi,
        edges=s.edges,
        bucket_counts=tuple(int(c) for c in bucket_counts),
        bucket_sums=tuple(float(v) for v in bucket_sums),
        atoms=atoms,
        atom_counts=atom_counts,
    )


def _categorical(
    s: CategoricalStats, m: int, rng: np.random.Generator, replace: bool
) -> CategoricalStats:
    counts = np.asarray(s.counts, dtype=np.int64)
    tail = s.count - int(counts.sum())
    cells = np.append(counts, tail) if tail > 0 else counts
    drawn = draw_counts(rng, cells, m, replace)[: len(counts)]
    keep = drawn > 0
    order = np.lexsort((np.arange(int(keep.sum())), -drawn[keep]))
    values = np.asarray(s.values, dtype=object)[keep][order]
    kept = drawn[keep][order]
    return CategoricalStats(
        count=m,
        values=tuple(str(v) for v in values),
        counts=tuple(int(c) for c in kept),
        distinct=len(kept),
        total_length=0,
        exact=s.exact,
        singletons=int(np.count_nonzero(kept == 1)),
    )


def leave_out_new_value_excess(ref: CategoricalStats, chunk: CategoricalStats) -> float:
    """New-value excess of ``chunk`` against ``ref`` minus ``chunk`` (both exact, chunk ⊆ ref)."""
    joined = pl.DataFrame(
        {"value": list(chunk.values), "c": list(chunk.counts)},
        schema={"value": pl.String, "c": pl.Int64},
    ).join(
        pl.DataFrame(
            {"value": list(ref.values), "r": list(ref.counts)},
            schema={"value": pl.String, "r": pl.Int64},
        ),
        on="value",
        how="left",
    )
    c = joined["c"].to_numpy()
    r = joined["r"].fill_null(0).to_numpy()
    rest = r - c
    rest_rows = ref.count - chunk.count
    if rest_rows <= 0 or chunk.count == 0 or np.any(rest < 0):
        return math.nan
    new = int(c[rest == 0].sum())
    singletons = ref.singletons - int(np.count_nonzero(r == 1)) + int(np.count_nonzero(rest == 1))
    return new / chunk.count - singletons / rest_rows
