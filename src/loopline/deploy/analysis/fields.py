"""Typed reads of one mapping of an AnalysisTemplate; every error names the field path."""

from __future__ import annotations

from loopline.deploy import fields as deploy_fields
from loopline.deploy.duration import format_duration, parse_duration
from loopline.errors import InvalidDefinitionError

KIND = "AnalysisTemplate"


def invalid(path: str, value: object, rule: str) -> InvalidDefinitionError:
    """``AnalysisTemplate field <path> = <value> is invalid: it <rule>.``"""
    return deploy_fields.invalid(path, value, rule, KIND)


class Fields(deploy_fields.Fields):
    """The deploy package's field reader, with errors that name an AnalysisTemplate field."""

    def __init__(self, data: object, path: str, known: set[str]) -> None:
        super().__init__(data, path, known, KIND)


def duration_out(seconds: float) -> str | float:
    """``seconds`` in the short form (``1m30s``) when that reads back exactly, else the number."""
    text = format_duration(seconds)
    return text if parse_duration(text, "") == seconds else seconds
