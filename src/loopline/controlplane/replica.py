"""The replica launcher: turns the local engine's template fields into ``loopline serve``.

The local engine fills a fixed argv template (``{model}``, ``{port}``, ``{batching}`` = on/off,
…), but ``loopline serve`` takes boolean and optional flags (``--batching/--no-batching``,
``--log-dir`` only when logging). This module maps one onto the other and ``exec``s the
server, so the process the engine started (pid and start time) *is* the model server.

Run as ``python -m loopline.controlplane.replica --model taxi/3 --port 8123 …``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

#: The argv template the control plane gives the local engine (placeholders in braces).
TEMPLATE_FIELDS: tuple[str, ...] = (
    "--model", "{model}", "--host", "{host}", "--port", "{port}", "--workers", "{workers}",
    "--batching", "{batching}", "--max-batch-size", "{max_batch_size}",
    "--max-latency-ms", "{max_latency_ms}", "--logging", "{logging}",
    "--sample-rate", "{sample_rate}", "--replica-id", "{replica_id}",
)  # fmt: skip


def replica_command(
    *, python: str, log_root: Path, graceful_timeout: float, drain_seconds: float
) -> tuple[str, ...]:
    """The local engine's command template for model-server replicas.

    Args:
        python: the interpreter that runs loopline.
        log_root: where replicas with logging enabled write prediction logs (shared by all
            replicas; segment names carry the pid, the layout the model and version).
        graceful_timeout: seconds a replica may take to finish in-flight requests on SIGTERM.
        drain_seconds: seconds a replica keeps accepting after SIGTERM while reporting
            not-ready (0: the router already drained it).
    """
    return (
        python, "-m", "loopline.controlplane.replica", *TEMPLATE_FIELDS,
        "--log-root", str(log_root), "--graceful-timeout", f"{graceful_timeout:g}",
        "--drain-seconds", f"{drain_seconds:g}",
    )  # fmt: skip


def serve_argv(args: argparse.Namespace, python: str) -> list[str]:
    """The ``loopline serve`` argv for parsed launcher arguments."""
    argv = [
        python, "-m", "loopline.cli", "serve", args.model,
        "--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
        "--graceful-timeout", str(args.graceful_timeout),
        "--drain-seconds", str(args.drain_seconds),
    ]  # fmt: skip
    if args.batching == "on":
        argv += [
            "--batching",
            "--max-batch-size", str(args.max_batch_size),
            # serve bounds queueing time at >= 1 ms
            "--max-latency-ms", str(max(1.0, args.max_latency_ms)),
        ]  # fmt: skip
    else:
        argv.append("--no-batching")
    if args.logging == "on":
        argv += ["--log-dir", str(args.log_root), "--log-sample-rate", str(args.sample_rate)]
    return argv


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loopline.controlplane.replica")
    p.add_argument("--model", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batching", choices=("on", "off"), default="off")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-latency-ms", type=float, default=1000.0)
    p.add_argument("--logging", choices=("on", "off"), default="off")
    p.add_argument("--sample-rate", type=float, default=1.0)
    p.add_argument("--replica-id", default="")
    p.add_argument("--log-root", type=Path, required=True)
    p.add_argument("--graceful-timeout", type=float, default=30.0)
    p.add_argument("--drain-seconds", type=float, default=0.0)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    command = serve_argv(args, sys.executable)
    sys.stdout.write(f"replica {args.replica_id}: exec {' '.join(command)}\n")
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
