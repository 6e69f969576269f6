"""The standard pipeline steps (TFX's components), on ``loopline.data`` and ``loopline.bundle``.

ExampleGen → StatisticsGen → SchemaGen → ExampleValidator (gate) → Transform → Tuner →
Trainer → Evaluator (blessing vs the latest blessed model) → InfraValidator → Pusher.

Key contracts:

- Every component is a ``@component`` (or a factory returning a ``Step``) whose outputs are
  typed artifacts with JSON properties; lineage is recorded by the runner.
- ExampleGen's cache key includes a content fingerprint of the input files; SchemaGen's the
  curated schema's text; Transform/Trainer/Tuner bind the user's functions so their code (and
  the project-local code they call) is hashed into the cache key (``user_code.bind``).
- ExampleValidator raises GateFailedError on error anomalies or drift unless
  ``allow_anomalies=True`` (recorded with ``override_reason``); Pusher raises it for a model
  that is not blessed or not infra-blessed. The run then ends BLOCKED.
- Evaluator implements TFMA's metrics_validator semantics per slice
  (:mod:`loopline.components.blessing`) with explicit ``on_no_baseline`` /
  ``on_no_thresholds`` policies, a minimum of examples per slice, a readable reason per failed
  check, and an audited force-bless.
- Models are saved with ``loopline.bundle`` (skops, never pickle) as
  ``Pipeline([transform, model])``; every load checks the recorded digest first.
- Pusher builds a ``ModelRegistry`` from ``ctx.metadata``/``ctx.artifacts`` (thread isolation).
"""

from loopline.components.blessing import Check, MetricThreshold, Verdict, validate_metrics
from loopline.components.evaluator import Evaluator
from loopline.components.example_gen import ExampleGen, split_table
from loopline.components.example_validator import ExampleValidator
from loopline.components.infra_validator import InfraValidator
from loopline.components.metrics import compute_metrics
from loopline.components.pusher import Pusher
from loopline.components.resolvers import (
    last_n_spans,
    latest_blessed_model,
    latest_examples,
    previous_span_statistics,
)
from loopline.components.schema_gen import SchemaGen
from loopline.components.spans import (
    SpanFiles,
    SpanPattern,
    discover,
    input_fingerprint,
    select_spans,
)
from loopline.components.statistics_gen import StatisticsGen
from loopline.components.trainer import Trainer
from loopline.components.transform import Transform
from loopline.components.tuner import Tuner

__all__ = [
    "Check",
    "Evaluator",
    "ExampleGen",
    "ExampleValidator",
    "InfraValidator",
    "MetricThreshold",
    "Pusher",
    "SchemaGen",
    "SpanFiles",
    "SpanPattern",
    "StatisticsGen",
    "Trainer",
    "Transform",
    "Tuner",
    "Verdict",
    "compute_metrics",
    "discover",
    "input_fingerprint",
    "last_n_spans",
    "latest_blessed_model",
    "latest_examples",
    "previous_span_statistics",
    "select_spans",
    "split_table",
    "validate_metrics",
]
