"""The analysis definition: ``apiVersion: loopline/v1``, ``kind: AnalysisTemplate``.

Parsed from YAML or a dict, validated when built (every error names the field path and the
value), frozen afterwards. Fields, defaults and cross-field rules copy Argo Rollouts'
``Metric`` (``analysis_types.go``, ``ValidateMetric``): failureLimit 0 (-1 disables),
inconclusiveLimit 0, consecutiveErrorLimit 4, consecutiveSuccessLimit 0 (off); failureLimit
and consecutiveSuccessLimit may not both be off; ``count`` ≥ failureLimit +
consecutiveSuccessLimit and ≥ inconclusiveLimit; ``count`` > 1 needs an ``interval``; metric
names are unique. loopline adds ``minSampleSize`` (1) and ``sampleTimeout`` (5m): a
measurement waits for that many samples instead of failing on "no data", and a wait longer
than the timeout is recorded as Inconclusive. ``measurementRetention`` (10) bounds the
measurements a run keeps per metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from loopline.deploy.analysis.expression import Condition
from loopline.deploy.analysis.fields import Fields, duration_out, invalid
from loopline.deploy.analysis.provider_spec import ProviderSpec, parse_provider, provider_to_dict
from loopline.deploy.fields import load_yaml
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.types import JsonDict, check_name

API_VERSION = "loopline/v1"
KIND = "AnalysisTemplate"

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4  # Argo's defaults.DefaultConsecutiveErrorLimit
DEFAULT_MEASUREMENT_RETENTION = 10  # Argo's DefaultMeasurementHistoryLimit
DEFAULT_MIN_SAMPLE_SIZE = 1
DEFAULT_SAMPLE_TIMEOUT = 300.0

_METRIC_KEYS = {
    "name", "interval", "count", "initialDelay", "successCondition", "failureCondition",
    "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit", "consecutiveSuccessLimit",
    "dryRun", "minSampleSize", "sampleTimeout", "measurementRetention", "provider",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of a template; times are seconds."""

    name: str
    provider: ProviderSpec
    interval: float | None = None
    """Time between measurements; None: a single measurement (Argo)."""
    count: int = 0
    """Measurements to take; 0: one without an interval, until terminated with one."""
    initial_delay: float = 0.0
    success_condition: Condition | None = None
    failure_condition: Condition | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT
    consecutive_success_limit: int = 0
    dry_run: bool = False
    min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE
    sample_timeout: float = DEFAULT_SAMPLE_TIMEOUT
    measurement_retention: int = DEFAULT_MEASUREMENT_RETENTION

    @property
    def effective_count(self) -> int | None:
        """Argo's ``EffectiveCount``: ``count``; or 1 with neither count nor interval; or None
        (measure until the run is terminated) with an interval and no count."""
        if self.count == 0:
            return 1 if self.interval is None else None
        return self.count

    def to_dict(self) -> JsonDict:
        """The object form; ``parse_metric(m.to_dict(), …) == m``."""
        out: JsonDict = {"name": self.name}
        if self.interval is not None:
            out["interval"] = duration_out(self.interval)
        out["count"] = self.count
        out["initialDelay"] = duration_out(self.initial_delay)
        if self.success_condition is not None:
            out["successCondition"] = self.success_condition.text
        if self.failure_condition is not None:
            out["failureCondition"] = self.failure_condition.text
        out.update({
            "failureLimit": self.failure_limit,
            "inconclusiveLimit": self.inconclusive_limit,
            "consecutiveErrorLimit": self.consecutive_error_limit,
            "consecutiveSuccessLimit": self.consecutive_success_limit,
            "dryRun": self.dry_run,
            "minSampleSize": self.min_sample_size,
            "sampleTimeout": duration_out(self.sample_timeout),
            "measurementRetention": self.measurement_retention,
            "provider": provider_to_dict(self.provider),
        })  # fmt: skip
        return out


@dataclass(frozen=True, slots=True)
class AnalysisTemplate:
    """Named metrics that a rollout step, a background analysis or a blue-green promotion
    runs. Build it with :meth:`from_dict` or :meth:`from_yaml`."""

    name: str
    metrics: tuple[Metric, ...]
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    @classmethod
    def from_yaml(cls, text: str) -> AnalysisTemplate:
        """Parse one YAML document. Raises InvalidDefinitionError naming the bad field."""
        return cls.from_dict(load_yaml(text, "AnalysisTemplate"))

    @classmethod
    def from_dict(cls, data: Any) -> AnalysisTemplate:
        """Build and validate a template from its object form.

        Raises:
            InvalidDefinitionError: a field is missing, unknown, of the wrong type, out of range
                or not allowed; the message names its path (``spec.metrics[0].count``).
        """
        top = Fields(data, "", {"apiVersion", "kind", "metadata", "spec"})
        if top.data.get("apiVersion") != API_VERSION:
            raise invalid("apiVersion", top.data.get("apiVersion"), f"must be {API_VERSION!r}")
        if top.data.get("kind") != KIND:
            raise invalid("kind", top.data.get("kind"), f"must be {KIND!r}")
        meta = Fields(top.data.get("metadata"), "metadata", {"name", "labels", "annotations"})
        name = meta.data.get("name")
        try:
            check_name("AnalysisTemplate", name)  # type: ignore[arg-type]  # checked here
        except InvalidInputError as exc:
            raise InvalidDefinitionError(
                f"AnalysisTemplate field metadata.name: {exc}", field="metadata.name"
            ) from None
        spec = Fields(top.data.get("spec"), "spec", {"metrics"})
        raw = spec.data.get("metrics")
        if not isinstance(raw, list) or not raw:
            raise invalid("spec.metrics", raw, "must be a non-empty list of metrics")
        metrics = tuple(parse_metric(m, f"spec.metrics[{i}]") for i, m in enumerate(raw))
        seen: set[str] = set()
        for i, m in enumerate(metrics):
            if m.name in seen:
                raise invalid(f"spec.metrics[{i}].name", m.name, "repeats another metric's name")
            seen.add(m.name)
        return cls(
            name=str(name),
            metrics=metrics,
            labels=_string_map(meta.data.get("labels"), "metadata.labels"),
            annotations=_string_map(meta.data.get("annotations"), "metadata.annotations"),
        )

    def to_dict(self) -> JsonDict:
        """The object form; ``AnalysisTemplate.from_dict(t.to_dict()) == t``."""
        metadata: JsonDict = {"name": self.name}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": {"metrics": [m.to_dict() for m in self.metrics]},
        }


def templates_from_yaml(text: str) -> tuple[AnalysisTemplate, ...]:
    """Every AnalysisTemplate of a multi-document YAML text (``---`` separated)."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidDefinitionError(f"AnalysisTemplate YAML does not parse: {exc}") from exc
    return tuple(AnalysisTemplate.from_dict(d) for d in docs)


def parse_metric(data: Any, path: str) -> Metric:
    """One metric from its object form; raises InvalidDefinitionError naming ``path.field``."""
    f = Fields(data, path, _METRIC_KEYS)
    name = f.data.get("name")
    try:
        check_name("Metric", name)  # type: ignore[arg-type]  # checked here
    except InvalidInputError as exc:
        raise InvalidDefinitionError(
            f"AnalysisTemplate field {f.sub('name')}: {exc}", field=f.sub("name")
        ) from None
    if "provider" not in f.data:
        raise invalid(f.sub("provider"), None, "must name where the metric is read from")
    interval = f.duration("interval", None)
    if interval is not None and interval <= 0:
        raise invalid(f.sub("interval"), f.data.get("interval"), "must be longer than zero")
    count = f.int("count", 0)
    failure_limit = f.int("failureLimit", 0, minimum=-1)
    inconclusive_limit = f.int("inconclusiveLimit", 0)
    success_limit = f.int("consecutiveSuccessLimit", 0)
    if success_limit == 0 and failure_limit == -1:
        raise invalid(
            f.sub("failureLimit"), -1, "may not be -1 (off) while consecutiveSuccessLimit is 0"
        )
    if count > 0:
        if failure_limit >= 0 and count < failure_limit + success_limit:
            raise invalid(
                f.sub("count"), count,
                f"must be at least failureLimit + consecutiveSuccessLimit "
                f"({failure_limit} + {success_limit})",
            )  # fmt: skip
        if failure_limit < 0 and count < success_limit:
            raise invalid(f.sub("count"), count, "must be at least consecutiveSuccessLimit")
        if count < inconclusive_limit:
            raise invalid(f.sub("count"), count, "must be at least inconclusiveLimit")
    if count > 1 and interval is None:
        raise invalid(f.sub("count"), count, "needs an interval when it is more than 1")
    sample_timeout = f.duration("sampleTimeout", DEFAULT_SAMPLE_TIMEOUT)
    assert sample_timeout is not None
    success = f.data.get("successCondition")
    failure = f.data.get("failureCondition")
    return Metric(
        name=str(name),
        provider=parse_provider(f.data["provider"], f.sub("provider")),
        interval=interval,
        count=count,
        initial_delay=f.duration("initialDelay", 0.0) or 0.0,
        success_condition=None if success is None
        else Condition.parse(success, f.sub("successCondition")),
        failure_condition=None if failure is None
        else Condition.parse(failure, f.sub("failureCondition")),
        failure_limit=failure_limit,
        inconclusive_limit=inconclusive_limit,
        consecutive_error_limit=f.int("consecutiveErrorLimit", DEFAULT_CONSECUTIVE_ERROR_LIMIT),
        consecutive_success_limit=success_limit,
        dry_run=f.bool("dryRun", False),
        min_sample_size=f.int("minSampleSize", DEFAULT_MIN_SAMPLE_SIZE),
        sample_timeout=sample_timeout,
        measurement_retention=f.int(
            "measurementRetention", DEFAULT_MEASUREMENT_RETENTION, minimum=1
        ),
    )  # fmt: skip


def _string_map(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(path, value, "must map strings to strings")
    return tuple(sorted(value.items()))
