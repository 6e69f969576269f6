"""Header routes: requests whose headers match go to the route's revision, weights or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.deploy.router.helpers import RawClient, push, v2

from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.header_routes import HeaderRouter
from loopline.deploy.traffic import HeaderMatch, HeaderRoute
from loopline.errors import BackendError

INFER = "/v2/models/m/infer"
ROUTES = (
    HeaderRoute("qa", "canary", (HeaderMatch("x-env", exact="qa"),)),
    HeaderRoute("beta", "canary", (HeaderMatch("x-user", prefix="beta-"),)),
    HeaderRoute("tenants", "canary", (HeaderMatch("x-tenant", regex=r"t[0-9]+"),)),
    HeaderRoute("both", "canary", (HeaderMatch("x-a", exact="1"), HeaderMatch("x-b", exact="2"))),
)


def _answered_by(client: RawClient, headers: dict[str, str]) -> str:
    status, _, body = client.post(INFER, v2(1.0), headers)
    assert status == 200
    return str(body["id"])


def test_exact_prefix_and_regex_headers_pin_requests_to_the_route_revision(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable")
    canary, _ = backend(id="canary")
    rt = router_thread()
    push(rt, [("s", stable, "stable"), ("c", canary, "canary")], {"stable": 100, "canary": 0},
         header_routes=ROUTES)  # fmt: skip
    client = raw_client(rt.port)
    cases = [
        ({}, "stable"),
        ({"x-env": "qa"}, "canary"),
        ({"X-ENV": "qa"}, "canary"),  # header names are case-insensitive
        ({"x-env": "qa2"}, "stable"),  # exact means exact
        ({"x-env": "QA"}, "stable"),  # values are case-sensitive
        ({"x-user": "beta-7"}, "canary"),
        ({"x-user": "alpha-beta-7"}, "stable"),
        ({"x-tenant": "t12"}, "canary"),
        ({"x-tenant": "t12x"}, "stable"),  # the regex must match the whole value
        ({"x-a": "1"}, "stable"),  # every condition of a route must hold
        ({"x-a": "1", "x-b": "2"}, "canary"),
    ]
    assert [_answered_by(client, h) for h, _ in cases] == [who for _, who in cases]


def test_header_routes_leave_the_weights_of_other_requests_exact(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable")
    canary, _ = backend(id="canary")
    rt = router_thread()
    push(rt, [("s", stable, "stable"), ("c", canary, "canary")], {"stable": 3, "canary": 1},
         header_routes=ROUTES[:1])  # fmt: skip
    client = raw_client(rt.port)
    routed = [_answered_by(client, {"x-env": "qa"}) for _ in range(10)]
    weighted = [_answered_by(client, {}) for _ in range(40)]
    assert set(routed) == {"canary"}
    assert (weighted.count("stable"), weighted.count("canary")) == (30, 10)


def test_a_route_to_a_revision_without_a_ready_backend_falls_back_to_the_weights(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable")
    rt = router_thread()
    ghost = HeaderRoute("ghost", "not-started", (HeaderMatch("x-env", exact="qa"),))
    push(rt, [("s", stable, "stable")], {"stable": 1}, header_routes=(ghost,))
    client = raw_client(rt.port)
    assert [_answered_by(client, {"x-env": "qa"}) for _ in range(3)] == ["stable"] * 3


def test_header_routes_apply_to_requests_through_the_full_parser_too(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    import httpx  # HTTP/1.1 with "connection: close": not a plain message

    stable, _ = backend(id="stable")
    canary, _ = backend(id="canary")
    rt = router_thread()
    push(rt, [("s", stable, "stable"), ("c", canary, "canary")], {"stable": 1},
         header_routes=ROUTES[:1])  # fmt: skip
    url = f"http://127.0.0.1:{rt.port}{INFER}"
    r = httpx.post(url, json=v2(1.0), headers={"x-env": "qa", "connection": "close"})
    assert r.json()["id"] == "canary"


def test_a_bad_regex_is_refused_with_the_field_named(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    bad = HeaderRoute("r", "canary", (HeaderMatch("x-env", regex="([a-z"),))
    field = r"headerRoutes\[0\]\.match\[0\]\.headerValue\.regex"
    with pytest.raises(BackendError, match=rf"400.*'{field}' is not a valid regular expression"):
        push(rt, [], header_routes=(bad,))
    assert RouterAdminClient(rt.admin_port).describe()["headerRoutes"] == []


def test_the_first_value_of_a_repeated_header_decides() -> None:
    router = HeaderRouter(ROUTES[:1])
    assert router.match(b"POST / HTTP/1.1\r\nX-Env:  qa \r\nx-env: prod\r\n\r\n{}") == "canary"
    assert router.match(b"POST / HTTP/1.1\r\nx-env: prod\r\nX-Env: qa\r\n\r\n{}") is None
    assert router.match(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n") is None
    assert router.match(b"GET / HTTP/1.1\r\nx-envy: qa\r\n\r\n") is None  # not a prefix
    # a header in the body is not a header
    assert router.match(b"POST / HTTP/1.1\r\nhost: h\r\n\r\nx\r\nx-env: qa\r\n") is None
