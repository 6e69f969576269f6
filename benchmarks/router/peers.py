"""The compiled peers of the router benchmark (``run.py``): HAProxy and nginx, their install
and their generated configs.

Both are installed from Debian by ``apt-get`` only when a run asks for them, and run in the
foreground from a config written into the run's temp dir (no logging, no health checks),
stopped by pid.

- ``haproxy[-<N>t]``: ``mode http``, ``balance roundrobin``, ``http-reuse always``, ``option
  http-keep-alive``, ``nbthread`` 1 or N. HAProxy 2.6 (Debian bookworm) has no mirror
  directive: its configuration manual never mentions mirroring; the documented route is a
  SPOE filter talking to an external agent (haproxytech's ``spoa-mirror``, not packaged by
  Debian), so it is not measured as a mirroring peer.
- ``nginx``: one worker process, access log off, ``proxy_pass`` to an upstream of the two
  backends with kept-alive connections (``keepalive``, ``proxy_http_version 1.1``,
  ``proxy_set_header Connection ""``; ``keepalive_requests`` raised on both sides so neither
  wrk's nor the upstream connections are closed every 1,000 requests), round robin.
  ``nginx-weighted``: the same at 80/20 (``weight=4`` / ``weight=1``). ``nginx-mirror``:
  80/20 and ``mirror /mirror`` on every request; ``split_clients`` on ``$request_id`` picks
  20 % of them, which ``location = /mirror`` proxies to the shadow backend (kept-alive too),
  the others return 204 at once. ``nginx-mirror-0``: the same with 0 % picked — every
  request still makes its mirror subrequest and every subrequest returns at once: what the
  ``mirror`` machinery itself costs, with no copy sent. ``nginx-mirror-empty``: as
  ``nginx-mirror``, but the copies go to a path the shadow answers with an empty body (its
  404): nginx's mirror subrequest is ``header_only``, so it never reads an answer's body and
  closes the upstream connection after every copy whose answer has one (a model's always
  does; ``ss`` shows one TIME-WAIT per copy); nginx keeps the connection only when the
  answer has no body. This variant is nginx's copy with the connection kept: its lower bound.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

PEER = re.compile(r"haproxy(?:-(\d+)t)?|nginx(?:-weighted|-mirror|-mirror-0|-mirror-empty)?")
MIRROR_PERCENT = {"nginx-mirror": 20, "nginx-mirror-0": 0, "nginx-mirror-empty": 20}
EMPTY_PATH = "/no-such-path"  # the variant whose copies the shadow answers with no body
EMPTY_ANSWER = ("nginx-mirror-empty",)


def ensure(binary: str, package: str) -> str:
    """The path of ``binary``, installed from Debian's ``package`` if it is missing (the
    image's policy-rc.d keeps the package's service from starting)."""
    if shutil.which(binary) is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        )  # fmt: skip
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if Path(p).exists()), None
    )
    if path is None:
        raise SystemExit(f"{binary} is still not on PATH after apt-get install {package}; "
                         "install it by hand.")  # fmt: skip
    return path


def haproxy_config(port: int, backends: list[int], threads: int) -> str:
    """HTTP mode, round robin over the backends, kept-alive pooled upstream connections,
    no health checks, no logging (no ``log`` line anywhere)."""
    servers = "".join(f"    server b{i} 127.0.0.1:{p}\n" for i, p in enumerate(backends))
    return (
        f"global\n    nbthread {threads}\n    maxconn 4096\n\n"
        "defaults\n    mode http\n    option http-keep-alive\n    http-reuse always\n"
        "    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n"
        f"frontend bench\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\n"
        f"backend replicas\n    balance roundrobin\n{servers}"
    )


def nginx_config(name: str, port: int, backends: list[int], shadow: int, tmp: Path) -> str:
    """The config of nginx variant ``name`` (see the module docstring); its pid file, error
    log and temp paths in ``tmp``."""
    weighted = name != "nginx"
    weights = [" weight=4", " weight=1"] if weighted else ["", ""]
    servers = "".join(
        f"        server 127.0.0.1:{p}{w};\n" for p, w in zip(backends, weights, strict=True)
    )
    mirror = name in MIRROR_PERCENT
    upstreams = f"    upstream replicas {{\n{servers}        keepalive 64;\n" \
        "        keepalive_requests 1000000;\n    }\n"  # fmt: skip
    location = "        location / {\n            proxy_pass http://replicas;\n"
    if mirror:
        percent = MIRROR_PERCENT[name]
        upstreams += f"    upstream shadow {{\n        server 127.0.0.1:{shadow};\n" \
            "        keepalive 64;\n        keepalive_requests 1000000;\n    }\n"  # fmt: skip
        split = (f'{percent}% "1"; ' if percent else "") + '* "0";'
        upstreams += f"    split_clients $request_id $mirror_copy {{ {split} }}\n"
        location += "            mirror /mirror;\n"
    location += "        }\n"
    if mirror:
        target = EMPTY_PATH if name in EMPTY_ANSWER else "$request_uri"
        location += (
            "        location = /mirror {\n            internal;\n"
            '            if ($mirror_copy = "0") { return 204; }\n'
            f"            proxy_pass http://shadow{target};\n        }}\n"
        )
    temp = "".join(f"    {kind}_temp_path {tmp}/{name}-{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    return (
        f"worker_processes 1;\npid {tmp}/{name}.pid;\nerror_log {tmp}/{name}.log warn;\n"
        "events {\n    worker_connections 4096;\n}\n"
        "http {\n    access_log off;\n    keepalive_requests 1000000;\n"
        "    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n"
        f"{temp}{upstreams}"
        f"    server {{\n        listen 127.0.0.1:{port};\n{location}    }}\n}}\n"
    )


def peer_argv(name: str, port: int, backends: list[int], shadow: int, tmp: Path,
              binaries: dict[str, str]) -> list[str]:  # fmt: skip
    """Write peer ``name``'s config into ``tmp`` and return the command that runs it in the
    foreground (``binaries``: ``haproxy`` / ``nginx`` → path, from :func:`ensure`)."""
    m = PEER.fullmatch(name)
    if m is None:
        raise SystemExit(f"unknown peer {name!r}; use haproxy, haproxy-<N>t, nginx, "
                         "nginx-weighted, nginx-mirror, nginx-mirror-0 or nginx-mirror-empty")  # fmt: skip
    cfg = tmp / f"{name}.cfg"
    if name.startswith("haproxy"):
        cfg.write_text(haproxy_config(port, backends, int(m.group(1) or 1)))
        return [binaries["haproxy"], "-f", str(cfg), "-db"]
    cfg.write_text(nginx_config(name, port, backends, shadow, tmp))
    return [binaries["nginx"], "-p", str(tmp), "-c", str(cfg), "-g", "daemon off;"]
