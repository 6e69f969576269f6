"""The gRPC listener of one model-server worker (``loopline serve --grpc-port``).

A :class:`GrpcListener` runs a ``grpc.aio`` server on the worker's own event loop (uvloop),
beside uvicorn, so a gRPC request reaches the same batching queues as an HTTP one with no
thread hop. Every worker binds the port with ``SO_REUSEPORT`` (the supervisor reserves it,
as for HTTP), so the kernel spreads connections over the workers; a gRPC channel is one
long-lived connection, so one channel talks to one worker.

Limits: a message larger than the server's ``max_body_bytes`` (either way) is
RESOURCE_EXHAUSTED; at most ``http.max_connections`` RPCs run at once per worker (beyond:
RESOURCE_EXHAUSTED). On shutdown the listener stops taking RPCs and answers those in flight
within the grace period.
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
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", options.max_body_bytes),
                ("grpc.max_send_message_length", options.max_body_bytes),
            ],
            maximum_concurrent_rpcs=options.http.max_connections,
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
