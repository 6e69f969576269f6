"""What the control plane's API answers: JSON bodies that survive a stored NaN, and the JSON
error (status, ``reason``, and ``field`` when the error carries one:
:attr:`loopline.errors.LooplineError.field`) of each loopline error."""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import JSONResponse

from loopline.controlplane.wire import ErrorBody
from loopline.controlplane.wire_codec import to_json
from loopline.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    InvalidDefinitionError,
    InvalidInputError,
    LooplineError,
    NotFoundError,
    StepTimeoutError,
    UnauthorizedError,
)


class BodyTooLargeError(InvalidInputError):
    """A request body over the control plane's limit (answered 413)."""


_STATUS: tuple[tuple[type[LooplineError], int, str], ...] = (
    (BodyTooLargeError, 413, "RequestEntityTooLarge"),
    (InvalidDefinitionError, 400, "Invalid"),
    (InvalidInputError, 400, "BadRequest"),
    (NotFoundError, 404, "NotFound"),
    (AlreadyExistsError, 409, "AlreadyExists"),
    (ConflictError, 409, "Conflict"),
    (UnauthorizedError, 401, "Unauthorized"),
    (StepTimeoutError, 504, "Timeout"),
    (BackendError, 503, "BackendUnavailable"),
)


class FiniteJSONResponse(JSONResponse):
    """A JSON response that renders a record holding NaN or ±Infinity (stored before specs
    refused them) with ``null`` in their place, instead of failing with a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except ValueError:  # Out of range float values are not JSON compliant
            return super().render(_finite(content))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def error_response(exc: LooplineError) -> JSONResponse:
    """The JSON error for a loopline error, with its HTTP status."""
    code, reason = next(
        ((c, r) for kind, c, r in _STATUS if isinstance(exc, kind)), (500, "InternalError")
    )
    body = to_json(ErrorBody(str(exc), reason, exc.field or None))
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    if code == 413:  # the rest of the body is not read: the connection cannot be reused
        headers = {"Connection": "close"}
    return JSONResponse(body, status_code=code, headers=headers)
