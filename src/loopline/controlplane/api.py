"""The control plane's REST API (Starlette): routes, bearer-token auth and JSON errors.

Access (:mod:`loopline.controlplane.access`): the ``Host`` must be on the allow-list (421
otherwise); every mutating request (POST, PUT, PATCH, DELETE) needs ``Authorization: Bearer
<token>``; reads are open only when client and ``Host`` are both loopback. Errors are
``{"error": <sentence>, "reason": <kind>}`` (plus ``field`` when a spec field is at fault)
with a 4xx code; an unexpected failure is a 500 with a generic message, never a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from loopline import __version__
from loopline.controlplane.access import AccessControl, normalise_hosts
from loopline.controlplane.openapi import openapi_document
from loopline.controlplane.service import ControlPlane, check_spec_name
from loopline.deploy.fields import FINITE
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
from loopline.types import is_ascii_digits, non_finite

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
_FIELD = re.compile(r"(?:Deployment|AnalysisTemplate|Trigger|Monitor) field ([A-Za-z0-9_.\[\]]+)")

_STATUS: tuple[tuple[type[LooplineError], int, str], ...] = (
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
    body: dict[str, Any] = {"error": str(exc), "reason": reason}
    match = _FIELD.search(str(exc))
    if match and isinstance(exc, InvalidDefinitionError):
        body["field"] = match.group(1)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse(body, status_code=code, headers=headers)


Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    service: ControlPlane, *, token: str, allowed_hosts: Iterable[str] = ()
) -> Starlette:
    """The ASGI app of the control plane over ``service``, guarded by ``token`` and the
    ``Host`` allow-list (loopback names plus ``allowed_hosts``; see
    :mod:`loopline.controlplane.access`).

    Raises:
        ValueError: an entry of ``allowed_hosts`` is not a host name.
    """
    hosts = normalise_hosts(allowed_hosts)
    api = _Api(service)
    routes = [
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/v1/deployments", api.list_deployments, methods=["GET"]),
        Route("/v1/deployments", api.create_deployment, methods=["POST"]),
        Route("/v1/deployments/{name}", api.get_deployment, methods=["GET"]),
        Route("/v1/deployments/{name}", api.put_deployment, methods=["PUT"]),
        Route("/v1/deployments/{name}", api.delete_deployment, methods=["DELETE"]),
        Route("/v1/deployments/{name}/scale", api.scale, methods=["PUT", "PATCH"]),
        Route("/v1/deployments/{name}/model", api.set_model, methods=["PUT"]),
        Route("/v1/deployments/{name}/autoscaling", api.set_autoscaling, methods=["PUT"]),
        Route("/v1/deployments/{name}/rollout", api.rollout_status, methods=["GET"]),
        Route("/v1/deployments/{name}/rollout/pause", api.pause, methods=["POST"]),
        Route("/v1/deployments/{name}/rollout/resume", api.resume, methods=["POST"]),
        Route("/v1/deployments/{name}/rollout/undo", api.undo, methods=["POST"]),
        Route("/v1/deployments/{name}/rollout/promote", api.promote, methods=["POST"]),
        Route("/v1/deployments/{name}/rollout/abort", api.abort, methods=["POST"]),
        Route("/v1/deployments/{name}/rollout/retry", api.retry, methods=["POST"]),
        Route("/v1/analysistemplates", api.list_templates, methods=["GET"]),
        Route("/v1/analysistemplates/{name}", api.get_template, methods=["GET"]),
        Route("/v1/analysistemplates/{name}", api.put_template, methods=["PUT"]),
        Route("/v1/analysistemplates/{name}", api.delete_template, methods=["DELETE"]),
        Route("/v1/triggers", api.list_triggers, methods=["GET"]),
        Route("/v1/triggers/{name}", api.get_trigger, methods=["GET"]),
        Route("/v1/triggers/{name}", api.put_trigger, methods=["PUT"]),
        Route("/v1/triggers/{name}", api.delete_trigger, methods=["DELETE"]),
        Route("/v1/triggers/{name}/history", api.trigger_history, methods=["GET"]),
        Route("/v1/monitors", api.list_monitors, methods=["GET"]),
        Route("/v1/monitors/{name}", api.get_monitor, methods=["GET"]),
        Route("/v1/monitors/{name}", api.put_monitor, methods=["PUT"]),
        Route("/v1/monitors/{name}", api.delete_monitor, methods=["DELETE"]),
        Route("/v1/monitors/{name}/windows", api.monitor_windows, methods=["GET"]),
        Route("/v1/deployments/{name}/revisions", api.revisions, methods=["GET"]),
        Route("/v1/deployments/{name}/replicas", api.deployment_replicas, methods=["GET"]),
        Route("/v1/deployments/{name}/events", api.events, methods=["GET"]),
        Route("/v1/replicas", api.all_replicas, methods=["GET"]),
        Route("/v1/replicas/{replica_id}/log", api.replica_log, methods=["GET"]),
    ]

    async def on_loopline_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, LooplineError):
            return error_response(exc)
        raise exc

    async def on_error(request: Request, exc: Exception) -> Response:
        log.exception("Unexpected error in %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "error": "The control plane failed unexpectedly; see its log "
                "($LOOPLINE_HOME/controlplane/controlplane.log).",
                "reason": "InternalError",
            },
            status_code=500,
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        reason = "MethodNotAllowed" if code == 405 else "NotFound"
        return JSONResponse(
            {"error": f"No route {request.method} {request.url.path}; see /openapi.json.",
             "reason": reason},
            status_code=code,
        )  # fmt: skip

    app = Starlette(
        routes=routes,
        exception_handlers={
            LooplineError: on_loopline_error,
            Exception: on_error,
            404: not_found,
            405: not_found,
        },
    )
    app.add_middleware(AccessControl, token=token, allowed_hosts=hosts)
    return app


class _Api:
    """Route handlers; blocking store calls run on the thread pool."""

    def __init__(self, service: ControlPlane) -> None:
        self.s = service

    async def healthz(self, request: Request) -> Response:
        return FiniteJSONResponse(
            {"status": "ok", "version": __version__, **self.s.controllers_status()}
        )

    async def openapi(self, request: Request) -> Response:
        return FiniteJSONResponse(openapi_document())

    async def list_deployments(self, request: Request) -> Response:
        items = await run_in_threadpool(self.s.list_deployments)
        body: dict[str, Any] = {"items": items}
        unreadable = self.s.store.unreadable()
        if unreadable:
            body["unreadable"] = [{"name": n, "error": e} for n, e in sorted(unreadable.items())]
        return FiniteJSONResponse(body)

    async def get_deployment(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.get_deployment, name))

    async def create_deployment(self, request: Request) -> Response:
        doc = await _body(request, "Deployment")
        view, outcome = await run_in_threadpool(
            lambda: self.s.apply(doc, create_only=True, cause=_cause(request, "create"))
        )
        return FiniteJSONResponse({"outcome": outcome, "deployment": view}, status_code=201)

    async def put_deployment(self, request: Request) -> Response:
        doc = await _named_body(request, "Deployment", "deployments")
        view, outcome = await run_in_threadpool(
            lambda: self.s.apply(doc, cause=_cause(request, "apply"))
        )
        return FiniteJSONResponse(
            {"outcome": outcome, "deployment": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_deployment(self, request: Request) -> Response:
        name = _name(request)
        await run_in_threadpool(self.s.delete, name)
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def scale(self, request: Request) -> Response:
        name = _name(request)
        body = await _object(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.scale, name, body.get("replicas")))

    async def set_model(self, request: Request) -> Response:
        name = _name(request)
        body = await _object(request)
        cause = _cause(request, f"set model {body.get('model')}")
        return FiniteJSONResponse(
            await run_in_threadpool(self.s.set_model, name, body.get("model"), cause)
        )

    async def rollout_status(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.rollout_status, name))

    async def pause(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.set_paused, name, True))

    async def resume(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.set_paused, name, False))

    async def undo(self, request: Request) -> Response:
        name = _name(request)
        body = await _object(request, allow_empty=True)
        view, skipped = await run_in_threadpool(self.s.undo, name, body.get("toRevision", 0))
        return FiniteJSONResponse({"skipped": skipped, "deployment": view})

    async def set_autoscaling(self, request: Request) -> Response:
        name = _name(request)
        body = await _object(request)
        if "autoscaling" not in body:
            raise InvalidInputError(
                "The body needs 'autoscaling': the spec.autoscaling block, or null to remove it."
            )
        block = body["autoscaling"]
        return FiniteJSONResponse(await run_in_threadpool(self.s.set_autoscaling, name, block))

    async def promote(self, request: Request) -> Response:
        name = _name(request)
        body = await _object(request, allow_empty=True)
        full = body.get("full", False)
        if not isinstance(full, bool):
            raise InvalidInputError(f"full = {full!r} is invalid: it must be true or false.")
        return FiniteJSONResponse(await run_in_threadpool(self.s.promote, name, full))

    async def abort(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.abort, name))

    async def retry(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.retry, name))

    async def list_templates(self, request: Request) -> Response:
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.list_templates)})

    async def get_template(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.get_template, name))

    async def put_template(self, request: Request) -> Response:
        doc = await _named_body(request, "AnalysisTemplate", "analysistemplates")
        view, outcome = await run_in_threadpool(self.s.apply_template, doc)
        return FiniteJSONResponse(
            {"outcome": outcome, "template": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_template(self, request: Request) -> Response:
        name = _name(request)
        await run_in_threadpool(self.s.delete_template, name)
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def list_triggers(self, request: Request) -> Response:
        items = await run_in_threadpool(lambda: self.s.triggers().list())
        return FiniteJSONResponse({"items": items})

    async def get_trigger(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(lambda: self.s.triggers().get(name)))

    async def put_trigger(self, request: Request) -> Response:
        doc = await _named_body(request, "Trigger", "triggers")
        view, outcome = await run_in_threadpool(lambda: self.s.triggers().apply(doc))
        return FiniteJSONResponse(
            {"outcome": outcome, "trigger": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_trigger(self, request: Request) -> Response:
        name = _name(request)
        await run_in_threadpool(lambda: self.s.triggers().delete(name))
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def trigger_history(self, request: Request) -> Response:
        name = _name(request)
        limit = _int_param(request, "limit")
        items = await run_in_threadpool(lambda: self.s.triggers().history(name, limit))
        return FiniteJSONResponse({"items": items})

    async def list_monitors(self, request: Request) -> Response:
        items = await run_in_threadpool(lambda: self.s.monitors().list())
        return FiniteJSONResponse({"items": items})

    async def get_monitor(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse(await run_in_threadpool(lambda: self.s.monitors().get(name)))

    async def put_monitor(self, request: Request) -> Response:
        doc = await _named_body(request, "Monitor", "monitors")
        view, outcome = await run_in_threadpool(lambda: self.s.monitors().apply(doc))
        return FiniteJSONResponse(
            {"outcome": outcome, "monitor": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_monitor(self, request: Request) -> Response:
        name = _name(request)
        await run_in_threadpool(lambda: self.s.monitors().delete(name))
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def monitor_windows(self, request: Request) -> Response:
        name = _name(request)
        limit = _int_param(request, "limit")
        version = request.query_params.get("version")
        items = await run_in_threadpool(
            lambda: self.s.monitors().windows(name, version=version, limit=limit)
        )
        return FiniteJSONResponse({"items": items})

    async def revisions(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.revisions, name)})

    async def deployment_replicas(self, request: Request) -> Response:
        name = _name(request)
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.replicas, name)})

    async def all_replicas(self, request: Request) -> Response:
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.replicas, None)})

    async def events(self, request: Request) -> Response:
        name = _name(request)
        limit = _int_param(request, "limit")
        items = await run_in_threadpool(self.s.list_events, name, limit)
        return FiniteJSONResponse({"items": items})

    async def replica_log(self, request: Request) -> Response:
        replica_id = request.path_params["replica_id"]
        tail = _int_param(request, "tail")
        text = await run_in_threadpool(self.s.replica_log, replica_id, tail)
        return PlainTextResponse(text)


def _name(request: Request) -> str:
    return check_spec_name(request.path_params["name"])


def _cause(request: Request, default: str) -> str:
    cause = request.headers.get("x-loopline-cause", "").strip()
    return cause[:200] if cause else default


def _int_param(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None:
        return None
    if not is_ascii_digits(raw, most=9):
        raise InvalidInputError(
            f"Query parameter {key}={raw!r} is invalid: use an integer from 0 to 999999999 "
            "in ASCII digits."
        )
    return int(raw)


async def _body(request: Request, kind: str = "") -> Any:
    """The JSON body; NaN and ±Infinity (which Python's ``json`` reads) are refused, naming
    the field (as ``{kind} field …`` when the body is an object of that kind)."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInputError(
            f"The request body has {len(raw)} bytes; the control plane accepts at most "
            f"{MAX_BODY_BYTES}."
        )
    if not raw.strip():
        raise InvalidInputError("The request body is empty; send a JSON object.")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError(f"The request body is not valid JSON: {exc}.") from None
    bad = non_finite(doc)
    if bad is not None:
        where = f"{kind} field {bad[0]}" if kind else f"The request body's field {bad[0]}"
        error = InvalidDefinitionError if kind else InvalidInputError
        raise error(f"{where} = {bad[1]!r} is invalid: it {FINITE}.")
    return doc


async def _named_body(request: Request, kind: str, collection: str) -> Any:
    """The body of a PUT to ``/v1/<collection>/<name>``: its ``metadata.name`` must be the
    URL's name."""
    name = _name(request)
    doc = await _body(request, kind)
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    given = meta.get("name") if isinstance(meta, dict) else None
    if given != name:
        raise InvalidDefinitionError(
            f"{kind} field metadata.name = {given!r} does not match the URL's name {name!r}; "
            f"send the object to /v1/{collection}/{given}."
        )
    return doc


async def _object(request: Request, allow_empty: bool = False) -> dict[str, Any]:
    if allow_empty and not (await request.body()).strip():
        return {}
    body = await _body(request)
    if not isinstance(body, dict):
        raise InvalidInputError(f"The request body must be a JSON object, not {body!r}.")
    return body
