"""ServeCommand: one typed description of a model-server process, its argv and its defaults."""

from __future__ import annotations

import inspect
import re
import signal
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.cli.serve import serve
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.spec import DEFAULT_BATCHING, Batching, Logging, Template
from loopline.errors import InvalidInputError
from loopline.serving import (
    BatchingOptions,
    LogOptions,
    ServeCommand,
    ServedModel,
    ServerOptions,
    run_server,
)
from loopline.testing.artifacts import wait_for

DEFAULT = ServeCommand(models=("m",))
FLAGS = ["--" + f.name.replace("_", "-") for f in fields(ServeCommand) if f.name != "models"]

_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1
)
_arg = _text.filter(lambda s: not s.startswith("-"))
_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def commands(draw: st.DrawFn) -> ServeCommand:
    log_dir = draw(st.none() | _text.map(Path))
    return ServeCommand(
        models=tuple(draw(st.lists(_arg, min_size=1, max_size=3))),
        host=draw(_arg),
        port=(port := draw(st.integers(0, 65535))),
        grpc_port=draw(st.none() | st.integers(0, 65535).filter(lambda p: p == 0 or p != port)),
        workers=draw(st.integers(1, 64)),
        name=draw(st.none() | _name),
        batching=draw(st.booleans()),
        max_batch_size=draw(st.integers(1, 10**9)),
        max_latency_ms=draw(st.floats(1.0, 1e12, **_finite)),
        max_queue_rows=draw(st.integers(1, 10**9)),
        max_body_bytes=draw(st.integers(1, 10**12)),
        max_header_bytes=(head := draw(st.integers(1, 10**9))),
        max_url_bytes=draw(st.integers(1, head)),
        head_timeout=draw(st.floats(0.1, 1e9, **_finite)),
        body_timeout=draw(st.floats(0.1, 1e9, **_finite)),
        idle_timeout=draw(st.floats(0.1, 1e9, **_finite)),
        max_connections=draw(st.integers(1, 10**6)),
        max_pipelined=draw(st.integers(1, 10**6)),
        log_dir=log_dir,
        log_sample_rate=draw(st.floats(0.0, 1.0)) if log_dir is not None else 1.0,
        log_max_bytes=draw(st.integers(1, 10**13)) if log_dir is not None else 1 << 30,
        log_max_age=draw(st.floats(1e-3, 1e10, **_finite)) if log_dir is not None else 2592000.0,
        log_buffer_bytes=draw(st.integers(1, 10**12)) if log_dir is not None else 64 << 20,
        graceful_timeout=draw(st.floats(1.0, 1e9, **_finite)),
        drain_seconds=draw(st.floats(0.0, 1e9, **_finite)),
        expected_digest=draw(st.none() | st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)),
        allow_unverified=draw(st.booleans()),
    )


def click_parse(argv: list[str]) -> ServeCommand:
    """What ``loopline serve ARGV`` builds: the click front end's parse of the same argv."""
    params = dict(serve.make_context("serve", list(argv)).params)
    return ServeCommand(models=params.pop("model_refs"), **params)


# ---- argv --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(commands())
def test_from_argv_is_the_exact_inverse_of_to_argv(command: ServeCommand) -> None:
    assert ServeCommand.from_argv(command.to_argv()) == command


@settings(max_examples=100, deadline=None)
@given(commands())
def test_loopline_serve_parses_the_same_argv_into_the_same_command(
    command: ServeCommand,
) -> None:
    assert click_parse(command.to_argv()) == command


def test_a_default_command_is_just_its_models() -> None:
    assert ServeCommand(models=("a", "b")).to_argv() == ["a", "b"]


def test_argv_accepts_equals_signs_interleaved_models_and_a_double_dash() -> None:
    argv = ["--port=0", "m1", "--no-batching", "--batching", "--workers", "2", "--", "m2"]
    parsed = ServeCommand.from_argv(argv)
    assert parsed == ServeCommand(models=("m1", "m2"), port=0, batching=True, workers=2)
    with pytest.raises(InvalidInputError, match=r"MODEL_REF '--port' is not a model directory"):
        ServeCommand.from_argv(["m1", "--", "--port"])  # after "--", everything is a model


def test_the_process_argv_runs_the_serve_process_module() -> None:
    command = ServeCommand(models=("taxi/3",), port=9000, batching=True)
    assert command.process_argv("py") == [
        "py", "-m", "loopline.cli.serve_process", "taxi/3", "--port", "9000", "--batching",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["m", "--prot", "1"], r"--prot is not a serve option; the options are .*--port"),
        (["m", "--port", "abc"], r"--port 'abc' is not an integer"),
        (["m", "--max-latency-ms", "soon"], r"--max-latency-ms 'soon' is not a number"),
        (["m", "--port"], r"--port needs a value"),
        (["m", "--batching=yes"], r"--batching takes no value \(got 'yes'\)"),
        (["m", "--port", "70000"], r"--port 70000 is out of range: use between 0 and 65535"),
        (["--port", "1"], r"MODEL_REF is missing"),
    ],
)
def test_malformed_argv_is_an_error_naming_the_flag(argv: list[str], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        ServeCommand.from_argv(argv)


# ---- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"models": ()}, r"MODEL_REF is missing"),
        ({"models": ("",)}, r"MODEL_REF '' is not a model directory or registry reference"),
        ({"host": ""}, r"--host '' is not an interface address"),
        ({"port": -1}, r"--port -1 is out of range: use between 0 and 65535"),
        ({"workers": 0}, r"--workers 0 is out of range: use between 1 and 64"),
        ({"workers": 65}, r"--workers 65 is out of range"),
        ({"workers": 2.0}, r"--workers must be an integer, not 2.0"),
        ({"name": "two words"}, r"--name: Model name 'two words' is not valid"),
        ({"max_batch_size": 0}, r"--max-batch-size 0 is out of range: use at least 1"),
        ({"max_queue_rows": 0}, r"--max-queue-rows 0 is out of range"),
        ({"max_body_bytes": 0}, r"--max-body-bytes 0 is out of range"),
        ({"max_header_bytes": 0}, r"--max-header-bytes 0 is out of range"),
        (
            {"max_header_bytes": 8000, "max_url_bytes": 9000},
            r"--max-url-bytes 9000 is larger than --max-header-bytes 8000",
        ),
        ({"head_timeout": 0.0}, r"--head-timeout 0.0 is out of range: use at least 0.1"),
        ({"idle_timeout": float("inf")}, r"--idle-timeout must be a finite number"),
        ({"max_connections": 0}, r"--max-connections 0 is out of range"),
        ({"max_pipelined": 1.5}, r"--max-pipelined must be an integer, not 1.5"),
        ({"max_latency_ms": 0.5}, r"--max-latency-ms 0.5 is out of range: use at least 1"),
        ({"max_latency_ms": float("nan")}, r"--max-latency-ms must be a finite number"),
        ({"graceful_timeout": 0}, r"--graceful-timeout 0 is out of range"),
        ({"drain_seconds": -1.0}, r"--drain-seconds -1.0 is out of range: use at least 0"),
        ({"log_sample_rate": 0.5}, r"--log-sample-rate 0.5 has no effect without --log-dir"),
        ({"expected_digest": "abc"}, r"--expected-digest 'abc' is not a digest; write sha256:"),
        ({"allow_unverified": 1}, r"--allow-unverified is on or off \(a bool\), not 1"),
        (
            {"log_dir": Path("logs"), "log_sample_rate": 1.5},
            r"--log-sample-rate 1.5 is out of range: use between 0 and 1",
        ),
    ],
)
def test_an_invalid_value_is_an_error_naming_its_flag(
    changes: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        ServeCommand(**{"models": ("m",), **changes})


def test_numbers_are_normalised_so_equal_commands_compare_equal() -> None:
    command = ServeCommand(models=["m"], max_latency_ms=5, log_dir="logs")  # type: ignore[arg-type]
    assert command == ServeCommand(models=("m",), max_latency_ms=5.0, log_dir=Path("logs"))
    assert isinstance(command.max_latency_ms, float) and isinstance(command.models, tuple)


# ---- one source of defaults --------------------------------------------------------------------


def test_defaults_are_those_of_the_serving_options() -> None:
    assert DEFAULT.server_options() == ServerOptions()
    batching = BatchingOptions()
    assert (DEFAULT.max_batch_size, DEFAULT.max_latency_ms, DEFAULT.max_queue_rows) == (
        batching.max_batch_size, batching.max_latency_ms, batching.max_queue_rows,
    )  # fmt: skip
    assert DEFAULT.max_body_bytes == ServerOptions().max_body_bytes
    assert DEFAULT.server_options().http == ServerOptions().http
    assert DEFAULT.log_sample_rate == LogOptions(Path("x")).sample_rate
    assert DEFAULT.batching is ServedModel.__dataclass_fields__["batching"].default


def test_run_server_keyword_defaults_agree_with_the_command() -> None:
    params = inspect.signature(run_server).parameters
    for attr in ("host", "port", "grpc_port", "workers", "graceful_timeout", "drain_seconds"):
        assert params[attr].default == getattr(DEFAULT, attr), attr


def test_the_deploy_specs_batching_and_logging_defaults_are_the_servers() -> None:
    assert (DEFAULT_BATCHING.enabled, DEFAULT_BATCHING.max_batch_size) == (
        DEFAULT.batching, DEFAULT.max_batch_size,
    )  # fmt: skip
    assert DEFAULT_BATCHING == Batching()
    assert DEFAULT_BATCHING.max_latency_ms == DEFAULT.max_latency_ms
    assert Logging().sample_rate == DEFAULT.log_sample_rate


def test_a_default_template_becomes_a_default_command(tmp_path: Path) -> None:
    engine = LocalEngine(log_dir=tmp_path)
    template = Template.from_dict({"model": "m"})
    assert engine.serve_command(template, DEFAULT.port) == DEFAULT


def test_loopline_serve_flags_are_the_commands_flags_with_its_defaults() -> None:
    options = {p.opts[0]: p for p in serve.params if isinstance(p, click.Option)}
    assert sorted(o for o in options if o != "--help") == sorted(FLAGS)
    help_text = " ".join(CliRunner().invoke(serve, ["--help"]).output.split())
    for flag in FLAGS:
        attr = flag[2:].replace("-", "_")
        value = getattr(DEFAULT, attr)
        assert options[flag].default == value, flag
        if value is None:
            continue
        shown = (flag[2:] if value else "no-" + flag[2:]) if isinstance(value, bool) else str(value)
        found = re.search(re.escape(flag) + r"\b[^\[]*\[default: ([^\]]+)\]", help_text)
        # (click wraps long help lines after a hyphen: "no-allow- unverified")
        assert found is not None and found.group(1).replace("- ", "-") == shown, flag


def test_loopline_serve_reports_an_invalid_value_naming_the_flag() -> None:
    result = CliRunner().invoke(serve, ["model-dir", "--workers", "0"])
    assert result.exit_code == 1
    assert "--workers 0 is out of range: use between 1 and 64" in result.output


# ---- the process -------------------------------------------------------------------------------


def test_the_serve_process_imports_neither_click_nor_the_platform() -> None:
    code = (
        "import sys, loopline.cli.serve_process; "
        "print(sorted(m for m in ('click', 'loopline.platform', 'loopline.settings') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_serve_process_rejects_a_bad_argv_naming_the_flag() -> None:
    argv = [sys.executable, "-m", "loopline.cli.serve_process", "m", "--port", "abc"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr == "loopline serve: error: --port 'abc' is not an integer.\n"


@pytest.mark.slow
def test_the_serve_process_serves_a_model_directory_and_stops_gracefully(
    models: Any, v2_body: Any, tmp_path: Path
) -> None:
    command = ServeCommand(models=(str(models.dirs["lr"]),), port=0, name="lr", batching=True,
                           log_dir=tmp_path / "logs", graceful_timeout=5.0,
                           expected_digest=models.lr.digest)  # fmt: skip
    proc = subprocess.Popen(
        command.process_argv(sys.executable), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("loopline serve: listening on http://127.0.0.1:"), line
        url = line.split("listening on ")[1].split()[0]
        with httpx.Client(base_url=url, timeout=10) as client:

            def ready() -> bool:
                try:
                    return client.get("/v2/health/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, timeout=60, what="the server to become ready")
            answer = client.post("/v2/models/lr/infer", json=v2_body(models.x[:3]))
            assert answer.status_code == 200, answer.text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert code == 0
    assert any((tmp_path / "logs").rglob("*.parquet"))
