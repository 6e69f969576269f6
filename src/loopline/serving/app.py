"""The model server as a lean ASGI application (no framework on the hot path).

Routes (``m`` = model name, ``v`` = version number or alias):

- Open Inference Protocol V2: ``GET /v2/health/live``, ``/v2/health/ready``, ``/v2``,
  ``/v2/models``, ``/v2/models/{m}[/versions/{v}]``, ``…/ready``; ``POST …/infer``;
  ``POST …/feedback`` (loopline extension: ground-truth labels by request id).
- MLflow: ``POST /invocations``, ``GET /ping``, ``/health``, ``/version``.
- KServe V1 and TF Serving: ``GET /v1/models``, ``/v1/models/{m}``;
  ``POST /v1/models/{m}[/versions/{v}|/labels/{l}]:predict``.
- ``GET /metrics`` (Prometheus).
- Model repository extension: ``POST /v2/repository/index``,
  ``POST /v2/repository/models/{m}/load`` and ``…/unload`` (:mod:`.repository_control`).

Inference itself (decode, predict, encode, the error answers) is :mod:`.inference`; which model
a path names is :mod:`.routes`.

Status codes: 400 bad input (naming the field), 404 unknown model/version/route, 405 wrong
method, 413 body too large, 503 not ready or overloaded (with Retry-After). A 500 is only for
a bug in a model, answered with the request id and never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import orjson

from loopline import __version__
from loopline.bundle import Batch
from loopline.errors import InvalidInputError
from loopline.serving import protocols
from loopline.serving.batcher import Outputs
from loopline.serving.feedback import feedback_records, log_feedback
from loopline.serving.http import (
    BodyTooLarge,
    ClientDisconnected,
    HttpError,
    Receive,
    Scope,
    Send,
    SendFailed,
    error_body,
    read_body,
    read_json,
    respond,
)
from loopline.serving.inference import Inference
from loopline.serving.metrics import Metrics, publish_snapshot, read_snapshots
from loopline.serving.model_table import Entry, ModelTable
from loopline.serving.options import ServedModel, ServerOptions
from loopline.serving.prediction_log import SegmentWriter
from loopline.serving.repository_control import RepositoryControl
from loopline.serving.repository_endpoint import handle_repository
from loopline.serving.routes import v1_entry, v2_entry

log = logging.getLogger(__name__)

_LIVE = orjson.dumps({"live": True})
_RETRY_SOON = [(b"retry-after", b"1")]  # every 503 says why and when to retry
_METRICS_PERIOD_S = 1.0
_SEND_FAILED_LOG_PERIOD_S = 60.0  # a failed send is logged at most once a minute, with a count


class ModelServerApp:
    """ASGI app serving ``models`` (see module docstring). Build with :func:`create_app`."""

    def __init__(self, models: Sequence[ServedModel], options: ServerOptions) -> None:
        self.options = options
        self.metrics = Metrics()
        self.inference = Inference(self.metrics, options)
        self.table = ModelTable(models, allow_empty=options.repository is not None)
        self.shutting_down = False
        self._started = False
        self._pred_log: SegmentWriter | None = None
        self._feedback_log: SegmentWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._send_failed_logged_at: float | None = None
        self._send_failed_unlogged = 0
        for entry in self.table.entries:
            self.metrics.ready.set(entry.labels, 0.0)
            if entry.served.batching:
                entry.batcher = self.inference.make_batcher(entry)
        make_batcher = self.inference.make_batcher
        self.repository = RepositoryControl(
            self.table, self.metrics, options.repository, options.worker_id, make_batcher
        )

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """True when every model is warmed up and the server is not shutting down."""
        return self._started and not self.shutting_down and all(e.ready for e in self.table.entries)

    def begin_shutdown(self) -> None:
        """Turn readiness false (first step of a graceful shutdown)."""
        self.shutting_down = True
        for entry in self.table.entries:
            self.metrics.ready.set(entry.labels, 0.0)

    async def startup(self) -> None:
        """Warm up every model (readiness gate), start log writers and metric publishing."""
        for entry in self.table.entries:
            try:
                model = entry.served.model
                out = model.predict(model.example_batch())
                if not out:
                    raise InvalidInputError("the warm-up returned no outputs")
            except Exception:
                log.exception(
                    "Warm-up of model %s version %s failed; it stays not ready.",
                    entry.served.name,
                    entry.served.version,
                )
                continue
            entry.ready = True
            self.metrics.ready.set(entry.labels, 1.0)
        lo = self.options.log
        if lo is not None:
            self._pred_log = SegmentWriter(
                lo.directory,
                "predictions",
                lo,
                rotates=self.options.worker_id == "0",  # one rotating writer per server
                on_written=lambda n: self.metrics.log_written.inc(("predictions",), n),
                on_dropped=lambda n: self.metrics.log_dropped.inc(("predictions",), n),
                on_rotated=lambda reason, n: self.metrics.log_rotated.inc((reason.value,), n),
            )
            self._feedback_log = SegmentWriter(
                lo.directory,
                "feedback",
                lo,
                on_written=lambda n: self.metrics.log_written.inc(("feedback",), n),
                on_dropped=lambda n: self.metrics.log_dropped.inc(("feedback",), n),
            )
            self._pred_log.start()
            self.inference.pred_log = self._pred_log
            self._feedback_log.start()
        if self.options.metrics_dir is not None:
            self.options.metrics_dir.mkdir(parents=True, exist_ok=True)
            self._tasks.append(asyncio.create_task(self._publish_metrics()))
        await self.repository.start()  # the models other workers loaded or unloaded
        self._started = True

    async def shutdown(self) -> None:
        self.begin_shutdown()
        await self.repository.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for entry in self.table.entries:
            if entry.batcher is not None:
                await asyncio.to_thread(entry.batcher.close)
        for writer in (self._pred_log, self._feedback_log):
            if writer is not None:
                await asyncio.to_thread(writer.close)
        self._publish_once()

    def _publish_once(self) -> None:
        if self.options.metrics_dir is not None:
            try:
                publish_snapshot(
                    self.options.metrics_dir, self.options.worker_id, self.metrics.snapshot()
                )
            except OSError:
                log.warning("Could not publish metrics to %s.", self.options.metrics_dir)

    async def _publish_metrics(self) -> None:
        while True:
            await asyncio.sleep(_METRICS_PERIOD_S)
            self._publish_once()

    # ------------------------------------------------------------------- ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                await self._http(scope, receive, send)
            except SendFailed as exc:
                self._send_failed(exc, time.monotonic())
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _send_failed(self, exc: SendFailed, now: float) -> None:
        """Count a response that could not be sent; log it (one line, no traceback) at most
        once per period, so a client cannot fill the log."""
        self.metrics.send_failed.inc(())
        self._send_failed_unlogged += 1
        last = self._send_failed_logged_at
        if last is None or now - last >= _SEND_FAILED_LOG_PERIOD_S:
            log.warning(
                "Could not send %d response(s) since the last report: %s",
                self._send_failed_unlogged,
                exc,
            )
            self._send_failed_logged_at = now
            self._send_failed_unlogged = 0

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        protocol = "mlflow" if path == "/invocations" else "v2"
        try:
            if method == "POST":
                with contextlib.suppress(ClientDisconnected):
                    await self._post(path, scope, receive, send)
            elif method in ("GET", "HEAD"):
                await self._get(path, send)
            else:
                raise HttpError(405, f"Method {method} is not allowed on {path}.")
        except HttpError as exc:
            await respond(send, exc.status, error_body(protocol, exc.status, str(exc)), exc.headers)

    def _not_ready(self, entry: Entry | None = None) -> str:
        """Why the server (or ``entry``) is not ready: the sentence of its 503."""
        if self.shutting_down:
            return "The server is shutting down; send requests to another replica."
        if not self._started:
            return "The server is starting: its models are warming up."
        entries = [entry] if entry is not None else self.table.entries
        for e in entries:
            if not e.ready:
                return (
                    f"Model {e.served.name!r} version {e.served.version} is not ready: it "
                    "failed its warm-up or is still loading (the server log says which)."
                )
        return "The server is not ready."

    # -------------------------------------------------------------------- GET
    async def _get(self, path: str, send: Send) -> None:
        if path == "/v2/health/live":
            return await respond(send, 200, _LIVE)
        if path in ("/v2/health/ready", "/ping", "/health"):
            if self.ready:
                body = orjson.dumps({"ready": True}) if path == "/v2/health/ready" else b"\n"
                return await respond(send, 200, body)
            why = {"error": self._not_ready()}
            body = orjson.dumps({"ready": False, **why} if path == "/v2/health/ready" else why)
            return await respond(send, 503, body, _RETRY_SOON)
        if path == "/v2":
            return await respond(
                send,
                200,
                orjson.dumps(
                    {
                        "name": self.options.server_name,
                        "version": __version__,
                        "extensions": [
                            "model_repository",
                            "model_repository_versions",
                            "feedback",
                            "binary_tensor_data",
                        ],
                    }
                ),
            )
        if path in ("/v2/models", "/v1/models"):
            return await respond(send, 200, orjson.dumps({"models": self.table.names()}))
        if path == "/version":
            return await respond(
                send, 200, __version__.encode(), [(b"content-type", b"text/plain")]
            )
        if path == "/metrics":
            others = []
            if self.options.metrics_dir is not None:
                others = read_snapshots(self.options.metrics_dir, self.options.worker_id)
            return await respond(
                send,
                200,
                self.metrics.render(others),
                [(b"content-type", b"text/plain; version=0.0.4")],
            )
        if path.startswith("/v2/repository/"):
            raise HttpError(405, f"Use POST for {path}.")
        if path.startswith("/v2/models/"):
            entry, rest = v2_entry(self.table, path)
            if rest == "":
                versions = self.table.versions(entry.served.name)
                sig = entry.served.model.signature
                return await respond(
                    send, 200, protocols.v2_metadata(entry.served.name, versions, sig)
                )
            if rest == "ready":
                name = entry.served.name
                if entry.ready and not self.shutting_down:
                    return await respond(send, 200, orjson.dumps({"name": name, "ready": True}))
                reason = self._not_ready(entry)
                body = orjson.dumps({"name": name, "ready": False, "error": reason})
                return await respond(send, 503, body, _RETRY_SOON)
            raise HttpError(404, f"No such endpoint {path}.")
        if path.startswith("/v1/models/"):
            entry, suffix = v1_entry(self.table, path)
            if suffix:
                raise HttpError(404, f"No such endpoint {path}.")
            ok = entry.ready and not self.shutting_down
            return await respond(send, 200, orjson.dumps({"name": entry.served.name, "ready": ok}))
        raise HttpError(404, f"No such endpoint {path}.")

    # ------------------------------------------------------------------- POST
    async def _post(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        if path.startswith("/v2/repository/"):
            return await handle_repository(self.repository, path, scope, receive, send)
        if path == "/invocations":
            entry = self.table.default_entry()
            if entry is None:
                raise HttpError(404, "This server serves several models; use /v2/models/{m}/infer.")
            with entry:  # counted in flight: an unload waits for it
                return await self._infer(entry, "mlflow", scope, receive, send)
        if path.startswith("/v2/models/"):
            entry, rest = v2_entry(self.table, path)
            if rest == "infer":
                with entry:
                    return await self._infer(entry, "v2", scope, receive, send)
            if rest == "feedback":
                return await self._feedback(entry, scope, receive, send)
            raise HttpError(
                404 if rest not in ("", "ready") else 405, f"No such endpoint POST {path}."
            )
        if path.startswith("/v1/models/"):
            entry, verb = v1_entry(self.table, path)
            if verb != "predict":
                raise HttpError(404, f"No such endpoint POST {path}; use :predict.")
            with entry:
                return await self._infer(entry, "v1", scope, receive, send)
        raise HttpError(404, f"No such endpoint POST {path}.")

    async def _infer(
        self, entry: Entry, protocol: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        limit = self.options.max_body_bytes
        status, payload, headers = await self.inference.infer(
            entry, protocol, lambda: read_body(scope, receive, limit)
        )
        await respond(send, status, payload, headers)

    async def _feedback(self, entry: Entry, scope: Scope, receive: Receive, send: Send) -> None:
        writer = self._feedback_log
        try:
            if writer is None:
                raise HttpError(
                    404, "Feedback is off: start the server with a log directory (--log-dir)."
                )
            body, _ = await read_json(scope, receive, self.options.max_body_bytes)
            records = feedback_records(body, entry)
        except InvalidInputError as exc:
            return await respond(send, 400, error_body("v2", 400, str(exc)))
        except BodyTooLarge:
            return await respond(
                send, 413, error_body("v2", 413, "The feedback body is too large.")
            )
        status, payload, headers = log_feedback(records, writer)
        await respond(send, status, payload, headers)

    # ------------------------------------------- the inference core, for other transports
    async def predict(self, entry: Entry, batch: Batch, rows: int) -> Outputs:
        """``batch`` through ``entry``'s batching queue, or straight to its model (the gRPC
        service calls this, as the inference core does).

        Raises:
            Overloaded: the batching queue refused or shed the request.
        """
        return await self.inference.predict(entry, batch, rows)

    def log_prediction(
        self, rid: str, served: ServedModel, batch: Batch, rows: int, outputs: Outputs
    ) -> None:
        """Offer one answered request to the prediction log (sampled; never blocks)."""
        self.inference.log_prediction(rid, served, batch, rows, outputs)


def create_app(
    models: Sequence[ServedModel], *, options: ServerOptions | None = None
) -> ModelServerApp:
    """Build the ASGI app serving ``models`` (already loaded) with explicit ``options``.

    Raises:
        InvalidInputError: no models, or two served models claim the same name and version/alias.
    """
    return ModelServerApp(models, options or ServerOptions())


__all__ = ["ModelServerApp", "create_app"]
