"""The local engine with real processes (the fake model server)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from loopline.artifacts.owner import process_stat
from loopline.deploy.engines.base import DeployEngine
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.spec import Template
from loopline.errors import BackendError, InvalidDefinitionError
from loopline.testing.deploy import DeployEngineContract, FakeEngine

FAKE_SERVER = str(Path(__file__).parents[1] / "fake_server.py")
COMMAND = (sys.executable, FAKE_SERVER, "--port", "{port}", "--id", "{replica_id}",
           "--workers", "{workers}")  # fmt: skip


class TestLocalEngineContract(DeployEngineContract):
    __test__ = True

    @pytest.fixture
    def engine(self, tmp_path: Path) -> DeployEngine:
        return LocalEngine(command=COMMAND, log_dir=tmp_path / "logs")

    @pytest.fixture
    def template(self) -> Template:
        return Template(model="iris/1")

    @pytest.fixture
    def ready_timeout(self) -> float:
        return 10.0


class TestFakeEngineContract(DeployEngineContract):
    __test__ = True

    @pytest.fixture
    def engine(self) -> DeployEngine:
        return FakeEngine()

    @pytest.fixture
    def template(self) -> Template:
        return Template(model="iris/1")

    @pytest.fixture
    def ready_timeout(self) -> float:
        return 1.0


def test_replica_runs_in_its_own_session_with_a_log_file(tmp_path: Path) -> None:
    engine = LocalEngine(command=COMMAND, log_dir=tmp_path)
    handle = engine.start_replica("web-abc-1", Template(model="iris/1"))
    try:
        assert os.getsid(handle.pid) == handle.pid != os.getsid(0)
        assert handle.log_path == str(tmp_path / "web-abc-1.log")
        info = process_stat(handle.pid)
        assert info is not None and info[0] == handle.process_start
    finally:
        engine.stop(handle, grace=5)


def test_a_fresh_engine_re_adopts_a_running_replica_and_stops_it(tmp_path: Path) -> None:
    first = LocalEngine(command=COMMAND, log_dir=tmp_path)
    handle = first.start_replica("r", Template(model="iris/1"))
    second = LocalEngine(command=COMMAND, log_dir=tmp_path)  # the control plane restarted
    assert second.poll(handle) is None
    gone = second.stop(handle, grace=5)
    assert gone.code is None  # not our child: the exit code is unknown
    first.poll(handle)  # reap it in the original parent
    assert second.poll(handle) is not None


def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = (sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('up', flush=True); time.sleep(60)")  # fmt: skip
    engine = LocalEngine(command=stubborn, log_dir=tmp_path)
    handle = engine.start_replica("r", Template(model="iris/1"))
    import time

    deadline = time.monotonic() + 20  # wait until SIGTERM is really ignored (a loaded CI box)
    while not any("up" in p.read_text() for p in tmp_path.glob("*.log")):
        assert time.monotonic() < deadline, "the stubborn process never started"
        time.sleep(0.05)
    gone = engine.stop(handle, grace=0.5)
    assert gone.code == -signal.SIGKILL


def test_a_replica_that_fails_to_start_reports_its_exit_code(tmp_path: Path) -> None:
    engine = LocalEngine(command=(*COMMAND, "--fail-start"), log_dir=tmp_path)
    handle = engine.start_replica("r", Template(model="iris/1"))
    import time

    time.sleep(0.5)
    for _ in range(50):
        gone = engine.poll(handle)
        if gone is not None:
            break
        time.sleep(0.1)
    assert gone is not None and gone.code == 1
    assert "model failed to load" in Path(handle.log_path or "").read_text()


def test_unlaunchable_command_raises_backend_error(tmp_path: Path) -> None:
    engine = LocalEngine(command=("/nonexistent/loopline-serve",), log_dir=tmp_path)
    with pytest.raises(BackendError, match="could not run '/nonexistent/loopline-serve'"):
        engine.start_replica("r", Template(model="iris/1"))


def test_unknown_placeholder_is_rejected_when_the_engine_is_built(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinitionError, match=r"unknown placeholder .*'modle'"):
        LocalEngine(command=("serve", "{modle}"), log_dir=tmp_path)
