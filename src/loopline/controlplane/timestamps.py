"""Timestamps as the API shows them: RFC 3339 strings in UTC with a ``Z``, as Kubernetes.

Stored values stay epoch seconds (floats); the views convert at the edge, and a reader (the
CLI) parses them back. Two forms, as Kubernetes' two types:

- ``metadata.creationTimestamp`` and the conditions' ``lastUpdateTime``/``lastTransitionTime``
  are whole seconds, like ``metav1.Time``: ``2026-12-07T04:05:06Z`` (truncated, as Go does);
- every other timestamp keeps microseconds, like ``metav1.MicroTime``:
  ``2026-12-07T04:05:06.123456Z`` (events, replicas, revisions, rollout steps, analysis
  measurements, autoscaler decisions, trigger runs, monitor windows and alerts), because
  several of them happen within one second and their order matters.

The fields are known by name (:data:`SECONDS`, :data:`MICROS`, and the autoscaler's
``[time, count]`` pairs in :data:`TIMED_PAIRS`); :func:`shown` converts them in a document the
server built, never inside the subtrees a user wrote (:data:`USER_SUBTREES`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from loopline.errors import InvalidInputError
from loopline.errors import shown as shown_value

SECONDS = frozenset({"creationTimestamp", "lastUpdateTime", "lastTransitionTime"})
"""Timestamps in whole seconds (Kubernetes' ``Time``)."""

MICROS = frozenset(
    {
        # replicas, revisions, events, rollout state, analysis runs and measurements
        "at", "createdAt", "startedAt", "readySince", "finishedAt", "stepStartedAt",
        "pausedAt", "abortedAt", "previewReadySince", "waitingSince", "lastPolledAt",
        # the autoscaler
        "observedAt", "lastScaleTime", "lastDemandAt",
        # trigger runs
        "updatedAt", "endedAt",
        # monitor status, windows and model lineage
        "created_at", "last_tick_at", "last_window_at", "start_ts", "end_ts",
    }
)  # fmt: skip
"""Timestamps with microseconds (Kubernetes' ``MicroTime``)."""

TIMED_PAIRS = frozenset({"recommendations", "scaleUpEvents", "scaleDownEvents"})
"""Lists of ``[time, count]`` pairs (the autoscaler's state): the time is converted."""

USER_SUBTREES = frozenset({"spec", "params", "cause", "detail", "process", "labels",
                           "annotations", "value"})  # fmt: skip
"""Keys whose values a user (or a user's code) wrote: never converted."""


def rfc3339(epoch: float, *, micro: bool = True) -> str:
    """``epoch`` seconds as RFC 3339 in UTC: ``2026-12-07T04:05:06.123456Z`` (``micro``) or
    ``2026-12-07T04:05:06Z`` (truncated to the second)."""
    when = datetime.fromtimestamp(epoch, UTC)
    if not micro:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch(text: str) -> float:
    """The epoch seconds of an RFC 3339 timestamp (``Z`` or an offset; any precision).

    Raises:
        InvalidInputError: ``text`` is not an RFC 3339 date-time with a time zone.
    """
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except (TypeError, ValueError, AttributeError):
        when = None
    if when is None or when.tzinfo is None:
        raise InvalidInputError(
            f"The timestamp {shown_value(text)} is not RFC 3339; expect a UTC time such as "
            "'2026-12-07T04:05:06Z'."
        )
    return when.timestamp()


def shown(doc: Any) -> Any:
    """``doc`` (a JSON document the server built) with every known timestamp field that holds
    a number turned into its RFC 3339 string (a copy; other values are shared)."""
    return _convert(doc, _to_text)


def read_back(doc: Any) -> Any:
    """The inverse of :func:`shown`: every known timestamp field holding an RFC 3339 string
    turned back into epoch seconds (for code that works on the stored float form)."""
    return _convert(doc, _to_epoch)


def _to_text(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return value
    return rfc3339(value, micro=key not in SECONDS)


def _to_epoch(key: str, value: Any) -> Any:
    return epoch(value) if isinstance(value, str) else value


def _convert(doc: Any, one: Any) -> Any:
    if isinstance(doc, list):
        return [_convert(v, one) for v in doc]
    if not isinstance(doc, Mapping):
        return doc
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key in USER_SUBTREES:
            out[key] = value
        elif key in SECONDS or key in MICROS:
            out[key] = one(key, value)
        elif key in TIMED_PAIRS and isinstance(value, list):
            out[key] = [
                [one(key, p[0]), *p[1:]] if isinstance(p, list) and p else p for p in value
            ]
        else:
            out[key] = _convert(value, one)
    return out
