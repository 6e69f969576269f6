"""Profile: mergeable statistics of one table (one split), per feature.

A :class:`Profile` is a plain value: frozen dataclasses of numbers and tuples, serialisable to
JSON without loss (:mod:`loopline.data.profile_json`) and mergeable (:func:`loopline.data.merge`).

* Numeric features keep counts, moments (mean and M2, merged with Chan's formula), min/max and a
  histogram on fixed *edges*: per bucket the row count and the sum of values. Bucket 0 is the
  open tail ``x < edges[0]``, bucket ``i`` is ``edges[i-1] <= x < edges[i]`` and the last one
  is ``x >= edges[-1]``. The edges are the reference's quantiles, so every profile compared
  with that reference is counted on the same buckets; counts are exact, no sketch error.
  While a column has at most 4,096 distinct finite values it also keeps every value and its
  count (``atoms``/``atom_counts``, :mod:`loopline.data.atoms`), from which the Wasserstein
  distance is exact.
* Categorical features (strings, bools) keep the count of every distinct value while there are
  at most ``max_exact`` of them; beyond that the counts become a Misra–Gries heavy-hitter
  sketch (each count is a lower bound, too low by at most ``count_error``) and the distinct
  count a HyperLogLog estimate (see :mod:`loopline.data.sketch`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from loopline.errors import NotFoundError


class DType(enum.StrEnum):
    """The logical type of a feature, as the schema names it."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"

    @property
    def is_numeric(self) -> bool:
        return self in (DType.INT, DType.FLOAT)


@dataclass(frozen=True, slots=True)
class NumericStats:
    """Statistics of the finite values of a numeric feature (NaN and ±inf counted apart)."""

    count: int  # finite values
    nan_count: int
    inf_count: int
    zeros: int
    mean: float  # nan when count == 0
    m2: float  # sum of squared deviations from the mean
    min: float  # nan when count == 0
    max: float
    edges: tuple[float, ...]
    bucket_counts: tuple[int, ...]  # len(edges) + 1
    bucket_sums: tuple[float, ...]  # len(edges) + 1
    atoms: tuple[float, ...] | None = None  # every distinct finite value, ascending, or None
    atom_counts: tuple[int, ...] | None = None  # the count of each atom

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0), as Evidently normalises Wasserstein."""
        return math.sqrt(self.m2 / self.count) if self.count > 0 else math.nan

    def quantile(self, q: float) -> float:
        """The ``q``-quantile, interpolated linearly inside its histogram bucket.

        Exact at the reference's own edges; elsewhere the rank error is at most the mass of
        one bucket (5 % with the default 20 buckets). nan when there are no finite values.
        """
        if self.count == 0:
            return math.nan
        target = min(max(q, 0.0), 1.0) * self.count
        lows = (self.min, *self.edges)
        highs = (*self.edges, self.max)
        seen = 0
        for i, c in enumerate(self.bucket_counts):
            if c > 0 and seen + c >= target:
                lo = max(lows[i], self.min)
                hi = min(highs[i], self.max)
                return lo + (hi - lo) * (target - seen) / c
            seen += c
        return self.max

    def quantiles(self, qs: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> tuple[float, ...]:
        return tuple(self.quantile(q) for q in qs)


@dataclass(frozen=True, slots=True)
class CategoricalStats:
    """Value counts of a string or bool feature, most frequent first (ties by value)."""

    count: int  # non-null values
    values: tuple[str, ...]
    counts: tuple[int, ...]
    distinct: int  # exact when ``exact``, else a HyperLogLog estimate
    total_length: int  # sum of the string lengths, for the average length
    exact: bool = True
    count_error: int = 0  # Misra–Gries: every count may be low by up to this much
    singletons: int = 0  # values seen exactly once (exact mode), for Good–Turing
    hll: bytes | None = None  # HyperLogLog registers, only when not exact
    hash_id: str | None = None  # which hash filled ``hll``; sketches merge only when equal

    @property
    def avg_length(self) -> float:
        return self.total_length / self.count if self.count else math.nan

    def top_k(self, k: int) -> tuple[tuple[str, ...], tuple[int, ...], int]:
        """The ``k`` most frequent values, their counts and the rest as one tail count."""
        vals = self.values[:k]
        cnts = self.counts[:k]
        return vals, cnts, self.count - sum(cnts)


@dataclass(frozen=True, slots=True)
class FeatureProfile:
    """One feature (column) of a profile; exactly one of ``numeric``/``categorical`` is set."""

    name: str
    dtype: DType
    num_rows: int
    null_count: int
    numeric: NumericStats | None = None
    categorical: CategoricalStats | None = None

    @property
    def missing(self) -> int:
        """Nulls, plus NaN for floats: the values a model cannot use as they are."""
        return self.null_count + (self.numeric.nan_count if self.numeric else 0)

    @property
    def present_fraction(self) -> float:
        return 1.0 - self.missing / self.num_rows if self.num_rows else 0.0


@dataclass(frozen=True, slots=True)
class Profile:
    """Statistics of one table: its row count and one :class:`FeatureProfile` per column."""

    num_rows: int
    features: tuple[FeatureProfile, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def get(self, name: str) -> FeatureProfile | None:
        for f in self.features:
            if f.name == name:
                return f
        return None

    def __getitem__(self, name: str) -> FeatureProfile:
        found = self.get(name)
        if found is None:
            raise NotFoundError(
                f"The profile has no feature {name!r}; its features are {list(self.names)}."
            )
        return found

    def edges(self) -> dict[str, tuple[float, ...]]:
        """Histogram edges per numeric feature, to count another table on the same buckets."""
        return {f.name: f.numeric.edges for f in self.features if f.numeric is not None}
