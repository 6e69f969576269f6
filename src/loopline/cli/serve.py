"""``loopline serve``: the click front end of a model server.

It turns its flags into a :class:`~loopline.serving.ServeCommand` (whose defaults it shows)
and runs it through :func:`loopline.cli.serve_process.serve`, the code path every model-server
process takes (deployment replicas and InfraValidator start ``python -m
loopline.cli.serve_process`` with ``ServeCommand.to_argv()``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from loopline.errors import InvalidInputError, LooplineError
from loopline.serving import ServeCommand
from loopline.types import parse_age, parse_byte_size

#: The defaults of every flag (the model reference is a placeholder, never served).
_D = ServeCommand(models=("MODEL_REF",))


class _Parsed(click.ParamType[Any]):
    """A flag value read by one of loopline's unit parsers (``1GiB``, ``30d``)."""

    def __init__(self, name: str, parse: Callable[[Any, str], object]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        flag = param.opts[0] if param is not None else self.name
        try:
            return self._parse(value, flag)
        except InvalidInputError as exc:
            self.fail(str(exc), param, ctx)


@click.command("serve")
@click.argument("model_refs", nargs=-1, metavar="MODEL_REF...")
@click.option("--host", default=_D.host, show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    default=_D.port,
    show_default=True,
    help="TCP port (0 = any free port; the chosen one is printed).",
)
@click.option(
    "--grpc-port",
    type=int,
    default=_D.grpc_port,
    help="Also serve gRPC (KServe's inference.GRPCInferenceService) on this port "
    "(0 = any free port; printed). Off when not given.",
)
@click.option(
    "--workers",
    default=_D.workers,
    show_default=True,
    help="Worker processes sharing the port (SO_REUSEPORT), 1-64.",
)
@click.option("--name", default=_D.name, help="Model name for directory models.")
@click.option(
    "--expected-digest",
    default=_D.expected_digest,
    metavar="sha256:HEX",
    help="The registry's digest the one model directory must have.",
)
@click.option(
    "--allow-unverified/--no-allow-unverified",
    default=_D.allow_unverified,
    show_default=True,
    help="Serve model directories with no digest to check (warns on start).",
)
@click.option(
    "--repository",
    type=click.Path(file_okay=False, path_type=Path),
    default=_D.repository,
    help="Serve the models of this folder (DIR/NAME/VERSION/ bundles) instead of MODEL_REFs.",
)
@click.option(
    "--repository-digests",
    type=click.Path(dir_okay=False, path_type=Path),
    default=_D.repository_digests,
    help="'NAME/VERSION sha256:HEX' lines the repository's versions are checked against.",
)
@click.option(
    "--repository-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=_D.repository_token_file,
    help="File (mode 0600) with the token that model load/unload requests need.",
)
@click.option(
    "--repository-allow-unauthenticated/--no-repository-allow-unauthenticated",
    default=_D.repository_allow_unauthenticated,
    show_default=True,
    help="Let anyone who reaches the port load and unload models (trusted hosts only).",
)
@click.option(
    "--batching/--no-batching",
    default=_D.batching,
    show_default=True,
    help="Adaptive batching of concurrent requests.",
)
@click.option(
    "--max-batch-size",
    default=_D.max_batch_size,
    show_default=True,
    help="Rows per model call at most (the latency model may choose fewer).",
)
@click.option(
    "--max-latency-ms",
    default=_D.max_latency_ms,
    show_default=True,
    help="Queue bound in time (≥ 1): slower requests get 503 + Retry-After.",
)
@click.option(
    "--max-queue-rows",
    default=_D.max_queue_rows,
    show_default=True,
    help="Rows queued at most; beyond it requests get 503 at once.",
)
@click.option(
    "--max-body-bytes",
    default=_D.max_body_bytes,
    show_default=True,
    help="Larger request bodies get 413.",
)
@click.option(
    "--max-header-bytes",
    default=_D.max_header_bytes,
    show_default=True,
    help="A larger request head (request line and headers) gets 431.",
)
@click.option(
    "--max-url-bytes",
    default=_D.max_url_bytes,
    show_default=True,
    help="A longer request URL gets 414.",
)
@click.option(
    "--head-timeout",
    default=_D.head_timeout,
    show_default=True,
    help="Seconds from a request's first byte to its complete head; then 408 and close.",
)
@click.option(
    "--body-timeout",
    default=_D.body_timeout,
    show_default=True,
    help="Seconds from a complete head to the complete body; then 408 and close.",
)
@click.option(
    "--idle-timeout",
    default=_D.idle_timeout,
    show_default=True,
    help="Seconds a connection may wait for a request (fresh or kept alive); then closed.",
)
@click.option(
    "--max-connections",
    default=_D.max_connections,
    show_default=True,
    help="Open connections per worker; one more gets 503 and is closed.",
)
@click.option(
    "--max-pipelined",
    default=_D.max_pipelined,
    show_default=True,
    help="Pipelined requests queued per connection; reading stops while the queue is full.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=_D.log_dir,
    help="Write prediction logs and feedback here (Parquet segments).",
)
@click.option(
    "--log-sample-rate",
    default=_D.log_sample_rate,
    show_default=True,
    help="Share of requests logged, 0-1 (needs --log-dir).",
)
@click.option(
    "--log-max-bytes",
    type=_Parsed("SIZE", parse_byte_size),
    default=_D.log_max_bytes,
    show_default=True,
    help="Rotate the log directory to at most this size: bytes, 500MB or 1GiB (needs --log-dir; "
    "LOOPLINE_PREDICTION_LOG_MAX_BYTES sets the default).",
)
@click.option(
    "--log-max-age",
    type=_Parsed("AGE", parse_age),
    default=_D.log_max_age,
    show_default=True,
    help="Delete log segments older than this: 30d, 12h, 90m or seconds (needs --log-dir; "
    "LOOPLINE_PREDICTION_LOG_MAX_AGE sets the default).",
)
@click.option(
    "--log-buffer-bytes",
    type=_Parsed("SIZE", parse_byte_size),
    default=_D.log_buffer_bytes,
    show_default=True,
    help="Bytes of records buffered per log stream and worker; beyond it records are dropped "
    "and counted: bytes or 64MiB (needs --log-dir; LOOPLINE_PREDICTION_LOG_BUFFER_BYTES sets "
    "the default).",
)
@click.option(
    "--graceful-timeout",
    default=_D.graceful_timeout,
    show_default=True,
    help="Seconds (≥ 1) to finish in-flight requests after SIGTERM.",
)
@click.option(
    "--drain-seconds",
    default=_D.drain_seconds,
    show_default=True,
    help="After SIGTERM, report not-ready but keep accepting for this long.",
)
def serve(
    model_refs: tuple[str, ...],
    host: str,
    port: int,
    grpc_port: int | None,
    workers: int,
    name: str | None,
    expected_digest: str | None,
    allow_unverified: bool,
    repository: Path | None,
    repository_digests: Path | None,
    repository_token_file: Path | None,
    repository_allow_unauthenticated: bool,
    batching: bool,
    max_batch_size: int,
    max_latency_ms: float,
    max_queue_rows: int,
    max_body_bytes: int,
    max_header_bytes: int,
    max_url_bytes: int,
    head_timeout: float,
    body_timeout: float,
    idle_timeout: float,
    max_connections: int,
    max_pipelined: int,
    log_dir: Path | None,
    log_sample_rate: float,
    log_max_bytes: int,
    log_max_age: float,
    log_buffer_bytes: int,
    graceful_timeout: float,
    drain_seconds: float,
) -> None:
    """Serve MODEL_REF (name@alias, name/version, or a model directory written as a path:
    ./dir or /abs/dir) over HTTP.

    A reference is resolved by the registry and checked against its recorded digest, even
    when a folder of that name exists. A directory is served only with the digest it must
    have, or when explicitly allowed unverified. Several MODEL_REFs serve several versions
    of a model side by side (/v2/models/{m}/versions/{v}); the first answers the
    unversioned paths. --grpc-port adds the Open Inference Protocol over gRPC.

    --repository DIR serves the newest version of every model in DIR (DIR/NAME/VERSION/)
    instead; with --repository-token-file, POST /v2/repository/models/NAME/load and
    /unload load and unload models while serving.
    """
    from loopline.cli.serve_process import serve as run

    try:
        if log_dir is not None:
            log_max_bytes, log_max_age, log_buffer_bytes = _log_policy(
                click.get_current_context(), log_max_bytes, log_max_age, log_buffer_bytes
            )
        command = ServeCommand(
            models=model_refs,
            host=host,
            port=port,
            grpc_port=grpc_port,
            workers=workers,
            name=name,
            expected_digest=expected_digest,
            allow_unverified=allow_unverified,
            repository=repository,
            repository_digests=repository_digests,
            repository_token_file=repository_token_file,
            repository_allow_unauthenticated=repository_allow_unauthenticated,
            batching=batching,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            max_queue_rows=max_queue_rows,
            max_body_bytes=max_body_bytes,
            max_header_bytes=max_header_bytes,
            max_url_bytes=max_url_bytes,
            head_timeout=head_timeout,
            body_timeout=body_timeout,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
            max_pipelined=max_pipelined,
            log_dir=log_dir,
            log_sample_rate=log_sample_rate,
            log_max_bytes=log_max_bytes,
            log_max_age=log_max_age,
            log_buffer_bytes=log_buffer_bytes,
            graceful_timeout=graceful_timeout,
            drain_seconds=drain_seconds,
        )
        code = run(command)
    except LooplineError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


def _log_policy(
    ctx: click.Context, max_bytes: int, max_age: float, buffer_bytes: int
) -> tuple[int, float, int]:
    """The log flags given on the command line, else their ``LOOPLINE_PREDICTION_LOG_*``
    setting, else the server's default (what click filled in).

    Raises:
        ConfigurationError: a setting is malformed; the message names it.
    """
    from loopline.settings import Settings

    settings = Settings.from_env()

    def pick(name: str, given: Any, setting: Any) -> Any:
        defaulted = ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT
        return setting if defaulted and setting is not None else given

    return (
        pick("log_max_bytes", max_bytes, settings.prediction_log_max_bytes),
        pick("log_max_age", max_age, settings.prediction_log_max_age),
        pick("log_buffer_bytes", buffer_bytes, settings.prediction_log_buffer_bytes),
    )
