"""Fixtures for the console's tests: the real ControlPlane on the shipped fake engine, a
registry with two real models (``bc`` 1 and 2, champion → 1), a pipeline run recorded by the
real local runner, and the control plane's app with the console mounted at ``/ui``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.controlplane.conftest import bc_bundles, register_bc

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.controlplane.api import create_app
from loopline.controlplane.events import EventLog
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.service import ControlPlane
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.deploy.template_store import InMemoryAnalysisTemplateStore
from loopline.metadata.store import MetadataStore
from loopline.metadata.urls import open_store
from loopline.pipeline import Dataset, Input, Metrics, Output, Pipeline, StepContext, component
from loopline.pipeline.runner import LocalRunner
from loopline.registry import ModelRegistry
from loopline.testing.deploy import FakeEngine, FakeRouting
from loopline.ui import create_console
from loopline.ui.session import COOKIE, SessionKeys

__all__ = ["bc_bundles"]  # the session fixture, shared with tests/controlplane

TOKEN = "ui-test-token-0123456789"
LOCAL = "http://127.0.0.1"
REMOTE_CLIENT = ("192.0.2.7", 40000)


def deployment(name: str = "bc", model: str = "bc@champion", replicas: int = 2,
               canary: bool = True) -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {"model": model, "replicas": replicas}
    if canary:
        steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
        spec["strategy"] = {"type": "Canary", "canary": {"steps": steps}}
    return {"apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


@component
def ingest(out: Output[Dataset], rows: int = 3) -> None:
    (out.path / "n").write_text(str(rows))


@component
def stats(data: Input[Dataset], result: Output[Metrics], ctx: StepContext) -> None:
    ctx.log_metrics(rows=float((data.path / "n").read_text()))


@component
def train(data: Input[Dataset], metrics: Input[Metrics], model: Output[Dataset]) -> None:
    (model.path / "m").write_text((data.path / "n").read_text())


def tiny_pipeline() -> Pipeline:
    i = ingest()
    s = stats(data=i.outputs.out)
    return Pipeline("tiny", [i, s, train(data=i.outputs.out, metrics=s.outputs.result)])


@dataclass
class Console:
    """The control plane with its console, on a fake engine."""

    service: ControlPlane
    registry: ModelRegistry
    metadata: MetadataStore
    runner: LocalRunner
    app: Any

    def settle(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            self.service.sync_once()

    def client(self, *, remote: bool = False, signed_in: bool = False) -> TestClient:
        """A TestClient on 127.0.0.1 (from a loopback client, or from another address)."""
        c = TestClient(self.app, base_url=LOCAL, client=REMOTE_CLIENT if remote else
                       ("127.0.0.1", 40000), follow_redirects=False)  # fmt: skip
        if signed_in:
            c.cookies.set(COOKIE, SessionKeys(TOKEN).new_cookie(), domain="127.0.0.1")
        return c


@pytest.fixture
def console(tmp_path: Path, bc_bundles: list[Path]) -> Iterator[Console]:
    metadata = open_store(f"sqlite:///{tmp_path}/metadata.db")
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    registry = register_bc(metadata, artifacts, bc_bundles)
    manager = DeploymentManager(
        store=InMemoryDeploymentStateStore(),
        engine=FakeEngine(),
        routing=FakeRouting(),
        backoff=BackoffPolicy(),
        background_stops=False,
        templates=InMemoryAnalysisTemplateStore(),
    )
    service = ControlPlane(
        manager=manager,
        pinner=ModelPinner(registry=registry, metadata=metadata),
        events=EventLog(clock=time.time),
    )
    app = create_app(service, token=TOKEN, console=create_console(service, token=TOKEN))
    runner = LocalRunner(metadata, artifacts, log_dir=tmp_path / "logs", max_workers=2,
                         console=None)  # fmt: skip
    try:
        yield Console(service, registry, metadata, runner, app)
    finally:
        metadata.close()


def csrf_of(html: str) -> str:
    """The CSRF token in a page's ``<meta name="csrf-token">``."""
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
