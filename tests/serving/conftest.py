"""Real servers on 127.0.0.1 for the serving tests: trained models, saved as bundles."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.bundle import LoadedModel, infer_signature, load_model, save_model
from loopline.serving import ServedModel, ServerOptions, create_app
from loopline.serving.app import ModelServerApp
from loopline.serving.runner import make_server


@dataclass
class Models:
    lr: LoadedModel
    lr_v2: LoadedModel
    rf: LoadedModel
    tab: LoadedModel
    x: np.ndarray
    frame: pd.DataFrame
    dirs: dict[str, Path]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("bundles")
    x, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    lr2 = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000)).fit(x, y)
    rf = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    sig = infer_signature(x, y)
    methods = ("predict", "predict_proba")
    save_model(lr, root / "lr", signature=sig, methods=methods, input_example=x[:2])
    save_model(lr2, root / "lr2", signature=sig, methods=methods, input_example=x[:2])
    save_model(
        rf,
        root / "rf",
        signature=sig,
        methods=methods,
        input_example=x[:2],
        metadata={"name": "rf"},
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 200).astype(np.int64),
            "fare": rng.random(200) * 100,
            "city": rng.choice(["paris", "lyon", "nice"], 200).astype(object),
        }
    )
    target = ((frame.fare > 50) ^ (frame.city == "nice")).astype(np.int64)
    tab = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["age", "fare"]), ("cat", OneHotEncoder(), ["city"])]
        ),
        LogisticRegression(),
    ).fit(frame, target)
    save_model(
        tab,
        root / "tab",
        signature=infer_signature(frame, target),
        methods=methods,
        input_example=frame.head(3),
    )
    dirs = {n: root / n for n in ("lr", "lr2", "rf", "tab")}
    return Models(
        lr=load_model(dirs["lr"]),
        lr_v2=load_model(dirs["lr2"]),
        rf=load_model(dirs["rf"]),
        tab=load_model(dirs["tab"]),
        x=x,
        frame=frame,
        dirs=dirs,
    )


class ThreadedServer:
    """The worker's uvicorn server (connection limits included) serving an app on
    127.0.0.1:<free port> in a background thread."""

    def __init__(self, app: ModelServerApp) -> None:
        self.app = app
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = make_server(app, graceful_timeout=5)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start within 20 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


def serve_models(
    served: Sequence[ServedModel], options: ServerOptions | None = None
) -> ThreadedServer:
    return ThreadedServer(create_app(served, options=options or ServerOptions()))


@pytest.fixture(scope="module")
def server(models: Models) -> Iterator[ThreadedServer]:
    served = [
        ServedModel("lr", "1", models.lr, aliases=("champion",)),
        ServedModel("lr", "2", models.lr_v2, aliases=("challenger",), batching=True),
        ServedModel("rf", "1", models.rf, batching=True),
        ServedModel("tab", "3", models.tab),
    ]
    with serve_models(served, ServerOptions(max_body_bytes=200_000)) as s:
        yield s


@pytest.fixture()
def client(server: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def v2_body(x: np.ndarray, name: str = "input", datatype: str = "FP64") -> dict[str, object]:
    return {
        "inputs": [
            {"name": name, "shape": list(x.shape), "datatype": datatype, "data": x.ravel().tolist()}
        ]
    }


@pytest.fixture(name="v2_body", scope="session")
def v2_body_fixture() -> object:
    return v2_body


@pytest.fixture(name="serve_models", scope="session")
def serve_models_fixture() -> object:
    return serve_models
