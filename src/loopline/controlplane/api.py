"""The control plane's REST API (Starlette): the app and the routes' handlers (the route
table, with each route's types, is :func:`loopline.controlplane.routes.api_endpoints`).

Access (:mod:`loopline.controlplane.access`): the ``Host`` must be on the allow-list (421
otherwise); every mutating request (POST, PUT, PATCH, DELETE) needs ``Authorization: Bearer
<token>``; reads are open only when client and ``Host`` are both loopback. Errors are
``{"error": <sentence>, "reason": <kind>}`` (plus ``field`` when a spec field is at fault)
with a 4xx code (:mod:`loopline.controlplane.responses`); an unexpected failure is a 500
with a generic message, never a traceback. Requests are read by
:mod:`loopline.controlplane.bodies`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from loopline import __version__
from loopline.controlplane.access import AccessControl, normalise_hosts
from loopline.controlplane.bodies import (
    change_cause,
    int_param,
    json_object,
    named_body,
    path_name,
    read_body,
)
from loopline.controlplane.openapi import EXTRA_SCHEMAS, Endpoint, openapi_document
from loopline.controlplane.responses import FiniteJSONResponse, error_response
from loopline.controlplane.routes import api_endpoints
from loopline.controlplane.service import ControlPlane
from loopline.errors import InvalidInputError, LooplineError, shown

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    service: ControlPlane,
    *,
    token: str,
    allowed_hosts: Iterable[str] = (),
    console: ASGIApp | None = None,
) -> Starlette:
    """The ASGI app of the control plane over ``service``, guarded by ``token`` and the
    ``Host`` allow-list (loopback names plus ``allowed_hosts``; see
    :mod:`loopline.controlplane.access`). ``console`` (the web console,
    :func:`loopline.ui.create_console`) is mounted at ``/ui`` behind the Host check; it
    checks its own sessions.

    Raises:
        ValueError: an entry of ``allowed_hosts`` is not a host name.
    """
    hosts = normalise_hosts(allowed_hosts)
    api = ApiHandlers(service)
    api.endpoints = api_endpoints(api)
    routes: list[BaseRoute] = [
        Route(e.path, e.handler, methods=list(e.methods)) for e in api.endpoints
    ]
    if console is not None:
        routes.append(Mount("/ui", app=console))

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
    app.add_middleware(
        AccessControl,
        token=token,
        allowed_hosts=hosts,
        own_auth_prefix="/ui" if console is not None else None,
    )
    return app


class ApiHandlers:
    """Route handlers; blocking store calls run on the thread pool."""

    def __init__(self, service: ControlPlane) -> None:
        self.s = service
        self.endpoints: list[Endpoint] = []

    async def healthz(self, request: Request) -> Response:
        return FiniteJSONResponse(
            {"status": "ok", "version": __version__, **self.s.controllers_status()}
        )

    async def openapi(self, request: Request) -> Response:
        return FiniteJSONResponse(openapi_document(self.endpoints, EXTRA_SCHEMAS))

    async def list_deployments(self, request: Request) -> Response:
        items = await run_in_threadpool(self.s.list_deployments)
        body: dict[str, Any] = {"items": items}
        unreadable = self.s.store.unreadable()
        if unreadable:
            body["unreadable"] = [{"name": n, "error": e} for n, e in sorted(unreadable.items())]
        return FiniteJSONResponse(body)

    async def get_deployment(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.get_deployment, name))

    async def create_deployment(self, request: Request) -> Response:
        doc = await read_body(request, "Deployment")
        view, outcome = await run_in_threadpool(
            lambda: self.s.apply(doc, create_only=True, cause=change_cause(request, "create"))
        )
        return FiniteJSONResponse({"outcome": outcome, "deployment": view}, status_code=201)

    async def put_deployment(self, request: Request) -> Response:
        doc = await named_body(request, "Deployment", "deployments")
        view, outcome = await run_in_threadpool(
            lambda: self.s.apply(doc, cause=change_cause(request, "apply"))
        )
        return FiniteJSONResponse(
            {"outcome": outcome, "deployment": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_deployment(self, request: Request) -> Response:
        name = path_name(request)
        await run_in_threadpool(self.s.delete, name)
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def scale(self, request: Request) -> Response:
        name = path_name(request)
        body = await json_object(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.scale, name, body.get("replicas")))

    async def set_model(self, request: Request) -> Response:
        name = path_name(request)
        body = await json_object(request)
        cause = change_cause(request, f"set model {body.get('model')}")
        return FiniteJSONResponse(
            await run_in_threadpool(self.s.set_model, name, body.get("model"), cause)
        )

    async def rollout_status(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.rollout_status, name))

    async def pause(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.set_paused, name, True))

    async def resume(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.set_paused, name, False))

    async def undo(self, request: Request) -> Response:
        name = path_name(request)
        body = await json_object(request, allow_empty=True)
        view, skipped = await run_in_threadpool(self.s.undo, name, body.get("toRevision", 0))
        return FiniteJSONResponse({"skipped": skipped, "deployment": view})

    async def set_autoscaling(self, request: Request) -> Response:
        name = path_name(request)
        body = await json_object(request)
        if "autoscaling" not in body:
            raise InvalidInputError(
                "The body needs 'autoscaling': the spec.autoscaling block, or null to remove it."
            )
        block = body["autoscaling"]
        return FiniteJSONResponse(await run_in_threadpool(self.s.set_autoscaling, name, block))

    async def promote(self, request: Request) -> Response:
        name = path_name(request)
        body = await json_object(request, allow_empty=True)
        full = body.get("full", False)
        if not isinstance(full, bool):
            raise InvalidInputError(f"full = {shown(full)} is invalid: it must be true or false.")
        return FiniteJSONResponse(await run_in_threadpool(self.s.promote, name, full))

    async def abort(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.abort, name))

    async def retry(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.retry, name))

    async def list_templates(self, request: Request) -> Response:
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.list_templates)})

    async def get_template(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(self.s.get_template, name))

    async def put_template(self, request: Request) -> Response:
        doc = await named_body(request, "AnalysisTemplate", "analysistemplates")
        view, outcome = await run_in_threadpool(self.s.apply_template, doc)
        return FiniteJSONResponse(
            {"outcome": outcome, "template": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_template(self, request: Request) -> Response:
        name = path_name(request)
        await run_in_threadpool(self.s.delete_template, name)
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def list_triggers(self, request: Request) -> Response:
        items = await run_in_threadpool(lambda: self.s.triggers().list())
        return FiniteJSONResponse({"items": items})

    async def get_trigger(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(lambda: self.s.triggers().get(name)))

    async def put_trigger(self, request: Request) -> Response:
        doc = await named_body(request, "Trigger", "triggers")
        view, outcome = await run_in_threadpool(lambda: self.s.triggers().apply(doc))
        return FiniteJSONResponse(
            {"outcome": outcome, "trigger": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_trigger(self, request: Request) -> Response:
        name = path_name(request)
        await run_in_threadpool(lambda: self.s.triggers().delete(name))
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def trigger_history(self, request: Request) -> Response:
        name = path_name(request)
        limit = int_param(request, "limit")
        items = await run_in_threadpool(lambda: self.s.triggers().history(name, limit))
        return FiniteJSONResponse({"items": items})

    async def list_monitors(self, request: Request) -> Response:
        items = await run_in_threadpool(lambda: self.s.monitors().list())
        return FiniteJSONResponse({"items": items})

    async def get_monitor(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse(await run_in_threadpool(lambda: self.s.monitors().get(name)))

    async def put_monitor(self, request: Request) -> Response:
        doc = await named_body(request, "Monitor", "monitors")
        view, outcome = await run_in_threadpool(lambda: self.s.monitors().apply(doc))
        return FiniteJSONResponse(
            {"outcome": outcome, "monitor": view},
            status_code=201 if outcome == "created" else 200,
        )

    async def delete_monitor(self, request: Request) -> Response:
        name = path_name(request)
        await run_in_threadpool(lambda: self.s.monitors().delete(name))
        return FiniteJSONResponse({"outcome": "deleted", "name": name})

    async def monitor_windows(self, request: Request) -> Response:
        name = path_name(request)
        limit = int_param(request, "limit")
        version = request.query_params.get("version")
        items = await run_in_threadpool(
            lambda: self.s.monitors().windows(name, version=version, limit=limit)
        )
        return FiniteJSONResponse({"items": items})

    async def revisions(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.revisions, name)})

    async def deployment_replicas(self, request: Request) -> Response:
        name = path_name(request)
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.replicas, name)})

    async def all_replicas(self, request: Request) -> Response:
        return FiniteJSONResponse({"items": await run_in_threadpool(self.s.replicas, None)})

    async def events(self, request: Request) -> Response:
        name = path_name(request)
        limit = int_param(request, "limit")
        items = await run_in_threadpool(self.s.list_events, name, limit)
        return FiniteJSONResponse({"items": items})

    async def replica_log(self, request: Request) -> Response:
        replica_id = request.path_params["replica_id"]
        tail = int_param(request, "tail")
        text = await run_in_threadpool(self.s.replica_log, replica_id, tail)
        return PlainTextResponse(text)
