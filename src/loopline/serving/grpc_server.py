"""The gRPC listener of one model-server worker (``loopline serve --grpc-port``).

A :class:`GrpcListener` runs a ``grpc.aio`` server in a thread of its own, on an event loop
of its own, beside uvicorn. A call is parsed there, then its
:class:`~loopline.serving.grpc_service.InferenceService` method runs on the worker's event
loop (``run_coroutine_threadsafe``), so the model table, the batching queues and the
lock-free metrics stay on one thread; the answer, or a
:class:`~loopline.serving.grpc_service.Refused` turned into the call's status, goes back
through the listener's loop. A client that cancels (or whose deadline passes) cancels the
method on the worker's loop too.

Why a thread (measured, 1 worker, LR, 3 interleaved rounds on a busy 2-core machine): on
the worker's own loop grpc.aio hands calls over one loop iteration at a time, so the batching
queue saw 1–8 rows per batch at c=64 and a call cost 0.64–0.86 ms of worker CPU; with the
listener in a thread, calls reach the worker's loop in bursts, batches held ~16 rows and a
call cost 0.53–0.76 ms, with 0.9–1.3× the throughput. At c=1 the extra hop costs CPU
(1.0–1.7 ms against 0.9–1.3 ms per call, mostly idle polling) but not latency (p50
1.07–1.32 ms against 1.01–1.48 ms).

Every worker binds the port with ``SO_REUSEPORT`` (the supervisor reserves it, as for HTTP),
so the kernel spreads connections over the workers; a gRPC channel is one long-lived
connection, so one channel talks to one worker.

Limits, HTTP's (``ServerOptions``) read for HTTP/2: a message larger than
``max_body_bytes`` (either way) is RESOURCE_EXHAUSTED; a worker keeps at most
``http.max_connections`` connections (one more is closed at once: the client sees
UNAVAILABLE) and runs at most ``http.max_connections × http.max_pipelined`` calls at once,
the bound HTTP has too (beyond: RESOURCE_EXHAUSTED; the HTTP/2 concurrent-streams setting is
left alone, since a client that fills it gets streams refused as UNAVAILABLE), and it closes
a connection that has had no call for ``http.idle_timeout`` seconds (a GOAWAY: the client
reconnects on its next call). On shutdown the listener stops taking RPCs and answers those
in flight within the grace period.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

from loopline.errors import InvalidInputError, require
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.serving.grpc_service import INTERNAL, INVALID, STATUS, InferenceService, Refused

if TYPE_CHECKING:
    from loopline.serving.app import ModelServerApp

log = logging.getLogger(__name__)

_JOIN_S = 10.0  # the listener's thread ends at once after its server stopped

Method = Callable[..., Coroutine[Any, Any, bytes]]


def grpc_target(host: str, port: int) -> str:
    """``host:port`` as gRPC writes an address (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcListener:
    """``app``'s :class:`InferenceService` on ``host:port`` (see the module docstring)."""

    def __init__(self, app: ModelServerApp, host: str, port: int) -> None:
        require("grpc", "grpc", "Serving gRPC (--grpc-port)")
        self.app = app
        self.target = grpc_target(host, port)
        self._app_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[float] | None = None  # on the listener's loop: the grace
        self._thread: threading.Thread | None = None

    async def start(self) -> int:
        """Bind and start serving (call it on the app's event loop); return the bound port.

        Raises:
            InvalidInputError: the address cannot be bound.
        """
        self._app_loop = asyncio.get_running_loop()
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="loopline-grpc", daemon=True
        )
        self._thread.start()
        return await asyncio.wrap_future(started)

    async def stop(self, grace: float) -> None:
        """Stop taking RPCs; wait up to ``grace`` seconds for those in flight, then cancel
        what is left (call it on the app's event loop, which the calls in flight need)."""
        stop, loop, thread = self._stop, self._loop, self._thread
        if stop is None or loop is None or thread is None:
            return
        # The coroutine that started the server stops it: a stop() sent to the listener's
        # loop with run_coroutine_threadsafe while it awaited wait_for_termination() never
        # completed here (grpc 1.85).
        loop.call_soon_threadsafe(_settle, stop, grace)
        await asyncio.to_thread(thread.join, grace + _JOIN_S)

    # -------------------------------------------------------------- the thread
    def _run(self, started: concurrent.futures.Future[int]) -> None:
        loop: asyncio.AbstractEventLoop
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
            loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(started))
        except Exception:  # pragma: no cover - grpc failed after it started
            log.exception("The gRPC listener on %s stopped.", self.target)
        finally:
            if not started.done():
                started.set_exception(RuntimeError("the gRPC listener did not start"))
            loop.close()

    async def _serve(self, started: concurrent.futures.Future[int]) -> None:
        import grpc

        options = self.app.options
        limits = options.http
        try:
            server = grpc.aio.server(
                options=[
                    ("grpc.so_reuseport", 1),
                    ("grpc.max_receive_message_length", options.max_body_bytes),
                    ("grpc.max_send_message_length", options.max_body_bytes),
                    ("grpc.max_allowed_incoming_connections", limits.max_connections),
                    ("grpc.max_connection_idle_ms", max(1, round(limits.idle_timeout * 1000))),
                ],
                maximum_concurrent_rpcs=limits.max_connections * limits.max_pipelined,
            )
            server.add_registered_method_handlers(pb.SERVICE_NAME, self._handlers())
            try:
                port = server.add_insecure_port(self.target)
            except RuntimeError as exc:
                raise InvalidInputError(
                    f"Cannot bind the gRPC address {self.target} ({exc}); choose another "
                    "--grpc-port or stop the process using it."
                ) from exc
            await server.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        self._stop = asyncio.get_running_loop().create_future()
        started.set_result(int(port))
        await server.stop(await self._stop)

    def _handlers(self) -> dict[str, Any]:
        """``{method name: grpc.RpcMethodHandler}`` for every method of the service."""
        import grpc

        service = InferenceService(self.app)
        methods: dict[str, tuple[Method, bool]] = {  # method, takes the authorization
            "ServerLive": (service.server_live, False),
            "ServerReady": (service.server_ready, False),
            "ModelReady": (service.model_ready, False),
            "ServerMetadata": (service.server_metadata, False),
            "ModelMetadata": (service.model_metadata, False),
            "ModelInfer": (service.model_infer, False),
            "RepositoryModelLoad": (service.repository_model_load, True),
            "RepositoryModelUnload": (service.repository_model_unload, True),
        }
        handlers = {}
        for described in pb.SERVICE.methods:  # a method of the .proto without one: KeyError
            method, authorized = methods[described.name]
            message = getattr(pb, described.input_type.name)
            behaviour = self._behaviour(message, method, authorized)
            handlers[described.name] = grpc.unary_unary_rpc_method_handler(behaviour)
        return handlers

    def _behaviour(
        self, message: Any, method: Method, authorized: bool
    ) -> Callable[[bytes, Any], Coroutine[Any, Any, bytes]]:
        app_loop = self._app_loop
        assert app_loop is not None
        full_name = message.DESCRIPTOR.full_name

        async def behaviour(data: bytes, context: Any) -> bytes:
            # The request is parsed here (not by grpc) so that bytes that are not the
            # message are INVALID_ARGUMENT, not grpc's INTERNAL.
            from google.protobuf.message import DecodeError

            try:
                request = message.FromString(data)
            except DecodeError as exc:
                message_error = f"The request is not a valid {full_name} message ({exc})."
                await _abort(context, Refused(INVALID, message_error))
            args = (request, _authorization(context)) if authorized else (request,)
            answer = asyncio.run_coroutine_threadsafe(method(*args), app_loop)
            try:
                return await asyncio.wrap_future(answer)
            except Refused as refused:
                await _abort(context, refused)
            except Exception:  # pragma: no cover - the service turns errors into Refused
                ref = uuid.uuid4().hex[:12]
                log.exception("A gRPC call failed (error ref %s).", ref)
                await _abort(context, Refused(INTERNAL, f"Internal error (ref {ref})."))

        return behaviour


def _settle(future: asyncio.Future[float], value: float) -> None:
    if not future.done():
        future.set_result(value)


def _authorization(context: Any) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else bytes(value).decode("latin-1")
    return None


async def _abort(context: Any, refused: Refused) -> NoReturn:
    """End the call with ``refused``'s status and message (``context.abort`` raises)."""
    import grpc

    trailing = () if refused.retry_after is None else (("retry-after", str(refused.retry_after)),)
    code = getattr(grpc.StatusCode, STATUS[refused.http])
    await context.abort(code, str(refused), trailing_metadata=trailing)
    raise AssertionError("unreachable: abort raises")


__all__ = ["GrpcListener", "grpc_target"]
