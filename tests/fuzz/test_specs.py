"""Fuzzing the spec parsers: a mutated Deployment, AnalysisTemplate, Monitor or Trigger is
either refused with an InvalidDefinitionError naming its field, or accepted as a spec whose
object form is strict JSON (no NaN/Infinity) that parses back to the same spec."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fuzz.documents import DEPLOYMENTS, MONITOR, TEMPLATE, trigger
from tests.fuzz.mutations import FUZZ, mutated

from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.spec import DeploymentSpec
from loopline.errors import InvalidDefinitionError
from loopline.monitor.spec import MonitorSpec
from loopline.triggers.spec import TriggerSpec

NAMES_A_FIELD = re.compile(r"^((Deployment|AnalysisTemplate|Monitor|Trigger) f|F)ield \S")
"""A refusal starts by naming the field (duration fields say ``Field spec.…`` without the
kind; the API test pins what that costs its JSON error)."""


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""The documented name rule (``loopline.types.check_name``), matched in full: no trailing
newline, ASCII only."""


def object_form(spec: Any) -> Any:
    """The spec's JSON object form (``to_dict``; a Monitor calls it ``to_doc``)."""
    return spec.to_dict() if hasattr(spec, "to_dict") else spec.to_doc()


def check_parse(parse: Callable[[Any], Any], doc: Any) -> None:
    """The property every spec parser keeps, whatever ``doc`` holds."""
    try:
        spec = parse(doc)
    except InvalidDefinitionError as exc:
        assert NAMES_A_FIELD.match(str(exc)), str(exc)
        return
    assert NAME.fullmatch(spec.name), spec.name
    text = json.dumps(object_form(spec), allow_nan=False)
    assert parse(json.loads(text)) == spec


@settings(FUZZ, max_examples=400)
@given(doc=st.sampled_from(DEPLOYMENTS).flatmap(mutated))
def test_a_mutated_deployment_is_refused_naming_its_field_or_round_trips_as_strict_json(
    doc: Any,
) -> None:
    check_parse(DeploymentSpec.from_dict, doc)


@settings(FUZZ, max_examples=200)
@given(doc=mutated(TEMPLATE))
def test_a_mutated_analysis_template_is_refused_naming_its_field_or_round_trips(
    doc: Any,
) -> None:
    check_parse(AnalysisTemplate.from_dict, doc)


@settings(FUZZ, max_examples=200)
@given(doc=mutated(MONITOR))
def test_a_mutated_monitor_is_refused_naming_its_field_or_round_trips(doc: Any) -> None:
    check_parse(MonitorSpec.from_dict, doc)


@settings(FUZZ, max_examples=200)
@given(doc=mutated(trigger("/srv/project/pipeline.py")))
def test_a_mutated_trigger_is_refused_naming_its_field_or_round_trips(doc: Any) -> None:
    check_parse(TriggerSpec.from_dict, doc)


@pytest.mark.parametrize(
    ("parse", "doc"),
    [
        (DeploymentSpec.from_dict, DEPLOYMENTS[0]),
        (DeploymentSpec.from_dict, DEPLOYMENTS[1]),
        (DeploymentSpec.from_dict, DEPLOYMENTS[2]),
        (DeploymentSpec.from_dict, DEPLOYMENTS[3]),
        (AnalysisTemplate.from_dict, TEMPLATE),
        (MonitorSpec.from_dict, MONITOR),
        (TriggerSpec.from_dict, trigger("/srv/project/pipeline.py")),
    ],
)
def test_the_documents_the_fuzzers_mutate_are_valid(parse: Callable[[Any], Any], doc: Any) -> None:
    check_parse(parse, doc)
    parse(doc)  # accepted, not refused


@pytest.mark.parametrize(
    "from_yaml", [DeploymentSpec.from_yaml, AnalysisTemplate.from_yaml, MonitorSpec.from_yaml]
)
def test_deeply_nested_yaml_is_refused_as_an_invalid_definition(
    from_yaml: Callable[[str], Any],
) -> None:
    with pytest.raises(InvalidDefinitionError, match="nested too deeply"):
        from_yaml("[" * 100_000)
