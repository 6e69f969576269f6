"""The console's ASGI app: routes, who may read and act, live updates, security headers.

Mounted at ``/ui`` by the control plane's app (``create_app(..., console=...)``), behind the
same ``Host`` allow-list. Then:

- **Reads** need a signed-in session, or a loopback client talking to a loopback ``Host``
  (the API's rule for tokenless reads). Otherwise a page answers 401 with the sign-in form.
- **Actions** (POST) need a session (401 otherwise) and its CSRF token in ``X-CSRF-Token`` or
  the ``csrf`` field (403 otherwise). Without a session the console is read-only: buttons are
  disabled and say why. Each action calls the ControlPlane operation its API route calls and
  answers a ``role=status`` fragment with the equivalent CLI command.
- **Live.** A page holds one SSE stream (``/ui/live/...``): the server re-reads its live block
  every :data:`LIVE_INTERVAL` seconds and sends it when it changed (``event: update``), so a
  change reaches the page within about half a second; on the Kubernetes engine every
  :data:`KUBERNETES_LIVE_INTERVAL` seconds (a deployment page is ~30 requests to the cluster's
  API server, which the control plane's own loop needs too). ``?max_events=N`` ends a stream
  after N updates (tests).
- **Headers.** ``Content-Security-Policy: default-src 'self'; script-src 'self'`` (no inline
  script anywhere; data for scripts travels in ``<script type="application/json">``),
  ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``, ``nosniff``, and ``no-store``
  on pages.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopline.controlplane import ControlPlane
from loopline.controlplane.access import host_name, is_loopback_name
from loopline.controlplane.responses import error_response
from loopline.errors import InvalidInputError, LooplineError, NotFoundError, shown
from loopline.types import check_name
from loopline.ui.actions import VERBS, alias_command, cli_command, form_int
from loopline.ui.artifacts import artifact_filter, artifacts_page
from loopline.ui.deployments import KUBERNETES
from loopline.ui.monitoring import window_param
from loopline.ui.paging import after_id, after_name
from loopline.ui.reads import ConsoleReads
from loopline.ui.render import render_block, render_page
from loopline.ui.runs import compared_ids, log_lines
from loopline.ui.session import COOKIE, CSRF_FIELD, CSRF_HEADER, Session, SessionKeys

STATIC = Path(__file__).parent / "static"
LIVE_INTERVAL = 0.25
KUBERNETES_LIVE_INTERVAL = 1.0
PING_EVERY = 15.0
MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

Handler = Callable[[Request], Awaitable[Response]]


def create_console(
    service: ControlPlane, *, token: str, log_directory: Path | None = None
) -> ASGIApp:
    """The console over ``service``; sessions are signed with the control plane's ``token``;
    ``log_directory`` holds the replicas' prediction logs (the Lineage screen's
    ``prediction/<id>`` references; None: those answer 404 saying so)."""
    console = _Console(ConsoleReads(service, log_directory), SessionKeys(token), service)
    c = console
    routes = [
        Route("/", c.page(c.overview), methods=["GET"]),
        Route("/deployments/{name}", c.page(c.deployment), methods=["GET"]),
        Route("/deployments/{name}/actions/{verb}", c.act(c.deployment_action), methods=["POST"]),
        Route("/models", c.page(c.models), methods=["GET"]),
        Route("/models/{name}", c.page(c.model), methods=["GET"]),
        Route("/models/{name}/aliases", c.act(c.alias_move), methods=["POST"]),
        Route("/runs", c.page(c.runs), methods=["GET"]),
        Route("/runs/{run_id}", c.page(c.run), methods=["GET"]),
        Route("/compare", c.page(c.compare), methods=["GET"]),
        Route("/artifacts", c.page(c.artifacts), methods=["GET"]),
        Route("/lineage", c.page(c.lineage), methods=["GET"]),
        Route("/monitors", c.page(c.monitors), methods=["GET"]),
        Route("/monitors/{name}", c.page(c.monitor), methods=["GET"]),
        Route("/live/overview", c.page(c.live_overview), methods=["GET"]),
        Route("/live/deployments/{name}", c.page(c.live_deployment), methods=["GET"]),
        Route("/live/runs/{run_id}", c.page(c.live_run), methods=["GET"]),
        Route("/live/monitors", c.page(c.live_monitors), methods=["GET"]),
        Route("/live/monitors/{name}", c.page(c.live_monitor), methods=["GET"]),
        Route("/login", c.login_form, methods=["GET"]),
        Route("/login", c.login, methods=["POST"]),
        Route("/logout", c.act(c.logout), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return SecurityHeaders(Starlette(routes=routes))


class SecurityHeaders:
    """ASGI middleware: the console's security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith(f"{scope.get('root_path', '')}/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _loopback_client(request: Request) -> bool:
    client = request.client
    if client is None:
        return False
    try:
        return ipaddress.ip_address(client.host).is_loopback
    except ValueError:
        return False


def _loopback(request: Request) -> bool:
    name = host_name(request.headers.get("host", ""))
    return name is not None and is_loopback_name(name) and _loopback_client(request)


class _Console:
    def __init__(self, reads: ConsoleReads, keys: SessionKeys, service: ControlPlane) -> None:
        self.reads = reads
        self.keys = keys
        self.s = service
        kubernetes = reads.deployments.engine == KUBERNETES
        self.interval = KUBERNETES_LIVE_INTERVAL if kubernetes else LIVE_INTERVAL

    # ---- access --------------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self.keys.session(request.cookies.get(COOKIE))

    def _context(self, request: Request, **values: Any) -> dict[str, Any]:
        session = self._session(request)
        return {
            "base": request.scope.get("root_path", ""),
            "session": session,
            "csrf": session.csrf if session is not None else "",
            "path": request.url.path,
            "query": request.url.query,
            "q": quote,
            **values,
        }

    def page(self, screen: Handler) -> Handler:
        """A read: open to a session or to loopback end to end; errors as an HTML page."""

        async def handler(request: Request) -> Response:
            if self._session(request) is None and not _loopback(request):
                return self._sign_in(request, 401, "Sign in with the control plane's token "
                                     "to read the console from this address.")  # fmt: skip
            try:
                return await screen(request)
            except LooplineError as exc:
                code = error_response(exc).status_code
                html = render_page("error.html", self._context(request, message=str(exc)))
                return HTMLResponse(html, status_code=code)

        return handler

    def act(self, action: Callable[[Request, dict[str, str]], Awaitable[Response]]) -> Handler:
        """An action: a session (401) and its CSRF token (403); errors as a ``role=alert``
        fragment with the error's status."""

        async def handler(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return self._alert(request, 401, "Actions need the control plane's token: sign "
                                   "in first (the console is read-only without it).")  # fmt: skip
            try:
                form = await _form(request)
                given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD, "")
                if not given or not hmac.compare_digest(given, session.csrf):
                    return self._alert(request, 403, "The request carries no valid CSRF "
                                       "token; reload the page and try again.")  # fmt: skip
                return await action(request, form)
            except LooplineError as exc:
                return self._alert(request, error_response(exc).status_code, str(exc))

        return handler

    def _alert(self, request: Request, code: int, message: str) -> Response:
        html = render_block("fragments.html", "alert", self._context(request, message=message))
        return HTMLResponse(html, status_code=code)

    def _sign_in(
        self, request: Request, code: int, message: str, target: str | None = None
    ) -> Response:
        if target is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        ctx = self._context(request, message=message, next=target)
        return HTMLResponse(render_page("login.html", ctx), status_code=code)

    async def login_form(self, request: Request) -> Response:
        base = request.scope.get("root_path", "")
        return self._sign_in(request, 200, "", request.query_params.get("next", f"{base}/"))

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        base = request.scope.get("root_path", "")
        target = form.get("next", "")
        if not target.startswith(f"{base}/") or target.startswith("//"):
            target = f"{base}/"
        if not self.keys.token_matches(form.get("token", "")):
            return self._sign_in(request, 401, "That is not the control plane's token (see "
                                 "$LOOPLINE_HOME/controlplane/token).", target)  # fmt: skip
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            self.keys.new_cookie(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=base or "/",
        )
        return response

    async def logout(self, request: Request, form: dict[str, str]) -> Response:
        base = request.scope.get("root_path", "")
        response = RedirectResponse(f"{base}/", status_code=303)
        response.delete_cookie(COOKIE, path=base or "/", httponly=True, samesite="strict")
        response.headers["HX-Redirect"] = f"{base}/"
        return response

    # ---- screens -------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        ctx = await self._overview_context(request)
        return HTMLResponse(render_page("overview.html", ctx))

    async def _overview_context(self, request: Request) -> dict[str, Any]:
        after = after_name(request.query_params.get("after"))
        page = await run_in_threadpool(self.reads.overview, after)
        return self._context(request, page=page, after=after or "")

    async def deployment(self, request: Request) -> Response:
        ctx = await self._deployment_context(request)
        return HTMLResponse(render_page("deployment.html", ctx))

    async def _deployment_context(self, request: Request) -> dict[str, Any]:
        name = check_name("Deployment", request.path_params["name"])
        screen = await run_in_threadpool(self.reads.deployment, name)
        return self._context(request, name=name, d=screen)

    async def models(self, request: Request) -> Response:
        after = after_name(request.query_params.get("after"))
        page = await run_in_threadpool(self.reads.models, after)
        return HTMLResponse(render_page("models.html", self._context(request, page=page)))

    async def model(self, request: Request) -> Response:
        name = request.path_params["name"]
        after = after_id(request.query_params.get("after"))
        screen = await run_in_threadpool(self.reads.model, name, after)
        return HTMLResponse(render_page("model.html", self._context(request, m=screen)))

    async def runs(self, request: Request) -> Response:
        after = after_id(request.query_params.get("after"))
        page = await run_in_threadpool(self.reads.runs, after)
        return HTMLResponse(render_page("runs.html", self._context(request, page=page)))

    async def run(self, request: Request) -> Response:
        ctx = await self._run_context(request)
        return HTMLResponse(render_page("run.html", ctx))

    async def _run_context(self, request: Request) -> dict[str, Any]:
        run_id = after_id(request.path_params["run_id"])
        if run_id is None:
            raise NotFoundError("No run ''. List runs at /ui/runs.")
        q = request.query_params
        step, tail = q.get("step") or None, log_lines(q.get("tail"))
        screen = await run_in_threadpool(self.reads.run, run_id, step, tail)
        return self._context(request, r=screen, tail=tail)

    async def artifacts(self, request: Request) -> Response:
        q = request.query_params
        chosen = artifact_filter(q.get("type") or None, q.get("run") or None)
        after = after_id(q.get("after"))
        page = await run_in_threadpool(artifacts_page, self.reads.metadata, chosen, after)
        ctx = self._context(request, page=page, f=chosen)
        return HTMLResponse(render_page("artifacts.html", ctx))

    async def compare(self, request: Request) -> Response:
        a, b = compared_ids(request.query_params.getlist("runs"))
        only = request.query_params.get("only") == "diff"
        screen = await run_in_threadpool(self.reads.compare, a, b)
        ctx = self._context(request, c=screen, only=only)
        return HTMLResponse(render_page("compare.html", ctx))

    async def monitors(self, request: Request) -> Response:
        ctx = await self._monitors_context(request)
        return HTMLResponse(render_page("monitors.html", ctx))

    async def _monitors_context(self, request: Request) -> dict[str, Any]:
        after = after_name(request.query_params.get("after"))
        raw = request.query_params.get("deployment")
        deployment = check_name("Deployment", raw) if raw else None
        page = await run_in_threadpool(self.reads.monitors, after, deployment)
        return self._context(request, page=page, deployment=deployment)

    async def monitor(self, request: Request) -> Response:
        ctx = await self._monitor_context(request)
        return HTMLResponse(render_page("monitor.html", ctx))

    async def _monitor_context(self, request: Request) -> dict[str, Any]:
        name = check_name("Monitor", request.path_params["name"])
        q = request.query_params
        window = window_param(q.get("window"))
        screen = await run_in_threadpool(
            self.reads.monitor, name, q.get("version") or None, q.get("feature") or None, window
        )
        return self._context(request, m=screen)

    async def lineage(self, request: Request) -> Response:
        ref = request.query_params.get("from", "")
        screen = await run_in_threadpool(self.reads.lineage, ref)
        return HTMLResponse(render_page("lineage.html", self._context(request, g=screen)))

    # ---- live ----------------------------------------------------------------------------

    async def live_overview(self, request: Request) -> Response:
        return self._stream(
            request, lambda: self._overview_context(request), "overview.html", "live"
        )

    async def live_deployment(self, request: Request) -> Response:
        return self._stream(
            request, lambda: self._deployment_context(request), "deployment.html", "live"
        )

    async def live_run(self, request: Request) -> Response:
        return self._stream(request, lambda: self._run_context(request), "run.html", "live")

    async def live_monitors(self, request: Request) -> Response:
        return self._stream(
            request, lambda: self._monitors_context(request), "monitors.html", "live"
        )

    async def live_monitor(self, request: Request) -> Response:
        return self._stream(
            request, lambda: self._monitor_context(request), "monitor.html", "live"
        )

    def _stream(
        self,
        request: Request,
        context: Callable[[], Awaitable[dict[str, Any]]],
        template: str,
        block: str,
    ) -> Response:
        raw = request.query_params.get("max_events")
        limit = None if raw is None else form_int({"max_events": raw}, "max_events",
                                                  minimum=1, default=None)  # fmt: skip

        async def events() -> AsyncIterator[str]:
            sent, last, quiet = 0, "", 0.0
            yield "retry: 1000\n\n"
            while limit is None or sent < limit:
                try:
                    html = render_block(template, block, await context())
                except LooplineError as exc:
                    html = render_block("fragments.html", "alert",
                                        self._context(request, message=str(exc)))  # fmt: skip
                digest = hashlib.sha256(html.encode()).hexdigest()
                if digest != last:
                    last, quiet = digest, 0.0
                    sent += 1
                    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
                    yield f"event: update\n{data}\n\n"
                    continue
                if quiet >= PING_EVERY:
                    quiet = 0.0
                    yield ": ping\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.sleep(self.interval)
                quiet += self.interval

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # ---- actions -------------------------------------------------------------------------

    async def deployment_action(self, request: Request, form: dict[str, str]) -> Response:
        name = check_name("Deployment", request.path_params["name"])
        verb = request.path_params["verb"]
        if verb not in VERBS:
            raise NotFoundError(
                f"No action {shown(verb)}; the actions are {', '.join(VERBS)}."
            )
        value: int | None = None
        call: Callable[[], object]
        if verb == "scale":
            value = form_int(form, "replicas", minimum=0, default=None)
            replicas = value
            call = lambda: self.s.scale(name, replicas)  # noqa: E731
            done = f"Scaled deployment {name} to {value} replica(s)."
        elif verb in ("pause", "resume"):
            paused = verb == "pause"
            call = lambda: self.s.set_paused(name, paused)  # noqa: E731
            done = f"{'Paused' if paused else 'Resumed'} deployment {name}."
        elif verb in ("promote", "promote-full"):
            full = verb == "promote-full"
            call = lambda: self.s.promote(name, full)  # noqa: E731
            done = f"{'Fully promoted' if full else 'Promoted'} deployment {name}."
        elif verb == "abort":
            call = lambda: self.s.abort(name)  # noqa: E731
            done = f"Aborted the rollout of {name}: all traffic back to the stable revision."
        elif verb == "retry":
            call = lambda: self.s.retry(name)  # noqa: E731
            done = f"Retrying the rollout of {name}."
        else:
            value = form_int(form, "toRevision", minimum=0, default=0)
            to = value
            call = lambda: self.s.undo(name, to)  # noqa: E731
            done = f"Rolled deployment {name} back{f' to revision {to}' if to else ''}."
        await run_in_threadpool(call)
        ctx = self._context(request, message=done, command=cli_command(verb, name, value))
        return HTMLResponse(render_block("fragments.html", "done", ctx))

    async def alias_move(self, request: Request, form: dict[str, str]) -> Response:
        model = request.path_params["name"]
        alias = check_name("Alias", form.get("alias", "").strip())
        version = form_int(form, "version", minimum=1, default=None)
        why = form.get("why", "").strip()
        if not why:
            raise InvalidInputError(
                "why is missing: say why the alias moves (it is recorded with the move)."
            )
        move = await run_in_threadpool(
            lambda: self.reads.registry.set_alias(
                model, alias, version, who="web console", why=why
            )
        )
        ctx = self._context(
            request,
            message=f"Moved {model}@{alias} from version {move.from_version or '—'} to "
            f"{move.to_version} (recorded as execution {move.execution_id}).",
            command=alias_command(model, alias, version, why),
        )
        return HTMLResponse(render_block("fragments.html", "done", ctx))


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (first value of each field; at most 64 KiB).

    Raises:
        InvalidInputError: the body is larger, or not UTF-8.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInputError(
                f"The form is larger than {MAX_FORM_BYTES} bytes; send a shorter one."
            )
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise InvalidInputError("The form is not UTF-8; send it as UTF-8.") from None
    return {k: v[0] for k, v in parsed.items()}
