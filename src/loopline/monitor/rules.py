"""Alert rules as pure functions: ``step(rule, state, window) -> (state, events)``.

A rule *breaches* in a window when its metric crosses its threshold (or, without one, when the
calibrated drift check fires). It **fires** after ``forWindows`` consecutive breaching windows,
**resolves** after ``clearAfter`` consecutive clean windows (hysteresis), and never fires again
while firing. A window that cannot measure the metric (no labels yet, the feature was not
compared) is no evidence either way: the streaks stay as they were.

One state per (rule, model version); windows of one version arrive in index order.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace

from loopline.monitor.spec import AlertRule
from loopline.monitor.window_result import FeatureResult, WindowResult
from loopline.types import JsonDict

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class RuleState:
    """Where one rule stands for one model version."""

    rule: str
    version: str
    firing: bool = False
    breaches: int = 0  # consecutive breaching windows
    clean: int = 0  # consecutive clean windows
    streak_start: int | None = None  # first window of the current breach streak
    fired_at: int | None = None  # first window of the episode that is firing

    def to_dict(self) -> JsonDict:
        return {
            "rule": self.rule,
            "version": self.version,
            "firing": self.firing,
            "breaches": self.breaches,
            "clean": self.clean,
            "streak_start": self.streak_start,
            "fired_at": self.fired_at,
        }

    @classmethod
    def from_dict(cls, d: JsonDict) -> RuleState:
        start, fired = d["streak_start"], d["fired_at"]
        return cls(
            rule=str(d["rule"]),
            version=str(d["version"]),
            firing=bool(d["firing"]),
            breaches=_int(d["breaches"]),
            clean=_int(d["clean"]),
            streak_start=None if start is None else _int(start),
            fired_at=None if fired is None else _int(fired),
        )


def _int(x: object) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"expected an integer, got {x!r}")
    return x


@dataclass(frozen=True, slots=True)
class Measurement:
    """A rule's reading of one window."""

    value: float
    breached: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A rule fired or resolved (recorded as an ``Alert`` artifact, see ``alerts.py``)."""

    monitor: str
    rule: str
    model: str
    version: str
    state: str  # "firing" | "resolved"
    severity: str
    reason: str
    first_window: int
    last_window: int
    metric: str
    value: float

    @property
    def key(self) -> str:
        """Unique per event: a restart that replays the windows records it once."""
        return (
            f"{self.monitor}/{self.rule}/{self.model}/{self.version}/{self.state}/"
            f"{self.first_window}-{self.last_window}"
        )

    def to_dict(self) -> JsonDict:
        return {
            "monitor": self.monitor,
            "rule": self.rule,
            "model": self.model,
            "version": self.version,
            "state": self.state,
            "severity": self.severity,
            "reason": self.reason,
            "first_window": self.first_window,
            "last_window": self.last_window,
            "metric": self.metric,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, d: JsonDict) -> AlertEvent:
        return cls(**d)  # type: ignore[arg-type]


def measure(rule: AlertRule, w: WindowResult) -> Measurement | None:
    """The rule's value in window ``w`` and whether it breaches; None when ``w`` cannot say."""
    if rule.metric == "driftShare":
        drifted = ", ".join(w.drifted_features) or "none"
        return _compare(
            rule, w.drift_share, f"drift share {w.drift_share:.2f} (drifted: {drifted})"
        )
    if rule.metric == "schemaViolations":
        return _compare(rule, float(w.errors), f"{w.errors} schema violation(s)")
    if rule.feature is not None:
        return _drift(rule, w.feature(rule.feature), f"feature {rule.feature!r}")
    if rule.metric == "prediction":
        return _drift(rule, w.prediction, "the prediction")
    if rule.metric == "newValues":
        excess = [
            (f.metrics["new_value_excess"], f)
            for f in w.features
            if "new_value_excess" in f.metrics
        ]
        if not excess:
            return None
        value, worst = max(excess, key=lambda e: e[0])
        fired = [
            c for f in w.features for c in f.checks if c.metric == "new_value_excess" and c.drifted
        ]
        reason = f"new-value excess {value:.4f} in {worst.name!r}"
        return _compare(rule, value, reason) if rule.op else Measurement(value, bool(fired), reason)
    perf = w.metric(rule.estimated or rule.metric, estimated=rule.estimated is not None)
    if perf is None or perf.value is None:
        return None
    what = f"estimated {rule.estimated}" if rule.estimated else rule.metric
    return _compare(rule, perf.value, f"{what} {perf.value:.4f} over {perf.n} rows")


def _compare(rule: AlertRule, value: float, reason: str) -> Measurement:
    assert rule.op is not None and rule.threshold is not None  # the spec sets defaults
    breached = _OPS[rule.op](value, rule.threshold)
    return Measurement(
        value, breached, f"{reason} {'is' if breached else 'is not'} {rule.op} {rule.threshold:g}"
    )


def _drift(rule: AlertRule, f: FeatureResult | None, what: str) -> Measurement | None:
    if f is None or f.reason is not None:
        return None
    check = f.primary
    if check is None:
        return None
    if rule.op is not None:
        return _compare(rule, check.value, f"{what}: {check.metric} {check.value:.4f}")
    how = "calibrated " if check.calibrated else ""
    verdict = "drifted" if f.drifted else "did not drift"
    return Measurement(
        check.value,
        f.drifted,
        f"{what} {verdict}: {check.metric} "
        f"{check.value:.4f} vs {how}threshold {check.threshold:.4f}",
    )


def step(rule: AlertRule, state: RuleState, w: WindowResult) -> tuple[RuleState, list[AlertEvent]]:
    """Advance ``state`` by window ``w``; the events it causes (at most one)."""
    m = measure(rule, w)
    if m is None:
        return state, []
    if m.breached:
        start = w.index if state.breaches == 0 else state.streak_start
        new = replace(state, breaches=state.breaches + 1, clean=0, streak_start=start)
        if not new.firing and new.breaches >= rule.for_windows:
            first = start if start is not None else w.index
            new = replace(new, firing=True, fired_at=first)
            why = f"{m.reason} for {new.breaches} consecutive window(s)"
            return new, [_event(rule, w, "firing", first, m, why)]
        return new, []
    new = replace(state, breaches=0, clean=state.clean + 1, streak_start=None)
    if new.firing and new.clean >= rule.clear_after:
        first = new.fired_at if new.fired_at is not None else w.index
        new = replace(new, firing=False, fired_at=None)
        why = f"{m.reason} for {new.clean} consecutive window(s)"
        return new, [_event(rule, w, "resolved", first, m, why)]
    return new, []


def _event(
    rule: AlertRule, w: WindowResult, state: str, first: int, m: Measurement, reason: str
) -> AlertEvent:
    sentence = (
        f"Monitor {w.monitor!r} rule {rule.name!r} {state} on {w.model} version "
        f"{w.version}: {reason}."
    )
    return AlertEvent(
        w.monitor,
        rule.name,
        w.model,
        w.version,
        state,
        rule.severity,
        sentence,
        first,
        w.index,
        rule.metric,
        m.value,
    )
