"""The gRPC listener of one model-server worker (``loopline serve --grpc-port``).

A :class:`GrpcListener` runs a ``grpc.aio`` server on the worker's own event loop (uvloop),
beside uvicorn, so a gRPC request reaches the same batching queues as an HTTP one with no
thread hop. Every worker binds the port with ``SO_REUSEPORT`` (the supervisor reserves it,
as for HTTP), so the kernel spreads connections over the workers; a gRPC channel is one
long-lived connection, so one channel talks to one worker.

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

from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInputError, require
from loopline.serving import grpc_predict_v2_pb2 as pb

if TYPE_CHECKING:
    from loopline.serving.app import ModelServerApp


def grpc_target(host: str, port: int) -> str:
    """``host:port`` as gRPC writes an address (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcListener:
    """``app``'s :class:`~loopline.serving.grpc_service.InferenceService` on ``host:port``."""

    def __init__(self, app: ModelServerApp, host: str, port: int) -> None:
        require("grpc", "grpc", "Serving gRPC (--grpc-port)")
        self.app = app
        self.target = grpc_target(host, port)
        self._server: Any = None

    async def start(self) -> int:
        """Bind and start serving; return the bound port.

        Raises:
            InvalidInputError: the address cannot be bound.
        """
        import grpc

        from loopline.serving.grpc_service import InferenceService

        options = self.app.options
        limits = options.http
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
        server.add_registered_method_handlers(
            pb.SERVICE_NAME, InferenceService(self.app).method_handlers()
        )
        try:
            port = server.add_insecure_port(self.target)
        except RuntimeError as exc:
            raise InvalidInputError(
                f"Cannot bind the gRPC address {self.target} ({exc}); choose another "
                "--grpc-port or stop the process using it."
            ) from exc
        await server.start()
        self._server = server
        return int(port)

    async def stop(self, grace: float) -> None:
        """Stop taking RPCs; wait up to ``grace`` seconds for those in flight, then cancel
        what is left."""
        if self._server is not None:
            await self._server.stop(grace)


__all__ = ["GrpcListener", "grpc_target"]
