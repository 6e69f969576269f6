"""One model-server worker — uvicorn and the gRPC listener — serving an app on 127.0.0.1 in
a thread, for tests that talk gRPC to the real stack without a process of their own."""

from __future__ import annotations

import asyncio
import socket
import threading

import tritonclient.grpc as tg
from tritonclient.utils import InferenceServerException

from loopline.serving.app import ModelServerApp
from loopline.serving.grpc_server import GrpcListener
from loopline.serving.runner import make_server
from loopline.testing.artifacts import wait_for


class GrpcServer:
    """``app`` served by one worker's uvicorn server and gRPC listener on 127.0.0.1; the gRPC
    port is reserved as the supervisor reserves it (bound, not listening, SO_REUSEPORT)."""

    def __init__(self, app: ModelServerApp) -> None:
        self.app = app
        self.http_sock = socket.socket()
        self.http_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.http_sock.bind(("127.0.0.1", 0))
        self.reserve = socket.socket()
        self.reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.reserve.bind(("127.0.0.1", 0))
        self.port = self.reserve.getsockname()[1]
        self.target = f"127.0.0.1:{self.port}"
        self.url = f"http://127.0.0.1:{self.http_sock.getsockname()[1]}"
        listener = GrpcListener(app, "127.0.0.1", self.port)
        self.server = make_server(app, graceful_timeout=5, grpc=listener)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.http_sock])), daemon=True
        )

    def __enter__(self) -> GrpcServer:
        self.thread.start()
        client = tg.InferenceServerClient(self.target)

        def live() -> bool:
            assert self.thread.is_alive(), "the test server exited"
            try:
                return bool(client.is_server_live())
            except InferenceServerException:
                return False

        wait_for(live, timeout=30, what="the gRPC listener")
        client.close()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.http_sock.close()
        self.reserve.close()
