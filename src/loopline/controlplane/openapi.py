"""The OpenAPI 3.1 document of the control plane's REST API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from loopline import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid request or spec; `field` names the offending spec field.",
        401: "Missing or wrong bearer token.",
        404: "No such deployment, revision or replica.",
        409: "Conflict: exists already, paused, or being deleted.",
        504: "The operation did not finish within its deadline.",
        421: "The Host header is not on the allow-list (127.0.0.1, localhost, [::1] and "
        "LOOPLINE_CONTROLPLANE_HOSTS).",
    }
    return {str(c): _json(_ERROR, text[c]) for c in codes}


def _op(summary: str, ok: dict[str, Any], *errors: int, body: Any = None, **kw: Any) -> Any:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": ok, **_errors(*errors, 421)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    op.update(kw)
    return op


_NUM = {"type": ["number", "null"]}
_HEALTH: dict[str, Any] = {
    "type": "object",
    "description": "`controllers`: whether this control plane runs the controllers of its "
    "database (`active`) or serves the API only while another holds the lease (`standby`); "
    "`leader`: who holds it.",
    "properties": {
        "status": {"type": "string"},
        "version": {"type": "string"},
        "controllers": {"enum": ["active", "standby"]},
        "leader": {"type": ["string", "null"]},
    },
}
_MONITOR_STATUS: dict[str, Any] = {
    "type": "object",
    "description": "loopline.monitor.status.MonitorStatus: the last window's drift per "
    "feature, performance (realised or estimated), alerts firing and resolved, per model "
    "version with its lineage; `error` says why the last tick failed.",
    "required": ["name", "deployment", "window", "rows", "windows", "versions", "firing"],
    "properties": {
        "name": {"type": "string"},
        "deployment": {"type": "string"},
        "model": {"type": ["string", "null"]},
        "window": {"type": "object"},
        "generation": {"type": "integer"},
        "created_at": {"type": "number"},
        "rows": {"type": "integer"},
        "labels": {"type": "integer"},
        "windows": {"type": "integer"},
        "last_tick_at": _NUM,
        "last_window_at": _NUM,
        "error": {"type": ["string", "null"]},
        "versions": {"type": "array", "items": {"type": "object"}},
        "firing": {"type": "array", "items": {"type": "object"}},
        "resolved": {"type": "array", "items": {"type": "object"}},
    },
}
_MONITOR: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "loopline/v1"},
        "kind": {"const": "Monitor"},
        "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
        "spec": {
            "type": "object",
            "required": ["deployment", "window"],
            "description": "docs/monitoring.md describes every field.",
        },
        "status": {"$ref": "#/components/schemas/MonitorStatus"},
    },
}
_WINDOW_RESULT: dict[str, Any] = {
    "type": "object",
    "description": "loopline.monitor.WindowResult: one closed window of one model version.",
    "required": ["monitor", "model", "version", "index", "start_ts", "end_ts", "rows"],
    "properties": {
        "monitor": {"type": "string"},
        "model": {"type": "string"},
        "version": {"type": "string"},
        "index": {"type": "integer"},
        "start_ts": {"type": "number"},
        "end_ts": {"type": "number"},
        "rows": {"type": "integer"},
        "features": {"type": "array", "items": {"type": "object"}},
        "prediction": {"type": ["object", "null"]},
        "violations": {"type": "array"},
        "performance": {"type": "array"},
        "estimated": {"type": "array"},
        "drift_share": {"type": "number"},
    },
}


def openapi_document() -> dict[str, Any]:
    """The API description; mutating operations declare the bearer-token requirement."""
    dep = {"$ref": "#/components/schemas/Deployment"}
    tpl = {"$ref": "#/components/schemas/AnalysisTemplate"}
    trg = {"$ref": "#/components/schemas/Trigger"}
    mon = {"$ref": "#/components/schemas/Monitor"}
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    items = {"type": "object", "properties": {"items": {"type": "array"}}}
    deployment_list = {"type": "object", "properties": {
        "items": {"type": "array"},
        "unreadable": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "error": {"type": "string"}}}},
    }}  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "loopline control plane",
            "version": __version__,
            "description": "Declarative model deployments on the local engine: specs, "
            "revisions, replicas, rollouts. Mutations need `Authorization: Bearer <token>` "
            "(the token is in $LOOPLINE_HOME/controlplane/token).",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "reason"],
                    "properties": {
                        "error": {
                            "type": "string",
                            "description": "What went wrong and what to do next.",
                        },
                        "reason": {
                            "type": "string",
                            "enum": [
                                "Invalid",
                                "BadRequest",
                                "NotFound",
                                "AlreadyExists",
                                "Conflict",
                                "Unauthorized",
                                "Timeout",
                                "BackendUnavailable",
                                "InternalError",
                                "MethodNotAllowed",
                            ],
                        },
                        "field": {"type": "string"},
                    },
                },
                "Trigger": {
                    "type": "object",
                    "required": ["apiVersion", "kind", "metadata", "spec"],
                    "properties": {
                        "apiVersion": {"const": "loopline/v1"},
                        "kind": {"const": "Trigger"},
                        "metadata": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                        },
                        "spec": {
                            "type": "object",
                            "required": ["model", "on", "run"],
                            "description": "docs/triggers.md describes every field.",
                        },
                        "status": {"type": "object"},
                    },
                },
                "Monitor": _MONITOR,
                "MonitorStatus": _MONITOR_STATUS,
                "WindowResult": _WINDOW_RESULT,
                "AnalysisTemplate": {
                    "type": "object",
                    "required": ["apiVersion", "kind", "metadata", "spec"],
                    "properties": {
                        "apiVersion": {"const": "loopline/v1"},
                        "kind": {"const": "AnalysisTemplate"},
                        "metadata": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                        },
                        "spec": {
                            "type": "object",
                            "required": ["metrics"],
                            "properties": {"metrics": {"type": "array"}},
                        },
                    },
                },
                "Deployment": {
                    "type": "object",
                    "required": ["apiVersion", "kind", "metadata", "spec"],
                    "properties": {
                        "apiVersion": {"const": "loopline/v1"},
                        "kind": {"const": "Deployment"},
                        "metadata": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                        },
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
                            },
                        },
                        "status": {"type": "object", "readOnly": True},
                    },
                },
            },
        },
        "paths": {
            "/healthz": {"get": _op("Liveness of the control plane", _json(_HEALTH, "ok"))},
            "/v1/deployments": {
                "get": _op(
                    "List deployments (and, under 'unreadable', those whose stored record "
                    "this version refuses, with why)",
                    _json(deployment_list, "deployments"),
                ),
                "post": _op(
                    "Create a deployment",
                    _json(dep, "created"),
                    400,
                    401,
                    409,
                    body=dep,
                    security=auth,
                ),
            },
            "/v1/deployments/{name}": {
                "parameters": [_NAME],
                "get": _op("Get a deployment", _json(dep, "the deployment"), 404),
                "put": _op(
                    "Apply (create or update) a deployment",
                    _json(dep, "applied"),
                    400,
                    401,
                    409,
                    body=dep,
                    security=auth,
                ),
                "delete": _op(
                    "Delete a deployment, its replicas and router",
                    _json({}, "deleted"),
                    401,
                    404,
                    409,
                    504,
                    security=auth,
                ),
            },
            "/v1/deployments/{name}/scale": {
                "parameters": [_NAME],
                "put": _op(
                    "Set the replica count",
                    _json(dep, "scaled"),
                    400,
                    401,
                    404,
                    body={
                        "type": "object",
                        "properties": {"replicas": {"type": "integer", "minimum": 0}},
                    },
                    security=auth,
                ),
            },
            "/v1/deployments/{name}/model": {
                "parameters": [_NAME],
                "put": _op(
                    "Point at another model reference",
                    _json(dep, "set"),
                    400,
                    401,
                    404,
                    body={"type": "object", "properties": {"model": {"type": "string"}}},
                    security=auth,
                ),
            },
            "/v1/deployments/{name}/rollout": {
                "parameters": [_NAME],
                "get": _op("Rollout status (done / failed / message)", _json({}, "status"), 404),
            },
            "/v1/deployments/{name}/rollout/pause": {
                "parameters": [_NAME],
                "post": _op(
                    "Pause the rollout", _json(dep, "paused"), 401, 404, 409, security=auth
                ),
            },
            "/v1/deployments/{name}/rollout/resume": {
                "parameters": [_NAME],
                "post": _op(
                    "Resume the rollout", _json(dep, "resumed"), 401, 404, 409, security=auth
                ),
            },
            "/v1/deployments/{name}/rollout/undo": {
                "parameters": [_NAME],
                "post": _op(
                    "Roll back to a revision (0: the previous one)",
                    _json({}, "undone"),
                    400,
                    401,
                    404,
                    409,
                    security=auth,
                    body={
                        "type": "object",
                        "properties": {"toRevision": {"type": "integer", "minimum": 0}},
                    },
                ),
            },
            "/v1/deployments/{name}/autoscaling": {
                "parameters": [_NAME],
                "put": _op(
                    "Set spec.autoscaling (HPA v2 fields), or remove it with null",
                    _json(dep, "set"),
                    400,
                    401,
                    404,
                    body={
                        "type": "object",
                        "required": ["autoscaling"],
                        "properties": {"autoscaling": {"type": ["object", "null"]}},
                    },
                    security=auth,
                ),
            },
            "/v1/deployments/{name}/rollout/promote": {
                "parameters": [_NAME],
                "post": _op(
                    "Canary: go past the current step (full: every remaining step); "
                    "BlueGreen: switch traffic to the preview",
                    _json(dep, "promoted"),
                    400,
                    401,
                    404,
                    409,
                    security=auth,
                    body={"type": "object", "properties": {"full": {"type": "boolean"}}},
                ),
            },
            "/v1/deployments/{name}/rollout/abort": {
                "parameters": [_NAME],
                "post": _op(
                    "Send all traffic back to the stable revision at once (phase Degraded)",
                    _json(dep, "aborted"),
                    401,
                    404,
                    409,
                    security=auth,
                ),
            },
            "/v1/deployments/{name}/rollout/retry": {
                "parameters": [_NAME],
                "post": _op(
                    "Start an aborted rollout over",
                    _json(dep, "retried"),
                    401,
                    404,
                    409,
                    security=auth,
                ),
            },
            "/v1/analysistemplates": {
                "get": _op("List AnalysisTemplates", _json(items, "templates")),
            },
            "/v1/analysistemplates/{name}": {
                "parameters": [_NAME],
                "get": _op("Get an AnalysisTemplate", _json(tpl, "the template"), 404),
                "put": _op(
                    "Apply (create or update) an AnalysisTemplate",
                    _json(tpl, "applied"),
                    400,
                    401,
                    body=tpl,
                    security=auth,
                ),
                "delete": _op(
                    "Delete an AnalysisTemplate", _json({}, "deleted"), 401, 404, security=auth
                ),
            },
            "/v1/triggers": {
                "get": _op("List Triggers with their last run", _json(items, "triggers")),
            },
            "/v1/triggers/{name}": {
                "parameters": [_NAME],
                "get": _op("Get a Trigger", _json(trg, "the trigger"), 404),
                "put": _op(
                    "Apply (create or update) a Trigger",
                    _json(trg, "applied"),
                    400,
                    401,
                    body=trg,
                    security=auth,
                ),
                "delete": _op("Delete a Trigger", _json({}, "deleted"), 401, 404, security=auth),
            },
            "/v1/monitors": {
                "get": _op("List Monitors with their status", _json(items, "monitors")),
            },
            "/v1/monitors/{name}": {
                "parameters": [_NAME],
                "get": _op("Get a Monitor and its status", _json(mon, "the monitor"), 404),
                "put": _op(
                    "Apply (create or update) a Monitor",
                    _json(mon, "applied"),
                    400,
                    401,
                    body=mon,
                    security=auth,
                ),
                "delete": _op(
                    "Delete a Monitor and its progress (its Alert artifacts stay)",
                    _json({}, "deleted"),
                    401,
                    404,
                    security=auth,
                ),
            },
            "/v1/monitors/{name}/windows": {
                "parameters": [
                    _NAME,
                    {"name": "version", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                ],
                "get": _op(
                    "A Monitor's stored windows, oldest first (limit: the newest N)",
                    _json(
                        {
                            "type": "object",
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/WindowResult"},
                                }
                            },
                        },
                        "windows",
                    ),
                    404,
                ),
            },
            "/v1/triggers/{name}/history": {
                "parameters": [_NAME],
                "get": _op("A Trigger's runs, newest first", _json(items, "runs"), 404),
            },
            "/v1/deployments/{name}/revisions": {
                "parameters": [_NAME],
                "get": _op("Revisions with their pinned models", _json(items, "revisions"), 404),
            },
            "/v1/deployments/{name}/replicas": {
                "parameters": [_NAME],
                "get": _op("Replicas of a deployment", _json(items, "replicas"), 404),
            },
            "/v1/deployments/{name}/events": {
                "parameters": [_NAME],
                "get": _op("Recent events", _json(items, "events"), 404),
            },
            "/v1/replicas": {"get": _op("Replicas of every deployment", _json(items, "all"))},
            "/v1/replicas/{replica_id}/log": {
                "parameters": [
                    {
                        "name": "replica_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "tail", "in": "query", "schema": {"type": "integer"}},
                ],
                "get": _op("The replica's log file", {"description": "text/plain"}, 404),
            },
        },
    }
