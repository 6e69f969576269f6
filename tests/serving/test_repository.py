"""The model repository extension on a real server (one worker, 127.0.0.1): index, load and
unload, their errors, draining on unload, and one batching queue and label set per model."""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.serving.conftest import Models, ThreadedServer

from loopline.bundle import Trust, tree_digest
from loopline.serving import ServedModel, ServerOptions, create_app
from loopline.serving.repository import (
    FolderRepository,
    LoadParameters,
    LoadSpec,
    ModelSource,
    RepositoryOptions,
)
from loopline.testing.artifacts import wait_for

TOKEN = "repository-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def repo(tmp_path: Path, models: Models) -> Path:
    """A repository folder: lr/1 and rf/1 (tab/1 too, not loaded at start)."""
    root = tmp_path / "repo"
    shutil.copytree(models.dirs["lr"], root / "lr" / "1")
    shutil.copytree(models.dirs["rf"], root / "rf" / "1")
    shutil.copytree(models.dirs["tab"], root / "tab" / "1")
    (root / "notes.txt").write_text("not a model")
    (root / "lr" / "draft").mkdir()  # not a version: ignored
    return root


def _server(
    source: ModelSource,
    start: list[str],
    *,
    token: str | None = TOKEN,
    allow_unauthenticated: bool = False,
    batching_models: tuple[str, ...] = (),
) -> ThreadedServer:
    served = []
    for name in start:
        s = source.load(source.resolve(name, LoadParameters()))
        served.append(dataclasses.replace(s, batching=name in batching_models))
    options = ServerOptions(
        repository=RepositoryOptions(
            source=source, token=token, allow_unauthenticated=allow_unauthenticated
        )
    )
    return ThreadedServer(create_app(served, options=options))


def _folder(root: Path, **kwargs: Any) -> FolderRepository:
    kwargs.setdefault("allow_unverified", True)
    return FolderRepository(root, Trust(), **kwargs)


@pytest.fixture()
def server(repo: Path) -> Iterator[ThreadedServer]:
    with _server(_folder(repo), ["lr", "rf"]) as s:
        yield s


@pytest.fixture()
def client(server: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _infer_body(models: Models, rows: int = 1) -> dict[str, Any]:
    x = models.x[:rows]
    return {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP64",
                        "data": x.ravel().tolist()}]}  # fmt: skip


def _predictions(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    return list(outputs["predict_proba"] if "predict_proba" in outputs else outputs["predict"])


# ---------------------------------------------------------------------------------- index
def test_the_index_lists_every_model_of_the_folder_with_its_state(client: httpx.Client) -> None:
    response = client.post("/v2/repository/index")  # tritonclient sends an empty body
    assert response.status_code == 200
    assert response.json() == [
        {"name": "lr", "version": "1", "state": "READY", "reason": ""},
        {"name": "rf", "version": "1", "state": "READY", "reason": ""},
        {"name": "tab", "state": "UNAVAILABLE", "reason": "not loaded"},
    ]
    ready = client.post("/v2/repository/index", json={"ready": True}).json()
    assert [r["name"] for r in ready] == ["lr", "rf"]
    assert len(client.post("/v2/repository/index", json={"ready": False}).json()) == 3


def test_server_metadata_declares_the_model_repository_extension(client: httpx.Client) -> None:
    assert "model_repository" in client.get("/v2").json()["extensions"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("index", b"{", "not valid JSON"),
        ("index", b"[1]", "must be a JSON object, not list"),
        ("index", b'{"ready": "yes"}', "Field 'ready' must be true or false, not 'yes'"),
        ("index", b'{"ready": true, "all": 1}', "unknown field 'all'; it takes \\['ready'\\]"),
        ("models/lr/load", b'{"parameters": 3}', "Field 'parameters' must be an object"),
        ("models/lr/load", b'{"parameters": {"version": "x"}}', "'parameters.version' must be"),
        ("models/lr/load", b'{"parameters": {"version": 0}}', "'parameters.version' must be"),
        ("models/lr/load", b'{"parameters": {"shape": 1}}', "Unknown load parameter 'shape'"),
        ("models/lr/load", b'{"parameters": {"config": "{}"}}', "parameters.config.*not supported"),
        ("models/lr/load", b'{"parameters": {"file:1/m.onnx": "AA=="}}', "files sent with the"),
        ("models/lr/load", b'{"parameters": {"version": "1", "alias": "a"}}', "not both"),
        ("models/lr/load", b'{"params": {}}', "unknown field 'params'"),
        ("models/lr/unload", b'{"parameters": {"unload_dependents": 1}}', "must be true or false"),
        ("models/lr/unload", b'{"parameters": {"force": true}}', "Unknown unload parameter"),
    ],
)
def test_a_bad_repository_body_is_a_400_naming_the_field(
    client: httpx.Client, path: str, body: bytes, message: str
) -> None:
    response = client.post(f"/v2/repository/{path}", content=body, headers=AUTH)
    assert response.status_code == 400
    assert re.search(message, response.json()["error"]), response.json()["error"]


def test_a_body_over_the_limit_is_a_413(client: httpx.Client) -> None:
    response = client.post("/v2/repository/index", content=b" " * (64 * 1024 + 1))
    assert response.status_code == 413
    assert "at most 65536 bytes" in response.json()["error"]


def test_get_on_a_repository_endpoint_is_a_405(client: httpx.Client) -> None:
    response = client.get("/v2/repository/index")
    assert response.status_code == 405
    assert response.json() == {"error": "Use POST for /v2/repository/index."}


def test_an_unknown_repository_route_is_a_404(client: httpx.Client) -> None:
    response = client.post("/v2/repository/models/lr/reload", headers=AUTH)
    assert response.status_code == 404
    assert "POST /v2/repository/models/NAME/load or /unload" in response.json()["error"]


# ----------------------------------------------------------------------------------- auth
@pytest.mark.parametrize("action", ["load", "unload"])
def test_load_and_unload_need_the_repository_token(client: httpx.Client, action: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": TOKEN}):  # fmt: skip
        response = client.post(f"/v2/repository/models/lr/{action}", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert f"Model {action} needs the server's repository token" in response.json()["error"]
    assert client.post(f"/v2/repository/models/lr/{action}", headers=AUTH).status_code == 200


def test_without_a_token_load_and_unload_are_off(repo: Path, models: Models) -> None:
    with _server(_folder(repo), ["lr"], token=None) as s, httpx.Client(base_url=s.url) as c:
        response = c.post("/v2/repository/models/lr/unload", headers=AUTH)
        assert response.status_code == 403
        assert "Model unload is off on this server: start it with --repository-token-file" in (
            response.json()["error"]
        )
        assert c.post("/v2/repository/index").status_code == 200
        assert c.post("/v2/models/lr/infer", json=_infer_body(models)).status_code == 200


def test_unauthenticated_load_and_unload_only_when_allowed_explicitly(repo: Path) -> None:
    with _server(_folder(repo), ["lr"], token=None, allow_unauthenticated=True) as s:
        assert httpx.post(f"{s.url}/v2/repository/models/lr/unload").status_code == 200
    with pytest.raises(ValueError, match="contradict each other"):
        RepositoryOptions(source=_folder(repo), token=TOKEN, allow_unauthenticated=True)
    with pytest.raises(ValueError, match="has 5 characters; it needs at least 16"):
        RepositoryOptions(source=_folder(repo), token="short")


# ------------------------------------------------------------------------ load and unload
@pytest.mark.parametrize("action", ["load", "unload"])
def test_an_unknown_model_is_a_404_naming_what_the_folder_holds(
    client: httpx.Client, action: str
) -> None:
    response = client.post(f"/v2/repository/models/nope/{action}", headers=AUTH)
    assert response.status_code == 404
    error = response.json()["error"]
    assert "'nope'" in error and "['lr', 'rf', 'tab']" in error


def test_unload_stops_serving_the_model_and_load_brings_it_back(
    client: httpx.Client, models: Models
) -> None:
    before = _predictions(client.post("/v2/models/lr/infer", json=_infer_body(models)))
    response = client.post("/v2/repository/models/lr/unload", headers=AUTH)
    assert response.json() == {"name": "lr", "version": "1", "state": "UNAVAILABLE",
                               "reason": "unloaded"}  # fmt: skip
    infer = client.post("/v2/models/lr/infer", json=_infer_body(models))
    assert infer.status_code == 404
    assert infer.json()["error"] == (
        "Model 'lr' is not loaded (unloaded); load it with POST /v2/repository/models/lr/load."
    )
    assert client.get("/v2/models/lr").status_code == 404
    assert client.get("/v2/models").json() == {"models": ["rf"]}
    assert 'loopline_model_ready{model="lr",version="1"} 0' in client.get("/metrics").text
    assert {"name": "lr", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"} in (
        client.post("/v2/repository/index").json()
    )
    # unloading again is a no-op, as in Triton
    assert client.post("/v2/repository/models/lr/unload", headers=AUTH).status_code == 200
    loaded = client.post("/v2/repository/models/lr/load", headers=AUTH)
    assert loaded.json() == {"name": "lr", "version": "1", "state": "READY", "reason": ""}
    after = _predictions(client.post("/v2/models/lr/infer", json=_infer_body(models)))
    assert after == before
    assert 'loopline_model_ready{model="lr",version="1"} 1' in client.get("/metrics").text


def test_a_model_of_the_folder_not_loaded_at_start_can_be_loaded(
    client: httpx.Client, models: Models
) -> None:
    assert client.post("/v2/repository/models/tab/load", headers=AUTH).status_code == 200
    row = models.frame.head(1)
    body = {"inputs": [
        {"name": "age", "shape": [1], "datatype": "INT64", "data": row.age.tolist()},
        {"name": "fare", "shape": [1], "datatype": "FP64", "data": row.fare.tolist()},
        {"name": "city", "shape": [1], "datatype": "BYTES", "data": row.city.tolist()},
    ]}  # fmt: skip
    assert client.post("/v2/models/tab/infer", json=body).status_code == 200
    assert client.post("/v2/repository/index", json={"ready": True}).json()[-1]["name"] == "tab"


def test_loading_a_newer_version_replaces_the_served_one_and_loading_again_is_a_no_op(
    repo: Path, server: ThreadedServer, client: httpx.Client, models: Models
) -> None:
    shutil.copytree(models.dirs["lr2"], repo / "lr" / "2")
    response = client.post("/v2/repository/models/lr/load", headers=AUTH)
    assert response.json() == {"name": "lr", "version": "2", "state": "READY", "reason": ""}
    assert client.get("/v2/models/lr").json()["versions"] == ["2"]
    got = _predictions(client.post("/v2/models/lr/infer", json=_infer_body(models, 3)))
    want = models.lr_v2.predict(models.x[:3])["predict_proba"]
    np.testing.assert_allclose(np.asarray(got).reshape(want.shape), want)
    assert client.get("/v2/models/lr/versions/1").status_code == 404
    (entry,) = server.app.table.entries_of("lr")
    assert client.post("/v2/repository/models/lr/load", headers=AUTH).status_code == 200
    assert server.app.table.entries_of("lr") == [entry]  # the same entry: nothing reloaded
    back = client.post("/v2/repository/models/lr/load", json={"parameters": {"version": "1"}},
                       headers=AUTH)  # fmt: skip
    assert back.json()["version"] == "1"
    assert client.get("/v2/models/lr").json()["versions"] == ["1"]


def test_load_parameters_that_do_not_apply_to_a_folder_are_refused(client: httpx.Client) -> None:
    alias = client.post("/v2/repository/models/lr/load", headers=AUTH,
                        json={"parameters": {"alias": "champion"}})  # fmt: skip
    assert alias.status_code == 400
    assert "parameters.alias applies to registry references" in alias.json()["error"]
    missing = client.post("/v2/repository/models/lr/load", headers=AUTH,
                          json={"parameters": {"version": 9}})  # fmt: skip
    assert missing.status_code == 404
    assert "Model 'lr' has no version '9' in the model repository" in missing.json()["error"]


def test_a_load_that_fails_its_digest_check_keeps_the_served_version_and_says_why(
    repo: Path, models: Models
) -> None:
    digests = repo.parent / "digests.txt"
    digests.write_text(
        f"# NAME/VERSION digest\nlr/1 {tree_digest(repo / 'lr' / '1')}\n"
        f"lr/2 sha256:{'0' * 64}\nrf/1 {tree_digest(repo / 'rf' / '1')}\n"
    )
    source = _folder(repo, digests=digests, allow_unverified=False)
    with _server(source, ["lr"]) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        shutil.copytree(models.dirs["lr2"], repo / "lr" / "2")
        shutil.copytree(models.dirs["lr2"], repo / "lr" / "3")
        failed = c.post("/v2/repository/models/lr/load", headers=AUTH,
                        json={"parameters": {"version": 2}})  # fmt: skip
        assert failed.status_code == 400
        assert "but the registry recorded sha256:000" in failed.json()["error"]
        unlisted = c.post("/v2/repository/models/lr/load", headers=AUTH)  # newest: 3
        assert unlisted.status_code == 400
        assert "Model 'lr' version 3 is not listed in the digests file" in (
            unlisted.json()["error"]
        )
        index = c.post("/v2/repository/index").json()
        assert {"name": "lr", "version": "1", "state": "READY", "reason": ""} in index
        assert any(r["version"] == "3" and r["reason"].startswith("load failed: Model 'lr'")
                   for r in index)  # fmt: skip
        assert c.post("/v2/models/lr/infer", json=_infer_body(models)).status_code == 200
        assert c.post("/v2/repository/models/rf/load", headers=AUTH).status_code == 200


class _Gated:
    """A folder source whose model lr, once ``hold`` is set, blocks in ``predict_proba`` until
    ``release`` is set (``waiting`` says a call is there)."""

    def __init__(self, folder: FolderRepository) -> None:
        self.folder = folder
        self.hold = threading.Event()
        self.release = threading.Event()
        self.waiting = threading.Event()

    def describe(self) -> str:
        return self.folder.describe()

    def names(self) -> list[str]:
        return self.folder.names()

    def resolve(self, name: str, parameters: LoadParameters) -> LoadSpec:
        return self.folder.resolve(name, parameters)

    def load(self, spec: LoadSpec) -> ServedModel:
        served = self.folder.load(spec)
        if spec.name != "lr":
            return served
        estimator = served.model.estimator

        def gated(x: Any) -> Any:
            if self.hold.is_set():
                self.waiting.set()
                self.release.wait(60)
            return estimator.predict_proba(x)

        model = dataclasses.replace(served.model, calls={"predict_proba": gated})
        return dataclasses.replace(served, model=model)


def test_requests_in_flight_finish_before_an_unload_answers(repo: Path, models: Models) -> None:
    source = _Gated(_folder(repo))
    with _server(source, ["lr", "rf"], batching_models=("lr",)) as s, ThreadPoolExecutor(2) as pool:
        source.hold.set()
        inflight = pool.submit(httpx.post, f"{s.url}/v2/models/lr/infer",
                               json=_infer_body(models), timeout=60)  # fmt: skip
        wait_for(source.waiting.is_set, timeout=30, what="a request inside the model")
        unload = pool.submit(httpx.post, f"{s.url}/v2/repository/models/lr/unload",
                             headers=AUTH, timeout=60)  # fmt: skip

        def unloading() -> bool:
            index = httpx.post(f"{s.url}/v2/repository/index").json()
            return {"name": "lr", "version": "1", "state": "UNLOADING", "reason": ""} in index

        wait_for(unloading, timeout=30, what="the unload to wait for the request in flight")
        late = httpx.post(f"{s.url}/v2/models/lr/infer", json=_infer_body(models))
        assert late.status_code == 404  # new requests no longer reach the model
        assert not inflight.done() and not unload.done()
        assert httpx.post(f"{s.url}/v2/models/rf/infer", json=_infer_body(models)).status_code \
            == 200  # fmt: skip
        source.release.set()
        assert inflight.result().status_code == 200
        assert unload.result().status_code == 200
        assert _predictions(inflight.result()) == pytest.approx(
            models.lr.predict(models.x[:1])["predict_proba"].ravel().tolist()
        )
        entry_batchers = [e.batcher for e in s.app.table.entries]
        assert entry_batchers == [None]  # rf only, not batched; lr's batcher was stopped


def test_each_model_has_its_own_batching_queue_and_metrics_labels(
    repo: Path, models: Models
) -> None:
    source = _folder(repo, batching=True)
    with _server(source, ["lr", "rf"], batching_models=("lr", "rf")) as s, \
            httpx.Client(base_url=s.url, timeout=30) as c:  # fmt: skip
        assert c.post("/v2/repository/models/tab/load", headers=AUTH).status_code == 200
        batchers = [e.batcher for e in s.app.table.entries]
        assert all(b is not None for b in batchers) and len({id(b) for b in batchers}) == 3
        for name, n in (("lr", 3), ("rf", 2)):
            for _ in range(n):
                assert c.post(f"/v2/models/{name}/infer", json=_infer_body(models)).status_code \
                    == 200  # fmt: skip
        text = c.get("/metrics").text
        assert 'loopline_batch_size_rows_count{model="lr",version="1"} 3' in text
        assert 'loopline_batch_size_rows_count{model="rf",version="1"} 2' in text
        assert 'model="tab"' in text and 'loopline_batch_size_rows_count{model="tab"' not in text
        assert 'loopline_requests_total{model="lr",version="1",protocol="v2",code="200"} 3' in (
            text
        )


def test_a_server_can_start_with_no_model_and_load_them_on_request(repo: Path) -> None:
    with _server(_folder(repo), []) as s, httpx.Client(base_url=s.url, timeout=30) as c:
        assert c.get("/v2/health/ready").status_code == 200
        assert [r["state"] for r in c.post("/v2/repository/index").json()] == ["UNAVAILABLE"] * 3
        assert c.post("/v2/repository/models/rf/load", headers=AUTH).status_code == 200
        assert c.get("/v2/models").json() == {"models": ["rf"]}
    with pytest.raises(ValueError, match="needs at least one model"):
        create_app([])


def test_tritonclient_drives_the_repository_with_its_defaults(server: ThreadedServer) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        index = client.get_model_repository_index()
        assert [(m["name"], m["state"]) for m in index] == [
            ("lr", "READY"), ("rf", "READY"), ("tab", "UNAVAILABLE")
        ]  # fmt: skip
        with pytest.raises(InferenceServerException, match="needs the server's repository"):
            client.unload_model("lr")
        client.unload_model("lr", headers=AUTH)
        assert not client.is_model_ready("lr")
        client.load_model("lr", headers=AUTH)
        assert client.is_model_ready("lr")
        with pytest.raises(InferenceServerException, match="not supported"):
            client.load_model("lr", headers=AUTH, config='{"backend": "onnxruntime"}')
    finally:
        client.close()
