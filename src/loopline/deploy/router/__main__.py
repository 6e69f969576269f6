"""``python -m loopline.deploy.router --name web --port 8080 --admin-port 9090``."""

from __future__ import annotations

import argparse
import logging

from loopline.deploy.router.server import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loopline.deploy.router")
    parser.add_argument("--name", required=True, help="deployment name (for messages)")
    parser.add_argument("--host", default="127.0.0.1", help="address of the stable endpoint")
    parser.add_argument("--port", type=int, required=True, help="stable endpoint port")
    parser.add_argument("--admin-port", type=int, required=True, help="admin port (loopback)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run(args.name, args.host, args.port, args.admin_port)


if __name__ == "__main__":
    main()
