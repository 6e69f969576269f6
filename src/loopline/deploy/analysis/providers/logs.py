"""Model-aware metrics read from the replicas' prediction and feedback logs.

* ``predictionDrift``: the distance between the canary's and the stable's output
  distributions over the window, computed by the data package exactly as its drift checks
  do (:func:`loopline.data.compare`): the stable side is the reference; numeric outputs are
  counted on the stable side's quantile buckets, categorical ones by category counts (top 50
  plus a tail). ``jensenShannon`` is base 2 in [0, 1], ``psi`` is in nats (ε = 1e-4),
  ``wasserstein`` is W1 divided by the stable side's std (numeric outputs only). Samples =
  the smaller row count of the two sides.
* ``accuracy``: the canary version's predictions in the window joined with the feedback
  labels on ``(request_id, row)`` (the latest label wins); ``accuracy`` is the share of
  exact matches, ``rmse``/``mae`` the usual errors. Samples = the joined rows.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from loopline.data import Metric as DataMetric
from loopline.data import compare, profile_table
from loopline.deploy.analysis.measurement import MeasurementOutcome
from loopline.deploy.analysis.provider_spec import (
    AccuracyMetric,
    AccuracyQuery,
    DriftMeasure,
    DriftQuery,
)
from loopline.deploy.analysis.providers.base import MeasureContext, MetricProvider, RevisionModel
from loopline.deploy.analysis.template import Metric
from loopline.errors import BackendError, InvalidInputError
from loopline.serving import read_feedback, read_prediction_logs

_MEASURE = {
    DriftMeasure.JENSEN_SHANNON: DataMetric.JENSEN_SHANNON,
    DriftMeasure.PSI: DataMetric.PSI,
    DriftMeasure.WASSERSTEIN: DataMetric.NORMALIZED_WASSERSTEIN,
}


class PredictionDriftProvider(MetricProvider):
    """``predictionDrift: {measure, output}``."""

    def measure(self, metric: Metric, context: MeasureContext) -> MeasurementOutcome:
        query = metric.provider
        assert isinstance(query, DriftQuery)
        if context.stable is None:
            raise InvalidInputError(
                f"Metric {metric.name!r} compares the canary's predictions with the stable "
                f"revision's, but deployment {context.deployment!r} has no stable revision."
            )
        directory = _directory(context, metric)
        canary = _outputs(directory, context.canary, context, query.output)
        stable = _outputs(directory, context.stable, context, query.output)
        samples = min(len(canary), len(stable))
        note = f"{len(canary)} canary and {len(stable)} stable predictions"
        if samples == 0:
            return MeasurementOutcome(None, 0, note)
        column = canary.columns[0]
        ref = profile_table(stable.rename({stable.columns[0]: column}))
        cur = profile_table(canary, ref)
        drift = compare(ref, cur).features[0]
        if drift.reason is not None:
            raise InvalidInputError(
                f"Output {column!r} of the canary and the stable cannot be compared: "
                f"{drift.reason}."
            )
        key = _MEASURE[query.measure]
        if key not in drift.metrics:
            raise InvalidInputError(
                f"Output {column!r} is categorical, and {query.measure.value} needs numbers; "
                "use measure jensenShannon or psi."
            )
        return MeasurementOutcome(drift.metrics[key], samples, note)


class AccuracyProvider(MetricProvider):
    """``accuracy: {metric, output}`` of the canary, from feedback labels."""

    def measure(self, metric: Metric, context: MeasureContext) -> MeasurementOutcome:
        query = metric.provider
        assert isinstance(query, AccuracyQuery)
        directory = _directory(context, metric)
        side = context.canary
        preds = _window(read_prediction_logs(directory, model=side.model, version=side.version),
                        context)  # fmt: skip
        column = _output_name(preds, query.output, side) if len(preds) else None
        if column is None:
            return MeasurementOutcome(None, 0, "no canary predictions in the window")
        labels = read_feedback(directory, model=side.model)
        if len(labels) == 0:
            return MeasurementOutcome(None, 0, "no feedback labels yet")
        labels = labels.sort("ts").unique(subset=["request_id", "row"], keep="last")
        joined = preds.select(
            "request_id", "row", pl.col("outputs").struct.field(column).alias("prediction")
        ).join(labels.select("request_id", "row", "label"), on=["request_id", "row"])
        n = len(joined)
        if n == 0:
            return MeasurementOutcome(None, 0, "no feedback label matches a canary prediction")
        pred, label = joined["prediction"], joined["label"]
        if query.metric is AccuracyMetric.ACCURACY:
            value = _mean((pred == label).fill_null(False).cast(pl.Float64))
        else:
            if not (pred.dtype.is_numeric() and label.dtype.is_numeric()):
                raise InvalidInputError(
                    f"{query.metric.value} needs numeric predictions and labels; output "
                    f"{column!r} is {pred.dtype} and the labels are {label.dtype}."
                )
            err = pred.cast(pl.Float64) - label.cast(pl.Float64)
            if query.metric is AccuracyMetric.RMSE:
                value = math.sqrt(_mean(err * err))
            else:
                value = _mean(err.abs())
        return MeasurementOutcome(value, n, f"{n} labelled canary predictions")


def _directory(context: MeasureContext, metric: Metric) -> Path:
    if context.log_directory is None:
        raise BackendError(
            f"Metric {metric.name!r} reads prediction logs, but deployment "
            f"{context.deployment!r} has none; turn on spec.template.logging."
        )
    return context.log_directory


def _window(df: pl.DataFrame, context: MeasureContext) -> pl.DataFrame:
    start = datetime.fromtimestamp(context.window_start, UTC)
    end = datetime.fromtimestamp(context.window_end, UTC)
    return df.filter((pl.col("ts") >= start) & (pl.col("ts") <= end))


def _outputs(
    directory: Path, side: RevisionModel, context: MeasureContext, output: str | None
) -> pl.DataFrame:
    """One column: the chosen output of ``side``'s predictions in the window."""
    df = _window(read_prediction_logs(directory, model=side.model, version=side.version),
                 context)  # fmt: skip
    if len(df) == 0:
        return pl.DataFrame({"prediction": []})
    name = _output_name(df, output, side)
    return df.select(pl.col("outputs").struct.field(name))


def _output_name(df: pl.DataFrame, output: str | None, side: RevisionModel) -> str:
    dtype = df.schema["outputs"]
    assert isinstance(dtype, pl.Struct)
    fields = [str(f.name) for f in dtype.fields]
    if output is None:
        return fields[0]
    if output not in fields:
        raise InvalidInputError(
            f"Model {side.model} version {side.version} logs outputs {fields}, not {output!r}; "
            "set provider.*.output to one of them."
        )
    return output


def _mean(s: pl.Series) -> float:
    """The mean of a Float64 series (NaN when it has no non-null value)."""
    value = s.mean()
    return float(value) if isinstance(value, int | float) else math.nan
