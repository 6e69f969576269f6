"""Header routes, compiled for the router: which revision a request's headers pin it to.

Only built when the route table has header routes, so without them the hot path never
looks at a header. Routes are tried in order; the first whose every condition holds wins.
Header names are case-insensitive; a header sent twice is judged by its first value;
values are compared as Latin-1 text (HTTP's byte-preserving reading). ``regex`` must match
the whole value (``re.fullmatch``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from loopline.deploy.traffic import HeaderMatch, HeaderRoute

Condition = tuple[bytes, Callable[[str], bool]]


class HeaderRouter:
    """Matches raw request heads against header routes."""

    __slots__ = ("routes",)

    def __init__(self, routes: Sequence[HeaderRoute]) -> None:
        self.routes: list[tuple[str, list[Condition]]] = [
            (r.revision, [_condition(m) for m in r.matches]) for r in routes
        ]

    def match(self, request: bytes) -> str | None:
        """The revision of the first route the request (head first) matches, else None."""
        headers = request_headers(request)
        for revision, conditions in self.routes:
            for name, test in conditions:
                value = headers.get(name)
                if value is None or not test(value):
                    break
            else:
                return revision
        return None


def _condition(m: HeaderMatch) -> Condition:
    name = m.header.lower().encode("latin-1")
    if m.exact is not None:
        return name, m.exact.__eq__
    if m.prefix is not None:
        prefix = m.prefix
        return name, lambda value: value.startswith(prefix)
    assert m.regex is not None  # HeaderMatch has exactly one of the three (checked on input)
    pattern = re.compile(m.regex)
    return name, lambda value: pattern.fullmatch(value) is not None


def request_headers(request: bytes) -> dict[bytes, str]:
    """Lower-cased header name → first value, from a raw request (head first)."""
    end = request.find(b"\r\n\r\n")
    lines = request[: end if end >= 0 else len(request)].split(b"\r\n")
    headers: dict[bytes, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip().decode("latin-1"))
    return headers
