"""``kind: Trigger``: what starts a retraining run, what it runs, and how its model is rolled out.

.. code-block:: yaml

    apiVersion: loopline/v1
    kind: Trigger
    metadata: {name: taxi-retrain}
    spec:
      model: taxi                        # the registered model the run pushes (one run at a time)
      on:                                # exactly one of:
        newSpan: {inputDir: data, pattern: "span-{SPAN}/*.csv"}
        # schedule: {cron: "0 * * * *"}
        # alert: {monitor: taxi, rules: [feature-drift], severity: warning}
        # decay: {monitor: taxi, metrics: [accuracy]}       # alerts on performance metrics
        # registry: {model: taxi, event: newVersion}         # or aliasMoved with alias: …
      cooldown: 10m                      # no new run until this long after the last one ended
      run:
        pipeline: examples/taxi/pipeline.py
        params: {span: "{{span}}"}       # rendered from the event (loopline.triggers.template)
        timeout: 1h                      # the run is stopped after this long (optional)
      rollout:                           # optional: roll the pushed challenger out, then promote
        deployment: taxi
        alias: champion
        candidateAlias: challenger

:meth:`TriggerSpec.from_dict` validates everything that can be checked without the world
(field types, the cron expression, the span pattern, the parameter template's names); errors
name the field: ``Trigger field spec.on.schedule.cron = 'x' is invalid: …``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopline.deploy.fields import Fields, invalid
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.triggers.template import check_template
from loopline.types import Json, JsonDict, check_name

API_VERSION = "loopline/v1"
KIND = "Trigger"

# Metrics a ``decay`` trigger treats as model performance when it lists none (an estimate's
# name may carry a prefix: ``estimated_accuracy``, ``cbpe_auc``).
PERFORMANCE_METRICS = frozenset(
    {
        "accuracy",
        "auc",
        "roc_auc",
        "f1",
        "precision",
        "recall",
        "log_loss",
        "rmse",
        "mae",
        "mse",
        "r2",
        "mape",
        "balanced_accuracy",
    }
)
_ESTIMATE_PREFIXES = ("estimated_", "cbpe_", "estimated-")

SEVERITIES = ("info", "warning", "critical")

COMMON_VARIABLES = frozenset({"trigger", "model", "time", "date"})
ALERT_FIELDS = (
    "id",
    "monitor",
    "rule",
    "model",
    "version",
    "severity",
    "metric",
    "value",
    "first_window",
    "last_window",
    "reason",
)
EVENT_FIELDS = ("kind", "model", "version", "alias", "execution")


class OnKind(enum.Enum):
    SCHEDULE = "schedule"
    NEW_SPAN = "newSpan"
    ALERT = "alert"
    DECAY = "decay"
    REGISTRY = "registry"


class RegistryEventKind(enum.Enum):
    NEW_VERSION = "newVersion"
    ALIAS_MOVED = "aliasMoved"


def _field(kind: str) -> frozenset[str]:
    return frozenset({kind, *(f"{kind}.{f}" for f in ALERT_FIELDS)})


VARIABLES: dict[OnKind, frozenset[str]] = {
    OnKind.SCHEDULE: COMMON_VARIABLES | {"tick"},
    OnKind.NEW_SPAN: COMMON_VARIABLES | {"span", "spans", "first_span"},
    OnKind.ALERT: COMMON_VARIABLES | _field("alert") | {"alerts"},
    OnKind.DECAY: COMMON_VARIABLES | _field("alert") | {"alerts"},
    OnKind.REGISTRY: COMMON_VARIABLES | {"event", *(f"event.{f}" for f in EVENT_FIELDS)},
}


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str


@dataclass(frozen=True, slots=True)
class NewSpan:
    input_dir: str
    pattern: str


@dataclass(frozen=True, slots=True)
class AlertSource:
    """Alert artifacts of a monitor; ``decay`` keeps those on performance metrics."""

    decay: bool
    monitor: str | None = None
    rules: tuple[str, ...] = ()
    severity: str | None = None  # the lowest severity that counts
    metrics: tuple[str, ...] = ()

    def matches(self, alert: Mapping[str, Json], model: str) -> bool:
        """Whether a firing Alert's properties (the shared contract) concern this trigger."""
        if alert.get("state") != "firing" or alert.get("model") != model:
            return False
        if self.monitor is not None and alert.get("monitor") != self.monitor:
            return False
        if self.rules and alert.get("rule") not in self.rules:
            return False
        if self.severity is not None and not _at_least(alert.get("severity"), self.severity):
            return False
        if self.decay:
            return is_performance_metric(alert.get("metric"), self.metrics)
        return not self.metrics or alert.get("metric") in self.metrics


@dataclass(frozen=True, slots=True)
class RegistrySource:
    model: str
    event: RegistryEventKind
    alias: str | None = None


On = Schedule | NewSpan | AlertSource | RegistrySource


@dataclass(frozen=True, slots=True)
class RunSpec:
    pipeline: str
    params: Mapping[str, Json] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class Rollout:
    deployment: str
    alias: str = "champion"
    candidate_alias: str = "challenger"


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """A validated Trigger; build it with :meth:`from_dict`."""

    name: str
    model: str
    on: On
    run: RunSpec
    cooldown: float = 0.0
    rollout: Rollout | None = None

    @property
    def kind(self) -> OnKind:
        return on_kind(self.on)

    @classmethod
    def from_dict(cls, data: Any) -> TriggerSpec:
        """Build and validate a Trigger from its object form.

        Raises:
            InvalidDefinitionError: a field is missing, unknown, of the wrong type or not
                allowed; the message names its path (``spec.on.newSpan.pattern``).
        """
        top = Fields(data, "", {"apiVersion", "kind", "metadata", "spec", "status"}, KIND)
        if top.data.get("apiVersion") != API_VERSION:
            raise invalid(
                "apiVersion", top.data.get("apiVersion"), f"must be {API_VERSION!r}", KIND
            )
        if top.data.get("kind") != KIND:
            raise invalid("kind", top.data.get("kind"), f"must be {KIND!r}", KIND)
        meta = Fields(
            top.data.get("metadata"),
            "metadata",
            {"name", "labels", "annotations", "generation", "creationTimestamp"},
            KIND,
        )
        name = _name(meta, "name", "Trigger")
        spec = Fields(
            yaml_on(top.data.get("spec")),
            "spec",
            {"model", "on", "cooldown", "run", "rollout"},
            KIND,
        )
        model = _name(spec, "model", "Model")
        on = _on(spec.data.get("on"))
        kind = on_kind(on)
        trigger = cls(
            name=name,
            model=model,
            on=on,
            run=_run(spec.data.get("run"), kind),
            cooldown=spec.duration("cooldown", 0.0) or 0.0,
            rollout=_rollout(spec.data.get("rollout")),
        )
        if isinstance(on, RegistrySource) and trigger.rollout is not None:
            watched = on.alias if on.event is RegistryEventKind.ALIAS_MOVED else None
            if on.model == model and watched in (
                trigger.rollout.alias,
                trigger.rollout.candidate_alias,
            ):
                raise invalid(
                    "spec.on.registry.alias",
                    watched,
                    "must not be an alias this trigger's own rollout moves (the "
                    "trigger would start itself again)",
                    KIND,
                )
        return trigger

    def to_dict(self) -> JsonDict:
        """The object form; ``TriggerSpec.from_dict(t.to_dict()) == t``."""
        on: JsonDict
        if isinstance(self.on, Schedule):
            on = {"schedule": {"cron": self.on.cron}}
        elif isinstance(self.on, NewSpan):
            on = {"newSpan": {"inputDir": self.on.input_dir, "pattern": self.on.pattern}}
        elif isinstance(self.on, AlertSource):
            body: JsonDict = {}
            if self.on.monitor is not None:
                body["monitor"] = self.on.monitor
            if self.on.rules:
                body["rules"] = list(self.on.rules)
            if self.on.severity is not None:
                body["severity"] = self.on.severity
            if self.on.metrics:
                body["metrics"] = list(self.on.metrics)
            on = {"decay" if self.on.decay else "alert": body}
        else:
            reg: JsonDict = {"model": self.on.model, "event": self.on.event.value}
            if self.on.alias is not None:
                reg["alias"] = self.on.alias
            on = {"registry": reg}
        run: JsonDict = {"pipeline": self.run.pipeline, "params": dict(self.run.params)}
        if self.run.timeout is not None:
            run["timeout"] = self.run.timeout
        spec: JsonDict = {"model": self.model, "on": on, "run": run}
        if self.cooldown:
            spec["cooldown"] = self.cooldown
        if self.rollout is not None:
            spec["rollout"] = {
                "deployment": self.rollout.deployment,
                "alias": self.rollout.alias,
                "candidateAlias": self.rollout.candidate_alias,
            }
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name},
            "spec": spec,
        }


def yaml_on(spec: Any) -> Any:
    """``spec`` with the key ``on`` restored: YAML 1.1 (PyYAML) reads a bare ``on:`` key as
    the boolean True, as GitHub Actions users know."""
    if isinstance(spec, Mapping) and True in spec and "on" not in spec:
        return {("on" if k is True else k): v for k, v in spec.items()}
    return spec


def is_performance_metric(metric: Json, listed: tuple[str, ...] = ()) -> bool:
    """Whether an alert's metric measures model performance (``decay``), e.g.
    ``accuracy`` or the estimate ``estimated_accuracy``."""
    if not isinstance(metric, str):
        return False
    base = metric.lower()
    for prefix in _ESTIMATE_PREFIXES:
        if base.startswith(prefix):
            base = base[len(prefix) :]
    if listed:
        return metric in listed or base in listed
    return base in PERFORMANCE_METRICS


def _at_least(given: Json, minimum: str) -> bool:
    if given == minimum:
        return True
    if given not in SEVERITIES:
        return False
    return SEVERITIES.index(str(given)) >= SEVERITIES.index(minimum)


def _name(fields: Fields, key: str, kind: str) -> str:
    value = fields.data.get(key)
    try:
        return check_name(kind, value)  # type: ignore[arg-type]  # checked here
    except InvalidInputError as exc:
        raise InvalidDefinitionError(
            f"Trigger field {fields.sub(key)}: {exc}", field=fields.sub(key)
        ) from None


def _strings(fields: Fields, key: str) -> tuple[str, ...]:
    raw = fields.sequence(key)
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item:
            raise invalid(f"{fields.sub(key)}[{i}]", item, "must be a non-empty string", KIND)
    return tuple(raw)


def _on(data: Any) -> On:
    path = "spec.on"
    if not isinstance(data, Mapping) or len(data) != 1:
        raise invalid(
            path, data, f"must be a mapping with exactly one of {[k.value for k in OnKind]}", KIND
        )
    ((key, body),) = data.items()
    if key == "schedule":
        f = Fields(body, f"{path}.schedule", {"cron"}, KIND)
        cron = f.text("cron")
        if cron is None or not _valid_cron(cron):
            raise f.invalid(
                "cron",
                cron,
                "must be a cron expression of 5 fields such as '0 * * * *' (every hour)",
            )
        return Schedule(cron)
    if key == "newSpan":
        f = Fields(body, f"{path}.newSpan", {"inputDir", "pattern"}, KIND)
        input_dir = f.text("inputDir")
        if input_dir is None:
            raise f.invalid("inputDir", None, "is required: the directory the spans arrive in")
        pattern = f.text("pattern", "*.csv") or "*.csv"
        try:
            from loopline.components import SpanPattern

            compiled = SpanPattern.parse(pattern)
        except InvalidInputError as exc:
            raise f.invalid("pattern", pattern, f"must be a span pattern ({exc})") from None
        if not (compiled.has_span or compiled.has_date):
            raise f.invalid(
                "pattern",
                pattern,
                "must have a {SPAN} or {YYYY}{MM}{DD} "
                "placeholder, or every file is span 0 and no span is ever new",
            )
        return NewSpan(input_dir, pattern)
    if key in ("alert", "decay"):
        f = Fields(
            body if body is not None else {},
            f"{path}.{key}",
            {"monitor", "rules", "severity", "metrics"},
            KIND,
        )
        monitor = f.text("monitor")
        severity = f.text("severity")
        if severity is not None and severity not in SEVERITIES:
            raise f.invalid("severity", severity, f"must be one of {' | '.join(SEVERITIES)}")
        return AlertSource(
            decay=key == "decay",
            monitor=monitor,
            rules=_strings(f, "rules"),
            severity=severity,
            metrics=_strings(f, "metrics"),
        )
    if key == "registry":
        f = Fields(body, f"{path}.registry", {"model", "event", "alias"}, KIND)
        model = _name(f, "model", "Model")
        event = f.choice("event", RegistryEventKind)
        alias = f.text("alias")
        if event is RegistryEventKind.ALIAS_MOVED and alias is None:
            raise f.invalid("alias", None, "is required for event aliasMoved: the alias to watch")
        if event is RegistryEventKind.NEW_VERSION and alias is not None:
            raise f.invalid("alias", alias, "is only for event aliasMoved")
        return RegistrySource(model, event, alias)
    raise invalid(
        f"{path}.{key}",
        body,
        f"is not a trigger kind; use one of {[k.value for k in OnKind]}",
        KIND,
    )


def on_kind(on: On) -> OnKind:
    """The kind of event source ``on`` is."""
    if isinstance(on, Schedule):
        return OnKind.SCHEDULE
    if isinstance(on, NewSpan):
        return OnKind.NEW_SPAN
    if isinstance(on, AlertSource):
        return OnKind.DECAY if on.decay else OnKind.ALERT
    return OnKind.REGISTRY


def _valid_cron(expression: str) -> bool:
    from croniter import croniter

    return len(expression.split()) == 5 and bool(croniter.is_valid(expression))


def _run(data: Any, kind: OnKind) -> RunSpec:
    f = Fields(data, "spec.run", {"pipeline", "params", "timeout"}, KIND)
    pipeline = f.text("pipeline")
    if pipeline is None:
        raise f.invalid("pipeline", None, "is required: the pipeline file to run")
    params = f.data.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise f.invalid("params", params, "must be a mapping of parameter name to value")
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise invalid(f"spec.run.params.{key}", value, "must be named by an identifier", KIND)
        check_template(value, VARIABLES[kind], f"spec.run.params.{key}")
    timeout = f.duration("timeout", None)
    if timeout is not None and timeout <= 0:
        raise f.invalid("timeout", data.get("timeout"), "must be longer than 0 s")
    return RunSpec(pipeline=pipeline, params=dict(params), timeout=timeout)


def _rollout(data: Any) -> Rollout | None:
    if data is None:
        return None
    f = Fields(data, "spec.rollout", {"deployment", "alias", "candidateAlias"}, KIND)
    deployment = _name(f, "deployment", "Deployment")
    alias = _name(f, "alias", "Alias") if "alias" in f.data else "champion"
    candidate = _name(f, "candidateAlias", "Alias") if "candidateAlias" in f.data else "challenger"
    if alias == candidate:
        raise f.invalid("candidateAlias", candidate, f"must differ from alias {alias!r}")
    return Rollout(deployment=deployment, alias=alias, candidate_alias=candidate)
