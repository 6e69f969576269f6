"""The flags of ``loopline serve``: their names, value kinds and parsers, and range checks.

:class:`~loopline.serving.command.ServeCommand` is the one typed description of a
model-server process; this module is its argv syntax (``--flag value``, ``--flag=value``,
``--no-flag`` for bools, units for sizes and ages) and the checks that name the offending
flag in their messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loopline.errors import InvalidInputError
from loopline.types import parse_age, parse_byte_size


@dataclass(frozen=True, slots=True)
class Flag:
    name: str  # "--max-batch-size"
    attr: str  # "max_batch_size"
    kind: type  # a bool flag also has its "--no-…" form
    parse: Callable[[str], object] | None = None  # a parser of its own (units)


FLAGS: tuple[Flag, ...] = (
    Flag("--host", "host", str),
    Flag("--port", "port", int),
    Flag("--grpc-port", "grpc_port", int),
    Flag("--workers", "workers", int),
    Flag("--name", "name", str),
    Flag("--batching", "batching", bool),
    Flag("--max-batch-size", "max_batch_size", int),
    Flag("--max-latency-ms", "max_latency_ms", float),
    Flag("--max-queue-rows", "max_queue_rows", int),
    Flag("--max-body-bytes", "max_body_bytes", int),
    Flag("--max-header-bytes", "max_header_bytes", int),
    Flag("--max-url-bytes", "max_url_bytes", int),
    Flag("--head-timeout", "head_timeout", float),
    Flag("--body-timeout", "body_timeout", float),
    Flag("--idle-timeout", "idle_timeout", float),
    Flag("--max-connections", "max_connections", int),
    Flag("--max-pipelined", "max_pipelined", int),
    Flag("--log-dir", "log_dir", Path),
    Flag("--log-sample-rate", "log_sample_rate", float),
    Flag("--log-max-bytes", "log_max_bytes", int, lambda t: parse_byte_size(t, "--log-max-bytes")),
    Flag("--log-max-age", "log_max_age", float, lambda t: parse_age(t, "--log-max-age")),
    Flag(
        "--log-buffer-bytes",
        "log_buffer_bytes",
        int,
        lambda t: parse_byte_size(t, "--log-buffer-bytes"),
    ),
    Flag("--graceful-timeout", "graceful_timeout", float),
    Flag("--drain-seconds", "drain_seconds", float),
    Flag("--expected-digest", "expected_digest", str),
    Flag("--allow-unverified", "allow_unverified", bool),
    Flag("--repository", "repository", Path),
    Flag("--repository-digests", "repository_digests", Path),
    Flag("--repository-token-file", "repository_token_file", Path),
    Flag("--repository-allow-unauthenticated", "repository_allow_unauthenticated", bool),
)
BY_NAME: dict[str, Flag] = {f.name: f for f in FLAGS} | {
    "--no-" + f.name[2:]: f for f in FLAGS if f.kind is bool
}
FLOAT_RANGES: tuple[tuple[str, str, float, float | None, str], ...] = (
    ("--max-latency-ms", "max_latency_ms", 1.0, None, "the longest a request may wait queued"),
    ("--log-sample-rate", "log_sample_rate", 0.0, 1.0, "1 logs every request"),
    ("--graceful-timeout", "graceful_timeout", 1.0, None, "seconds for in-flight requests"),
    ("--drain-seconds", "drain_seconds", 0.0, None, "0 when a router already drained it"),
    ("--head-timeout", "head_timeout", 0.1, None, "seconds to receive a request head"),
    ("--body-timeout", "body_timeout", 0.1, None, "seconds to receive a request body"),
    ("--idle-timeout", "idle_timeout", 0.1, None, "seconds a connection may wait idle"),
)


def _range(low: float, high: float | None) -> str:
    return f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"


def check_int(flag: str, value: object, low: int, high: int | None, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{flag} must be an integer, not {value!r} ({hint}).")
    if value < low or (high is not None and value > high):
        raise InvalidInputError(
            f"{flag} {value} is out of range: use {_range(low, high)} ({hint})."
        )


def check_float(flag: str, value: object, low: float, high: float | None, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{flag} must be a finite number, not {value!r} ({hint}).")
    if value < low or (high is not None and value > high):
        raise InvalidInputError(
            f"{flag} {value!r} is out of range: use {_range(low, high)} ({hint})."
        )
    return float(value)


def parse_value(flag: Flag, text: str) -> object:
    if flag.parse is not None:
        return flag.parse(text)
    if flag.kind is int:
        try:
            return int(text)
        except ValueError:
            raise InvalidInputError(f"{flag.name} {text!r} is not an integer.") from None
    if flag.kind is float:
        try:
            return float(text)
        except ValueError:
            raise InvalidInputError(f"{flag.name} {text!r} is not a number.") from None
    if flag.kind is Path:
        return Path(text)
    return text


__all__ = ["BY_NAME", "FLAGS", "FLOAT_RANGES", "Flag", "check_float", "check_int", "parse_value"]
