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

Condition = tuple[bytes, Callable[[str], bool]]  # (b"\r\n<name>:", test of the value)


class HeaderRouter:
    """Matches raw request heads against header routes."""

    __slots__ = ("routes",)

    def __init__(self, routes: Sequence[HeaderRoute]) -> None:
        self.routes: list[tuple[str, list[Condition]]] = [
            (r.revision, [_condition(m) for m in r.matches]) for r in routes
        ]

    def match(self, request: bytes) -> str | None:
        """The revision of the first route the request (head first) matches, else None."""
        end = request.find(b"\r\n\r\n")
        head = request[: end + 2] if end >= 0 else request + b"\r\n"
        low = head.lower()  # one pass in C; each header is then one find
        for revision, conditions in self.routes:
            for key, test in conditions:
                value = header_value(head, low, key)
                if value is None or not test(value):
                    break
            else:
                return revision
        return None


def _condition(m: HeaderMatch) -> Condition:
    key = b"\r\n" + m.header.lower().encode("latin-1") + b":"
    if m.exact is not None:
        return key, m.exact.__eq__
    if m.prefix is not None:
        prefix = m.prefix
        return key, lambda value: value.startswith(prefix)
    assert m.regex is not None  # HeaderMatch has exactly one of the three (checked on input)
    pattern = re.compile(m.regex)
    return key, lambda value: pattern.fullmatch(value) is not None


def header_value(head: bytes, low: bytes, key: bytes) -> str | None:
    """The first value of a header in a raw head ending in CRLF (``low``: the head
    lower-cased; ``key``: ``b"\\r\\n" + name + b":"``, the name lower-cased)."""
    start = low.find(key)
    if start < 0:
        return None
    start += len(key)
    return head[start : head.find(b"\r\n", start)].strip().decode("latin-1")
