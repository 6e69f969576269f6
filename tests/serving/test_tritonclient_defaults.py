"""Triton's own client against a real ``loopline serve`` process: tritonclient.http (and its
asyncio twin) with their defaults — binary tensors in, binary tensors out — and the other
three binary/JSON combinations, as the issue measured them against Triton."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import tritonclient.http as th
import tritonclient.http.aio as th_aio
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.bundle import LoadedModel, infer_signature, load_model, save_model, tree_digest
from loopline.testing.artifacts import wait_for


@dataclass
class Served:
    host: str
    model: LoadedModel
    x: np.ndarray


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("tritonclient")
    x, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    bundle = save_model(lr, root / "lr", signature=infer_signature(x, y),
                        methods=("predict", "predict_proba"), input_example=x[:2])  # fmt: skip
    argv = [sys.executable, "-m", "loopline.cli", "serve", str(bundle), "--name", "lr",
            "--expected-digest", tree_digest(bundle), "--port", "0", "--batching"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=root)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, f"the server did not start: {line!r}"
        url = line.split("listening on ")[1].split()[0]

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="loopline serve to be ready")
        yield Served(url.removeprefix("http://"), load_model(bundle), x)
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture()
def client(served: Served) -> Iterator[th.InferenceServerClient]:
    c = th.InferenceServerClient(served.host)
    yield c
    c.close()


def test_tritonclient_sees_a_live_server_a_ready_model_and_the_extension(
    client: th.InferenceServerClient,
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("lr")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    inputs = client.get_model_metadata("lr")["inputs"]
    assert inputs == [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}]


def test_tritonclient_with_every_default_gets_both_outputs_as_binary(
    client: th.InferenceServerClient, served: Served
) -> None:
    x = served.x[:5]
    tensor = th.InferInput("input", [5, 30], "FP64")
    tensor.set_data_from_numpy(x)  # binary_data=True by default
    result = client.infer("lr", [tensor])  # no outputs named: binary_data_output
    expected = served.model.predict(x)
    outputs = result.get_response()["outputs"]
    assert all("binary_data_size" in o["parameters"] for o in outputs)
    np.testing.assert_array_equal(result.as_numpy("predict"), expected["predict"])
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected["predict_proba"])


@pytest.mark.parametrize("binary_out", [True, False], ids=["binary-out", "json-out"])
@pytest.mark.parametrize("binary_in", [True, False], ids=["binary-in", "json-in"])
def test_the_four_binary_and_json_combinations_give_the_models_answer(
    client: th.InferenceServerClient, served: Served, binary_in: bool, binary_out: bool
) -> None:
    x = served.x[10:14]
    tensor = th.InferInput("input", [4, 30], "FP64")
    tensor.set_data_from_numpy(x, binary_data=binary_in)
    outputs = [
        th.InferRequestedOutput("predict", binary_data=binary_out),
        th.InferRequestedOutput("predict_proba", binary_data=binary_out),
    ]
    result = client.infer("lr", [tensor], outputs=outputs, request_id="combo-7")
    assert result.get_response()["id"] == "combo-7"
    assert all(("data" in o) != binary_out for o in result.get_response()["outputs"])
    expected = served.model.predict(x)
    np.testing.assert_array_equal(result.as_numpy("predict"), expected["predict"])
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected["predict_proba"])


def test_the_asyncio_client_with_its_defaults_works_too(served: Served) -> None:
    x = served.x[:3]

    async def infer() -> th.InferResult:
        async with th_aio.InferenceServerClient(served.host) as c:
            tensor = th_aio.InferInput("input", [3, 30], "FP64")
            tensor.set_data_from_numpy(x)
            return await c.infer("lr", [tensor])

    result = asyncio.run(infer())
    np.testing.assert_array_equal(result.as_numpy("predict"), served.model.predict(x)["predict"])


def test_a_float32_tensor_is_read_for_the_float64_model(
    client: th.InferenceServerClient, served: Served
) -> None:
    x = served.x[:2].astype(np.float32)
    tensor = th.InferInput("input", [2, 30], "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer("lr", [tensor])
    expected = served.model.predict(x.astype(np.float64))["predict"]
    np.testing.assert_array_equal(result.as_numpy("predict"), expected)


def test_concurrent_binary_requests_each_get_their_own_rows(served: Served) -> None:
    """Batching joins concurrent requests; each binary answer holds only its own rows."""
    client = th.InferenceServerClient(served.host, concurrency=6)
    pending = []
    for i in range(12):
        x = served.x[i * 3 : i * 3 + 1 + i % 3]
        tensor = th.InferInput("input", list(x.shape), "FP64").set_data_from_numpy(x)
        pending.append((x, client.async_infer("lr", [tensor], request_id=f"c{i}")))
    for i, (x, handle) in enumerate(pending):
        result = handle.get_result(timeout=30)
        assert result.get_response()["id"] == f"c{i}"
        np.testing.assert_array_equal(
            result.as_numpy("predict"), served.model.predict(x)["predict"]
        )
    client.close()

