"""The JSON error of a loopline error: its status and reason by kind, and ``field`` exactly
when the error carries one (never parsed back out of the message)."""

from __future__ import annotations

import json

from loopline.controlplane.responses import error_response
from loopline.errors import InvalidDefinitionError, InvalidInputError, NotFoundError


def _body(exc: Exception) -> tuple[int, dict[str, object]]:
    assert isinstance(exc, InvalidDefinitionError | InvalidInputError | NotFoundError)
    response = error_response(exc)
    return response.status_code, json.loads(bytes(response.body))


def test_an_error_carrying_a_field_is_answered_with_it() -> None:
    exc = InvalidDefinitionError(
        "Deployment field spec.replicas = -1 is invalid: it must be at least 0.",
        field="spec.replicas",
    )
    assert _body(exc) == (
        400,
        {"error": str(exc), "reason": "Invalid", "field": "spec.replicas"},
    )


def test_a_message_naming_a_field_without_the_attribute_has_no_field_in_the_answer() -> None:
    code, body = _body(InvalidDefinitionError("Deployment field spec.replicas = -1 is invalid."))
    assert code == 400 and "field" not in body


def test_a_bad_request_carrying_a_field_is_answered_with_it() -> None:
    exc = InvalidInputError("The request body's field x = nan is invalid.", field="x")
    assert _body(exc) == (400, {"error": str(exc), "reason": "BadRequest", "field": "x"})


def test_a_not_found_error_has_no_field() -> None:
    assert _body(NotFoundError("No deployment 'x'.")) == (
        404,
        {"error": "No deployment 'x'.", "reason": "NotFound"},
    )
