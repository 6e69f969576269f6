"""Measure: drift and decay of deployed models over their prediction logs and feedback labels.

A ``kind: Monitor`` (:class:`MonitorSpec`) names a deployment and how to window its logs.
:class:`MonitorRunner` ``.tick(now)`` reads the Parquet segments the model servers wrote since
the last tick (:class:`LogSource`), fills tumbling windows per model version, and when a
window closes compares it with the model's training reference — found through lineage,
thresholds calibrated on the reference's own chunks — into a :class:`WindowResult`. Alert
rules (:func:`step`, pure) fire after N breaching windows and clear with hysteresis; each
firing and resolution becomes an ``Alert`` artifact in the metadata store, output of a
``MonitorWindow`` execution whose inputs include the model artifact.

Contracts:

* Exactly-once: a tick's cursor (the segments consumed), the open windows' partial state and
  the closed windows' results commit in one :class:`MonitorStore` transaction; a crash before
  it re-reads the same segments, a crash after it reads none of them again.
* Sits beside ``pipeline`` and ``serving`` in the layers: it reads the log layout directly
  (``predictions|feedback/model=<m>/version=<v>/*.parquet``, dot-files skipped) and never
  imports the server.
* Every decision is a pure function of its inputs (``now`` is a parameter).
"""

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
    "AlertEvent",
    "AlertRule",
    "Check",
    "Commit",
    "FeatureResult",
    "Histogram",
    "InMemoryMonitorStore",
    "LabelSpec",
    "Measurement",
    "MonitorRunner",
    "MonitorSpec",
    "MonitorState",
    "MonitorStore",
    "PerformanceValue",
    "ReferenceSpec",
    "RuleState",
    "SqlMonitorStore",
    "StoredAlert",
    "StoredMonitor",
    "Task",
    "TickResult",
    "Violation",
    "WindowResult",
    "WindowSpec",
    "measure",
    "step",
]
