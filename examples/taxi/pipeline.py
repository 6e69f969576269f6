"""The Chicago taxi tip pipeline (TFX's canonical example) on real data, end to end.

    loopline run examples/taxi/pipeline.py                       # span 1: trains, blesses, pushes
    python examples/taxi/taxi_data.py shift                      # add a shifted span 2
    loopline run examples/taxi/pipeline.py                       # BLOCKED at ExampleValidator
    loopline run examples/taxi/pipeline.py --param allow_anomalies=true \\
        --param override_reason="new fleet contract, reviewed"   # overridden, recorded
"""

from __future__ import annotations

import os
from pathlib import Path

import taxi_utils
from taxi_data import PATTERN, ensure_span_one

from loopline.components import (
    Evaluator,
    ExampleGen,
    ExampleValidator,
    InfraValidator,
    Pusher,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
    latest_blessed_model,
    previous_span_statistics,
)
from loopline.pipeline import Param, Pipeline

HERE = Path(__file__).resolve().parent
# Where the span files live; the demo points this at its own workspace.
DATA = Path(os.environ.get("TAXI_DATA_DIR", HERE / "data")).resolve()
ensure_span_one(DATA)

THRESHOLDS = [
    {"metric": "auc", "lower": 0.58, "slices": ["overall"]},
    {"metric": "accuracy", "lower": 0.9, "slices": ["overall"]},
    {"metric": "auc", "lower": 0.5, "slices": ["company"]},  # no company slice worse than chance
    # not worse than the baseline (the latest blessed model) by more than 0.01 AUC
    {"metric": "auc", "direction": "higher_is_better", "absolute": -0.01, "slices": ["overall"]},
]

gen = ExampleGen(input_dir=str(DATA), pattern=PATTERN)
stats = StatisticsGen(examples=gen.outputs.examples)
schema = SchemaGen(statistics=stats.outputs.statistics, curated_schema_file=HERE / "schema.yaml")
previous = previous_span_statistics(input_dir=str(DATA), pattern=PATTERN)
validate = ExampleValidator(
    statistics=stats.outputs.statistics,
    schema=schema.outputs.schema,
    examples=gen.outputs.examples,
    previous_statistics=previous.outputs.artifact,
    allow_anomalies=Param("allow_anomalies", False),
    override_reason=Param("override_reason", ""),
)
transform = Transform(
    examples=gen.outputs.examples,
    schema=schema.outputs.schema,
    preprocessing_fn=taxi_utils.preprocessing_fn,
    label="tip",
    anomalies=validate.outputs.anomalies,
)
tuner = Tuner(
    examples=gen.outputs.examples,
    transform_graph=transform.outputs.transform_graph,
    train_fn=taxi_utils.train_fn,
    search_space=taxi_utils.search_space,
    label="tip",
    metric="auc",
    positive_label="yes",
    n_trials=Param("tuner_trials", 4),
)
trainer = Trainer(
    examples=gen.outputs.examples,
    transform_graph=transform.outputs.transform_graph,
    tuned_hyperparameters=tuner.outputs.best_hyperparameters,
    train_fn=taxi_utils.train_fn,
    label="tip",
    anomalies=validate.outputs.anomalies,
)
baseline = latest_blessed_model().with_id("baseline_model")
evaluator = Evaluator(
    examples=gen.outputs.examples,
    model=trainer.outputs.model,
    baseline_model=baseline.outputs.artifact,
    label="tip",
    positive_label="yes",
    thresholds=THRESHOLDS,
    slicing_features=["company"],
    min_examples_per_slice=50,
    force_bless=Param("force_bless", False),
    force_bless_by=Param("force_bless_by", ""),
    force_bless_reason=Param("force_bless_reason", ""),
)
infra = InfraValidator(model=trainer.outputs.model, examples=gen.outputs.examples)
pusher = Pusher(
    model=trainer.outputs.model,
    blessing=evaluator.outputs.blessing,
    infra_blessing=infra.outputs.infra_blessing,
    model_name="taxi",
)

pipeline = Pipeline(
    "taxi",
    [
        gen,
        stats,
        schema,
        previous,
        validate,
        transform,
        tuner,
        trainer,
        baseline,
        evaluator,
        infra,
        pusher,
    ],
)
