"""Open Inference Protocol (V2) conformance: paths, schemas, status codes, error bodies."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np


def test_health_endpoints_report_live_and_ready(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


def test_server_metadata_names_server_version_and_extensions(client: httpx.Client) -> None:
    body = client.get("/v2").json()
    assert body["name"] == "loopline"
    assert isinstance(body["version"], str)
    assert isinstance(body["extensions"], list)


def test_model_metadata_lists_versions_and_tensor_specs(client: httpx.Client) -> None:
    body = client.get("/v2/models/lr").json()
    assert body == {
        "name": "lr",
        "versions": ["1", "2"],
        "platform": "loopline_sklearn",
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 30]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
        ],
    }


def test_infer_returns_every_output_with_shape_datatype_and_id(
    client: httpx.Client, models: Any, v2_body: Any
) -> None:
    x = models.x[:3]
    r = client.post("/v2/models/lr/infer", json={**v2_body(x), "id": "req-7"})
    assert r.status_code == 200
    body = r.json()
    assert body["model_name"] == "lr" and body["model_version"] == "1" and body["id"] == "req-7"
    assert r.headers["x-request-id"] == "req-7"
    expected = models.lr.predict(x)
    out = {o["name"]: o for o in body["outputs"]}
    assert out["predict"]["shape"] == [3] and out["predict"]["datatype"] == "INT64"
    assert out["predict"]["data"] == expected["predict"].tolist()
    assert out["predict_proba"]["shape"] == [3, 2]
    np.testing.assert_allclose(out["predict_proba"]["data"], expected["predict_proba"].ravel())


def test_infer_returns_only_requested_outputs(
    client: httpx.Client, models: Any, v2_body: Any
) -> None:
    body = {**v2_body(models.x[:1]), "outputs": [{"name": "predict_proba"}]}
    out = client.post("/v2/models/lr/infer", json=body).json()["outputs"]
    assert [o["name"] for o in out] == ["predict_proba"]


def test_infer_accepts_nested_data_and_fp32_and_int_datatypes(
    client: httpx.Client, models: Any
) -> None:
    x = models.x[:2]
    nested = {
        "inputs": [{"name": "input", "shape": [2, 30], "datatype": "FP32", "data": x.tolist()}]
    }
    assert client.post("/v2/models/lr/infer", json=nested).status_code == 200
    ints = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "INT64", "data": [1] * 30}]}
    assert client.post("/v2/models/lr/infer", json=ints).status_code == 200


def test_versioned_paths_route_by_number_and_alias(
    client: httpx.Client, models: Any, v2_body: Any
) -> None:
    x = models.x[:20]
    for path, version, model in [
        ("/v2/models/lr/versions/1/infer", "1", models.lr),
        ("/v2/models/lr/versions/champion/infer", "1", models.lr),
        ("/v2/models/lr/versions/2/infer", "2", models.lr_v2),
        ("/v2/models/lr/versions/challenger/infer", "2", models.lr_v2),
    ]:
        body = client.post(path, json=v2_body(x)).json()
        assert body["model_version"] == version
        proba = {o["name"]: o for o in body["outputs"]}["predict_proba"]["data"]
        np.testing.assert_allclose(proba, model.predict(x)["predict_proba"].ravel())
    assert client.get("/v2/models/lr/versions/challenger/ready").json() == {
        "name": "lr",
        "ready": True,
    }
    assert client.get("/v2/models/lr/versions/2").json()["name"] == "lr"


def test_unknown_model_or_version_is_404_with_error_body(
    client: httpx.Client, v2_body: Any, models: Any
) -> None:
    r = client.post("/v2/models/nope/infer", json=v2_body(models.x[:1]))
    assert r.status_code == 404 and "Unknown model 'nope'" in r.json()["error"]
    r = client.get("/v2/models/lr/versions/9/ready")
    assert r.status_code == 404 and "no version or alias '9'" in r.json()["error"]
    assert client.get("/v2/nothing/here").status_code == 404


def _error(client: httpx.Client, body: Any, path: str = "/v2/models/lr/infer") -> str:
    r = client.post(
        path,
        content=body if isinstance(body, bytes) else None,
        json=None if isinstance(body, bytes) else body,
    )
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"}
    return str(r.json()["error"])


def test_bad_inputs_are_400_naming_the_field(client: httpx.Client) -> None:
    good = {"name": "input", "shape": [1, 30], "datatype": "FP64", "data": [0.0] * 30}
    assert "Unknown input 'x'" in _error(client, {"inputs": [{**good, "name": "x"}]})
    assert "has 29 values but shape [1, 30]" in _error(
        client, {"inputs": [{**good, "data": [0.0] * 29}]}
    )
    assert "shape [1, 29]" in _error(
        client, {"inputs": [{**good, "shape": [1, 29], "data": [0.0] * 29}]}
    )
    assert "datatype BYTES but the model expects FP64" in _error(
        client, {"inputs": [{**good, "datatype": "BYTES"}]}
    )
    assert "'input' expects float64 values but got strings" in _error(
        client, {"inputs": [{**good, "data": ["a"] * 30}]}
    )
    assert "null" in _error(client, {"inputs": [{**good, "data": [None] * 30}]})
    assert "'inputs' must be a non-empty list" in _error(client, {"inputs": []})
    assert "not valid JSON" in _error(client, b"{nope")
    assert "appears twice" in _error(client, {"inputs": [good, good]})
    assert "Unknown output 'logits'" in _error(
        client, {"inputs": [good], "outputs": [{"name": "logits"}]}
    )


def test_missing_column_of_a_named_column_model_is_400(client: httpx.Client) -> None:
    body = {
        "inputs": [
            {"name": "age", "shape": [1], "datatype": "INT64", "data": [30]},
            {"name": "fare", "shape": [1], "datatype": "FP64", "data": [12.5]},
        ]
    }
    assert "Missing input 'city'" in _error(client, body, "/v2/models/tab/infer")


def test_named_column_pipeline_with_strings_predicts_like_in_process(
    client: httpx.Client, models: Any
) -> None:
    f = models.frame.head(5)
    body = {
        "inputs": [
            {"name": "age", "shape": [5], "datatype": "INT64", "data": f.age.tolist()},
            {"name": "fare", "shape": [5], "datatype": "FP64", "data": f.fare.tolist()},
            {"name": "city", "shape": [5], "datatype": "BYTES", "data": f.city.tolist()},
        ]
    }
    r = client.post("/v2/models/tab/infer", json=body)
    assert r.status_code == 200, r.text
    direct = models.tab.predict({c: f[c].to_numpy() for c in ("age", "fare", "city")})
    assert r.json()["outputs"][0]["data"] == direct["predict"].tolist()


def test_a_value_the_model_rejects_is_400_not_500(client: httpx.Client) -> None:
    body = {
        "inputs": [
            {"name": "age", "shape": [1], "datatype": "INT64", "data": [30]},
            {"name": "fare", "shape": [1], "datatype": "FP64", "data": [1.0]},
            {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["atlantis"]},
        ]
    }
    assert "The model rejected the input" in _error(client, body, "/v2/models/tab/infer")


def test_oversized_body_is_413(client: httpx.Client) -> None:
    r = client.post("/v2/models/lr/infer", content=b"[" + b"1," * 150_000 + b"1]")
    assert r.status_code == 413 and "larger than the server's limit" in r.json()["error"]


def test_wrong_method_is_405(client: httpx.Client) -> None:
    assert client.delete("/v2/models/lr/infer").status_code == 405
    assert client.post("/v2/models/lr").status_code == 405


def test_model_list_names_every_model(client: httpx.Client) -> None:
    assert client.get("/v2/models").json() == {"models": ["lr", "rf", "tab"]}


def test_a_client_that_disconnects_mid_body_gets_no_answer_and_the_server_lives(
    server: Any, client: httpx.Client
) -> None:
    import socket

    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /v2/models/lr/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    sock.close()
    assert client.get("/v2/health/live").status_code == 200
    text = client.get("/metrics").text
    assert 'code="500"' not in text
