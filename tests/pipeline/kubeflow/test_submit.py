from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from loopline.errors import InvalidInputError
from loopline.pipeline import Dataset, Output, Param, Pipeline, component
from loopline.pipeline.kubeflow import KfpClient, KfpTarget, compile_pipeline, platform_spec


@component
def make(data: Output[Dataset], rows: int = 5) -> None:
    (data.path / "n").write_text(str(rows))


class FakeKfp:
    """Records requests; knows pipelines by name."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]], bytes, dict[str, str]]] = []
        self.pipelines: dict[str, str] = {}


@pytest.fixture
def kfp() -> Iterator[tuple[FakeKfp, str]]:
    fake = FakeKfp()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            fake.requests.append(("GET", url.path, parse_qs(url.query), b"", dict(self.headers)))
            prefix = "/apis/v2beta1/pipelines/names/"
            if url.path.startswith(prefix):
                name = url.path[len(prefix) :]
                if name in fake.pipelines:
                    self._answer(200, {"pipeline_id": fake.pipelines[name]})
                else:
                    self._answer(404, {"error": "not found"})
            elif url.path.endswith("/versions"):
                self._answer(200, {"pipeline_versions": [
                    {"pipeline_version_id": "v-1", "display_name": "first"}]})  # fmt: skip
            else:
                self._answer(404, {})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            query = parse_qs(url.query)
            fake.requests.append(("POST", url.path, query, body, dict(self.headers)))
            if url.path == "/apis/v2beta1/pipelines/upload":
                fake.pipelines[query["name"][0]] = "p-1"
                self._answer(200, {"pipeline_id": "p-1"})
            elif url.path == "/apis/v2beta1/pipelines/upload_version":
                self._answer(200, {"pipeline_id": "p-1", "pipeline_version_id": "v-2"})
            elif url.path == "/apis/v2beta1/runs":
                self._answer(200, {"run_id": "r-9"})
            else:
                self._answer(404, {})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _package() -> bytes:
    pipe = Pipeline("tiny", [make(rows=Param("rows", 3))])
    spec = compile_pipeline(pipe, KfpTarget(image="reg.io/loopline:1", pipeline_file="p.py"))
    return yaml.safe_dump(spec).encode()


def test_submit_uploads_a_new_pipeline_then_creates_a_run_of_its_version(
    kfp: tuple[FakeKfp, str],
) -> None:
    fake, host = kfp
    with KfpClient(host, token="s3cret", namespace="team-a") as client:
        run = client.submit(_package(), run_name="tiny-1", params={"rows": 10})
    assert (run.pipeline_id, run.version_id, run.run_id) == ("p-1", "v-1", "r-9")
    assert run.url == f"{host}/#/runs/details/r-9"
    calls = [(m, p) for m, p, *_ in fake.requests]
    assert calls == [
        ("GET", "/apis/v2beta1/pipelines/names/tiny"),
        ("POST", "/apis/v2beta1/pipelines/upload"),
        ("GET", "/apis/v2beta1/pipelines/p-1/versions"),
        ("POST", "/apis/v2beta1/runs"),
    ]
    _, _, query, body, headers = fake.requests[1]
    assert query["name"] == ["tiny"] and query["namespace"] == ["team-a"]
    assert b'name="uploadfile"' in body
    assert b"image: reg.io/loopline:1" in body  # the compiled YAML itself
    assert headers["Authorization"] == "Bearer s3cret"
    created = json.loads(fake.requests[3][3])
    assert created == {
        "display_name": "tiny-1",
        "pipeline_version_reference": {"pipeline_id": "p-1", "pipeline_version_id": "v-1"},
        "runtime_config": {"parameters": {"rows": 10}},
    }


def test_submit_of_a_known_pipeline_uploads_a_version_named_by_the_file_digest(
    kfp: tuple[FakeKfp, str],
) -> None:
    fake, host = kfp
    fake.pipelines["tiny"] = "p-1"
    with KfpClient(host) as client:
        run = client.submit(_package(), run_name="tiny-2", params={})
    assert run.version_id == "v-2"
    method, path, query, _, headers = fake.requests[1]
    assert (method, path) == ("POST", "/apis/v2beta1/pipelines/upload_version")
    assert query["pipelineid"] == ["p-1"] and query["name"][0].startswith("tiny-")
    assert "Authorization" not in headers


def test_an_unknown_or_mistyped_parameter_is_refused_before_any_request(
    kfp: tuple[FakeKfp, str],
) -> None:
    fake, host = kfp
    with KfpClient(host) as client:
        with pytest.raises(InvalidInputError, match=r"no parameter 'row'\. Parameters: rows"):
            client.submit(_package(), run_name="x", params={"row": 1})
        with pytest.raises(InvalidInputError, match=r"--param rows='ten' is not a NUMBER_INTEGER"):
            client.submit(_package(), run_name="x", params={"rows": "ten"})
    assert fake.requests == []


def test_loopline_submit_prints_the_run_as_json(kfp: tuple[FakeKfp, str], tmp_path: Path) -> None:
    _, host = kfp
    file = tmp_path / "tiny.yaml"
    file.write_bytes(_package())
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "submit", str(file), "--host", host,
         "--param", "rows=4", "--run-name", "nightly", "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(proc.stdout)["run_id"] == "r-9"


def test_a_file_with_the_stores_platform_document_is_uploaded_whole(
    kfp: tuple[FakeKfp, str],
) -> None:
    fake, host = kfp
    spec = yaml.safe_load(_package())
    platform = yaml.safe_dump(platform_spec(spec, "loopline-stores")).encode()
    package = _package() + b"---\n" + platform
    with KfpClient(host) as client:
        run = client.submit(package, run_name="tiny-3", params={"rows": 4})
    assert run.run_id == "r-9"
    upload_body = fake.requests[1][3]
    assert b"secretName: loopline-stores" in upload_body
    assert b"image: reg.io/loopline:1" in upload_body
