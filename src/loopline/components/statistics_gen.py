"""StatisticsGen: a mergeable profile (``loopline.data.Profile``) per split of an Examples.

The ``train`` split (or the first split) is profiled first; every other split is counted on
its histogram edges, so splits compare directly. Each profile streams the Parquet file in
batches (bounded memory) and is written as ``<split>.json``. Properties: ``splits``, ``rows``,
``span``, ``version`` (copied from the examples).
"""

from __future__ import annotations

from loopline.components.tables import split_path, splits_of
from loopline.data import profile_parquet, save_profile
from loopline.errors import InvalidInputError
from loopline.pipeline import Examples, ExampleStatistics, Input, Output, StepContext, component
from loopline.types import Json


def reference_split(splits: list[str]) -> str:
    """The split other splits are bucketed on: ``train`` if present, else the first."""
    return "train" if "train" in splits else splits[0]


@component(name="StatisticsGen")
def StatisticsGen(
    examples: Input[Examples],
    statistics: Output[ExampleStatistics],
    ctx: StepContext,
    exclude_splits: list[str] | None = None,
) -> None:
    """Profile every split of ``examples`` except ``exclude_splits``."""
    every = splits_of(examples.properties, examples.path)
    splits = [s for s in every if s not in (exclude_splits or [])]
    if not splits:
        raise InvalidInputError(
            f"No split left to profile: the examples have {every} and exclude_splits is "
            f"{exclude_splits}."
        )
    first = reference_split(splits)
    reference = profile_parquet(split_path(examples.path, first))
    save_profile(reference, statistics.path / f"{first}.json")
    rows: dict[str, Json] = {first: reference.num_rows}
    for split in splits:
        if split == first:
            continue
        prof = profile_parquet(split_path(examples.path, split), reference)
        save_profile(prof, statistics.path / f"{split}.json")
        rows[split] = prof.num_rows
    statistics.properties.update(
        splits=[first, *[s for s in splits if s != first]],
        rows=rows,
        span=examples.properties.get("span"),
        version=examples.properties.get("version"),
        reference_split=first,
    )
    ctx.log_params(profiled_splits=list(rows))
