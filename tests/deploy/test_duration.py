"""Durations in Argo/Kubernetes notation."""

from __future__ import annotations

import pytest

from loopline.deploy.duration import format_duration, parse_duration
from loopline.errors import InvalidDefinitionError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), (12, 12.0), ("1.5s", 1.5)],
)
def test_durations_parse_to_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text, "spec.pause.duration") == seconds


@pytest.mark.parametrize("text", ["", "5 m", "m5", "5d", "-3", -3, True, None, "1h-5m"])
def test_a_malformed_duration_names_its_field(text: object) -> None:
    with pytest.raises(InvalidDefinitionError, match=r"spec\.pause\.duration = .* duration"):
        parse_duration(text, "spec.pause.duration")


def test_formatting_inverts_parsing_for_whole_seconds() -> None:
    for seconds in (0.0, 0.25, 59.0, 90.0, 3600.0, 5400.0):
        assert parse_duration(format_duration(seconds), "x") == seconds
