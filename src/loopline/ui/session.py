"""The console's sign-in: a session cookie made from the control plane's token, and the CSRF
token that every action carries.

- **Session.** Signing in posts the token (``$LOOPLINE_HOME/controlplane/token``); the answer
  sets ``loopline_session`` = ``<random id>.<HMAC(token, id)>``, HttpOnly, SameSite=Strict,
  path ``/ui``. Nothing is kept on the server: a cookie is valid while the token that signed
  it is the control plane's token, so changing the token signs everyone out.
- **CSRF.** ``HMAC(token, "csrf:" + id)``: rendered in a ``<meta>`` tag and sent by htmx as
  ``X-CSRF-Token`` (``hx-headers`` on ``<body>``), or as the form field ``csrf``. A page of
  another site can neither read it nor send the cookie (SameSite=Strict).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

COOKIE = "loopline_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its session id and the CSRF token its actions must carry."""

    id: str
    csrf: str


class SessionKeys:
    """Makes and checks session cookies and CSRF tokens with the control plane's ``token``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("The console needs the control plane's token to sign sessions.")
        self._key = token.encode()

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` (the sign-in form's field) is the control plane's token."""
        return hmac.compare_digest(given.strip().encode(), self._key)

    def new_cookie(self) -> str:
        """A fresh session cookie value."""
        sid = secrets.token_urlsafe(18)
        return f"{sid}.{self._sign('session:' + sid)}"

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie value stands for, or None when it is missing or forged."""
        if not cookie or cookie.count(".") != 1:
            return None
        sid, mac = cookie.split(".")
        if not sid or not hmac.compare_digest(mac, self._sign("session:" + sid)):
            return None
        return Session(id=sid, csrf=self._sign("csrf:" + sid))

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
