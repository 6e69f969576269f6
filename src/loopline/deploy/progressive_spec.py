"""The Canary and BlueGreen strategies of a Deployment, with Argo Rollouts' field names.

```yaml
strategy:
  type: Canary
  canary:
    steps:
    - setWeight: 20
    - pause: {duration: 30s}          # no duration: wait for `rollout promote`
    - analysis: {templates: [{templateName: taxi-quality}]}
    - setMirror: 50                   # copy 50 % of stable's traffic to the canary
    - setHeaderRoute: {name: qa, match: [{headerName: X-Canary, headerValue: {exact: "1"}}]}
    - setWeight: 100
    analysis: {templates: [{templateName: taxi-errors}], startingStep: 1}   # background
    scaleDownDelaySeconds: 30
    abortScaleDownDelaySeconds: 30
```

Defaults follow Argo Rollouts (``utils/defaults``): scaleDownDelaySeconds 30,
abortScaleDownDelaySeconds 30, autoPromotionEnabled true. Parsed and validated when built;
errors name the field path and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loopline.deploy.duration import format_duration, parse_duration
from loopline.deploy.fields import MAX_REPLICAS, Fields, invalid
from loopline.deploy.traffic import HeaderMatch
from loopline.types import JsonDict

DEFAULT_SCALE_DOWN_DELAY = 30
DEFAULT_ABORT_SCALE_DOWN_DELAY = 30


@dataclass(frozen=True, slots=True)
class AnalysisRef:
    """Templates to run together as one analysis run (``{templates: [{templateName}]}``)."""

    templates: tuple[str, ...]

    def to_dict(self) -> JsonDict:
        return {"templates": [{"templateName": t} for t in self.templates]}


@dataclass(frozen=True, slots=True)
class SetWeight:
    """Send ``weight`` % of the traffic to the canary (exactly, through the router)."""

    weight: int


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait ``duration`` seconds, or for ``rollout promote`` when None."""

    duration: float | None = None


@dataclass(frozen=True, slots=True)
class RunAnalysis:
    """Run an analysis; Successful → next step, Failed/Error → abort, Inconclusive → pause."""

    analysis: AnalysisRef


@dataclass(frozen=True, slots=True)
class SetMirror:
    """Copy ``percent`` % of the stable's requests to the canary (0 stops mirroring)."""

    percent: int


@dataclass(frozen=True, slots=True)
class SetHeaderRoute:
    """Route requests matching every condition to the canary; no ``matches`` removes it."""

    name: str
    matches: tuple[HeaderMatch, ...]


Step = SetWeight | Pause | RunAnalysis | SetMirror | SetHeaderRoute


@dataclass(frozen=True, slots=True)
class BackgroundAnalysis:
    """An analysis running beside the steps from ``starting_step`` until the rollout ends."""

    analysis: AnalysisRef
    starting_step: int = 0


@dataclass(frozen=True, slots=True)
class CanaryStrategy:
    """``strategy.canary``."""

    steps: tuple[Step, ...] = ()
    analysis: BackgroundAnalysis | None = None
    scale_down_delay_seconds: int = DEFAULT_SCALE_DOWN_DELAY
    abort_scale_down_delay_seconds: int = DEFAULT_ABORT_SCALE_DOWN_DELAY

    def to_dict(self) -> JsonDict:
        out: JsonDict = {
            "steps": [step_to_dict(s) for s in self.steps],
            "scaleDownDelaySeconds": self.scale_down_delay_seconds,
            "abortScaleDownDelaySeconds": self.abort_scale_down_delay_seconds,
        }
        if self.analysis is not None:
            out["analysis"] = self.analysis.analysis.to_dict() | {
                "startingStep": self.analysis.starting_step
            }
        return out


@dataclass(frozen=True, slots=True)
class BlueGreenStrategy:
    """``strategy.blueGreen``: a full preview stack, then a switch of all traffic at once."""

    auto_promotion_enabled: bool = True
    auto_promotion_seconds: int = 0
    preview_replica_count: int | None = None
    scale_down_delay_seconds: int = DEFAULT_SCALE_DOWN_DELAY
    abort_scale_down_delay_seconds: int = DEFAULT_ABORT_SCALE_DOWN_DELAY
    pre_promotion_analysis: AnalysisRef | None = None
    post_promotion_analysis: AnalysisRef | None = None

    def to_dict(self) -> JsonDict:
        out: JsonDict = {
            "autoPromotionEnabled": self.auto_promotion_enabled,
            "autoPromotionSeconds": self.auto_promotion_seconds,
            "scaleDownDelaySeconds": self.scale_down_delay_seconds,
            "abortScaleDownDelaySeconds": self.abort_scale_down_delay_seconds,
        }
        if self.preview_replica_count is not None:
            out["previewReplicaCount"] = self.preview_replica_count
        if self.pre_promotion_analysis is not None:
            out["prePromotionAnalysis"] = self.pre_promotion_analysis.to_dict()
        if self.post_promotion_analysis is not None:
            out["postPromotionAnalysis"] = self.post_promotion_analysis.to_dict()
        return out


def step_to_dict(step: Step) -> JsonDict:
    """One step in its YAML form."""
    if isinstance(step, SetWeight):
        return {"setWeight": step.weight}
    if isinstance(step, Pause):
        return {"pause": {} if step.duration is None else
                {"duration": format_duration(step.duration)}}  # fmt: skip
    if isinstance(step, RunAnalysis):
        return {"analysis": step.analysis.to_dict()}
    if isinstance(step, SetMirror):
        return {"setMirror": step.percent}
    return {"setHeaderRoute": {"name": step.name, "match": [m.to_dict() for m in step.matches]}}


def describe_step(step: Step) -> str:
    """A short human form: ``setWeight 20``, ``pause 30s``, ``analysis taxi-quality``."""
    if isinstance(step, SetWeight):
        return f"setWeight {step.weight}"
    if isinstance(step, Pause):
        return "pause" if step.duration is None else f"pause {format_duration(step.duration)}"
    if isinstance(step, RunAnalysis):
        return "analysis " + ", ".join(step.analysis.templates)
    if isinstance(step, SetMirror):
        return f"setMirror {step.percent}"
    return f"setHeaderRoute {step.name}" + ("" if step.matches else " (removed)")


def referenced_templates(spec: object) -> set[str]:
    """Every AnalysisTemplate name a deployment spec's strategy runs."""
    strategy = getattr(spec, "strategy", None)
    refs: list[AnalysisRef | None] = []
    canary = getattr(strategy, "canary", None)
    if isinstance(canary, CanaryStrategy):
        refs += [s.analysis for s in canary.steps if isinstance(s, RunAnalysis)]
        refs.append(None if canary.analysis is None else canary.analysis.analysis)
    blue_green = getattr(strategy, "blue_green", None)
    if isinstance(blue_green, BlueGreenStrategy):
        refs += [blue_green.pre_promotion_analysis, blue_green.post_promotion_analysis]
    return {t for ref in refs if ref is not None for t in ref.templates}


# ---- parsing ---------------------------------------------------------------------------------

_STEP_KEYS = ("setWeight", "pause", "analysis", "setMirror", "setHeaderRoute")


def parse_canary(data: Any, path: str = "spec.strategy.canary") -> CanaryStrategy:
    known = {"steps", "analysis", "scaleDownDelaySeconds", "abortScaleDownDelaySeconds"}
    f = Fields(data, path, known)
    raw_steps = f.sequence("steps")
    steps = tuple(_parse_step(s, f"{path}.steps[{i}]") for i, s in enumerate(raw_steps))
    background = None
    if f.data.get("analysis") is not None:
        a = Fields(f.data["analysis"], f.sub("analysis"), {"templates", "startingStep"})
        start = a.int("startingStep", 0, minimum=0)
        if steps and start > len(steps):
            raise a.invalid("startingStep", start, f"must be at most the number of steps "
                            f"({len(steps)})")  # fmt: skip
        background = BackgroundAnalysis(AnalysisRef(_parse_templates(a, f.sub("analysis"))), start)
    return CanaryStrategy(
        steps=steps,
        analysis=background,
        scale_down_delay_seconds=f.int("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY),
        abort_scale_down_delay_seconds=f.int(
            "abortScaleDownDelaySeconds", DEFAULT_ABORT_SCALE_DOWN_DELAY
        ),
    )


def parse_blue_green(data: Any, path: str = "spec.strategy.blueGreen") -> BlueGreenStrategy:
    f = Fields(
        data,
        path,
        {"autoPromotionEnabled", "autoPromotionSeconds", "previewReplicaCount",
         "scaleDownDelaySeconds", "abortScaleDownDelaySeconds", "prePromotionAnalysis",
         "postPromotionAnalysis"},
    )  # fmt: skip
    preview = f.data.get("previewReplicaCount")
    if preview is not None:
        preview = f.int("previewReplicaCount", 1, minimum=1, maximum=MAX_REPLICAS)
    analyses = {}
    for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
        if f.data.get(key) is not None:
            a = Fields(f.data[key], f.sub(key), {"templates"})
            analyses[key] = AnalysisRef(_parse_templates(a, f.sub(key)))
    return BlueGreenStrategy(
        auto_promotion_enabled=f.bool("autoPromotionEnabled", True),
        auto_promotion_seconds=f.int("autoPromotionSeconds", 0),
        preview_replica_count=preview,
        scale_down_delay_seconds=f.int("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY),
        abort_scale_down_delay_seconds=f.int(
            "abortScaleDownDelaySeconds", DEFAULT_ABORT_SCALE_DOWN_DELAY
        ),
        pre_promotion_analysis=analyses.get("prePromotionAnalysis"),
        post_promotion_analysis=analyses.get("postPromotionAnalysis"),
    )


def _parse_templates(a: Fields, path: str) -> tuple[str, ...]:
    raw = a.data.get("templates")
    if not isinstance(raw, list) or not raw:
        raise invalid(f"{path}.templates", raw, "must be a non-empty list of {templateName: NAME}")
    names = []
    for i, t in enumerate(raw):
        tf = Fields(t, f"{path}.templates[{i}]", {"templateName"})
        name = tf.data.get("templateName")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
            raise tf.invalid("templateName", name, "must name an AnalysisTemplate (lower-case "
                             "letters, digits, '-' and '.')")  # fmt: skip
        names.append(name)
    return tuple(names)


def _parse_step(data: Any, path: str) -> Step:
    if not isinstance(data, dict) or len(data) != 1:
        raise invalid(path, data, f"must be a mapping with exactly one of {list(_STEP_KEYS)}")
    f = Fields(data, path, set(_STEP_KEYS))
    key, value = next(iter(f.data.items()))
    if key == "setWeight":
        return SetWeight(f.int("setWeight", 0, minimum=0, maximum=100))
    if key == "setMirror":
        return SetMirror(f.int("setMirror", 0, minimum=0, maximum=100))
    if key == "pause":
        p = Fields(value if value is not None else {}, f.sub("pause"), {"duration"})
        if p.data.get("duration") is None:
            return Pause(None)
        return Pause(parse_duration(p.data["duration"], p.sub("duration")))
    if key == "analysis":
        a = Fields(value, f.sub("analysis"), {"templates"})
        return RunAnalysis(AnalysisRef(_parse_templates(a, f.sub("analysis"))))
    h = Fields(value, f.sub("setHeaderRoute"), {"name", "match"})
    name = h.data.get("name")
    if not isinstance(name, str) or not name:
        raise h.invalid("name", name, "must be a non-empty string")
    matches = tuple(
        _parse_match(m, f"{h.sub('match')}[{i}]") for i, m in enumerate(h.sequence("match"))
    )
    return SetHeaderRoute(name, matches)


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _parse_match(data: Any, path: str) -> HeaderMatch:
    m = Fields(data, path, {"headerName", "headerValue"})
    name = m.data.get("headerName")
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise m.invalid("headerName", name, "must be an HTTP header name")
    v = Fields(m.data.get("headerValue"), m.sub("headerValue"), {"exact", "prefix", "regex"})
    given = {k: val for k, val in v.data.items() if val is not None}
    if len(given) != 1 or not all(isinstance(val, str) for val in given.values()):
        raise invalid(m.sub("headerValue"), v.data,
                      "must have exactly one of exact, prefix or regex, as a string")  # fmt: skip
    if "regex" in given:
        try:
            re.compile(given["regex"])
        except re.error as exc:
            rule = f"must be a valid regular expression ({exc})"
            raise v.invalid("regex", given["regex"], rule) from None
    return HeaderMatch(name.lower(), given.get("exact"), given.get("prefix"), given.get("regex"))
