"""The Deployment definition: ``apiVersion: loopline/v1``, ``kind: Deployment``.

Parsed from YAML or a dict, validated when built (errors name the field path and the value),
frozen afterwards. Defaults and validation copy Kubernetes ``apps/v1`` (``defaults.go``,
``ValidateDeploymentSpec``): replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10,
progressDeadlineSeconds 600, minReadySeconds 0; maxSurge and maxUnavailable may not both be 0;
maxUnavailable may not exceed 100%; progressDeadlineSeconds must exceed minReadySeconds.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loopline.deploy.autoscaling import Autoscaling
from loopline.deploy.fields import MAX_REPLICAS, Fields, invalid, load_yaml
from loopline.deploy.progressive_spec import (
    BlueGreenStrategy,
    CanaryStrategy,
    parse_blue_green,
    parse_canary,
)
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.serving import BatchingOptions
from loopline.types import JsonDict, ModelRef, check_name, parse_age, parse_byte_size

T = TypeVar("T")

API_VERSION = "loopline/v1"
KIND = "Deployment"

IntOrPercent = int | str  # 3, or "25%"


class StrategyType(enum.Enum):
    """How a template change replaces replicas."""

    ROLLING_UPDATE = "RollingUpdate"  # surge new replicas, then retire old ones; no downtime
    RECREATE = "Recreate"  # stop every old replica, then start the new ones; downtime by design
    CANARY = "Canary"  # steps of exact traffic weights, pauses and analyses (Argo Rollouts)
    BLUE_GREEN = "BlueGreen"  # a full preview stack, then all traffic switched at once


@dataclass(frozen=True, slots=True)
class Strategy:
    """Deployment strategy; ``max_surge``/``max_unavailable`` only apply to RollingUpdate;
    ``canary``/``blue_green`` are set exactly when the type says so."""

    type: StrategyType = StrategyType.ROLLING_UPDATE
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = "25%"
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None

    @property
    def progressive(self) -> bool:
        """Canary or BlueGreen: a stable revision serves while the new one is proven."""
        return self.type in (StrategyType.CANARY, StrategyType.BLUE_GREEN)


@dataclass(frozen=True, slots=True)
class Batching:
    """Adaptive batching options passed to each replica's model server."""

    enabled: bool = False
    max_batch_size: int = BatchingOptions().max_batch_size
    """Rows per model call at most (``loopline serve --max-batch-size``, the same default)."""
    max_latency_ms: float = BatchingOptions().max_latency_ms
    """How long a request may wait queued before it is shed with 503 + Retry-After
    (``loopline serve --max-latency-ms``; the same default)."""


DEFAULT_BATCHING = Batching()


@dataclass(frozen=True, slots=True)
class Logging:
    """Prediction logging options passed to each replica's model server."""

    enabled: bool = False
    sample_rate: float = 1.0
    max_bytes: int | None = None
    """``maxBytes``: rotate the log directory to this size (None: the server's default)."""
    max_age: float | None = None
    """``maxAge`` in seconds: delete older segments (None: the server's default)."""


@dataclass(frozen=True, slots=True)
class Template:
    """The pod-template equivalent: what every replica of one revision runs."""

    model: str
    workers: int = 1
    batching: Batching = field(default_factory=Batching)
    logging: Logging = field(default_factory=Logging)

    @classmethod
    def from_dict(cls, data: Any) -> Template:
        """Inverse of :meth:`to_dict`. Raises InvalidDefinitionError naming the bad field."""
        if not isinstance(data, Mapping):
            raise _invalid("spec.template", data, "must be a mapping")
        model = data.get("model")
        if not isinstance(model, str):
            raise _invalid("spec.model", model, "must be a model reference such as 'iris/3'")
        return _parse_template({k: v for k, v in data.items() if k != "model"}, model)

    def to_dict(self) -> JsonDict:
        """The template as the JSON object that :func:`template_hash` digests."""
        return {
            "model": self.model,
            "workers": self.workers,
            "batching": {
                "enabled": self.batching.enabled,
                "maxBatchSize": self.batching.max_batch_size,
                "maxLatencyMs": self.batching.max_latency_ms,
            },
            "logging": _logging_dict(self.logging),
        }


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A declarative model deployment. Build it with :meth:`from_dict` or :meth:`from_yaml`."""

    name: str
    template: Template
    replicas: int = 1
    strategy: Strategy = field(default_factory=Strategy)
    min_ready_seconds: int = 0
    progress_deadline_seconds: int = 600
    revision_history_limit: int = 10
    paused: bool = False
    port: int | None = None
    labels: tuple[tuple[str, str], ...] = ()
    """``metadata.labels`` as sorted pairs (kept and shown; they do not make a revision)."""
    annotations: tuple[tuple[str, str], ...] = ()
    """``metadata.annotations`` as sorted pairs."""
    autoscaling: Autoscaling | None = None
    """``spec.autoscaling`` (HPA v2 fields); not part of the template, so never a revision."""

    @property
    def model(self) -> str:
        """The model reference every replica serves (``name@alias``, ``name/version``)."""
        return self.template.model

    @classmethod
    def from_yaml(cls, text: str) -> DeploymentSpec:
        """Parse one YAML document. Raises InvalidDefinitionError naming the bad field."""
        return cls.from_dict(load_yaml(text, "Deployment"))

    @classmethod
    def from_dict(cls, data: Any) -> DeploymentSpec:
        """Build and validate a spec from its JSON/YAML object form.

        Raises:
            InvalidDefinitionError: a field is missing, unknown, of the wrong type or out of
                range; the message names its path (``spec.strategy.rollingUpdate.maxSurge``).
        """
        return _parse(data)

    def to_dict(self) -> JsonDict:
        """The object form; ``DeploymentSpec.from_dict(spec.to_dict()) == spec``."""
        strategy: JsonDict = {"type": self.strategy.type.value}
        if self.strategy.type is StrategyType.ROLLING_UPDATE:
            strategy["rollingUpdate"] = {
                "maxSurge": self.strategy.max_surge,
                "maxUnavailable": self.strategy.max_unavailable,
            }
        if self.strategy.canary is not None:
            strategy["canary"] = self.strategy.canary.to_dict()
        if self.strategy.blue_green is not None:
            strategy["blueGreen"] = self.strategy.blue_green.to_dict()
        tpl = self.template.to_dict()
        spec: JsonDict = {
            "model": self.template.model,
            "replicas": self.replicas,
            "strategy": strategy,
            "minReadySeconds": self.min_ready_seconds,
            "progressDeadlineSeconds": self.progress_deadline_seconds,
            "revisionHistoryLimit": self.revision_history_limit,
            "paused": self.paused,
            "template": {k: v for k, v in tpl.items() if k != "model"},
        }
        if self.port is not None:
            spec["port"] = self.port
        if self.autoscaling is not None:
            spec["autoscaling"] = self.autoscaling.to_dict()
        metadata: JsonDict = {"name": self.name}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": spec,
        }


def template_hash(template: Template) -> str:
    """A stable 10-character digest of the template (Kubernetes' ``pod-template-hash``).

    Two templates hash equal iff they are equal, whatever the key order of their source.
    """
    canonical = json.dumps(template.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def parse_int_or_percent(value: IntOrPercent, path: str) -> IntOrPercent:
    """Validate ``3`` or ``"25%"``: a non-negative integer or a non-negative whole percent."""
    if isinstance(value, bool):
        raise _invalid(path, value, "must be a non-negative integer or a percent such as '25%'")
    if isinstance(value, int):
        if value < 0:
            raise _invalid(path, value, "must be a non-negative integer or a percent such as '25%'")
        return value
    digits = value[:-1] if isinstance(value, str) and value.endswith("%") else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 9:
        return f"{int(digits)}%"
    raise _invalid(path, value, "must be a non-negative integer or a percent such as '25%'")


_invalid = invalid
_Fields = Fields


def _parse(data: Any) -> DeploymentSpec:
    top = _Fields(data, "", {"apiVersion", "kind", "metadata", "spec"})
    if top.data.get("apiVersion") != API_VERSION:
        raise _invalid("apiVersion", top.data.get("apiVersion"), f"must be {API_VERSION!r}")
    if top.data.get("kind") != KIND:
        raise _invalid("kind", top.data.get("kind"), f"must be {KIND!r}")
    meta = _Fields(top.data.get("metadata"), "metadata", {"name", "labels", "annotations"})
    name: str = meta.data.get("name")  # type: ignore[assignment]  # checked just below
    try:
        check_name("Deployment", name)
    except InvalidInputError as exc:
        raise InvalidDefinitionError(
            f"Deployment field metadata.name: {exc}", field="metadata.name"
        ) from exc
    spec = _Fields(
        top.data.get("spec"),
        "spec",
        {
            "model",
            "replicas",
            "strategy",
            "minReadySeconds",
            "progressDeadlineSeconds",
            "revisionHistoryLimit",
            "paused",
            "template",
            "port",
            "autoscaling",
        },
    )
    model: str = spec.data.get("model")  # type: ignore[assignment]  # checked just below
    try:
        ModelRef.parse(model)
    except InvalidInputError as exc:
        raise InvalidDefinitionError(
            f"Deployment field spec.model: {exc}", field="spec.model"
        ) from exc
    min_ready = spec.int("minReadySeconds", 0)
    deadline = spec.int("progressDeadlineSeconds", 600, minimum=1)
    if deadline <= min_ready:
        raise _invalid(
            "spec.progressDeadlineSeconds",
            deadline,
            f"must be greater than minReadySeconds ({min_ready})",
        )
    port = spec.data.get("port")
    if port is not None:
        port = spec.int("port", 0, minimum=1, maximum=65535)
    return DeploymentSpec(
        name=name,
        template=_parse_template(spec.data.get("template", {}), model),
        replicas=spec.int("replicas", 1, maximum=MAX_REPLICAS),
        strategy=_parse_strategy(spec.data.get("strategy", {})),
        min_ready_seconds=min_ready,
        progress_deadline_seconds=deadline,
        revision_history_limit=spec.int("revisionHistoryLimit", 10),
        paused=spec.bool("paused", False),
        port=port,
        labels=_string_map(meta.data.get("labels"), "metadata.labels"),
        annotations=_string_map(meta.data.get("annotations"), "metadata.annotations"),
        autoscaling=(
            None
            if spec.data.get("autoscaling") is None
            else Autoscaling.from_dict(spec.data["autoscaling"])
        ),
    )


def _string_map(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    """A ``{str: str}`` mapping as sorted pairs; None is empty."""
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid(path, value, "must map strings to strings")
    return tuple(sorted(value.items()))


def _parse_strategy(data: Any) -> Strategy:
    f = _Fields(data, "spec.strategy", {"type", "rollingUpdate", "canary", "blueGreen"})
    raw_type = f.data.get("type", StrategyType.ROLLING_UPDATE.value)
    try:
        kind = StrategyType(raw_type)
    except ValueError:
        raise _invalid(
            "spec.strategy.type",
            raw_type,
            "must be one of 'RollingUpdate', 'Recreate', 'Canary' or 'BlueGreen'",
        ) from None
    for key, owner in (("rollingUpdate", StrategyType.ROLLING_UPDATE),
                       ("canary", StrategyType.CANARY), ("blueGreen", StrategyType.BLUE_GREEN)):
        if key in f.data and kind is not owner:
            raise _invalid(f"spec.strategy.{key}", f.data[key],
                           f"may not be specified when strategy type is {kind.value!r}")
    if kind is StrategyType.CANARY:
        return Strategy(type=kind, canary=parse_canary(f.data.get("canary") or {}))
    if kind is StrategyType.BLUE_GREEN:
        return Strategy(type=kind, blue_green=parse_blue_green(f.data.get("blueGreen") or {}))
    if kind is StrategyType.RECREATE:
        if "rollingUpdate" in f.data:
            raise _invalid(
                "spec.strategy.rollingUpdate",
                f.data["rollingUpdate"],
                "may not be specified when strategy type is 'Recreate'",
            )
        return Strategy(type=kind, max_surge=0, max_unavailable=0)
    ru = _Fields(
        f.data.get("rollingUpdate", {}),
        "spec.strategy.rollingUpdate",
        {"maxSurge", "maxUnavailable"},
    )
    surge = parse_int_or_percent(ru.data.get("maxSurge", "25%"), ru.sub("maxSurge"))
    unavail = parse_int_or_percent(ru.data.get("maxUnavailable", "25%"), ru.sub("maxUnavailable"))
    if isinstance(unavail, str) and int(unavail[:-1]) > 100:
        raise _invalid(ru.sub("maxUnavailable"), unavail, "must not be greater than 100%")
    if _is_zero(surge) and _is_zero(unavail):
        raise _invalid(ru.sub("maxUnavailable"), unavail, "may not be 0 when maxSurge is 0")
    return Strategy(type=kind, max_surge=surge, max_unavailable=unavail)


def _is_zero(value: IntOrPercent) -> bool:
    return value == 0 or value == "0%"


def _parse_template(data: Any, model: str) -> Template:
    f = _Fields(data, "spec.template", {"workers", "batching", "logging"})
    b = _Fields(
        f.data.get("batching", {}),
        "spec.template.batching",
        {"enabled", "maxBatchSize", "maxLatencyMs"},
    )
    lg = _Fields(
        f.data.get("logging", {}),
        "spec.template.logging",
        {"enabled", "sampleRate", "maxBytes", "maxAge"},
    )
    return Template(
        model=model,
        workers=f.int("workers", 1, minimum=1, maximum=64),
        batching=Batching(
            enabled=b.bool("enabled", False),
            max_batch_size=b.int("maxBatchSize", DEFAULT_BATCHING.max_batch_size, minimum=1),
            max_latency_ms=b.float("maxLatencyMs", DEFAULT_BATCHING.max_latency_ms, 1.0, None),
        ),
        logging=Logging(
            enabled=lg.bool("enabled", False),
            sample_rate=lg.float("sampleRate", 1.0, 0.0, 1.0),
            max_bytes=_rotation_bound(lg.data, "maxBytes", parse_byte_size),
            max_age=_rotation_bound(lg.data, "maxAge", parse_age),
        ),
    )


def _logging_dict(lg: Logging) -> JsonDict:
    # The rotation bounds appear only when set, so templates written before they existed
    # keep their hash (and their revision).
    out: JsonDict = {"enabled": lg.enabled, "sampleRate": lg.sample_rate}
    if lg.max_bytes is not None:
        out["maxBytes"] = lg.max_bytes
    if lg.max_age is not None:
        out["maxAge"] = lg.max_age
    return out


def _rotation_bound(data: Any, key: str, parse: Callable[[Any, str], T]) -> T | None:
    """``spec.template.logging.<key>`` parsed (``1GiB``, ``30d`` or a number), or None."""
    if not isinstance(data, Mapping) or data.get(key) is None:
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(f"spec.template.logging.{key}", value, "must be a number or a string")
    try:
        return parse(value, f"spec.template.logging.{key}")
    except InvalidInputError as exc:
        raise InvalidDefinitionError(str(exc), field=f"spec.template.logging.{key}") from None
