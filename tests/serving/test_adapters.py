"""MLflow /invocations, KServe V1 and TF Serving :predict adapters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from loopline.serving import ServedModel


@pytest.fixture(scope="module")
def single(models: Any, serve_models: Any) -> Any:
    with serve_models([ServedModel("tab", "1", models.tab)]) as s:
        yield s


@pytest.fixture()
def tab(single: Any) -> Any:
    with httpx.Client(base_url=single.url, timeout=10) as c:
        yield c


def _expected(models: Any, n: int) -> list[int]:
    f = models.frame.head(n)
    return list(
        models.tab.predict({c: f[c].to_numpy() for c in ("age", "fare", "city")})["predict"]
    )


def test_mlflow_accepts_all_four_documented_formats(tab: httpx.Client, models: Any) -> None:
    f = models.frame.head(3)
    records = f.to_dict(orient="records")
    bodies = [
        {
            "dataframe_split": {
                "columns": list(f.columns),
                "index": [0, 1, 2],
                "data": f.values.tolist(),
            }
        },
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": {c: f[c].tolist() for c in f.columns}},
    ]
    for body in bodies:
        r = tab.post("/invocations", json=body)
        assert r.status_code == 200, (body, r.text)
        assert r.json() == {"predictions": _expected(models, 3)}


def test_mlflow_errors_use_its_error_body(tab: httpx.Client, models: Any) -> None:
    r = tab.post("/invocations", json={"instances": [], "inputs": []})
    assert r.status_code == 400
    assert r.json()["error_code"] == "BAD_REQUEST"
    assert "exactly one of" in r.json()["message"]
    r = tab.post("/invocations", json={"dataframe_records": [{"age": 1, "fare": 2.0}]})
    assert r.status_code == 400 and "missing input 'city'" in r.json()["message"]
    r = tab.post("/invocations", json={"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}})
    assert r.status_code == 400 and "1 values (one per column)" in r.json()["message"]


def test_mlflow_health_and_version(tab: httpx.Client) -> None:
    assert tab.get("/ping").status_code == 200
    assert tab.get("/health").status_code == 200
    assert tab.get("/version").status_code == 200


def test_invocations_needs_a_single_model_server(client: httpx.Client) -> None:
    r = client.post("/invocations", json={"instances": [[1.0] * 30]})
    assert r.status_code == 404 and "several models" in r.json()["message"]


def test_kserve_v1_predict_and_status(client: httpx.Client, models: Any) -> None:
    x = models.x[:4]
    r = client.post("/v1/models/lr:predict", json={"instances": x.tolist()})
    assert r.status_code == 200
    assert r.json() == {"predictions": models.lr.predict(x)["predict"].tolist()}
    assert client.get("/v1/models/lr").json() == {"name": "lr", "ready": True}
    assert client.get("/v1/models").json() == {"models": ["lr", "rf", "tab"]}
    assert client.post("/v1/models/ghost:predict", json={"instances": [[1]]}).status_code == 404


def test_tf_serving_paths_with_versions_labels_and_columnar_inputs(
    client: httpx.Client, models: Any
) -> None:
    x = models.x[:2]
    want1 = models.lr.predict(x)["predict"].tolist()
    want2 = models.lr_v2.predict(x)["predict"].tolist()
    r = client.post(
        "/v1/models/lr/versions/2:predict",
        json={"signature_name": "serving_default", "instances": x.tolist()},
    )
    assert r.json() == {"predictions": want2}
    r = client.post("/v1/models/lr/labels/champion:predict", json={"inputs": x.tolist()})
    assert r.json() == {"outputs": want1}
    r = client.post("/v1/models/lr/labels/ghost:predict", json={"inputs": x.tolist()})
    assert r.status_code == 404 and "no version or alias 'ghost'" in r.json()["error"]


def test_tf_and_v1_errors_name_the_problem(client: httpx.Client) -> None:
    r = client.post("/v1/models/lr:predict", json={"instances": [[1.0] * 29]})
    assert r.status_code == 400 and "shape [1, 29]" in r.json()["error"]
    r = client.post("/v1/models/lr:predict", json={"signature_name": "other", "instances": [[1.0]]})
    assert r.status_code == 400 and "signature_name 'other'" in r.json()["error"]
    r = client.post("/v1/models/lr:classify", json={"instances": [[1.0]]})
    assert r.status_code == 404
