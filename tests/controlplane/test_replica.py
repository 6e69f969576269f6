"""The control plane's replicas: the composed local engine runs the real model server from
each revision's template (``python -m loopline.cli.serve_process`` + ``ServeCommand``)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from tests.controlplane.live import infer_body, platform_settings, register_models

from loopline.controlplane.build import build_controlplane
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.spec import Batching, Logging, Template
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.platform import Platform
from loopline.serving import ServeCommand, read_prediction_logs
from loopline.testing.artifacts import wait_for


def composed_engine(platform: Platform) -> LocalEngine:
    service = build_controlplane(
        platform, store=InMemoryDeploymentStateStore(), graceful_timeout=20.0
    )
    engine = service.manager.engine
    assert isinstance(engine, LocalEngine)
    return engine


def test_a_plain_replica_serves_the_pinned_model_without_batching_or_logs(
    tmp_path: Path,
) -> None:
    with Platform(platform_settings(tmp_path)) as platform:
        command = composed_engine(platform).serve_command(Template(model="taxi/3"), 8123)
    assert command == ServeCommand(models=("taxi/3",), port=8123, graceful_timeout=20.0)
    assert command.process_argv(sys.executable) == [
        sys.executable, "-m", "loopline.cli.serve_process", "taxi/3",
        "--port", "8123", "--graceful-timeout", "20.0",
    ]  # fmt: skip


def test_batching_and_logging_become_server_options_with_logs_under_the_home(
    tmp_path: Path,
) -> None:
    template = Template(
        model="taxi/3",
        workers=2,
        batching=Batching(enabled=True, max_batch_size=32, max_latency_ms=10.0),
        logging=Logging(enabled=True, sample_rate=0.5),
    )
    with Platform(platform_settings(tmp_path)) as platform:
        command = composed_engine(platform).serve_command(template, 8123)
        home = platform.settings.home
    options = command.server_options()
    assert (command.workers, command.drain_seconds) == (2, 0.0)
    assert (options.batching.max_batch_size, options.batching.max_latency_ms) == (32, 10.0)
    assert options.log is not None
    assert (options.log.directory, options.log.sample_rate) == (home / "predictions", 0.5)


@pytest.mark.slow
def test_a_replica_of_a_registry_reference_serves_and_logs_predictions(
    tmp_path: Path, bc_bundles: list[Path]
) -> None:
    with Platform(platform_settings(tmp_path)) as platform:
        register_models(platform, bc_bundles)
        engine = composed_engine(platform)
        home = platform.settings.home
    template = Template(model="bc/1", batching=Batching(enabled=True), logging=Logging(True))
    handle = engine.start_replica("bc-1", template)
    try:
        def ready() -> bool:
            assert engine.poll(handle) is None, Path(handle.log_path or "").read_text()
            return engine.probe_ready(handle, timeout=1.0)

        wait_for(ready, timeout=90, what="the replica to become ready")
        url = f"http://127.0.0.1:{handle.port}/v2/models/bc/infer"
        answer = httpx.post(url, json=infer_body(), timeout=10)
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    finally:
        gone = engine.stop(handle, grace=30)
    assert gone.code == 0
    assert read_prediction_logs(home / "predictions", model="bc", version="1").height == 2
    log = Path(handle.log_path or "").read_text()
    assert log.startswith(f"bc-1: {sys.executable} -m loopline.cli.serve_process bc/1 ")
    assert "listening on http://127.0.0.1:" in log


@pytest.mark.slow
def test_a_replica_whose_model_bytes_changed_exits_with_the_reason_in_its_log(
    tmp_path: Path, bc_bundles: list[Path]
) -> None:
    with Platform(platform_settings(tmp_path)) as platform:
        register_models(platform, bc_bundles)  # version 3 was damaged after registration
        engine = composed_engine(platform)
    handle = engine.start_replica("bc-3", Template(model="bc/3"))
    wait_for(lambda: engine.poll(handle) is not None, timeout=90,
             what="the replica of a damaged model to exit")  # fmt: skip
    gone = engine.poll(handle)
    assert gone is not None
    log = Path(handle.log_path or "").read_text()
    assert gone.code == 1 and "loopline serve: error:" in log and "Traceback" not in log
