"""StatisticsGen: a mergeable profile (``loopline.data.Profile``) per split of an Examples.

The ``train`` split (or the first split) is profiled first; every other split is counted on
its histogram edges, so splits compare directly. Each profile streams the Parquet file in
batches of ``batch_rows`` rows (bounded memory) and is written as ``<split>.json``.
Properties: ``splits``, ``rows``, ``span``, ``version`` (copied from the examples).

``shards > 1`` profiles each split as that many contiguous ranges of row groups in parallel
local processes (at most one per CPU at a time) and merges them
(:func:`loopline.data.profile_parquet_sharded`): every shard counts on the same edges — the
reference split's, or for the reference split itself those of its first batch, as in one
task — so the merged profile has the single task's counts, edges and exact categorical counts
(float moments to rounding).
"""

from __future__ import annotations

from loopline.components.tables import split_path, splits_of
from loopline.data import Profile, profile_parquet_sharded, save_profile
from loopline.errors import InvalidInputError
from loopline.pipeline import Examples, ExampleStatistics, Input, Output, StepContext, component
from loopline.types import Json

BATCH_ROWS = 262_144
"""Rows profiled at a time (per process): the memory knob."""


def reference_split(splits: list[str]) -> str:
    """The split other splits are bucketed on: ``train`` if present, else the first."""
    return "train" if "train" in splits else splits[0]


@component(name="StatisticsGen")
def StatisticsGen(
    examples: Input[Examples],
    statistics: Output[ExampleStatistics],
    ctx: StepContext,
    exclude_splits: list[str] | None = None,
    shards: int = 1,
    batch_rows: int = BATCH_ROWS,
) -> None:
    """Profile every split of ``examples`` except ``exclude_splits``."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise InvalidInputError(f"shards={shards!r} must be an integer >= 1.")
    every = splits_of(examples.properties, examples.path)
    splits = [s for s in every if s not in (exclude_splits or [])]
    if not splits:
        raise InvalidInputError(
            f"No split left to profile: the examples have {every} and exclude_splits is "
            f"{exclude_splits}."
        )
    first = reference_split(splits)
    def profile(split: str, reference: Profile | None) -> Profile:
        return profile_parquet_sharded(
            split_path(examples.path, split), reference, shards=shards, batch_rows=batch_rows
        )

    reference = profile(first, None)
    save_profile(reference, statistics.path / f"{first}.json")
    rows: dict[str, Json] = {first: reference.num_rows}
    for split in splits:
        if split == first:
            continue
        prof = profile(split, reference)
        save_profile(prof, statistics.path / f"{split}.json")
        rows[split] = prof.num_rows
    statistics.properties.update(
        splits=[first, *[s for s in splits if s != first]],
        rows=rows,
        span=examples.properties.get("span"),
        version=examples.properties.get("version"),
        reference_split=first,
    )
    ctx.log_params(profiled_splits=list(rows), shards=shards)
