"""Facts about data: statistics, schema, anomalies and drift, as pure functions over Arrow.

Shared by the StatisticsGen / SchemaGen / ExampleValidator components and the drift monitor::

    ref = profile_table(train_table)                    # or profile_parquet / profile_splits
    schema = infer_schema(ref)                          # edit via dump_schema / load_schema
    anomalies = validate(profile_table(eval_table, reference=ref), schema)
    cur = profile_table(serving_window, reference=ref)  # same histogram edges as ref
    report = compare(ref, cur, schema)                  # report.drifted_features
    cal = calibrate(train_frame, ref, window_rows=2_000) # per-feature thresholds, once
    report = compare(ref, cur, schema, calibration=cal) # per window

Contracts:

* A :class:`Profile` is a frozen value; ``save_profile``/``load_profile`` round-trip it through
  JSON without loss, and it is the monitor's reference as it is.
* ``merge(a, b)`` equals the profile of the concatenated tables, exactly (to float rounding) for
  counts, moments, min/max and histograms on shared edges, and for categorical counts while at
  most ``max_exact`` (100,000) distinct values; beyond that counts are a Misra–Gries sketch
  and distinct counts HyperLogLog (``loopline.data.sketch`` states the error bounds).
* Numeric histograms live on the reference's quantile edges: profile every table you will
  compare with ``reference=<reference profile>``; mismatched edges raise InvalidInputError.
* Drift is exact where the counts are: every category while categorical counts are exact
  (top-K + TAIL only for sketched columns), and W1 from every distinct value while a numeric
  column has at most ``max_atoms`` (4,096) of them; FeatureDrift.method says which way.
* Distances carry units: JS distance base 2 in [0, 1]; L∞ as a share; Wasserstein-1 divided by
  the reference's population std; PSI in nats with ε = 1e-4; new-value excess as a share.
  Default thresholds: W1/σ ≥ 0.1 (numeric); JS ≥ 0.12 (= Evidently's 0.1 in ln units) and
  new-value excess ≥ 0.01 (categorical). A check fires only when its value also exceeds the
  sampling-noise critical value for the two sample sizes (α = 0.01), so small windows and
  long-tailed columns do not raise false alarms.
* Profiling is one vectorised pass per column (NumPy / Arrow compute); no per-row Python.
* Bad input raises :class:`loopline.errors.InvalidInputError` naming the column or file.
"""

from loopline.data.anomaly import Anomaly, AnomalyKind, Severity, validate
from loopline.data.calibration import (
    Calibration,
    FeatureCalibration,
    MetricCalibration,
    calibrate,
    calibrate_from_profile,
)
from loopline.data.distances import (
    jensen_shannon_distance,
    l_infinity,
    psi,
    wasserstein_atoms,
    wasserstein_pieces,
)
from loopline.data.drift import DriftCheck, DriftReport, FeatureDrift, compare
from loopline.data.merge import merge
from loopline.data.profile import CategoricalStats, DType, FeatureProfile, NumericStats, Profile
from loopline.data.profile_json import (
    load_profile,
    profile_from_json,
    profile_to_json,
    save_profile,
)
from loopline.data.profiler import (
    profile_batches,
    profile_parquet,
    profile_splits,
    profile_table,
)
from loopline.data.schema import (
    DEFAULT_THRESHOLDS,
    FeatureSchema,
    Metric,
    Schema,
    Threshold,
    infer_schema,
    merge_schema,
)
from loopline.data.schema_yaml import dump_schema, load_schema
from loopline.data.shards import profile_parquet_sharded

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Anomaly",
    "AnomalyKind",
    "Calibration",
    "CategoricalStats",
    "DType",
    "DriftCheck",
    "DriftReport",
    "FeatureCalibration",
    "FeatureDrift",
    "FeatureProfile",
    "FeatureSchema",
    "Metric",
    "MetricCalibration",
    "NumericStats",
    "Profile",
    "Schema",
    "Severity",
    "Threshold",
    "calibrate",
    "calibrate_from_profile",
    "compare",
    "dump_schema",
    "infer_schema",
    "jensen_shannon_distance",
    "l_infinity",
    "load_profile",
    "load_schema",
    "merge",
    "merge_schema",
    "profile_batches",
    "profile_from_json",
    "profile_parquet",
    "profile_parquet_sharded",
    "profile_splits",
    "profile_table",
    "profile_to_json",
    "psi",
    "save_profile",
    "validate",
    "wasserstein_atoms",
    "wasserstein_pieces",
]
