"""loopline.data's face: what other packages may import."""

from __future__ import annotations

import loopline.data


def test_the_public_names_are_pinned() -> None:
    assert sorted(loopline.data.__all__) == sorted(
        [
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
    )
    assert all(hasattr(loopline.data, name) for name in loopline.data.__all__)
