"""The face of ``loopline.monitor``: what other packages may import from it."""

from __future__ import annotations

import loopline.monitor


def test_the_monitor_package_exports_exactly_its_public_names() -> None:
    assert sorted(loopline.monitor.__all__) == sorted([
        "ALERT_TYPE", "CBPE", "EXECUTION_TYPE", "AlertEvent", "AlertRule", "CBPEEstimate",
        "Check", "Commit", "EstimatedMetric", "FeatureResult", "Histogram",
        "InMemoryMonitorStore", "LabelSpec", "LogSource", "Measurement", "MetricValue",
        "MonitorRunner", "MonitorSpec", "MonitorState", "MonitorStore", "PerformanceValue",
        "Predictions", "Reference", "ReferenceSpec", "RuleState", "Segment", "SqlMonitorStore",
        "StoredAlert", "StoredMonitor", "Task", "TickResult", "Violation", "WindowResult",
        "WindowSpec", "accuracy", "auc", "f1", "find_reference", "mae", "mape", "measure",
        "precision", "recall", "record_alert", "rmse", "step",
    ])  # fmt: skip
    assert all(hasattr(loopline.monitor, name) for name in loopline.monitor.__all__)
    assert (loopline.monitor.ALERT_TYPE, loopline.monitor.EXECUTION_TYPE) == (
        "Alert",
        "MonitorWindow",
    )
