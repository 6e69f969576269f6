"""``loopline serve``: the composition root of a model-server replica."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from loopline.errors import LooplineError

if TYPE_CHECKING:
    from loopline.serving import ServedModel


def _directory_models(paths: list[Path], name: str | None, batching: bool) -> list[ServedModel]:
    from loopline.bundle import load_model
    from loopline.serving import ServedModel

    served = []
    for i, path in enumerate(paths):
        model = load_model(path)
        meta = model.manifest.metadata
        model_name = name or str(meta.get("name") or re.sub(r"[^A-Za-z0-9_.-]", "-", path.name))
        version = str(meta.get("version") or (i + 1))
        served.append(ServedModel(model_name, version, model, batching=batching, default=i == 0))
    return served


def _registry_models(refs: list[str], batching: bool) -> list[ServedModel]:
    from loopline.bundle import load_model
    from loopline.platform import Platform
    from loopline.serving import ServedModel
    from loopline.types import ModelRef

    served = []
    with Platform.from_env() as platform:
        for i, text in enumerate(refs):
            resolved = platform.registry.resolve(ModelRef.parse(text))
            artifact = resolved.artifact
            if artifact.state.value != "live":
                raise click.ClickException(
                    f"Model {text!r} resolves to artifact {artifact.uri!r} in state "
                    f"{artifact.state.value!r}; only live artifacts can be served."
                )
            if artifact.digest is None:
                raise click.ClickException(
                    f"Model {text!r} (artifact {artifact.uri!r}) has no recorded digest; "
                    "loopline serves only models whose digest the registry recorded."
                )
            with platform.artifacts.open_local(artifact.uri) as local:
                model = load_model(local, expected_digest=artifact.digest)
            aliases = (resolved.alias,) if resolved.alias else ()
            served.append(
                ServedModel(
                    resolved.name,
                    str(resolved.version),
                    model,
                    aliases=aliases,
                    batching=batching,
                    default=i == 0,
                )
            )
    return served


@click.command("serve")
@click.argument("model_refs", nargs=-1, required=True, metavar="MODEL_REF...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port (0 = any free port; the chosen one is printed).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the port (SO_REUSEPORT).",
)
@click.option("--name", default=None, help="Model name for directory models.")
@click.option(
    "--batching/--no-batching",
    default=False,
    show_default=True,
    help="Adaptive batching of concurrent requests.",
)
@click.option(
    "--max-batch-size",
    default=1024,
    show_default=True,
    type=click.IntRange(1),
    help="Rows per model call at most (the latency model may choose fewer).",
)
@click.option(
    "--max-latency-ms",
    default=1000.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Queue bound in time: slower requests get 503 + Retry-After.",
)
@click.option("--max-queue-rows", default=4096, show_default=True, type=click.IntRange(1))
@click.option(
    "--max-body-bytes", default=8 * 1024 * 1024, show_default=True, type=click.IntRange(1)
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write prediction logs and feedback here (Parquet segments).",
)
@click.option("--log-sample-rate", default=1.0, show_default=True, type=click.FloatRange(0, 1))
@click.option(
    "--graceful-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds to finish in-flight requests after SIGTERM.",
)
@click.option(
    "--drain-seconds",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="After SIGTERM, report not-ready but keep accepting for this long.",
)
def serve(
    model_refs: tuple[str, ...],
    host: str,
    port: int,
    workers: int,
    name: str | None,
    batching: bool,
    max_batch_size: int,
    max_latency_ms: float,
    max_queue_rows: int,
    max_body_bytes: int,
    log_dir: Path | None,
    log_sample_rate: float,
    graceful_timeout: float,
    drain_seconds: float,
) -> None:
    """Serve MODEL_REF (a model directory, name@alias or name/version) over HTTP.

    Several MODEL_REFs serve several versions of a model side by side
    (/v2/models/{m}/versions/{v}); the first answers the unversioned paths.
    """
    from loopline.serving import (
        BatchingOptions,
        LogOptions,
        ServerHandle,
        ServerOptions,
        run_server,
    )

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    paths = [Path(r) for r in model_refs]
    is_dir = [p.is_dir() for p in paths]
    if any(is_dir) and not all(is_dir):
        raise click.UsageError("Pass either model directories or registry references, not both.")

    def load() -> list[ServedModel]:
        if all(is_dir):
            return _directory_models(paths, name, batching)
        return _registry_models(list(model_refs), batching)

    try:
        options = ServerOptions(
            max_body_bytes=max_body_bytes,
            batching=BatchingOptions(
                max_batch_size=max_batch_size,
                max_latency_ms=max_latency_ms,
                max_queue_rows=max_queue_rows,
            ),
            log=None if log_dir is None else LogOptions(log_dir, sample_rate=log_sample_rate),
        )

        def started(handle: ServerHandle) -> None:
            click.echo(f"loopline serve: listening on {handle.url} ({handle.workers} workers)")
            sys.stdout.flush()

        code = run_server(
            load,
            host=host,
            port=port,
            workers=workers,
            options=options,
            graceful_timeout=graceful_timeout,
            drain_seconds=drain_seconds,
            on_started=started,
        )
    except LooplineError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)
