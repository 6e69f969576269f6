"""The bodies of the model repository extension's requests, checked.

``POST /v2/repository/index`` takes ``{"ready": bool}``; ``…/models/NAME/load`` takes
``{"parameters": {"version": "3"}}`` or ``{"parameters": {"alias": "champion"}}``;
``…/unload`` takes ``{"parameters": {"unload_dependents": bool}}``. Every body is optional
(tritonclient sends an empty index body). Anything else is a 400 naming the field: unknown
fields, Triton's ``config`` and ``file:`` overrides (a loopline model loads only from the
server's source, with its digest checks), wrong types.
"""

from __future__ import annotations

from typing import Any

import orjson

from loopline.serving.http import ClientDisconnected, HttpError, Receive, Scope
from loopline.serving.repository import LoadParameters
from loopline.types import is_ascii_digits


def index_ready(body: dict[str, Any]) -> bool:
    """The ``ready`` filter of an index body (False when absent)."""
    _only(body, {"ready"}, "The index request")
    ready = body.get("ready", False)
    if not isinstance(ready, bool):
        raise HttpError(400, f"Field 'ready' must be true or false, not {ready!r}.")
    return ready


async def read_object(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The JSON object of the body; an empty body is ``{}`` (tritonclient's index sends one).

    Raises:
        HttpError: 413 over ``limit``, 400 not a JSON object.
    """
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"A repository request body is at most {limit} bytes.")
        chunks.append(chunk)
        more = message.get("more_body", False)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise HttpError(400, f"The request body must be a JSON object, not {type(body).__name__}.")
    return body


def _only(body: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise HttpError(
            400, f"{what} has unknown field {extra[0]!r}; it takes {sorted(allowed)}."
        )


def _parameters(body: dict[str, Any], what: str) -> dict[str, Any]:
    _only(body, {"parameters"}, what)
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise HttpError(400, f"Field 'parameters' must be an object, not {parameters!r}.")
    return parameters


def load_parameters(body: dict[str, Any]) -> LoadParameters:
    parameters = _parameters(body, "The load request")
    for key in parameters:
        if key == "config":
            raise HttpError(
                400,
                "Field 'parameters.config' (a model configuration) is not supported: a "
                "loopline bundle carries its own signature; load it as saved.",
            )
        if key.startswith("file:"):
            raise HttpError(
                400,
                f"Field 'parameters.{key}' (model files sent with the request) is not "
                "supported: models load only from the server's source, with its digest checks.",
            )
        if key not in ("version", "alias"):
            raise HttpError(
                400, f"Unknown load parameter {key!r}; loopline takes 'version' or 'alias'."
            )
    version = parameters.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        version = str(version)
    if version is not None and not (isinstance(version, str) and is_ascii_digits(version)):
        raise HttpError(
            400, f"Field 'parameters.version' must be a version number ≥ 1, not {version!r}."
        )
    alias = parameters.get("alias")
    if alias is not None and not isinstance(alias, str):
        raise HttpError(400, f"Field 'parameters.alias' must be a string, not {alias!r}.")
    if version is not None and alias is not None:
        raise HttpError(400, "Pass 'parameters.version' or 'parameters.alias', not both.")
    return LoadParameters(version=version, alias=alias)


def unload_parameters(body: dict[str, Any]) -> None:
    """Check an unload body. ``unload_dependents`` is accepted (tritonclient sends it on every
    unload); a loopline model has no dependents, so both values mean the same."""
    parameters = _parameters(body, "The unload request")
    for key, value in parameters.items():
        if key != "unload_dependents":
            raise HttpError(
                400, f"Unknown unload parameter {key!r}; loopline takes 'unload_dependents'."
            )
        if not isinstance(value, bool):
            raise HttpError(
                400,
                f"Field 'parameters.unload_dependents' must be true or false, not {value!r}.",
            )


__all__ = ["index_ready", "load_parameters", "read_object", "unload_parameters"]
