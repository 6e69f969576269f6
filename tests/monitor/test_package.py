"""The face of ``loopline.monitor``: what other packages may import from it."""

from __future__ import annotations

import loopline.monitor


def test_the_monitor_package_exports_exactly_its_public_names() -> None:
    assert sorted(loopline.monitor.__all__) == sorted([
        "ALERT_TYPE", "CBPE", "EXECUTION_TYPE", "AlertEvent", "AlertRule", "AlertView",
        "CBPEEstimate", "Check", "Commit", "EstimatedMetric", "FeatureDrift", "FeatureResult",
        "Histogram", "InMemoryMonitorStore", "LabelSpec", "LogSource", "Measurement",
        "MetricValue", "ModelLineage", "MonitorRunner", "MonitorSpec", "MonitorState",
        "MonitorStatus", "MonitorStore", "PerformanceValue", "Predictions", "Reference",
        "ReferenceSpec", "RuleState", "Segment", "SqlMonitorStore", "StoredAlert",
        "StoredMonitor", "Task", "TickResult", "VersionStatus", "Violation", "WindowResult",
        "WindowSpec", "accuracy", "auc", "build_status", "f1", "find_reference", "mae", "mape",
        "measure", "model_lineage", "precision", "recall", "record_alert", "render_report",
        "rmse", "step", "write_report",
    ])  # fmt: skip
    assert all(hasattr(loopline.monitor, name) for name in loopline.monitor.__all__)
    assert (loopline.monitor.ALERT_TYPE, loopline.monitor.EXECUTION_TYPE) == (
        "Alert",
        "MonitorWindow",
    )
