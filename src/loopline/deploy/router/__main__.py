"""``python -m loopline.deploy.router --name web --port 8080 --admin-port 9090
--admin-secret-file PATH [--preview-port 8081] [--workers N] [limits]``.

``--admin-secret-file`` names a file readable by its owner only (mode 0600) holding the admin
secret: changes through the admin API need it (:mod:`loopline.deploy.router.admin`). The limit
flags default to :class:`~loopline.deploy.router.limits.RouterLimits` (the model server's).
"""

from __future__ import annotations

import argparse
import logging

from loopline.deploy.router.admin import read_secret
from loopline.deploy.router.limits import RouterLimits
from loopline.deploy.router.server import run
from loopline.deploy.router.supervisor import run_supervisor
from loopline.errors import InvalidInputError
from loopline.lifetime import die_with_parent

_D = RouterLimits()
_LIMITS = (  # flag, field, type, help
    ("--max-header-bytes", "max_header_bytes", int, "request heads larger get 431"),
    ("--max-url-bytes", "max_url_bytes", int, "request targets longer get 414"),
    ("--max-body-bytes", "max_body_bytes", int, "request bodies larger get 413"),
    ("--head-timeout", "head_timeout", float, "seconds for a request head to arrive (408)"),
    ("--body-timeout", "body_timeout", float, "seconds for a request body to arrive (408)"),
    ("--idle-timeout", "idle_timeout", float, "seconds an idle client connection stays open"),
    ("--max-connections", "max_connections", int, "client connections per process (then 503)"),
    ("--max-pipelined", "max_pipelined", int, "requests queued per connection"),
    ("--max-response-head-bytes", "max_response_head_bytes", int,
     "replica response heads larger get 502"),
    ("--max-admin-connections", "max_admin_connections", int,
     "admin API connections per process (then 503)"),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loopline.deploy.router")
    parser.add_argument("--name", required=True, help="deployment name (for messages)")
    parser.add_argument("--host", default="127.0.0.1", help="address of the stable endpoint")
    parser.add_argument("--port", type=int, required=True, help="stable endpoint port")
    parser.add_argument("--admin-port", type=int, required=True, help="admin port (loopback)")
    parser.add_argument(
        "--admin-secret-file", required=True,
        help="file (mode 0600) holding the secret that admin changes must present",
    )  # fmt: skip
    parser.add_argument(
        "--preview-port", type=int, default=0,
        help="port serving only the preview revision (blue-green); 0: none",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (SO_REUSEPORT)"
    )
    for flag, name, kind, text in _LIMITS:
        parser.add_argument(flag, type=kind, default=getattr(_D, name),
                            help=f"{text} (default {getattr(_D, name)})")  # fmt: skip
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # supervisor's pid
    parser.add_argument("--backends-file", help="JSON route table to start with")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.parent is not None:  # a supervisor's worker: stop when the supervisor dies
        die_with_parent(args.parent)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, not {args.workers}")
    if not 0 <= args.preview_port < 65536 or args.preview_port == args.port != 0:
        parser.error(f"--preview-port {args.preview_port} is not a free port number (0: none)")
    try:
        secret = read_secret(args.admin_secret_file)
    except ValueError as exc:
        parser.error(f"--admin-secret-file: {exc}")
    try:
        limits = RouterLimits(**{name: getattr(args, name) for _, name, _, _ in _LIMITS})
    except InvalidInputError as exc:
        parser.error(str(exc))
    if args.workers > 1:
        run_supervisor(
            args.name, args.host, args.port, args.admin_port, args.workers, args.preview_port,
            secret=secret, secret_file=args.admin_secret_file,
            limit_argv=limit_argv(limits), limits=limits,
        )  # fmt: skip
    else:
        run(
            args.name, args.host, args.port, args.admin_port, secret,
            reuse_port=args.reuse_port, backends_file=args.backends_file,
            preview_port=args.preview_port, limits=limits,
        )  # fmt: skip


def limit_argv(limits: RouterLimits) -> list[str]:
    """The flags that give a worker process ``limits``."""
    return [part for flag, name, _, _ in _LIMITS for part in (flag, str(getattr(limits, name)))]


if __name__ == "__main__":
    main()
