"""One typed serve-command: everything a model-server process needs, and its argv.

A model-server process is described once, by a :class:`ServeCommand`. ``loopline serve``
(the click front end), the local deploy engine and InfraValidator build one; the process is
started with :meth:`ServeCommand.process_argv` and parses its arguments back with
:meth:`ServeCommand.from_argv`, the exact inverse of :meth:`ServeCommand.to_argv`. A
replica's launch path is therefore deployment template → ServeCommand → argv → ServeCommand
→ :class:`ServerOptions` + :func:`run_server`, with one parser and no placeholders.

Defaults have one source, the serving option dataclasses (:class:`BatchingOptions`,
:class:`ServerOptions`, :class:`LogOptions`, :class:`ServedModel`); the flags that have no
option dataclass (host, port, gRPC port, workers, graceful timeout, drain seconds) are
defined here.
``loopline serve``'s flag defaults and the local engine read them from this class. The
argv syntax (flag names, kinds, parsers, range checks) is :mod:`.serve_flags`.

The process entry point is ``python -m loopline.cli.serve_process`` (:data:`SERVE_MODULE`):
loading a model by registry reference needs the platform (stores built from settings), a
layer above serving, so the process that loads the models lives in the CLI layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInputError
from loopline.serving.limits import HttpLimits
from loopline.serving.options import BatchingOptions, LogOptions, ServedModel, ServerOptions
from loopline.serving.serve_flags import (
    BY_NAME,
    FLAGS,
    FLOAT_RANGES,
    check_float,
    check_int,
    parse_value,
)
from loopline.types import check_name, parse_age

if TYPE_CHECKING:
    from loopline.serving.repository import RepositoryOptions
    from loopline.serving.runner import ServerHandle

#: ``python -m SERVE_MODULE ARGV…`` serves ``ServeCommand.from_argv(ARGV)``.
SERVE_MODULE = "loopline.cli.serve_process"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _field_default(cls: type, name: str) -> Any:
    (default,) = (f.default for f in fields(cls) if f.name == name)
    return default


_BATCHING = BatchingOptions()
_SERVER = ServerOptions()
_HTTP = _SERVER.http
_SAMPLE_RATE: float = _field_default(LogOptions, "sample_rate")
_LOG_MAX_BYTES: int = _field_default(LogOptions, "max_bytes")
_LOG_MAX_AGE: float = _field_default(LogOptions, "max_age")
_LOG_BUFFER_BYTES: int = _field_default(LogOptions, "buffer_bytes")


@dataclass(frozen=True, slots=True)
class ServeCommand:
    """A ``loopline serve`` process: the models it serves and every server option.

    Attributes:
        models: registry references (``name@alias``, ``name/version``, ``name``), or model
            directories written as paths (``./taxi/3``, ``/abs/dir``); the first one answers
            the unversioned paths. A reference always goes to the registry, even when a
            folder of that name exists.
        host: interface to bind.
        port: TCP port (0 = any free port; the chosen one is announced).
        grpc_port: also serve gRPC (KServe's ``inference.GRPCInferenceService``) on this
            port (0 = any free port; announced); None (the default) serves HTTP only.
        workers: worker processes sharing the port (SO_REUSEPORT).
        name: model name for directory models (default: the bundle's name, else the
            directory's); registry references keep their registered name.
        batching: adaptive batching of concurrent requests.
        max_batch_size, max_latency_ms, max_queue_rows: the :class:`BatchingOptions` limits.
        max_body_bytes: larger request bodies get 413.
        max_header_bytes, max_url_bytes, head_timeout, body_timeout, idle_timeout,
            max_connections, max_pipelined: the :class:`HttpLimits` of each worker (431 for
            a larger head, 414 for a longer URL, 408 past a deadline, 503 beyond the
            connections).
        log_dir: where prediction logs and feedback go (None: no logging).
        log_sample_rate: share of requests logged (needs ``log_dir``).
        log_max_bytes: the log directory is rotated to at most this many bytes (needs
            ``log_dir``; ``--log-max-bytes`` also takes ``500MB``, ``1GiB``).
        log_max_age: log segments older than this many seconds are deleted (needs
            ``log_dir``; ``--log-max-age`` also takes ``30d``, ``12h``).
        log_buffer_bytes: bytes of records buffered per log stream and worker before new
            ones are dropped (needs ``log_dir``; ``--log-buffer-bytes`` also takes ``64MiB``).
        graceful_timeout: seconds to finish in-flight requests after SIGTERM.
        drain_seconds: after SIGTERM, report not-ready but keep accepting for this long.
        expected_digest: the ``sha256:<hex>`` tree digest the one model directory must have
            (what the registry recorded for it); a directory is served only with it or with
            ``allow_unverified``.
        allow_unverified: serve model directories without a digest to check them against
            (said loudly on start); never needed for registry references.
        repository: serve the models of this folder (``DIR/NAME/VERSION/`` bundles, the
            newest version of each) instead of MODEL_REFs, and load or unload them at run
            time (``docs/serving.md``, model repository).
        repository_digests: the digests file the repository's versions are checked against
            (``NAME/VERSION sha256:HEX`` lines); else ``allow_unverified`` is needed.
        repository_token_file: a file (mode 0600) holding the token that
            ``POST /v2/repository/models/NAME/load`` and ``/unload`` need.
        repository_allow_unauthenticated: load and unload need no token (without a token
            file or this, they are off).

    Raises:
        InvalidInputError: a value is missing or out of range; the message names its flag.
    """

    models: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = None
    workers: int = 1
    name: str | None = None
    batching: bool = _field_default(ServedModel, "batching")
    max_batch_size: int = _BATCHING.max_batch_size
    max_latency_ms: float = _BATCHING.max_latency_ms
    max_queue_rows: int = _BATCHING.max_queue_rows
    max_body_bytes: int = _SERVER.max_body_bytes
    max_header_bytes: int = _HTTP.max_header_bytes
    max_url_bytes: int = _HTTP.max_url_bytes
    head_timeout: float = _HTTP.head_timeout
    body_timeout: float = _HTTP.body_timeout
    idle_timeout: float = _HTTP.idle_timeout
    max_connections: int = _HTTP.max_connections
    max_pipelined: int = _HTTP.max_pipelined
    log_dir: Path | None = None
    log_sample_rate: float = _SAMPLE_RATE
    log_max_bytes: int = _LOG_MAX_BYTES
    log_max_age: float = _LOG_MAX_AGE
    log_buffer_bytes: int = _LOG_BUFFER_BYTES
    graceful_timeout: float = 30.0
    drain_seconds: float = 0.0
    expected_digest: str | None = None
    allow_unverified: bool = False
    repository: Path | None = None
    repository_digests: Path | None = None
    repository_token_file: Path | None = None
    repository_allow_unauthenticated: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "models", tuple(self.models))
        if not self.models and self.repository is None:
            raise InvalidInputError(
                "MODEL_REF is missing: pass at least one model directory or registry "
                "reference (name@alias or name/version), or --repository DIR."
            )
        for model in self.models:
            if not isinstance(model, str) or not model or model.startswith("-"):
                raise InvalidInputError(
                    f"MODEL_REF {model!r} is not a model directory or registry reference "
                    "(it may not be empty or start with '-'; write ./-dir for such a directory)."
                )
        if not isinstance(self.host, str) or not self.host or self.host.startswith("-"):
            raise InvalidInputError(
                f"--host {self.host!r} is not an interface address; use e.g. 127.0.0.1."
            )
        check_int("--port", self.port, 0, 65535, "0 picks any free port")
        if self.grpc_port is not None:
            check_int("--grpc-port", self.grpc_port, 0, 65535, "0 picks any free port")
            if self.grpc_port == self.port != 0:
                raise InvalidInputError(
                    f"--grpc-port {self.grpc_port} is the HTTP --port; give gRPC a port of "
                    "its own."
                )
        check_int("--workers", self.workers, 1, 64, "worker processes sharing the port")
        if self.name is not None:
            try:
                check_name("Model", self.name)
            except InvalidInputError as exc:
                raise InvalidInputError(f"--name: {exc}") from None
        if not isinstance(self.batching, bool):
            raise InvalidInputError(f"--batching is on or off (a bool), not {self.batching!r}.")
        if not isinstance(self.allow_unverified, bool):
            raise InvalidInputError(
                f"--allow-unverified is on or off (a bool), not {self.allow_unverified!r}."
            )
        if self.expected_digest is not None and (
            not isinstance(self.expected_digest, str) or not _DIGEST.fullmatch(self.expected_digest)
        ):
            raise InvalidInputError(
                f"--expected-digest {self.expected_digest!r} is not a digest; write "
                "sha256: followed by 64 lowercase hex digits, as the registry records it."
            )
        self._check_repository()
        check_int("--max-batch-size", self.max_batch_size, 1, None, "rows per model call")
        check_int("--max-queue-rows", self.max_queue_rows, 1, None, "rows queued at most")
        check_int("--max-body-bytes", self.max_body_bytes, 1, None, "bytes per request body")
        check_int("--max-header-bytes", self.max_header_bytes, 1, None, "bytes per request head")
        check_int("--max-url-bytes", self.max_url_bytes, 1, None, "bytes per request URL")
        if self.max_url_bytes > self.max_header_bytes:
            raise InvalidInputError(
                f"--max-url-bytes {self.max_url_bytes} is larger than --max-header-bytes "
                f"{self.max_header_bytes}; the URL is part of the head."
            )
        check_int("--max-connections", self.max_connections, 1, None, "per worker process")
        check_int("--max-pipelined", self.max_pipelined, 1, None, "queued per connection")
        for flag, attr, low, high, hint in FLOAT_RANGES:
            set_(self, attr, check_float(flag, getattr(self, attr), low, high, hint))
        check_int("--log-max-bytes", self.log_max_bytes, 1, None, "the log directory's size")
        check_int("--log-buffer-bytes", self.log_buffer_bytes, 1, None, "per stream and worker")
        set_(self, "log_max_age", parse_age(self.log_max_age, "--log-max-age"))
        if self.log_dir is not None:
            set_(self, "log_dir", Path(self.log_dir))
        else:
            for flag, attr, default in (
                ("--log-sample-rate", "log_sample_rate", _SAMPLE_RATE),
                ("--log-max-bytes", "log_max_bytes", _LOG_MAX_BYTES),
                ("--log-max-age", "log_max_age", _LOG_MAX_AGE),
                ("--log-buffer-bytes", "log_buffer_bytes", _LOG_BUFFER_BYTES),
            ):
                if getattr(self, attr) != default:
                    raise InvalidInputError(
                        f"{flag} {getattr(self, attr)!r} has no effect without --log-dir; "
                        "add --log-dir DIR to log predictions."
                    )

    def _check_repository(self) -> None:
        set_ = object.__setattr__
        for attr in ("repository", "repository_digests", "repository_token_file"):
            if getattr(self, attr) is not None:
                set_(self, attr, Path(getattr(self, attr)))
        if not isinstance(self.repository_allow_unauthenticated, bool):
            raise InvalidInputError(
                "--repository-allow-unauthenticated is on or off (a bool), not "
                f"{self.repository_allow_unauthenticated!r}."
            )
        if self.repository_token_file is not None and self.repository_allow_unauthenticated:
            raise InvalidInputError(
                "--repository-token-file and --repository-allow-unauthenticated contradict "
                "each other: load and unload either need the token or need none; pass one."
            )
        if self.repository is None:
            if self.repository_digests is not None:
                raise InvalidInputError(
                    "--repository-digests checks the versions of a model repository; add "
                    "--repository DIR."
                )
            return
        if self.models:
            raise InvalidInputError(
                f"--repository serves the models of {str(self.repository)!r}; MODEL_REFs "
                f"{list(self.models)} cannot be added to it. Serve either the folder or the "
                "MODEL_REFs."
            )
        for flag, value in (("--name", self.name), ("--expected-digest", self.expected_digest)):
            if value is not None:
                raise InvalidInputError(
                    f"{flag} applies to one model directory given as MODEL_REF; a repository's "
                    "models are named by their folders and checked by --repository-digests."
                )
        if (self.repository_digests is None) == (not self.allow_unverified):
            raise InvalidInputError(
                f"--repository {str(self.repository)!r} needs --repository-digests FILE (the "
                "digest each NAME/VERSION must have) or --allow-unverified (anyone who can "
                "write the folder chooses the code this server runs); pass one of them."
            )

    # ---- argv --------------------------------------------------------------------------------

    def to_argv(self) -> list[str]:
        """The arguments of ``loopline serve``: the models, then each flag whose value is not
        the default. ``ServeCommand.from_argv(c.to_argv()) == c`` for every command."""
        argv = list(self.models)
        for flag in FLAGS:
            value = getattr(self, flag.attr)
            if value == _DEFAULTS[flag.attr]:
                continue
            if flag.kind is bool:
                argv.append(flag.name if value else "--no-" + flag.name[2:])
            else:
                argv += [flag.name, repr(value) if flag.kind is float else str(value)]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> ServeCommand:
        """Parse ``loopline serve`` arguments (``--flag value``, ``--flag=value``, ``--``).

        Raises:
            InvalidInputError: an unknown flag, a missing or malformed value, or a value out
                of range; the message names the flag.
        """
        values: dict[str, Any] = {}
        models: list[str] = []
        args = list(argv)
        positional_only = False
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if positional_only or not arg.startswith("-"):
                models.append(arg)
                continue
            if arg == "--":
                positional_only = True
                continue
            name, eq, inline = arg.partition("=")
            flag = BY_NAME.get(name)
            if flag is None:
                known = ", ".join(sorted(BY_NAME))
                raise InvalidInputError(f"{name} is not a serve option; the options are {known}.")
            if flag.kind is bool:
                if eq:
                    raise InvalidInputError(f"{name} takes no value (got {inline!r}).")
                values[flag.attr] = not name.startswith("--no-")
                continue
            if eq:
                text = inline
            elif i < len(args):
                text = args[i]
                i += 1
            else:
                raise InvalidInputError(f"{name} needs a value.")
            values[flag.attr] = parse_value(flag, text)
        return cls(models=tuple(models), **values)

    def process_argv(self, python: str) -> list[str]:
        """The argv of a model-server process running this command."""
        return [python, "-m", SERVE_MODULE, *self.to_argv()]

    # ---- running -----------------------------------------------------------------------------

    def server_options(self) -> ServerOptions:
        """The :class:`ServerOptions` of every worker of this server."""
        log = None
        if self.log_dir is not None:
            log = LogOptions(
                self.log_dir,
                self.log_sample_rate,
                max_bytes=self.log_max_bytes,
                max_age=self.log_max_age,
                buffer_bytes=self.log_buffer_bytes,
            )
        return ServerOptions(
            max_body_bytes=self.max_body_bytes,
            http=HttpLimits(
                max_header_bytes=self.max_header_bytes,
                max_url_bytes=self.max_url_bytes,
                head_timeout=self.head_timeout,
                body_timeout=self.body_timeout,
                idle_timeout=self.idle_timeout,
                max_connections=self.max_connections,
                max_pipelined=self.max_pipelined,
            ),
            batching=BatchingOptions(
                max_batch_size=self.max_batch_size,
                max_latency_ms=self.max_latency_ms,
                max_queue_rows=self.max_queue_rows,
            ),
            log=log,
        )

    def run(
        self,
        load_models: Callable[[], Sequence[ServedModel]],
        *,
        on_started: Callable[[ServerHandle], None] | None = None,
        repository: RepositoryOptions | None = None,
    ) -> int:
        """Serve what ``load_models`` returns until SIGTERM/SIGINT; return the exit code.

        ``load_models`` turns :attr:`models` into loaded models (references need the
        registry); it runs once the port is reserved, see :func:`run_server`.
        ``repository`` (built by the composition root: its source may need the registry)
        turns on loading and unloading models at run time.
        """
        from loopline.serving.runner import run_server

        return run_server(
            load_models,
            host=self.host,
            port=self.port,
            workers=self.workers,
            options=replace(self.server_options(), repository=repository),
            graceful_timeout=self.graceful_timeout,
            drain_seconds=self.drain_seconds,
            grpc_port=self.grpc_port,
            on_started=on_started or (lambda handle: None),
        )


_DEFAULTS: dict[str, object] = {
    f.name: f.default for f in fields(ServeCommand) if f.default is not MISSING
}
