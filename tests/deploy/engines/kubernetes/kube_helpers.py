"""Shared set-up of the Kubernetes-engine control-plane tests: model ``taxi`` versions 1 and 2
in a registry (tiny published bundles: the fake cluster runs no pods), and a Prometheus stand-in
on 127.0.0.1 answering instant queries with a value the test sets."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.metadata import ArtifactState
from loopline.metadata.urls import open_store
from loopline.registry.registry import ModelRegistry


def register_taxi(db_url: str, root: str) -> None:
    """Versions 1 and 2 of model ``taxi`` in the stores at ``db_url`` and ``root``."""
    metadata = open_store(db_url)
    artifacts = FsspecArtifactStore(root)
    registry = ModelRegistry(metadata, artifacts)
    try:
        for version in (1, 2):
            with artifacts.staging() as staged:
                (Path(staged) / "MLmodel").write_text(f"version: {version}\n")
                uri = artifacts.allocate("Model", f"taxi/v{version}")
                digest = artifacts.publish(staged, uri)
            art = metadata.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE)
            registry.register("taxi", art.id, who="test", why=f"version {version}")
    finally:
        metadata.close()


class FakePrometheus:
    """``GET /api/v1/query`` answers a scalar :attr:`value`; :attr:`queries` records them."""

    def __init__(self) -> None:
        self.value = 0.0
        self.queries: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                owner.queries.append(parse_qs(urlsplit(self.path).query)["query"][0])
                body = json.dumps({"status": "success", "data": {
                    "resultType": "scalar", "result": [0, str(owner.value)]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakePrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)
