"""``python -m loopline.deploy.router --name web --port 8080 --admin-port 9090
[--preview-port 8081] [--workers N]``."""

from __future__ import annotations

import argparse
import logging

from loopline.deploy.router.server import run
from loopline.deploy.router.supervisor import run_supervisor
from loopline.lifetime import die_with_parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loopline.deploy.router")
    parser.add_argument("--name", required=True, help="deployment name (for messages)")
    parser.add_argument("--host", default="127.0.0.1", help="address of the stable endpoint")
    parser.add_argument("--port", type=int, required=True, help="stable endpoint port")
    parser.add_argument("--admin-port", type=int, required=True, help="admin port (loopback)")
    parser.add_argument(
        "--preview-port", type=int, default=0,
        help="port serving only the preview revision (blue-green); 0: none",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (SO_REUSEPORT)"
    )
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
    if args.workers > 1:
        run_supervisor(
            args.name, args.host, args.port, args.admin_port, args.workers, args.preview_port
        )
    else:
        run(
            args.name, args.host, args.port, args.admin_port,
            reuse_port=args.reuse_port, backends_file=args.backends_file,
            preview_port=args.preview_port,
        )  # fmt: skip


if __name__ == "__main__":
    main()
