"""kind: Trigger: parsing, validation that names the field, and the parameter template."""

from __future__ import annotations

from typing import Any

import pytest
from tests.triggers.helpers import trigger, trigger_doc

from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.triggers import OnKind, TriggerSpec
from loopline.triggers.spec import AlertSource, RegistrySource, Schedule, is_performance_metric
from loopline.triggers.template import render


def test_a_span_trigger_parses_with_defaults_and_round_trips() -> None:
    spec = trigger(cooldown="10m", rollout={"deployment": "taxi"})
    assert spec.kind is OnKind.NEW_SPAN
    assert spec.cooldown == 600.0
    assert spec.rollout is not None
    assert (spec.rollout.alias, spec.rollout.candidate_alias) == ("champion", "challenger")
    assert TriggerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "on, kind",
    [
        ({"schedule": {"cron": "0 * * * *"}}, OnKind.SCHEDULE),
        ({"alert": {"monitor": "taxi", "rules": ["drift"], "severity": "warning"}}, OnKind.ALERT),
        ({"decay": {"monitor": "taxi"}}, OnKind.DECAY),
        ({"registry": {"model": "taxi", "event": "newVersion"}}, OnKind.REGISTRY),
        ({"registry": {"model": "base", "event": "aliasMoved", "alias": "gold"}}, OnKind.REGISTRY),
    ],
)
def test_every_kind_of_source_parses_and_round_trips(on: dict[str, Any], kind: OnKind) -> None:
    spec = trigger(on)
    assert spec.kind is kind
    assert TriggerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "change, message",
    [
        ({"on": {"schedule": {"cron": "every hour"}}}, r"spec\.on\.schedule\.cron = 'every hour'"),
        ({"on": {"schedule": {"cron": "0 * * * * *"}}}, r"cron expression of 5 fields"),
        ({"on": {}}, r"spec\.on = \{\} is invalid: it must be a mapping with exactly one"),
        ({"on": {"webhook": {}}}, r"spec\.on\.webhook = \{\} is invalid: it is not a trigger kind"),
        ({"on": {"newSpan": {"pattern": "{SPAN}.csv"}}}, r"spec\.on\.newSpan\.inputDir"),
        ({"on": {"newSpan": {"inputDir": "d", "pattern": "*.csv"}}}, r"must have a \{SPAN\}"),
        ({"on": {"newSpan": {"inputDir": "d", "pattern": "{NOPE}.csv"}}}, r"newSpan\.pattern"),
        ({"on": {"alert": {"severity": "loud"}}}, r"spec\.on\.alert\.severity = 'loud'"),
        ({"on": {"registry": {"model": "taxi", "event": "aliasMoved"}}}, r"registry\.alias"),
        ({"on": {"registry": {"model": "taxi", "event": "moved"}}}, r"registry\.event = 'moved'"),
        ({"cooldown": "soon"}, r"spec\.cooldown = 'soon' is invalid: it must be a duration"),
        ({"model": "bad name"}, r"spec\.model: Model name 'bad name' is not valid"),
        (
            {"rollout": {"deployment": "taxi", "candidateAlias": "champion"}},
            r"spec\.rollout\.candidateAlias = 'champion' is invalid: it must differ",
        ),
        ({"rollout": {"deploy": "taxi"}}, r"spec\.rollout has unknown key\(s\) \['deploy'\]"),
        ({"extra": 1}, r"Trigger field spec has unknown key\(s\) \['extra'\]"),
    ],
)
def test_a_bad_field_is_refused_with_its_path(change: dict[str, Any], message: str) -> None:
    doc = trigger_doc()
    doc["spec"].update(change)
    with pytest.raises(InvalidDefinitionError, match=message):
        TriggerSpec.from_dict(doc)


def test_a_registry_trigger_on_the_alias_its_own_rollout_moves_is_refused() -> None:
    on = {"registry": {"model": "taxi", "event": "aliasMoved", "alias": "champion"}}
    with pytest.raises(InvalidDefinitionError, match=r"would start itself again"):
        trigger(on, rollout={"deployment": "taxi"})


def test_a_template_naming_what_the_event_never_provides_is_refused_at_apply() -> None:
    with pytest.raises(
        InvalidDefinitionError,
        match=r"spec\.run\.params\.span = '\{\{span\}\}'.*"
        r"does not provide; known names",
    ):
        trigger({"schedule": {"cron": "0 * * * *"}}, params={"span": "{{span}}"})
    bad = r"spec\.run\.params\.x\[1\] = '\{\{ span \* 2"
    with pytest.raises(InvalidDefinitionError, match=bad):
        trigger(params={"x": [1, "{{ span * 2 }}"]})
    with pytest.raises(InvalidDefinitionError, match=r"unbalanced"):
        trigger(params={"x": "{{span"})


def test_the_template_keeps_types_for_a_whole_placeholder_and_interpolates_text() -> None:
    variables = {"span": 42, "spans": [41, 42], "alert": {"id": 7, "metric": "trip_miles"}}
    params = {
        "span": "{{span}}",
        "span_range": ["{{ span - 2 }}", "{{span}}"],
        "spans": "{{spans}}",
        "note": "retrain on span {{span}} after alert {{alert.id}} ({{alert.metric}})",
        "fixed": 3,
    }
    assert render(params, variables) == {
        "span": 42,
        "span_range": [40, 42],
        "spans": [41, 42],
        "note": "retrain on span 42 after alert 7 (trip_miles)",
        "fixed": 3,
    }


def test_rendering_a_missing_variable_or_shifting_text_says_what_is_wrong() -> None:
    with pytest.raises(InvalidInputError, match=r"the event has no variable 'span'"):
        render("{{span}}", {"tick": "x"})
    with pytest.raises(InvalidInputError, match=r"alert = 'x' is not an integer"):
        render("{{alert + 1}}", {"alert": "x"})


def test_alert_sources_match_the_shared_alert_contract() -> None:
    drift = {
        "state": "firing",
        "model": "taxi",
        "monitor": "taxi",
        "rule": "drift",
        "severity": "critical",
        "metric": "trip_miles",
    }
    source = trigger({"alert": {"monitor": "taxi", "severity": "warning"}}).on
    assert isinstance(source, AlertSource)
    assert source.matches(drift, "taxi")
    assert not source.matches({**drift, "state": "resolved"}, "taxi")
    assert not source.matches({**drift, "severity": "info"}, "taxi")
    assert not source.matches(drift, "other")
    decay = trigger({"decay": {}}).on
    assert isinstance(decay, AlertSource)
    assert not decay.matches(drift, "taxi")
    assert decay.matches({**drift, "metric": "estimated_accuracy"}, "taxi")
    assert is_performance_metric("rmse") and not is_performance_metric("psi")


def test_the_parsed_sources_hold_their_fields() -> None:
    assert trigger({"schedule": {"cron": "*/5 * * * *"}}).on == Schedule("*/5 * * * *")
    on = trigger({"registry": {"model": "base", "event": "aliasMoved", "alias": "gold"}}).on
    assert isinstance(on, RegistrySource) and on.alias == "gold"


def test_a_bare_on_key_that_yaml_reads_as_true_is_the_on_field() -> None:
    import yaml

    doc = yaml.safe_load("""
apiVersion: loopline/v1
kind: Trigger
metadata: {name: nightly}
spec:
  model: taxi
  on:
    schedule: {cron: "0 3 * * *"}
  run: {pipeline: p.py}
""")
    assert True in doc["spec"]
    assert TriggerSpec.from_dict(doc).on == Schedule("0 3 * * *")
