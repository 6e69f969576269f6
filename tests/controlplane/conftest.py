"""Fixtures for the control-plane tests: a temporary registry holding two real scikit-learn
models (LogisticRegression on breast cancer, versions 1 and 2 of ``bc``, alias champion → 1),
and an in-thread API server over the real ControlPlane with the shipped fake engine."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.controlplane.brittle import Brittle

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.bundle import infer_signature, save_model
from loopline.controlplane.api import create_app
from loopline.controlplane.events import EventLog
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.server import HTTP_LIMITS, make_api_server
from loopline.controlplane.service import ControlPlane
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.deploy.template_store import InMemoryAnalysisTemplateStore
from loopline.metadata.entities import ArtifactState
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.registry.registry import ModelRegistry
from loopline.serving import HttpLimits
from loopline.testing.artifacts import wait_for
from loopline.testing.deploy import FakeEngine, FakeRouting

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="session")
def bc_bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two saved LogisticRegression bundles (C = 1 and C = 0.01) on breast cancer."""
    root = tmp_path_factory.mktemp("bc-bundles")
    x, y = load_breast_cancer(return_X_y=True)
    paths = []
    for i, c in enumerate((1.0, 0.01)):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(x, y)
        paths.append(
            save_model(
                model,
                root / f"v{i + 1}",
                signature=infer_signature(x, y),
                methods=("predict", "predict_proba"),
                input_example=x[:2],
            )
        )
    return paths


@pytest.fixture(scope="session")
def bc_bad_bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two models that serve but are bad: ``wrong`` (trained on flipped labels, so it
    disagrees with ``bc_bundles`` on every row) and ``brittle`` (python flavor; its warm-up
    passes, every request on rows outside its tiny fitted range answers 500)."""
    root = tmp_path_factory.mktemp("bc-bad-bundles")
    x, y = load_breast_cancer(return_X_y=True)
    wrong = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, 1 - y)
    signature = infer_signature(x, y)
    return [
        save_model(wrong, root / "wrong", signature=signature,
                   methods=("predict", "predict_proba"), input_example=x[:2]),
        save_model(Brittle.fit(x[100:110], y[100:110]), root / "brittle", signature=signature,
                   flavor="python", input_example=x[100:102]),
    ]  # fmt: skip


def publish_bundle(metadata: MetadataStore, artifacts: FsspecArtifactStore, bundle: Path) -> int:
    """Publish a saved bundle as a LIVE Model artifact; returns its id."""
    with artifacts.staging() as staged:
        shutil.copytree(bundle, staged, dirs_exist_ok=True)
        uri = artifacts.allocate("Model", f"bc/{bundle.name}")
        digest = artifacts.publish(staged, uri)
    return metadata.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE).id


def register_bc(
    metadata: MetadataStore, artifacts: FsspecArtifactStore, bundles: list[Path]
) -> ModelRegistry:
    """Register ``bc`` versions 1..n from ``bundles`` and point champion at version 1."""
    registry = ModelRegistry(metadata, artifacts)
    for i, bundle in enumerate(bundles):
        art = publish_bundle(metadata, artifacts, bundle)
        registry.register("bc", art, who="test", why=f"version {i + 1}")
    registry.set_alias("bc", "champion", 1, who="test", why="baseline")
    return registry


@dataclass
class Registry:
    db_url: str
    artifact_root: str
    metadata: MetadataStore
    registry: ModelRegistry


@pytest.fixture
def bc_registry(tmp_path: Path, bc_bundles: list[Path]) -> Iterator[Registry]:
    db_url = f"sqlite:///{tmp_path}/metadata.db"
    root = str(tmp_path / "artifacts")
    metadata = open_store(db_url)
    registry = register_bc(metadata, FsspecArtifactStore(root), bc_bundles)
    try:
        yield Registry(db_url, root, metadata, registry)
    finally:
        metadata.close()


@dataclass
class FakeCluster:
    """The real ControlPlane and API on a fake engine (no processes), served on loopback."""

    url: str
    service: ControlPlane
    engine: FakeEngine
    registry: ModelRegistry

    def settle(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            self.service.sync_once()


@pytest.fixture
def fake_cluster(bc_registry: Registry) -> Iterator[FakeCluster]:
    engine = FakeEngine()
    manager = DeploymentManager(
        store=InMemoryDeploymentStateStore(),
        engine=engine,
        routing=FakeRouting(),
        backoff=BackoffPolicy(),
        background_stops=False,
        templates=InMemoryAnalysisTemplateStore(),
    )
    service = ControlPlane(
        manager=manager,
        pinner=ModelPinner(registry=bc_registry.registry, metadata=bc_registry.metadata),
        events=EventLog(clock=time.time),
    )
    with serve_api(create_app(service, token=TOKEN)) as url:
        yield FakeCluster(url, service, engine, bc_registry.registry)


@contextlib.contextmanager
def serve_api(app: Any, limits: HttpLimits = HTTP_LIMITS) -> Iterator[str]:
    """The API ``app`` served on loopback as the control plane serves it (its connection
    limits included) until the block ends; yields its URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = make_api_server(app, limits)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=20, what="the API server to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
