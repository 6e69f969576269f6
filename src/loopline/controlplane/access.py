"""Who may use the control plane's API: the ``Host`` allow-list, then the bearer token.

- **Host.** Every request names a ``Host`` on the allow-list: ``127.0.0.1`` (any of
  127.0.0.0/8), ``localhost`` and ``[::1]``, with any port, plus the names the operator
  configured (``LOOPLINE_CONTROLPLANE_HOSTS``) and the address the API is bound to. Anything
  else is answered 421 before a route runs: a web page whose name an attacker re-points at
  127.0.0.1 (DNS rebinding) reaches the API over loopback, but its requests carry the
  attacker's name, so it can read nothing.
- **Token.** Every POST/PUT/PATCH/DELETE needs ``Authorization: Bearer <token>``. A read
  goes without it only when both the client address and the ``Host`` are loopback; through
  any other name, or from another machine, reads need the token too. The one exception is
  ``GET /healthz`` (liveness, version, controllers active or standby), open to any client
  whose ``Host`` passes, so that a kubelet's probe needs no token in the pod spec.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost"})
HOSTS_SETTING = "LOOPLINE_CONTROLPLANE_HOSTS"
HEALTH_PATH = "/healthz"  # open to probes (the Host check still applies)

# A DNS name or IPv4 address, optionally with a port; or a bracketed IPv6 address.
_HOST = re.compile(
    r"(?:(?P<name>[a-z0-9](?:[a-z0-9.-]{0,252}[a-z0-9])?)|\[(?P<ipv6>[0-9a-f:.]{2,45})\])"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header (lower case, without port or brackets), or None when the
    header is not a well-formed ``name[:port]`` / ``[ipv6][:port]``."""
    m = _HOST.fullmatch(header.lower())
    if m is None or (m.group("port") is not None and int(m.group("port")) > 65535):
        return None
    if m.group("ipv6") is not None:
        try:
            return str(ipaddress.IPv6Address(m.group("ipv6")))
        except ValueError:
            return None
    return m.group("name")


def is_loopback_name(name: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``."""
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalise_hosts(names: Iterable[str]) -> frozenset[str]:
    """The allow-list's extra names as :func:`host_name` reports them (``[::1]`` → ``::1``;
    a bare IPv6 address is accepted too). Blank entries are skipped.

    Raises:
        ValueError: an entry is not a host name (the message names it).
    """
    out: set[str] = set()
    for raw in names:
        text = raw.strip()
        if not text:
            continue
        if ":" in text and not text.startswith("["):
            text = f"[{text}]"
        name = host_name(text)
        if name is None:
            raise ValueError(f"{raw!r} is not a host name or address")
        out.add(name)
    return frozenset(out)


class AccessControl:
    """ASGI middleware: the ``Host`` allow-list on every request, then the bearer token on
    mutations and on reads that are not loopback end to end.

    Args:
        app: the API.
        token: the bearer token.
        allowed_hosts: names allowed besides the loopback ones (already normalised by
            :func:`normalise_hosts`).
        own_auth_prefix: a path prefix (the web console's ``/ui``) whose requests pass once
            their ``Host`` is allowed: the app there checks its own session and CSRF token.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        allowed_hosts: frozenset[str],
        own_auth_prefix: str | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode()
        self.allowed_hosts = allowed_hosts
        self.own_auth_prefix = own_auth_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        name = None if header is None else host_name(header)
        if name is None or not (is_loopback_name(name) or name in self.allowed_hosts):
            await _misdirected(header)(scope, receive, send)
            return
        prefix = self.own_auth_prefix
        path = scope["path"]
        if prefix is not None and (path == prefix or path.startswith(prefix + "/")):
            await self.app(scope, receive, send)
            return
        if path == HEALTH_PATH and scope["method"] == "GET":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"authorization")
        token = _bearer(given)
        if token is not None and hmac.compare_digest(token, self.token):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in MUTATING and is_loopback_name(name) and _is_loopback(scope.get("client")):
            await self.app(scope, receive, send)
            return
        if method in MUTATING:
            what = "changes"
        elif not is_loopback_name(name):
            what = "reads through a Host other than 127.0.0.1/localhost"
        else:
            what = "reads from other hosts"
        problem = "carries no bearer token" if token is None else "carries a wrong token"
        message = (
            f"{method} {scope['path']} {problem}; control-plane {what} need "
            "'Authorization: Bearer <token>' with the token in "
            "$LOOPLINE_HOME/controlplane/token (the loopline CLI sends it for you)."
        )
        response = JSONResponse(
            {"error": message, "reason": "Unauthorized"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


def _misdirected(header: str | None) -> JSONResponse:
    if header is None:
        problem = "The request carries no Host header"
    else:
        problem = f"The request's Host {header[:200]!r} is not one this control plane serves"
    return JSONResponse(
        {
            "error": f"{problem}; use 127.0.0.1, localhost or [::1], or add the name the "
            f"clients use to {HOSTS_SETTING} (comma-separated) where the control plane runs.",
            "reason": "MisdirectedRequest",
        },
        status_code=421,
    )


def _header(scope: Scope, key: bytes) -> str | None:
    for k, value in scope.get("headers", ()):
        if k == key:
            return bytes(value).decode("latin-1")
    return None


def _bearer(value: str | None) -> bytes | None:
    if value is None:
        return None
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip().encode("latin-1")
    return None


def _is_loopback(client: Any) -> bool:
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False
