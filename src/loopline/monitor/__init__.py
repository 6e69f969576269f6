"""Measure: drift and decay of deployed models over their prediction logs and feedback labels.

A ``kind: Monitor`` (:class:`MonitorSpec`) names a deployment and how to window its logs.
:class:`MonitorRunner` ``.tick(now)`` reads the Parquet segments the model servers wrote since
the last tick (:class:`LogSource`), fills tumbling windows per model version, and when a
window closes compares it with the model's training reference — found through lineage,
thresholds calibrated on the reference's own chunks — into a :class:`WindowResult`. Alert
rules (:func:`step`, pure) fire after N breaching windows and clear with hysteresis; each
firing and resolution becomes an ``Alert`` artifact in the metadata store, output of a
``MonitorWindow`` execution whose inputs include the model artifact. Performance comes from
labels joined on ``(request_id, row)`` (:func:`accuracy`, :func:`auc`, :func:`rmse`, … with
intervals) and, while labels are late, from :class:`CBPE` estimates. docs/monitoring.md has the
decisions.

Contracts:

* Exactly-once: a tick's cursor (the segments consumed), the open windows' partial state and
  the closed windows' results commit in one :class:`MonitorStore` transaction; a crash before
  it re-reads the same segments, a crash after it reads none of them again.
* Sits beside ``pipeline`` and ``serving`` in the layers: it reads the log layout directly
  (``predictions|feedback/model=<m>/version=<v>/*.parquet``, dot-files skipped) and never
  imports the server.
* Every decision is a pure function of its inputs (``now`` is a parameter).
"""

from loopline.monitor.alerts import ALERT_TYPE, EXECUTION_TYPE, record_alert
from loopline.monitor.cbpe import CBPE, CBPEEstimate, EstimatedMetric
from loopline.monitor.log_source import LogSource, Predictions, Segment
from loopline.monitor.model_lineage import ModelLineage, model_lineage
from loopline.monitor.performance import MetricValue, accuracy, auc, f1, precision, recall
from loopline.monitor.reference import Reference, find_reference
from loopline.monitor.regression import mae, mape, rmse
from loopline.monitor.report import render_report, write_report
from loopline.monitor.rules import AlertEvent, Measurement, RuleState, measure, step
from loopline.monitor.runner import MonitorRunner, TickResult
from loopline.monitor.spec import (
    AlertRule,
    LabelSpec,
    MonitorSpec,
    ReferenceSpec,
    Task,
    WindowSpec,
)
from loopline.monitor.sql_store import SqlMonitorStore
from loopline.monitor.status import (
    AlertView,
    FeatureDrift,
    MonitorStatus,
    VersionStatus,
    build_status,
)
from loopline.monitor.store import (
    Commit,
    InMemoryMonitorStore,
    MonitorState,
    MonitorStore,
    StoredAlert,
    StoredMonitor,
)
from loopline.monitor.window_result import (
    Check,
    FeatureResult,
    Histogram,
    PerformanceValue,
    Violation,
    WindowResult,
)

__all__ = [
    "ALERT_TYPE",
    "CBPE",
    "EXECUTION_TYPE",
    "AlertEvent",
    "AlertRule",
    "AlertView",
    "CBPEEstimate",
    "Check",
    "Commit",
    "EstimatedMetric",
    "FeatureDrift",
    "FeatureResult",
    "Histogram",
    "InMemoryMonitorStore",
    "LabelSpec",
    "LogSource",
    "Measurement",
    "MetricValue",
    "ModelLineage",
    "MonitorRunner",
    "MonitorSpec",
    "MonitorState",
    "MonitorStatus",
    "MonitorStore",
    "PerformanceValue",
    "Predictions",
    "Reference",
    "ReferenceSpec",
    "RuleState",
    "Segment",
    "SqlMonitorStore",
    "StoredAlert",
    "StoredMonitor",
    "Task",
    "TickResult",
    "VersionStatus",
    "Violation",
    "WindowResult",
    "WindowSpec",
    "accuracy",
    "auc",
    "build_status",
    "f1",
    "find_reference",
    "mae",
    "mape",
    "measure",
    "model_lineage",
    "precision",
    "recall",
    "record_alert",
    "render_report",
    "rmse",
    "step",
    "write_report",
]
