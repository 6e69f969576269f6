"""The route table's JSON form on the admin API: a round trip, and errors naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.wire import table_from_json, table_to_json
from loopline.deploy.traffic import HeaderMatch, HeaderRoute, Mirror, Traffic
from loopline.errors import InvalidInputError

QA = (HeaderMatch("x-env", exact="qa"), HeaderMatch("x-user", regex="t[0-9]+"))
TABLE = RouteTable(
    backends=(Backend("a", "127.0.0.1", 9001, "old"), Backend("b", "127.0.0.1", 9002, "new")),
    traffic=Traffic(
        weights=(("new", 20), ("old", 80)),
        header_routes=(HeaderRoute("qa", "new", QA),),
        mirror=Mirror("new", 25),
        preview="new",
    ),
    hold_seconds=2.5,
    labels=(("new", "canary"), ("old", "stable")),
)


def test_a_table_survives_the_round_trip() -> None:
    assert table_from_json(table_to_json(TABLE)) == TABLE
    assert table_from_json({"backends": []}) == RouteTable()  # everything else is optional


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backends": {}}, "Field 'backends' must be a list"),
        ({"backends": [{"id": "a", "host": "h", "port": "80"}]}, r"'backends\[0\].port'"),
        ({"weights": {"old": -1}}, "Field 'weights' must map revision hash to an integer"),
        ({"headerRoutes": {}}, "Field 'headerRoutes' must be a list"),
        ({"headerRoutes": [{"name": "x", "revision": "new", "match": []}]},
         r"'headerRoutes\[0\].match' must be a non-empty list"),
        ({"headerRoutes": [{"name": "x", "revision": "new", "match": [
            {"headerName": "a", "headerValue": {"exact": "1", "prefix": "2"}}]}]},
         r"'headerRoutes\[0\].match\[0\].headerValue' must have exactly one of"),
        ({"headerRoutes": [{"name": "x", "revision": "new", "match": [
            {"headerName": "a", "headerValue": {"regex": "(("}}]}]},
         r"'headerRoutes\[0\].match\[0\].headerValue.regex' is not a valid regular"),
        ({"mirror": {"revision": "new", "percent": 0}}, "'mirror.percent' must be an integer"),
        ({"mirror": {"percent": 5}}, "'mirror.revision' must be a non-empty string"),
        ({"preview": 7}, "Field 'preview' must be a revision hash or null"),
        ({"holdSeconds": -1}, "Field 'holdSeconds' must be a number of seconds"),
        ({"holdSeconds": True}, "Field 'holdSeconds' must be a number of seconds"),
        ({"labels": {"new": 1}}, "Field 'labels' must map revision hash to a label"),
    ],
)  # fmt: skip
def test_a_malformed_table_is_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        table_from_json({**table_to_json(TABLE), **change})


def test_the_admin_api_answers_400_and_keeps_the_table_it_had(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    url = f"http://127.0.0.1:{rt.admin_port}/backends"
    auth = {"authorization": f"Bearer {rt.secret}"}
    assert httpx.put(url, json=table_to_json(TABLE), headers=auth).status_code == 200
    bad = {**table_to_json(TABLE), "mirror": {"revision": "new", "percent": 101}}
    r = httpx.put(url, json=bad, headers=auth)
    assert r.status_code == 400 and "'mirror.percent'" in r.json()["error"]
    described = httpx.get(url).json()
    assert described["mirror"] == {"revision": "new", "percent": 25}
    assert described["holdSeconds"] == 2.5 and described["labels"] == {"new": "canary",
                                                                       "old": "stable"}
