"""``loopline serve --grpc-port``: the real server process — the announced gRPC target,
workers sharing the gRPC port, calls in flight answered on SIGTERM, and the flag's checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tg
from sklearn.neighbors import KNeighborsClassifier
from tests.serving.faulty_model import LOADER, SLOW, save_faulty
from tritonclient.utils import InferenceServerException

from loopline.bundle import infer_signature, save_model
from loopline.errors import InvalidInputError
from loopline.serving import ServeCommand
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.testing.artifacts import wait_for

ROOT = Path(__file__).resolve().parents[2]


class Server:
    """``python -m loopline.cli.serve_process ARGS`` with its announced URL and gRPC target."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopline.cli.serve_process", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline()
        if "listening on" not in self.line:
            self.stop()
            raise AssertionError(f"the server did not start: {self.line!r}")
        self.url = self.line.split("listening on ")[1].split()[0]
        self.target = self.line.rstrip("\n").rsplit("; gRPC on ", 1)[1]

    def wait_ready(self) -> None:
        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="the server to become ready")
        with tg.InferenceServerClient(self.target) as client:

            def grpc_ready() -> bool:  # a worker listens for gRPC once HTTP listens
                try:
                    return bool(client.is_server_ready())
                except InferenceServerException:
                    return False

            wait_for(grpc_ready, timeout=30, what="the gRPC listener")

    def grpc_listeners(self) -> int:
        """Sockets listening on the gRPC port (one per worker that started its listener)."""
        port = f":{int(self.target.rsplit(':', 1)[1]):04X}"
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                count += local.endswith(port) and state == "0A"  # 0A: LISTEN
        return count

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return self.proc.returncode


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~20 ms of CPU per request: brute-force nearest neighbours over 40,000 rows."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 30))
    y = (x[:, 0] > 0).astype(int)
    knn = KNeighborsClassifier(n_neighbors=5, algorithm="brute", p=3).fit(x, y)
    path = tmp_path_factory.mktemp("grpc-slow") / "slow"
    return save_model(knn, path, signature=infer_signature(x, y), input_example=x[:1])


@pytest.fixture(scope="module")
def two_workers(slow_model: Path) -> Iterator[Server]:
    server = Server([str(slow_model), "--allow-unverified", "--port", "0", "--grpc-port", "0",
                     "--workers", "2"])  # fmt: skip
    try:
        server.wait_ready()
        wait_for(lambda: server.grpc_listeners() == 2, timeout=60, what="both gRPC listeners")
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_the_start_line_announces_the_grpc_target(two_workers: Server) -> None:
    assert two_workers.line.startswith("loopline serve: listening on http://127.0.0.1:")
    assert two_workers.line.endswith(f"(2 workers); gRPC on {two_workers.target}\n")
    assert two_workers.target.startswith("127.0.0.1:")


@pytest.mark.slow
def test_both_workers_answer_grpc_on_one_port(two_workers: Server) -> None:
    pids = two_workers.workers()
    before = {p: _cpu_seconds(p) for p in pids}
    x = np.random.default_rng(1).normal(size=(1, 30))
    answers: list[int] = []

    def client() -> None:  # a channel of its own: a connection of its own
        options = [("grpc.use_local_subchannel_pool", 1)]
        with tg.InferenceServerClient(two_workers.target, channel_args=options) as c:
            for _ in range(4):
                data = tg.InferInput("input", [1, 30], "FP64").set_data_from_numpy(x)
                answers.append(int(c.infer("slow", [data]).as_numpy("predict")[0]))

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == 128
    used = {p: _cpu_seconds(p) - before[p] for p in pids}
    # 32 connections spread by the kernel: each worker gets its share (about half)
    assert min(used.values()) > 0.15 * sum(used.values()), f"one worker took it all: {used}"


@pytest.mark.slow
def test_sigterm_answers_every_grpc_call_in_flight_then_exits_zero(tmp_path: Path) -> None:
    bundle = save_faulty(tmp_path)
    server = Server(
        [str(bundle), "--allow-unverified", "--port", "0", "--grpc-port", "0", "--batching",
         "--max-latency-ms", "60000", "--graceful-timeout", "20"],
        env={"LOOPLINE_TRUSTED_LOADERS": LOADER},
    )  # fmt: skip
    try:
        server.wait_ready()
        request = pb.ModelInferRequest(model_name="faulty")
        request.inputs.add(name="x", datatype="FP64", shape=[1, 1])
        request.raw_input_contents.append(np.array([SLOW]).tobytes())  # a second each
        with grpc.insecure_channel(server.target) as channel:
            infer = channel.unary_unary(
                f"/{pb.SERVICE_NAME}/ModelInfer",
                request_serializer=pb.ModelInferRequest.SerializeToString,
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            calls = [infer.future(request, timeout=60) for _ in range(6)]

            def all_in_flight() -> bool:
                metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
                key = 'loopline_requests_in_flight{model="faulty",version="1"} '
                return f"{key}6" in metrics

            wait_for(all_in_flight, timeout=30, what="six calls in flight")
            server.proc.send_signal(signal.SIGTERM)
            answers = [np.frombuffer(c.result().raw_output_contents[0]).tolist() for c in calls]
        assert answers == [[2 * SLOW]] * 6
        assert server.proc.wait(60) == 0
        with pytest.raises(grpc.RpcError) as error, grpc.insecure_channel(server.target) as ch:
            ch.unary_unary(f"/{pb.SERVICE_NAME}/ServerLive")(b"", timeout=5)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


def test_the_grpc_port_must_be_a_port_of_its_own() -> None:
    with pytest.raises(InvalidInputError, match="--grpc-port 8080 is the HTTP --port; give gRPC"):
        ServeCommand(models=("m",), port=8080, grpc_port=8080)
    with pytest.raises(InvalidInputError, match="--grpc-port 70000 is out of range"):
        ServeCommand(models=("m",), grpc_port=70000)
    assert ServeCommand(models=("m",), port=0, grpc_port=0).grpc_port == 0
    argv = ServeCommand(models=("m",), grpc_port=8081).to_argv()
    assert argv == ["m", "--grpc-port", "8081"]
    assert ServeCommand.from_argv(argv).grpc_port == 8081


@pytest.mark.slow
def test_a_grpc_port_in_use_is_refused_naming_the_flag(slow_model: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "loopline.cli.serve_process", str(slow_model),
                "--allow-unverified", "--port", "0", "--grpc-port", str(port)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert f"Cannot bind 127.0.0.1:{port} (Address already in use); choose another --grpc-port" in (
        out.stderr
    )


@pytest.mark.parametrize("missing", ["grpc", "google.protobuf", "google"])
def test_a_server_without_the_grpc_extra_refuses_grpc_port_before_it_starts(
    missing: str,
) -> None:
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "from loopline.serving import ServeCommand\n"
        "def load():\n    raise AssertionError('models loaded')\n"
        "try:\n    ServeCommand(models=('m',), port=0, grpc_port=0).run(load)\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Serving gRPC (--grpc-port) needs the" in out.stdout, out.stdout + out.stderr
    assert "pip install 'loopline[grpc]'" in out.stdout
