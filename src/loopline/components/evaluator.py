"""Evaluator: metrics overall and per slice on the eval split, and the blessing.

The candidate ``model`` (and the ``baseline_model``, usually from the
:func:`~loopline.components.resolvers.latest_blessed_model` resolver) are loaded from their
bundles with their recorded digests checked and the operator's trust (``StepContext.trust``:
a ``python``-flavor model's loader must be in ``LOOPLINE_TRUSTED_LOADERS``, as for serving),
and scored on the same rows. Slices: ``overall``
plus one per value of each ``slicing_features`` column (``company=Flash Cab``). Thresholds and
policies follow :mod:`loopline.components.blessing` (TFMA's code semantics).

Outputs: ``evaluation`` (``evaluation.json``: metrics per slice for the candidate and the
baseline) and ``blessing`` (``blessing.json`` with every check and its reason, plus a
``BLESSED`` or ``NOT_BLESSED`` marker file). Blessing properties: ``blessed`` (1/0),
``current_model_id``, ``baseline_model_id``, ``reasons``, and for a force-bless ``forced``,
``forced_by``, ``forced_reason`` (both required; the verdict it overrode is kept).

A baseline with the same content digest as the candidate is the candidate itself (a rerun of
unchanged code and data): comparing a model with itself says nothing, so it counts as no
baseline — which also keeps the blessing byte-identical, and everything downstream cached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from loopline.bundle import Trust, load_model
from loopline.components.blessing import OVERALL, MetricThreshold, Verdict, validate_metrics
from loopline.components.metrics import (
    is_classifier,
    metrics_from_predictions,
    predictions,
    to_json_metrics,
)
from loopline.components.tables import read_split
from loopline.errors import InvalidInputError
from loopline.pipeline import (
    Examples,
    Input,
    Model,
    ModelBlessing,
    ModelEvaluation,
    Output,
    StepContext,
    component,
)
from loopline.types import Json

EVALUATION_FILE = "evaluation.json"
BLESSING_FILE = "blessing.json"
MAX_SLICE_VALUES = 100


def slice_masks(table: Any, features: list[str]) -> dict[str, np.ndarray[Any, Any]]:
    """``overall`` plus ``feature=value`` row masks, in a stable order."""
    n = table.num_rows
    masks: dict[str, np.ndarray[Any, Any]] = {OVERALL: np.ones(n, dtype=bool)}
    for feature in features:
        if feature not in table.column_names:
            raise InvalidInputError(
                f"Slicing feature {feature!r} is not a column of the eval split; columns: "
                f"{table.column_names}."
            )
        values = np.asarray([str(v) for v in table.column(feature).to_pylist()], dtype=object)
        distinct = sorted(set(values.tolist()))
        if len(distinct) > MAX_SLICE_VALUES:
            raise InvalidInputError(
                f"Slicing feature {feature!r} has {len(distinct)} distinct values (more than "
                f"{MAX_SLICE_VALUES}); slice on a coarser column."
            )
        for value in distinct:
            masks[f"{feature}={value}"] = values == value
    return masks


def score(
    model_path: Any,
    digest: str | None,
    table: Any,
    label: str,
    masks: Mapping[str, np.ndarray[Any, Any]],
    positive_label: str | None,
    trust: Trust | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per slice of the bundle at ``model_path`` (its digest verified first), loaded
    with ``trust`` (None: loopline's built-in trust only)."""
    loaded = load_model(
        model_path, expected_digest=digest, trust=trust if trust is not None else Trust()
    )
    columns = [s.name for s in loaded.signature.inputs]
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"The eval split lacks model input column(s) {missing}; columns: {table.column_names}."
        )
    if label not in table.column_names:
        raise InvalidInputError(f"Label column {label!r} is not in the eval split.")
    estimator = loaded.estimator
    x = table.select(columns).to_pandas()
    y = table.column(label).to_numpy(zero_copy_only=False)
    pred, proba = predictions(estimator, x)
    classes = [str(c) for c in estimator.classes_] if is_classifier(estimator) else None
    return {
        key: metrics_from_predictions(
            y[mask],
            pred[mask],
            proba[mask] if proba is not None else None,
            classes,
            positive_label=positive_label,
        )
        for key, mask in masks.items()
    }


@component(name="Evaluator")
def Evaluator(
    examples: Input[Examples],
    model: Input[Model],
    evaluation: Output[ModelEvaluation],
    blessing: Output[ModelBlessing],
    ctx: StepContext,
    label: str,
    baseline_model: Input[Model] | None = None,
    thresholds: list[dict[str, Json]] | None = None,
    slicing_features: list[str] | None = None,
    split: str = "eval",
    positive_label: str | None = None,
    on_no_baseline: str = "value_only",
    on_no_thresholds: str = "fail",
    min_examples_per_slice: int = 10,
    force_bless: bool = False,
    force_bless_by: str | None = None,
    force_bless_reason: str | None = None,
) -> None:
    """Score the candidate (and baseline) per slice and write the evaluation and blessing."""
    if force_bless and not (force_bless_by and force_bless_reason):
        raise InvalidInputError(
            "force_bless needs force_bless_by (who) and force_bless_reason (why); both are "
            "recorded on the blessing."
        )
    parsed = [MetricThreshold.from_dict(t) for t in thresholds or []]
    table = read_split(examples.path, split, examples.properties)
    masks = slice_masks(table, slicing_features or [])
    current = score(model.path, model.digest, table, label, masks, positive_label, ctx.trust)
    base = baseline_model
    same = base is not None and base.digest is not None and base.digest == model.digest
    if same:
        base = None
    baseline = (
        score(base.path, base.digest, table, label, masks, positive_label, ctx.trust)
        if base is not None
        else None
    )
    verdict = validate_metrics(
        current,
        baseline,
        parsed,
        on_no_baseline=on_no_baseline,  # type: ignore[arg-type]  # checked inside
        on_no_thresholds=on_no_thresholds,  # type: ignore[arg-type]
        min_examples=min_examples_per_slice,
    )
    blessed = verdict.blessed or force_bless
    report = _blessing_json(verdict, force_bless, force_bless_by, force_bless_reason)
    report["blessed"] = blessed
    report["current_model_digest"] = model.digest
    report["baseline_model_digest"] = base.digest if base is not None else None
    evaluation_json: dict[str, Json] = {
        "split": split,
        "label": label,
        "slices": {k: to_json_metrics(v) for k, v in current.items()},
        "baseline_slices": (
            {k: to_json_metrics(v) for k, v in baseline.items()} if baseline is not None else None
        ),
    }
    (evaluation.path / EVALUATION_FILE).write_text(json.dumps(evaluation_json, indent=2))
    (blessing.path / BLESSING_FILE).write_text(json.dumps(report, indent=2))
    (blessing.path / ("BLESSED" if blessed else "NOT_BLESSED")).write_text("")
    overall = current[OVERALL]
    evaluation.properties.update(
        split=split,
        slices=len(current),
        overall=to_json_metrics(overall),
        model_id=model.id,
        baseline_model_id=base.id if base is not None else None,
    )
    blessing.properties.update(
        blessed=int(blessed),
        current_model_id=model.id,
        baseline_model_id=base.id if base is not None else None,
        baseline_note=(
            f"baseline model {baseline_model.id} is the candidate itself (same digest); "
            "compared as if there were no baseline"
            if same and baseline_model is not None
            else None
        ),
        reasons=list(verdict.failures),
        forced=int(force_bless and not verdict.blessed),
        forced_by=force_bless_by if force_bless else None,
        forced_reason=force_bless_reason if force_bless else None,
    )
    ctx.log_metrics({k: v for k, v in overall.items() if v == v})
    ctx.set_tags(blessed=str(blessed).lower())


def _blessing_json(
    verdict: Verdict, force: bool, who: str | None, why: str | None
) -> dict[str, Json]:
    out = verdict.to_json()
    out["verdict_blessed"] = verdict.blessed
    out["forced"] = force and not verdict.blessed
    out["forced_by"] = who if force else None
    out["forced_reason"] = why if force else None
    return out
