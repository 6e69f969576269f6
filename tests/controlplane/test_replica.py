"""The replica launcher maps the engine's template fields onto ``loopline serve`` flags."""

from __future__ import annotations

from pathlib import Path

from loopline.controlplane.replica import _parser, replica_command, serve_argv
from loopline.deploy.engines.local import PLACEHOLDERS


def fill(command: tuple[str, ...], **fields: object) -> list[str]:
    values: dict[str, object] = dict.fromkeys(PLACEHOLDERS, "0")
    values.update(model="taxi/3", host="127.0.0.1", port=8123, workers=2, batching="off",
                  logging="off", replica_id="taxi-abc-123", max_latency_ms=10.0,
                  max_batch_size=32, sample_rate=0.5)  # fmt: skip
    values.update(fields)
    return [a.format(**values) for a in command]


def launcher(**fields: object) -> list[str]:
    cmd = replica_command(python="py", log_root=Path("/logs"), graceful_timeout=20,
                          drain_seconds=0)  # fmt: skip
    argv = fill(cmd, **fields)
    assert argv[:3] == ["py", "-m", "loopline.controlplane.replica"]
    return serve_argv(_parser().parse_args(argv[3:]), "py")


def test_plain_replica_serves_the_pinned_model_without_batching_or_logs() -> None:
    argv = launcher()
    assert argv[:5] == ["py", "-m", "loopline.cli", "serve", "taxi/3"]
    assert argv[argv.index("--port") + 1] == "8123"
    assert argv[argv.index("--workers") + 1] == "2"
    assert "--no-batching" in argv and "--log-dir" not in argv
    assert argv[argv.index("--graceful-timeout") + 1] == "20.0"


def test_batching_and_logging_become_serve_flags() -> None:
    argv = launcher(batching="on", logging="on", max_latency_ms=0.0)
    assert "--batching" in argv
    assert argv[argv.index("--max-latency-ms") + 1] == "1.0"  # serve's lower bound
    assert argv[argv.index("--log-dir") + 1] == "/logs"
    assert argv[argv.index("--log-sample-rate") + 1] == "0.5"
