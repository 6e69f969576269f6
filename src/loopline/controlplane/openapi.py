"""The OpenAPI 3.1 document of the control plane's REST API (served at ``/openapi.json``),
generated from the API's route table (:class:`Endpoint`, one per route, in
:mod:`loopline.controlplane.api`) and the wire types of :mod:`loopline.controlplane.wire`.

Nothing here is written twice: a route's path, methods, summary, request and response types
and error codes are declared once, next to its handler; the schemas come from the types. The
API's tests check the served document against the app's routes and each declared response
type against real answers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loopline import __version__
from loopline.controlplane.wire import ErrorBody
from loopline.controlplane.wire_codec import schema_of

_ERROR_TEXT = {
    400: "Invalid request or spec; `field` names the offending field.",
    401: "Missing or wrong bearer token.",
    404: "No such object.",
    409: "Conflict: exists already, paused, or being deleted.",
    413: "The request body is over 1 MiB.",
    421: "The Host header is not on the allow-list (127.0.0.1, localhost, [::1] and "
    "LOOPLINE_CONTROLPLANE_HOSTS).",
    503: "The metadata database is unavailable.",
    504: "The operation did not finish within its deadline.",
}
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Endpoint:
    """One route of the API: where, what it does, and its bodies' types.

    ``request``: a wire type, a JSON Schema (a document a user writes), or None (no body);
    ``response``: the wire type of the answer, or None for ``text/plain``; ``created``: it may
    answer 201 (same body) when it created the object; ``errors``: the 4xx/5xx it may answer
    besides 421 (any request) and 401 (mutations: they need the bearer token); ``query``: the
    query parameters and their schemas.
    """

    methods: tuple[str, ...]
    path: str
    handler: Callable[..., Awaitable[Any]]
    summary: str
    response: Any
    request: Any = None
    created: bool = False
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, dict[str, Any]], ...] = ()
    optional_body: bool = False


def openapi_document(
    endpoints: Sequence[Endpoint], extra_schemas: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The API description of ``endpoints``; mutating operations declare the bearer-token
    requirement. ``extra_schemas``: components a ``Doc`` field's description refers to."""
    components: dict[str, Any] = {}
    error = schema_of(ErrorBody, components)
    paths: dict[str, Any] = {}
    for e in endpoints:
        item = paths.setdefault(e.path, {})
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in re.findall(r"{(\w+)}", e.path)
        ]
        if params:
            item["parameters"] = params
        for method in e.methods:
            item[method.lower()] = _operation(e, method, components, error)
    components.update(extra_schemas or {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "loopline control plane",
            "version": __version__,
            "description": "Declarative model deployments on the local engine: specs, "
            "revisions, replicas, rollouts; AnalysisTemplates, Triggers and Monitors. "
            "Mutations need `Authorization: Bearer <token>` (the token is in "
            "$LOOPLINE_HOME/controlplane/token). Timestamps are RFC 3339 in UTC.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(components.items())),
        },
        "paths": paths,
    }


def _operation(
    e: Endpoint, method: str, components: dict[str, Any], error: dict[str, Any]
) -> dict[str, Any]:
    if e.response is None:
        ok: dict[str, Any] = {"description": "ok", "content": {"text/plain": {
            "schema": {"type": "string"}}}}  # fmt: skip
    else:
        ok = _json(schema_of(e.response, components), "ok")
    responses: dict[str, Any] = {"200": ok}
    if e.created:
        responses["201"] = {**ok, "description": "created"}
    codes = set(e.errors) | {421} | ({401} if method in _MUTATING else set())
    for code in sorted(codes):
        responses[str(code)] = _json(error, _ERROR_TEXT[code])
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{e.handler.__name__}",
        "summary": e.summary,
        "responses": responses,
    }
    if e.query:
        op["parameters"] = [{"name": n, "in": "query", "schema": s} for n, s in e.query]
    if e.request is not None:
        body = e.request if isinstance(e.request, dict) else schema_of(e.request, components)
        op["requestBody"] = {
            "required": not e.optional_body,
            "content": {"application/json": {"schema": body}},
        }
    if method in _MUTATING:
        op["security"] = [{"bearer": []}]
    return op


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


MONITOR_STATUS: dict[str, Any] = {
    "type": "object",
    "description": "loopline.monitor.status.MonitorStatus, a Monitor's `status`: the last "
    "window's drift per feature, performance (realised or estimated), alerts firing and "
    "resolved, per model version with its lineage; `error` says why the last tick failed.",
    "required": ["name", "deployment", "window", "rows", "windows", "versions", "firing"],
    "properties": {
        "name": {"type": "string"},
        "deployment": {"type": "string"},
        "model": {"type": ["string", "null"]},
        "window": {"type": "object"},
        "generation": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "rows": {"type": "integer"},
        "labels": {"type": "integer"},
        "windows": {"type": "integer"},
        "last_tick_at": {"type": ["string", "null"], "format": "date-time"},
        "last_window_at": {"type": ["string", "null"], "format": "date-time"},
        "error": {"type": ["string", "null"]},
        "versions": {"type": "array", "items": {"type": "object"}},
        "firing": {"type": "array", "items": {"type": "object"}},
        "resolved": {"type": "array", "items": {"type": "object"}},
    },
}
WINDOW_RESULT: dict[str, Any] = {
    "type": "object",
    "description": "loopline.monitor.WindowResult: one closed window of one model version.",
    "required": ["monitor", "model", "version", "index", "start_ts", "end_ts", "rows"],
    "properties": {
        "monitor": {"type": "string"},
        "model": {"type": "string"},
        "version": {"type": "string"},
        "index": {"type": "integer"},
        "start_ts": {"type": ["string", "null"], "format": "date-time"},
        "end_ts": {"type": ["string", "null"], "format": "date-time"},
        "rows": {"type": "integer"},
        "features": {"type": "array", "items": {"type": "object"}},
        "prediction": {"type": ["object", "null"]},
        "violations": {"type": "array"},
        "skewed": {"type": "array"},
        "performance": {"type": "array"},
        "estimated": {"type": "array"},
        "labelled_rows": {"type": ["integer", "null"]},
        "drift_share": {"type": ["number", "null"]},
    },
}
EXTRA_SCHEMAS = {"MonitorStatus": MONITOR_STATUS, "WindowResult": WINDOW_RESULT}
"""The documents carried as ``Doc`` whose shape the monitor package defines."""

DEPLOYMENT_DOCUMENT: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "description": "A Deployment as written (docs/deploy.md); status and the server's "
    "metadata fields are ignored.",
    "properties": {
        "apiVersion": {"const": "loopline/v1"},
        "kind": {"const": "Deployment"},
        "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
        "spec": {
            "type": "object",
            "required": ["model"],
            "properties": {
                "model": {"type": "string", "examples": ["taxi@champion"]},
                "replicas": {"type": "integer", "minimum": 0, "default": 1},
                "strategy": {"type": "object"},
                "minReadySeconds": {"type": "integer"},
                "progressDeadlineSeconds": {"type": "integer"},
                "revisionHistoryLimit": {"type": "integer"},
                "paused": {"type": "boolean"},
                "port": {"type": "integer"},
                "template": {"type": "object"},
                "autoscaling": {"type": "object"},
            },
        },
    },
}
"""The JSON Schema of a Deployment document a client sends (PUT/POST)."""


def document_schema(kind: str, required: list[str], docs: str) -> dict[str, Any]:
    """The JSON Schema of a ``kind`` document a client sends."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "loopline/v1"},
            "kind": {"const": kind},
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": {"type": "object", "required": required,
                     "description": f"{docs} describes every field."},
        },
    }  # fmt: skip
