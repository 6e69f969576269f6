"""What the autoscaler remembers between syncs, as one frozen, JSON-serialisable value.

Kubernetes keeps the recommendation history and the scale events in the controller's memory
(a controller restart forgets them and may scale down early). loopline stores
:class:`AutoscalerState` in the deployment status, so a control-plane restart changes nothing.
Besides the two histories it holds the HPA conditions (to keep their transition times), the
last scale time and, for scale to zero, when demand was last seen.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidInputError
from loopline.types import JsonDict


class HpaConditionType(enum.Enum):
    """The HPA's three conditions."""

    ABLE_TO_SCALE = "AbleToScale"
    SCALING_ACTIVE = "ScalingActive"
    SCALING_LIMITED = "ScalingLimited"


@dataclass(frozen=True, slots=True)
class HpaCondition:
    """One condition; ``last_transition_time`` moves only when ``status`` changes."""

    type: HpaConditionType
    status: str  # "True" | "False"
    reason: str
    message: str
    last_transition_time: float

    def to_dict(self) -> JsonDict:
        return {
            "type": self.type.value,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        }


TimedCount = tuple[int, float]
"""``(replicas or replica change, seconds since the epoch)``."""


@dataclass(frozen=True, slots=True)
class AutoscalerState:
    """The autoscaler's memory of one deployment (empty for a new one)."""

    recommendations: tuple[TimedCount, ...] = ()
    """Unstabilized recommendations, for the stabilization windows."""
    scale_up_events: tuple[TimedCount, ...] = ()
    """Replicas added per rescale, for the rate policies (kept only with ``behavior``)."""
    scale_down_events: tuple[TimedCount, ...] = ()
    """Replicas removed per rescale."""
    last_scale_time: float | None = None
    last_demand_at: float | None = None
    """When requests were last seen (scale to zero only)."""
    conditions: tuple[HpaCondition, ...] = ()

    def condition(self, kind: HpaConditionType) -> HpaCondition | None:
        """The condition of that type, if set."""
        return next((c for c in self.conditions if c.type is kind), None)

    def to_json(self) -> JsonDict:
        """A JSON object; ``AutoscalerState.from_json(s.to_json()) == s``."""
        return {
            "recommendations": [list(r) for r in self.recommendations],
            "scaleUpEvents": [list(e) for e in self.scale_up_events],
            "scaleDownEvents": [list(e) for e in self.scale_down_events],
            "lastScaleTime": self.last_scale_time,
            "lastDemandAt": self.last_demand_at,
            "conditions": [c.to_dict() for c in self.conditions],
        }

    @classmethod
    def from_json(cls, data: Any) -> AutoscalerState:
        """Inverse of :meth:`to_json`. Raises InvalidInputError naming the bad field."""
        if not isinstance(data, Mapping):
            raise _bad("", data, "must be an object")
        return cls(
            recommendations=_timed(data, "recommendations"),
            scale_up_events=_timed(data, "scaleUpEvents"),
            scale_down_events=_timed(data, "scaleDownEvents"),
            last_scale_time=_time(data, "lastScaleTime"),
            last_demand_at=_time(data, "lastDemandAt"),
            conditions=tuple(_condition(c, i) for i, c in enumerate(_list(data, "conditions"))),
        )


@dataclass(frozen=True, slots=True)
class AutoscalerStatus:
    """The autoscaler's last decision, kept in the deployment's ``status.autoscaler``."""

    desired: int
    observed_at: float
    state: AutoscalerState
    hpa: JsonDict  # the HPA status block: currentMetrics, conditions, lastScaleTime, …
    events: tuple[JsonDict, ...] = ()  # this decision's events (type, reason, message, at)

    def to_dict(self) -> JsonDict:
        return {"desiredReplicas": self.desired, "observedAt": self.observed_at,
                "state": self.state.to_json(), "hpa": self.hpa,
                "events": list(self.events)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Any) -> AutoscalerStatus:
        return cls(int(d["desiredReplicas"]), float(d["observedAt"]),
                   AutoscalerState.from_json(d["state"]), dict(d.get("hpa") or {}),
                   tuple(dict(e) for e in d.get("events") or ()))  # fmt: skip


def _bad(path: str, value: object, rule: str) -> InvalidInputError:
    where = f" field {path}" if path else ""
    return InvalidInputError(
        f"Autoscaler state{where} = {value!r} is invalid: it {rule}; delete the stored state "
        "to start the autoscaler afresh."
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise _bad(key, value, "must be a list")
    return value


def _timed(data: Mapping[str, Any], key: str) -> tuple[TimedCount, ...]:
    out: list[TimedCount] = []
    for i, item in enumerate(_list(data, key)):
        ok = isinstance(item, list) and len(item) == 2
        if not ok or not isinstance(item[0], int) or isinstance(item[0], bool):
            raise _bad(f"{key}[{i}]", item, "must be [count, seconds]")
        if not _number(item[1]):
            raise _bad(f"{key}[{i}]", item, "must be [count, seconds]")
        out.append((item[0], float(item[1])))
    return tuple(out)


def _time(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not _number(value):
        raise _bad(key, value, "must be seconds since the epoch or null")
    return float(value)


def _condition(data: Any, i: int) -> HpaCondition:
    path = f"conditions[{i}]"
    if not isinstance(data, Mapping):
        raise _bad(path, data, "must be an object")
    try:
        kind = HpaConditionType(data.get("type"))
    except ValueError:
        raise _bad(f"{path}.type", data.get("type"), "must be an HPA condition type") from None
    status, reason, message = data.get("status"), data.get("reason"), data.get("message")
    if status not in ("True", "False") or not isinstance(reason, str):
        raise _bad(path, data, "must have status 'True' or 'False' and a reason")
    when = data.get("lastTransitionTime")
    if not isinstance(message, str) or not isinstance(when, int | float) or isinstance(when, bool):
        raise _bad(path, data, "must have a message and a lastTransitionTime")
    return HpaCondition(kind, status, reason, message, float(when))
