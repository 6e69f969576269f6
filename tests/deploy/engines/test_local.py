"""The local engine with real processes: the fake model server, and the real one."""

from __future__ import annotations

import os
import signal
import stat
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

from loopline.artifacts.owner import process_stat
from loopline.bundle import tree_digest
from loopline.deploy.engines.base import DeployEngine
from loopline.deploy.engines.local import LocalEngine, ReplicaArgv
from loopline.deploy.spec import Batching, Logging, Template
from loopline.errors import BackendError, InvalidDefinitionError
from loopline.serving import ServeCommand
from loopline.testing.artifacts import wait_for
from loopline.testing.deploy import DeployEngineContract, FakeEngine

FAKE_SERVER = str(Path(__file__).parents[1] / "fake_server.py")


def fake_server(*extra: str) -> ReplicaArgv:
    """Start the fake model server on the replica's port, answering with the replica id."""

    def argv(replica_id: str, command: ServeCommand) -> list[str]:
        return [sys.executable, FAKE_SERVER, "--port", str(command.port), "--id", replica_id,
                "--workers", str(command.workers), *extra]  # fmt: skip

    return argv


FAKE = fake_server()


class TestLocalEngineContract(DeployEngineContract):
    __test__ = True

    @pytest.fixture
    def engine(self, tmp_path: Path) -> DeployEngine:
        return LocalEngine(log_dir=tmp_path / "logs", argv=FAKE)

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
    engine = LocalEngine(log_dir=tmp_path, argv=FAKE)
    handle = engine.start_replica("web-abc-1", Template(model="iris/1"))
    try:
        assert os.getsid(handle.pid) == handle.pid != os.getsid(0)
        assert handle.log_path == str(tmp_path / "web-abc-1.log")
        info = process_stat(handle.pid)
        assert info is not None and info[0] == handle.process_start
    finally:
        engine.stop(handle, grace=5)


def test_a_fresh_engine_re_adopts_a_running_replica_and_stops_it(tmp_path: Path) -> None:
    first = LocalEngine(log_dir=tmp_path, argv=FAKE)
    handle = first.start_replica("r", Template(model="iris/1"))
    second = LocalEngine(log_dir=tmp_path, argv=FAKE)  # the control plane restarted
    assert second.poll(handle) is None
    gone = second.stop(handle, grace=5)
    assert gone.code is None  # not our child: the exit code is unknown
    first.poll(handle)  # reap it in the original parent
    assert second.poll(handle) is not None


def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = (sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('up', flush=True); time.sleep(60)")  # fmt: skip
    engine = LocalEngine(log_dir=tmp_path, argv=lambda replica_id, command: stubborn)
    handle = engine.start_replica("r", Template(model="iris/1"))
    log = Path(handle.log_path or "")
    # wait until SIGTERM is really ignored (a loaded CI box)
    wait_for(lambda: "up" in log.read_text().splitlines(), timeout=20,
             what="the stubborn process to start")  # fmt: skip
    gone = engine.stop(handle, grace=0.5)
    assert gone.code == -signal.SIGKILL


def test_a_replica_that_fails_to_start_reports_its_exit_code(tmp_path: Path) -> None:
    engine = LocalEngine(log_dir=tmp_path, argv=fake_server("--fail-start"))
    handle = engine.start_replica("r", Template(model="iris/1"))
    wait_for(lambda: engine.poll(handle) is not None, timeout=20,
             what="the failing replica to exit")  # fmt: skip
    gone = engine.poll(handle)
    assert gone is not None and gone.code == 1
    assert "model failed to load" in Path(handle.log_path or "").read_text()


def test_unlaunchable_command_raises_backend_error(tmp_path: Path) -> None:
    engine = LocalEngine(log_dir=tmp_path, python="/nonexistent/python")
    with pytest.raises(BackendError, match="could not run '/nonexistent/python'"):
        engine.start_replica("r", Template(model="iris/1"))


def test_a_replica_runs_the_serve_command_of_its_template_and_the_engine_settings(
    tmp_path: Path,
) -> None:
    engine = LocalEngine(log_dir=tmp_path, prediction_log_root=tmp_path / "predictions",
                         graceful_timeout=20, drain_seconds=0.5)  # fmt: skip
    template = Template(
        model="taxi@champion",
        workers=2,
        batching=Batching(enabled=True, max_batch_size=32, max_latency_ms=10.0),
        logging=Logging(enabled=True, sample_rate=0.5),
    )
    assert engine.serve_command(template, 8123) == ServeCommand(
        models=("taxi@champion",), port=8123, workers=2, batching=True, max_batch_size=32,
        max_latency_ms=10.0, log_dir=tmp_path / "predictions", log_sample_rate=0.5,
        graceful_timeout=20.0, drain_seconds=0.5,
    )  # fmt: skip


def test_a_plain_template_leaves_every_other_option_at_the_servers_default(
    tmp_path: Path,
) -> None:
    engine = LocalEngine(log_dir=tmp_path, host="127.0.0.2")
    command = engine.serve_command(Template(model="iris/1"), 9000)
    assert command == ServeCommand(models=("iris/1",), host="127.0.0.2", port=9000)
    assert command.to_argv() == ["iris/1", "--host", "127.0.0.2", "--port", "9000"]


def test_the_replica_log_starts_with_the_command_the_engine_ran(tmp_path: Path) -> None:
    seen: list[tuple[str, ServeCommand]] = []

    def argv(replica_id: str, command: ServeCommand) -> list[str]:
        seen.append((replica_id, command))
        return FAKE(replica_id, command)

    engine = LocalEngine(log_dir=tmp_path, argv=argv)
    handle = engine.start_replica("web-abc-1", Template(model="iris/1", workers=3))
    try:
        ((replica_id, command),) = seen
        assert (replica_id, command.models, command.port) == ("web-abc-1", ("iris/1",), handle.port)
        first = Path(handle.log_path or "").read_text().splitlines()[0]
        assert first.startswith("web-abc-1: ") and "--id web-abc-1 --workers 3" in first
    finally:
        engine.stop(handle, grace=5)


def test_a_logging_template_without_a_prediction_log_root_fails_to_start(
    tmp_path: Path,
) -> None:
    engine = LocalEngine(log_dir=tmp_path, argv=FAKE)
    template = Template(model="iris/1", logging=Logging(enabled=True))
    with pytest.raises(BackendError, match="cannot start replica 'r'.*no prediction_log_root"):
        engine.start_replica("r", template)


def test_invalid_engine_settings_are_rejected_when_the_engine_is_built(tmp_path: Path) -> None:
    with pytest.raises(InvalidDefinitionError, match=r"--graceful-timeout 0.5 is out of range"):
        LocalEngine(log_dir=tmp_path, graceful_timeout=0.5)
    with pytest.raises(InvalidDefinitionError, match=r"--drain-seconds -1 is out of range"):
        LocalEngine(log_dir=tmp_path, drain_seconds=-1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    from loopline.bundle import infer_signature, save_model

    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    path = tmp_path_factory.mktemp("bundle") / "clf"
    save_model(LogisticRegression().fit(x, y), path, signature=infer_signature(x, y),
               input_example=x[:2], metadata={"name": "clf"})  # fmt: skip
    return path


@pytest.mark.slow
def test_a_replica_is_the_real_model_server_with_batching_and_prediction_logs(
    tmp_path: Path, model_dir: Path
) -> None:
    from loopline.serving import read_prediction_logs

    root = tmp_path / "predictions"
    digest = tree_digest(model_dir)  # a directory is served only against its digest

    def checked(replica_id: str, command: ServeCommand) -> list[str]:
        return replace(command, expected_digest=digest).process_argv(sys.executable)

    engine = LocalEngine(log_dir=tmp_path / "logs", prediction_log_root=root,
                         graceful_timeout=5, argv=checked)  # fmt: skip
    template = Template(
        model=str(model_dir),
        batching=Batching(enabled=True, max_batch_size=8),
        logging=Logging(enabled=True),
    )
    handle = engine.start_replica("clf-1", template)
    try:
        def ready() -> bool:
            assert engine.poll(handle) is None, Path(handle.log_path or "").read_text()
            return engine.probe_ready(handle, timeout=1.0)

        wait_for(ready, timeout=60, what="the model server to become ready")
        body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64",
                            "data": [0.1, 0.8]}]}  # fmt: skip
        with httpx.Client(base_url=f"http://127.0.0.1:{handle.port}", timeout=10) as client:
            answer = client.post("/v2/models/clf/infer", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_name"] == "clf"
    finally:
        gone = engine.stop(handle, grace=20)
    assert gone.code == 0  # a graceful shutdown, logs flushed
    logged = read_prediction_logs(root, model="clf")
    assert logged.height == 1


PRINT_CWD = (sys.executable, "-c",
             "import os, time\n"
             "print('cwd=' + os.getcwd(), flush=True)\n"
             "time.sleep(60)\n")  # fmt: skip


def test_a_replica_starts_in_its_own_private_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    control_plane_dir = tmp_path / "controlplane-cwd"
    control_plane_dir.mkdir()
    monkeypatch.chdir(control_plane_dir)
    engine = LocalEngine(log_dir=tmp_path / "logs", argv=lambda replica_id, command: PRINT_CWD)
    handle = engine.start_replica("web-abc-1", Template(model="iris/1"))
    log = Path(handle.log_path or "")
    try:
        def printed() -> list[str]:
            return [ln for ln in log.read_text().splitlines() if ln.startswith("cwd=")]

        wait_for(printed, timeout=30, what="the replica's cwd line")
        cwd = printed()[0].split()[0].removeprefix("cwd=")
        assert Path(cwd) != control_plane_dir
        assert Path(cwd) == tmp_path / "replicas" / "web-abc-1"
        assert stat.S_IMODE(Path(cwd).stat().st_mode) == 0o700
        assert engine.poll(handle) is None  # the launcher exec'd the replica: same pid
    finally:
        engine.stop(handle, grace=5)


def test_process_logs_are_private_files_in_a_private_folder(tmp_path: Path) -> None:
    engine = LocalEngine(log_dir=tmp_path / "logs", argv=FAKE)
    handle = engine.start_replica("r", Template(model="iris/1"))
    try:
        log = Path(handle.log_path or "")
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    finally:
        engine.stop(handle, grace=5)


CHATTY = (sys.executable, "-c",
          "import sys, time\n"
          "while True:\n"
          "    sys.stdout.write('x' * 1023 + '\\n')\n"
          "    sys.stdout.flush()\n"
          "    time.sleep(0.002)\n")  # fmt: skip

START_AND_LEAVE = """
import json, sys
from pathlib import Path
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.engines.process_log import LogFilePolicy
from loopline.deploy.spec import Template
chatty = tuple(json.loads(sys.argv[2]))
engine = LocalEngine(log_dir=Path(sys.argv[1]), argv=lambda replica_id, command: chatty,
                     log_policy=LogFilePolicy(max_bytes=64 << 10, backups=2))
h = engine.start_replica("chatty", Template(model="iris/1"))
print(json.dumps([h.pid, h.process_start, h.port, h.log_path]))
"""


def test_a_chatty_process_log_rotates_within_its_bound_after_the_control_plane_is_gone(
    tmp_path: Path,
) -> None:
    import json
    import subprocess

    from loopline.deploy.engines.base import ProcessHandle

    # A "control plane" process starts the replica and exits: rotation must not need it.
    started = subprocess.run([sys.executable, "-c", START_AND_LEAVE, str(tmp_path),
                              json.dumps(CHATTY)], capture_output=True, text=True,
                             timeout=60, check=True)  # fmt: skip
    pid, process_start, port, log_path = json.loads(started.stdout)
    handle = ProcessHandle(pid=pid, process_start=process_start, port=port, log_path=log_path)
    engine = LocalEngine(log_dir=tmp_path)  # the restarted control plane re-adopts it
    try:
        live = Path(log_path)
        rotated = [live.with_name(f"{live.name}.{n}") for n in (1, 2, 3)]
        wait_for(lambda: rotated[1].exists() and live.stat().st_size > 0, timeout=30,
                 what="the log to rotate twice")  # fmt: skip
        for _ in range(3):  # watch it keep rotating: never more than 3 files of 64 KiB
            before = rotated[0].stat().st_ino
            wait_for(lambda b=before: rotated[0].exists() and rotated[0].stat().st_ino != b,
                     timeout=30, what="another rotation")  # fmt: skip
            files = [f for f in (live, *rotated) if f.exists()]
            assert not rotated[2].exists()
            assert all(f.stat().st_size <= 64 << 10 for f in files)
            assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        assert engine.poll(handle) is None
    finally:
        engine.stop(handle, grace=5)


def test_an_exit_is_reported_once_the_process_last_output_is_in_its_log(tmp_path: Path) -> None:
    burst = (sys.executable, "-c",
             "import sys\n"
             "for i in range(20000): print(f'{i:08d}', 'y' * 40)\n"
             "print('the end', flush=True); sys.exit(3)\n")  # fmt: skip
    engine = LocalEngine(log_dir=tmp_path, argv=lambda replica_id, command: burst)
    handle = engine.start_replica("r", Template(model="iris/1"))
    wait_for(lambda: engine.poll(handle) is not None, timeout=30, what="the process to exit")
    gone = engine.poll(handle)
    assert gone is not None and gone.code == 3
    assert Path(handle.log_path or "").read_text().endswith("the end\n")
