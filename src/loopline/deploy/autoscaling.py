"""The ``spec.autoscaling`` block of a Deployment: Kubernetes ``autoscaling/v2`` HPA fields.

The field names, nesting, defaults and validation copy ``HorizontalPodAutoscalerSpec`` (minus
``scaleTargetRef``: the target is the deployment that holds the block), so kubectl users read
it at sight and the Kubernetes renderer maps it one to one:

- ``minReplicas`` defaults to 1; ``maxReplicas`` is required and at least ``max(1, minReplicas)``.
- ``metrics`` defaults to CPU at 80 % utilization (``DefaultCPUUtilization``). Metric sources
  are ``Resource`` (``cpu``: Utilization in % of the request — one core per worker — or
  AverageValue in cores) and ``Pods`` (``in_flight_requests``, ``requests_per_second``,
  ``queue_delay_seconds``, AverageValue only).
- ``behavior`` absent selects the legacy normalization; present, each missing field is filled
  from the defaults of ``pkg/apis/autoscaling/v2/defaults.go`` (scale up: window 0 s,
  Pods 4 / 15 s and Percent 100 / 15 s, selectPolicy Max; scale down: window 300 s,
  Percent 100 / 15 s, selectPolicy Max). ``tolerance`` per direction is the 1.33 field.
- ``scaleToZero`` (a loopline extension, only with ``minReplicas: 0``) copies Knative's
  stable window (60 s) and ``scale-to-zero-grace-period`` (30 s).

Autoscaling is not part of the template: changing it never makes a revision.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from loopline.deploy.fields import MAX_REPLICAS, Fields, invalid
from loopline.types import JsonDict

CPU = "cpu"
"""The one Resource metric: CPU, with one core requested per worker."""
POD_METRICS = ("in_flight_requests", "queue_delay_seconds", "requests_per_second")
"""The Pods metrics every replica reports (a custom-metrics API equivalent)."""
DEFAULT_CPU_UTILIZATION = 80
"""``autoscaling.DefaultCPUUtilization``: the metric used when ``metrics`` is empty."""
DEFAULT_DOWNSCALE_STABILIZATION_SECONDS = 300
"""``--horizontal-pod-autoscaler-downscale-stabilization``: scale-down window default."""
MAX_STABILIZATION_WINDOW_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800
PATH = "spec.autoscaling"


class MetricSourceType(enum.Enum):
    """Where a metric comes from (``MetricSourceType``; Object/External are not offered)."""

    RESOURCE = "Resource"
    PODS = "Pods"


class MetricTargetType(enum.Enum):
    """How the target is expressed (``MetricTargetType``)."""

    UTILIZATION = "Utilization"  # percent of the request, averaged over replicas
    AVERAGE_VALUE = "AverageValue"  # the metric's own unit, averaged over replicas


class ScalingPolicyType(enum.Enum):
    """``HPAScalingPolicyType``: a change in replicas or in percent of the period's start."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(enum.Enum):
    """``ScalingPolicySelect``: which policy wins; Disabled forbids scaling that way."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


@dataclass(frozen=True, slots=True)
class MetricTarget:
    """``MetricTarget``: exactly one of the two values is set, the one ``type`` names."""

    type: MetricTargetType
    average_utilization: int | None = None
    """Percent of the request (Utilization): ``70`` = 0.7 core per worker."""
    average_value: float | None = None
    """Per replica, in the metric's unit (AverageValue); a whole number of milli-units."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric and its target (``MetricSpec`` with a Resource or Pods source)."""

    type: MetricSourceType
    name: str  # "cpu" for Resource; one of POD_METRICS for Pods
    target: MetricTarget

    @classmethod
    def cpu_utilization(cls, percent: int) -> MetricSpec:
        """CPU at ``percent`` % of one core per worker (what ``kubectl autoscale`` makes)."""
        target = MetricTarget(MetricTargetType.UTILIZATION, average_utilization=percent)
        return cls(MetricSourceType.RESOURCE, CPU, target)

    @property
    def description(self) -> str:
        """The HPA's name for the metric in events and conditions."""
        if self.type is MetricSourceType.PODS:
            return f"pods metric {self.name}"
        if self.target.type is MetricTargetType.UTILIZATION:
            return f"{self.name} resource utilization (percentage of request)"
        return f"{self.name} resource"

    def to_dict(self) -> JsonDict:
        target: JsonDict = {"type": self.target.type.value}
        if self.target.average_utilization is not None:
            target["averageUtilization"] = self.target.average_utilization
        if self.target.average_value is not None:
            target["averageValue"] = format_quantity(self.target.average_value)
        if self.type is MetricSourceType.PODS:
            return {"type": "Pods", "pods": {"metric": {"name": self.name}, "target": target}}
        return {"type": "Resource", "resource": {"name": self.name, "target": target}}


DEFAULT_METRICS: tuple[MetricSpec, ...] = (MetricSpec.cpu_utilization(DEFAULT_CPU_UTILIZATION),)


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """``HPAScalingPolicy``: at most ``value`` pods (or percent) per ``period_seconds``."""

    type: ScalingPolicyType
    value: int
    period_seconds: int

    def to_dict(self) -> JsonDict:
        return {"type": self.type.value, "value": self.value, "periodSeconds": self.period_seconds}


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """``HPAScalingRules`` for one direction, with every default filled in."""

    stabilization_window_seconds: int
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None
    """Overrides the controller's 0.1 for this direction (``behavior.scaleX.tolerance``)."""

    def to_dict(self) -> JsonDict:
        d: JsonDict = {
            "stabilizationWindowSeconds": self.stabilization_window_seconds,
            "selectPolicy": self.select_policy.value,
            "policies": [p.to_dict() for p in self.policies],
        }
        if self.tolerance is not None:
            d["tolerance"] = format_quantity(self.tolerance)
        return d


DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_seconds=0,
    select_policy=SelectPolicy.MAX,
    policies=(ScalingPolicy(ScalingPolicyType.PODS, 4, 15),
              ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15)),
)  # fmt: skip
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_seconds=DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    select_policy=SelectPolicy.MAX,
    policies=(ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15),),
)


@dataclass(frozen=True, slots=True)
class Behavior:
    """``HorizontalPodAutoscalerBehavior`` with both directions filled in."""

    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN

    def to_dict(self) -> JsonDict:
        return {"scaleUp": self.scale_up.to_dict(), "scaleDown": self.scale_down.to_dict()}


@dataclass(frozen=True, slots=True)
class ScaleToZero:
    """When ``minReplicas`` is 0: go to zero replicas after this long without any demand."""

    idle_seconds: int = 60  # Knative's stable window
    grace_seconds: int = 30  # Knative's scale-to-zero-grace-period

    def to_dict(self) -> JsonDict:
        return {"idleSeconds": self.idle_seconds, "graceSeconds": self.grace_seconds}


@dataclass(frozen=True, slots=True)
class Autoscaling:
    """The ``spec.autoscaling`` block. Build it with :meth:`from_dict`, which validates it.

    ``scale_to_zero`` is filled with its defaults when ``min_replicas`` is 0 and None
    otherwise; ``behavior`` None selects the legacy normalization (as in Kubernetes).
    """

    max_replicas: int
    min_replicas: int = 1
    metrics: tuple[MetricSpec, ...] = DEFAULT_METRICS
    behavior: Behavior | None = None
    scale_to_zero: ScaleToZero | None = None

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise invalid(f"{PATH}.minReplicas", self.min_replicas, "must be at least 0")
        if self.max_replicas < max(1, self.min_replicas):
            raise invalid(
                f"{PATH}.maxReplicas",
                self.max_replicas,
                f"must be at least 1 and at least minReplicas ({self.min_replicas})",
            )
        if not self.metrics:
            raise invalid(f"{PATH}.metrics", [], "must hold at least one metric")
        if self.min_replicas > 0 and self.scale_to_zero is not None:
            raise invalid(f"{PATH}.scaleToZero", self.scale_to_zero.to_dict(),
                           "may only be set when minReplicas is 0")  # fmt: skip
        if self.min_replicas == 0 and self.scale_to_zero is None:
            object.__setattr__(self, "scale_to_zero", ScaleToZero())

    @classmethod
    def from_dict(cls, data: Any) -> Autoscaling:
        """Parse and validate the block. Raises InvalidDefinitionError naming the field."""
        return _parse(data)

    def to_dict(self) -> JsonDict:
        """The object form; ``Autoscaling.from_dict(a.to_dict()) == a``."""
        d: JsonDict = {
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "metrics": [m.to_dict() for m in self.metrics],
        }
        if self.behavior is not None:
            d["behavior"] = self.behavior.to_dict()
        if self.scale_to_zero is not None:
            d["scaleToZero"] = self.scale_to_zero.to_dict()
        return d


# A Kubernetes quantity: a decimal number, then an SI or binary suffix or a decimal exponent.
_QUANTITY = re.compile(r"^(\d+\.?\d*|\.\d+)(?:(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?\d+))?$")
_SUFFIX = {"m": Decimal("0.001"), None: Decimal(1), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
           "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
           "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20,
           "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50,
           "Ei": Decimal(2) ** 60}  # fmt: skip


def parse_quantity(value: object, path: str, allow_zero: bool = False) -> float:
    """A positive number or Kubernetes quantity (``8``, ``"500m"``, ``"1.5"``, ``"2k"``).

    The value must be a whole number of milli-units: the HPA computes in milli-units.
    """
    sign = "non-negative" if allow_zero else "positive"
    rule = f"must be a {sign} number or a quantity such as '500m' or '2'"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise invalid(path, value, rule)
    if isinstance(value, str):
        match = _QUANTITY.match(value.strip())
        if match is None:
            raise invalid(path, value, rule)
        number, suffix, exponent = match.groups()
        scale = Decimal(10) ** int(exponent) if exponent is not None else _SUFFIX[suffix]
        exact = Decimal(number) * scale
    else:
        try:
            exact = Decimal(str(value))
        except InvalidOperation:  # nan, inf
            raise invalid(path, value, rule) from None
    if not exact.is_finite() or exact < 0 or (exact == 0 and not allow_zero):
        raise invalid(path, value, rule)
    milli = exact * 1000
    if milli != milli.to_integral_value():
        raise invalid(path, value, "must be a whole number of milli-units (a multiple of 1m)")
    return float(exact)


def format_quantity(value: float) -> str:
    """The canonical quantity string of a value: ``"8"``, ``"500m"``, ``"1500m"``."""
    milli = round(value * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _parse(data: Any) -> Autoscaling:
    f = Fields(data, PATH, {"minReplicas", "maxReplicas", "metrics", "behavior", "scaleToZero"})
    min_replicas = f.int("minReplicas", 1, maximum=MAX_REPLICAS)
    if "maxReplicas" not in f.data:
        raise invalid(f.sub("maxReplicas"), None,
                       "must be set: the most replicas the autoscaler may choose")  # fmt: skip
    max_replicas = f.int("maxReplicas", 0, minimum=max(1, min_replicas), maximum=MAX_REPLICAS)
    raw_metrics = f.data.get("metrics")
    if raw_metrics is None or raw_metrics == []:
        metrics = DEFAULT_METRICS
    elif isinstance(raw_metrics, list):
        metrics = tuple(_parse_metric(m, f"{f.sub('metrics')}[{i}]")
                        for i, m in enumerate(raw_metrics))  # fmt: skip
    else:
        raise invalid(f.sub("metrics"), raw_metrics, "must be a list of metrics")
    behavior = None
    if f.data.get("behavior") is not None:
        b = Fields(f.data["behavior"], f.sub("behavior"), {"scaleUp", "scaleDown"})
        behavior = Behavior(_parse_rules(b.data.get("scaleUp"), b.sub("scaleUp"), DEFAULT_SCALE_UP),
                            _parse_rules(b.data.get("scaleDown"), b.sub("scaleDown"),
                                         DEFAULT_SCALE_DOWN))  # fmt: skip
    zero = None
    if f.data.get("scaleToZero") is not None:
        z = Fields(f.data["scaleToZero"], f.sub("scaleToZero"), {"idleSeconds", "graceSeconds"})
        zero = ScaleToZero(z.int("idleSeconds", 60, minimum=1), z.int("graceSeconds", 30))
    return Autoscaling(max_replicas=max_replicas, min_replicas=min_replicas, metrics=metrics,
                       behavior=behavior, scale_to_zero=zero)  # fmt: skip


def _enum(kind: type[enum.Enum], value: object, path: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        names = " or ".join(repr(m.value) for m in kind)
        raise invalid(path, value, f"must be {names}") from None


def _parse_metric(data: Any, path: str) -> MetricSpec:
    if not isinstance(data, Mapping):
        raise invalid(path, data, "must be a mapping with type and resource or pods")
    source: MetricSourceType = _enum(MetricSourceType, data.get("type"), f"{path}.type")
    if source is MetricSourceType.RESOURCE:
        f = Fields(data, path, {"type", "resource"})
        r = Fields(f.data.get("resource"), f.sub("resource"), {"name", "target"})
        name = r.data.get("name")
        if name != CPU:
            rule = "must be 'cpu' (the resource loopline measures per replica)"
            raise invalid(r.sub("name"), name, rule)
        target = _parse_target(r.data.get("target"), r.sub("target"), pods=False)
        return MetricSpec(source, CPU, target)
    f = Fields(data, path, {"type", "pods"})
    p = Fields(f.data.get("pods"), f.sub("pods"), {"metric", "target"})
    m = Fields(p.data.get("metric"), p.sub("metric"), {"name"})
    name = m.data.get("name")
    if name not in POD_METRICS:
        raise invalid(m.sub("name"), name, f"must be one of {', '.join(map(repr, POD_METRICS))}")
    return MetricSpec(source, str(name), _parse_target(p.data.get("target"), p.sub("target"),
                                                       pods=True))  # fmt: skip


def _parse_target(data: Any, path: str, pods: bool) -> MetricTarget:
    if not isinstance(data, Mapping):
        raise invalid(path, data, "must be a mapping with type and averageUtilization or "
                                   "averageValue")  # fmt: skip
    kind: MetricTargetType = _enum(MetricTargetType, data.get("type"), f"{path}.type")
    if pods and kind is not MetricTargetType.AVERAGE_VALUE:
        raise invalid(f"{path}.type", kind.value, "must be 'AverageValue' for a Pods metric")
    if kind is MetricTargetType.UTILIZATION:
        f = Fields(data, path, {"type", "averageUtilization"})
        if "averageUtilization" not in f.data:
            rule = "must be set for a Utilization target"
            raise invalid(f.sub("averageUtilization"), None, rule)
        return MetricTarget(kind, average_utilization=f.int("averageUtilization", 0, minimum=1))
    f = Fields(data, path, {"type", "averageValue"})
    if "averageValue" not in f.data:
        raise invalid(f.sub("averageValue"), None, "must be set for an AverageValue target")
    return MetricTarget(kind, average_value=parse_quantity(f.data["averageValue"],
                                                           f.sub("averageValue")))  # fmt: skip


def _parse_rules(data: Any, path: str, default: ScalingRules) -> ScalingRules:
    """``copyHPAScalingRules``: each field given replaces the default's, the rest stay."""
    if data is None:
        return default
    f = Fields(data, path, {"stabilizationWindowSeconds", "selectPolicy", "policies",
                             "tolerance"})  # fmt: skip
    window = f.int("stabilizationWindowSeconds", default.stabilization_window_seconds,
                   maximum=MAX_STABILIZATION_WINDOW_SECONDS)  # fmt: skip
    select: SelectPolicy = default.select_policy
    if "selectPolicy" in f.data:
        select = _enum(SelectPolicy, f.data["selectPolicy"], f.sub("selectPolicy"))
    policies = default.policies
    if "policies" in f.data:
        raw = f.data["policies"]
        if not isinstance(raw, list) or not raw:
            raise invalid(f.sub("policies"), raw, "must be a list of at least one policy")
        policies = tuple(_parse_policy(p, f"{f.sub('policies')}[{i}]") for i, p in enumerate(raw))
    tolerance = default.tolerance
    if f.data.get("tolerance") is not None:
        tolerance = parse_quantity(f.data["tolerance"], f.sub("tolerance"), allow_zero=True)
    return ScalingRules(window, select, policies, tolerance)


def _parse_policy(data: Any, path: str) -> ScalingPolicy:
    f = Fields(data, path, {"type", "value", "periodSeconds"})
    kind: ScalingPolicyType = _enum(ScalingPolicyType, f.data.get("type"), f.sub("type"))
    if "value" not in f.data or "periodSeconds" not in f.data:
        missing = "value" if "value" not in f.data else "periodSeconds"
        raise invalid(f.sub(missing), None, "must be set")
    value = f.int("value", 0, minimum=1)
    period = f.int("periodSeconds", 0, minimum=1, maximum=MAX_PERIOD_SECONDS)
    return ScalingPolicy(kind, value, period)
