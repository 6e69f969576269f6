"""``kind: Monitor``: what to watch, over which windows, against which reference, and when to alert.

::

    apiVersion: loopline/v1
    kind: Monitor
    metadata: {name: taxi}
    spec:
      deployment: taxi            # the deployment whose prediction logs are read
      model: taxi                 # registry name (optional: the deployment's model by default)
      window: {rows: 5000}        # or {duration: 10m}: tumbling windows per model version
      reference: {falseAlarmRate: 0.01, chunks: 30}
      features: [trip_miles, company]      # optional subset of the model's inputs
      label: {task: classification, positiveClass: "1"}
      retention: {windows: 5000}  # window results kept per monitor
      rules:
        - {name: drift, metric: driftShare, op: ">=", threshold: 0.3, forWindows: 3,
           clearAfter: 2, severity: warning}
        - {name: miles, metric: "feature:trip_miles"}          # the calibrated verdict
        - {name: decay, metric: "estimated:accuracy", op: "<", threshold: 0.8}

Rule metrics (the value a window gives the rule, and when it breaches without ``threshold``):

* ``driftShare`` — share of compared features that drifted; default ``>= 0.5``.
* ``feature:<name>`` — that feature's drift; breaches when its calibrated check fires.
* ``prediction`` — drift of the model's ``predict`` output against its reference.
* ``newValues`` — the largest new-value excess of a categorical feature; breaches when a
  calibrated new-value check fires.
* ``schemaViolations`` — error anomalies against the model's schema; default ``>= 1``.
* ``accuracy``, ``precision``, ``recall``, ``f1``, ``auc`` (labels joined from feedback),
  ``rmse``, ``mae``, ``mape``, and ``estimated:<metric>`` (CBPE, no labels needed): need
  ``op`` and ``threshold``.

Specs are frozen values; :meth:`MonitorSpec.to_doc` writes the document back (round-trips
through :meth:`MonitorSpec.from_dict`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidDefinitionError
from loopline.monitor.fields import KIND, Fields, format_duration, invalid
from loopline.types import Json, JsonDict, check_name

API_VERSION = "loopline/v1"
DRIFT_METRICS = ("driftShare", "prediction", "newValues", "schemaViolations")
LABEL_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "rmse", "mae", "mape")
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "specificity", "auc")
OPS = (">", ">=", "<", "<=")
_DEFAULTS: dict[str, tuple[str, float]] = {
    "driftShare": (">=", 0.5),
    "schemaViolations": (">=", 1.0),
}


class Task(enum.StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Tumbling windows of ``rows`` rows (in log order) or of ``duration`` seconds (by ``ts``)."""

    rows: int | None = None
    duration: float | None = None

    def to_doc(self) -> JsonDict:
        if self.rows is not None:
            return {"rows": self.rows}
        return {"duration": format_duration(self.duration or 0.0)}


@dataclass(frozen=True, slots=True)
class ReferenceSpec:
    """How thresholds are calibrated on the reference (``loopline.data.calibrate``)."""

    false_alarm_rate: float = 0.01
    chunks: int = 30

    def to_doc(self) -> JsonDict:
        return {"falseAlarmRate": self.false_alarm_rate, "chunks": self.chunks}


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """What the feedback label means: the task and, for a classifier, the positive class."""

    task: Task = Task.CLASSIFICATION
    positive_class: str | None = None

    def to_doc(self) -> JsonDict:
        doc: JsonDict = {"task": self.task.value}
        if self.positive_class is not None:
            doc["positiveClass"] = self.positive_class
        return doc


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Fire after ``for_windows`` consecutive breaching windows; clear after ``clear_after``
    consecutive clean ones. ``op``/``threshold`` None: breach on the calibrated verdict."""

    name: str
    metric: str
    op: str | None = None
    threshold: float | None = None
    for_windows: int = 3
    clear_after: int = 2
    severity: str = "warning"

    @property
    def feature(self) -> str | None:
        """The feature of a ``feature:<name>`` rule."""
        return self.metric.partition(":")[2] if self.metric.startswith("feature:") else None

    @property
    def estimated(self) -> str | None:
        """The CBPE metric of an ``estimated:<metric>`` rule."""
        return self.metric.partition(":")[2] if self.metric.startswith("estimated:") else None

    def to_doc(self) -> JsonDict:
        doc: JsonDict = {"name": self.name, "metric": self.metric}
        if self.op is not None:
            doc["op"] = self.op
            doc["threshold"] = self.threshold
        doc.update(forWindows=self.for_windows, clearAfter=self.clear_after, severity=self.severity)
        return doc


@dataclass(frozen=True, slots=True)
class MonitorSpec:
    """A parsed ``kind: Monitor``. Build it with :meth:`from_dict` or :meth:`from_yaml`."""

    name: str
    deployment: str
    window: WindowSpec
    model: str | None = None
    reference: ReferenceSpec = ReferenceSpec()
    features: tuple[str, ...] | None = None
    label: LabelSpec = LabelSpec()
    rules: tuple[AlertRule, ...] = ()
    retention_windows: int = 5000

    @classmethod
    def from_yaml(cls, text: str) -> MonitorSpec:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidDefinitionError(f"{KIND} YAML does not parse: {exc}") from exc
        except RecursionError:
            raise InvalidDefinitionError(f"{KIND} YAML is nested too deeply to read.") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> MonitorSpec:
        """Parse a whole document (``apiVersion``, ``kind``, ``metadata``, ``spec``).

        Raises:
            InvalidDefinitionError: naming the first field that is missing or wrong.
        """
        top = Fields(doc, "", {"apiVersion", "kind", "metadata", "spec"})
        if top.data.get("apiVersion") != API_VERSION:
            raise invalid("apiVersion", top.data.get("apiVersion"), f"must be {API_VERSION!r}")
        if top.data.get("kind") != KIND:
            raise invalid("kind", top.data.get("kind"), f"must be {KIND!r}")
        meta = Fields(top.data.get("metadata"), "metadata", {"name", "labels", "annotations"})
        name = _name(meta, "name")
        spec = Fields(
            top.data.get("spec"),
            "spec",
            {
                "deployment",
                "model",
                "window",
                "reference",
                "features",
                "label",
                "rules",
                "retention",
            },
        )
        deployment = _name(spec, "deployment")
        model = _name(spec, "model") if spec.has("model") else None
        rules = tuple(_rule(r, f"spec.rules[{i}]") for i, r in enumerate(spec.sequence("rules")))
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            if rule.name in seen:
                raise invalid(f"spec.rules[{i}].name", rule.name, "must be unique among the rules")
            seen.add(rule.name)
        retention = Fields(spec.data.get("retention", {}), "spec.retention", {"windows"})
        return cls(
            name=name,
            deployment=deployment,
            model=model,
            window=_window(spec.data.get("window"), "spec.window"),
            reference=_reference(spec.data.get("reference", {}), "spec.reference"),
            features=spec.strings("features"),
            label=_label(spec.data.get("label", {}), "spec.label"),
            rules=rules,
            retention_windows=retention.positive_int("windows", 5000),
        )

    def to_doc(self) -> JsonDict:
        spec: JsonDict = {"deployment": self.deployment}
        if self.model is not None:
            spec["model"] = self.model
        spec["window"] = self.window.to_doc()
        spec["reference"] = self.reference.to_doc()
        if self.features is not None:
            spec["features"] = list[Json](self.features)
        spec["label"] = self.label.to_doc()
        spec["rules"] = [r.to_doc() for r in self.rules]
        spec["retention"] = {"windows": self.retention_windows}
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name},
            "spec": spec,
        }


def _name(fields: Fields, key: str) -> str:
    value = fields.required_text(key)
    try:
        return check_name(key.capitalize(), value)
    except ValueError:
        raise fields.invalid(
            key,
            value,
            "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit",
        ) from None


def _window(data: Any, path: str) -> WindowSpec:
    f = Fields(data, path, {"rows", "duration"})
    if f.has("rows") == f.has("duration"):
        raise invalid(path, data, "must set exactly one of rows or duration")
    if f.has("rows"):
        return WindowSpec(rows=f.positive_int("rows"))
    return WindowSpec(duration=f.duration("duration"))


def _reference(data: Any, path: str) -> ReferenceSpec:
    f = Fields(data, path, {"falseAlarmRate", "chunks"})
    rate = f.number("falseAlarmRate", 0.01, low=0.0, high=0.5)
    chunks = f.positive_int("chunks", 30)
    if chunks < 2:
        raise f.invalid("chunks", chunks, "must be at least 2 (a spread needs two chunks)")
    return ReferenceSpec(false_alarm_rate=rate, chunks=chunks)


def _label(data: Any, path: str) -> LabelSpec:
    f = Fields(data, path, {"task", "positiveClass"})
    task = f.text("task", Task.CLASSIFICATION.value)
    if task not in {t.value for t in Task}:
        raise f.invalid("task", task, "must be classification or regression")
    positive = f.data.get("positiveClass")
    if positive is not None and (isinstance(positive, bool) or not isinstance(positive, str | int)):
        raise f.invalid("positiveClass", positive, "must be a class label (a string or integer)")
    if positive is not None and task == Task.REGRESSION:
        raise f.invalid("positiveClass", positive, "applies only to task: classification")
    return LabelSpec(Task(task), None if positive is None else str(positive))


def _rule(data: Any, path: str) -> AlertRule:
    f = Fields(
        data, path, {"name", "metric", "op", "threshold", "forWindows", "clearAfter", "severity"}
    )
    name = f.required_text("name")
    metric = f.required_text("metric")
    kind, _, arg = metric.partition(":")
    label_metric = metric in LABEL_METRICS or kind == "estimated"
    if kind == "feature":
        if not arg:
            raise f.invalid("metric", metric, "must name the feature: feature:<name>")
    elif kind == "estimated":
        if arg not in ESTIMATED_METRICS:
            raise f.invalid(
                "metric",
                metric,
                f"must be estimated:<metric> with a metric among {', '.join(ESTIMATED_METRICS)}",
            )
    elif metric not in DRIFT_METRICS and metric not in LABEL_METRICS:
        known = ", ".join((*DRIFT_METRICS, "feature:<name>", *LABEL_METRICS, "estimated:<metric>"))
        raise f.invalid("metric", metric, f"must be one of {known}")
    op, threshold = f.text("op"), f.data.get("threshold")
    if op is None and threshold is None and metric in _DEFAULTS:
        op, threshold = _DEFAULTS[metric]
    if (op is None) != (threshold is None):
        raise invalid(path, data, "must set op and threshold together")
    if op is None and label_metric:
        raise f.invalid("threshold", None, f"is required for metric {metric!r} (with op)")
    if op is not None and op not in OPS:
        raise f.invalid("op", op, f"must be one of {' '.join(OPS)}")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise f.invalid("threshold", threshold, "must be a number")
    value = None if threshold is None else float(threshold)
    for_windows = f.positive_int("forWindows", 3)
    clear_after = f.positive_int("clearAfter", 2)
    severity = f.text("severity", "warning") or "warning"
    return AlertRule(name, metric, op, value, for_windows, clear_after, severity)
