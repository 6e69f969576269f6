"""The JSON form of a :class:`~loopline.deploy.route_table.RouteTable` on the router's admin
API (``PUT /backends``), both ways: :func:`table_to_json` for the client,
:func:`table_from_json` for the router (it checks every field and names the bad one).

```
{"backends": [{"id", "host", "port", "revision"}],
 "weights": {rev: int} | null,
 "headerRoutes": [{"name", "revision",
                   "match": [{"headerName", "headerValue": {"exact"|"prefix"|"regex": str}}]}],
 "mirror": {"revision", "percent"} | null,
 "preview": rev | null,
 "holdSeconds": float,
 "labels": {rev: "stable"|"canary"|"preview"}}
```

Only ``backends`` is required. The traffic part is :meth:`Traffic.to_dict` /
:meth:`Traffic.from_dict`, the same form the deployment status stores.
"""

from __future__ import annotations

import re
from typing import Any

from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.traffic import Traffic
from loopline.errors import InvalidInputError
from loopline.types import JsonDict


def table_to_json(table: RouteTable) -> JsonDict:
    """The admin API body for ``table``."""
    return {
        "backends": [
            {"id": b.id, "host": b.host, "port": b.port, "revision": b.revision}
            for b in table.backends
        ],
        **table.traffic.to_dict(),
        "holdSeconds": table.hold_seconds,
        "labels": dict(table.labels),
    }


def table_from_json(data: object) -> RouteTable:
    """The table an admin API body describes.

    Raises:
        InvalidInputError: a field is missing or malformed (the message names it).
    """
    if not isinstance(data, dict):
        raise InvalidInputError("The route table must be a JSON object.")
    backends = data.get("backends")
    if not isinstance(backends, list):
        raise InvalidInputError("Field 'backends' must be a list.")
    parsed = tuple(_backend(i, b) for i, b in enumerate(backends))
    _check_weights(data.get("weights"))
    _check_header_routes(data.get("headerRoutes"))
    _check_mirror(data.get("mirror"))
    preview = data.get("preview")
    if preview is not None and not (isinstance(preview, str) and preview):
        raise InvalidInputError(
            f"Field 'preview' must be a revision hash or null, not {preview!r}."
        )
    hold = data.get("holdSeconds", 0.0)
    if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 <= hold <= 3600:
        raise InvalidInputError(
            f"Field 'holdSeconds' must be a number of seconds from 0 to 3600, not {hold!r}."
        )
    labels = data.get("labels") or {}
    if not (isinstance(labels, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    )):  # fmt: skip
        raise InvalidInputError(
            f"Field 'labels' must map revision hash to a label, not {labels!r}."
        )
    return RouteTable(
        backends=parsed,
        traffic=Traffic.from_dict(data),
        hold_seconds=float(hold),
        labels=tuple(sorted(labels.items())),
    )


def _backend(i: int, b: Any) -> Backend:
    if not isinstance(b, dict):
        raise InvalidInputError(f"Field 'backends[{i}]' must be an object, not {b!r}.")
    bid, host, port, rev = b.get("id"), b.get("host"), b.get("port"), b.get("revision", "")
    if not isinstance(bid, str) or not bid:
        raise InvalidInputError(f"Field 'backends[{i}].id' must be a non-empty string.")
    if not isinstance(host, str) or not host:
        raise InvalidInputError(f"Field 'backends[{i}].host' must be a non-empty string.")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInputError(f"Field 'backends[{i}].port' must be a port number, not {port!r}.")
    if not isinstance(rev, str):
        raise InvalidInputError(f"Field 'backends[{i}].revision' must be a string, not {rev!r}.")
    return Backend(bid, host, port, rev)


def _check_weights(weights: object) -> None:
    if weights is None:
        return
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in weights.items()
    ):
        raise InvalidInputError(
            f"Field 'weights' must map revision hash to an integer ≥ 0, or be null; "
            f"got {weights!r}."
        )


def _check_header_routes(routes: object) -> None:
    if routes is None:
        return
    if not isinstance(routes, list):
        raise InvalidInputError(f"Field 'headerRoutes' must be a list, not {routes!r}.")
    for i, route in enumerate(routes):
        where = f"headerRoutes[{i}]"
        if not isinstance(route, dict):
            raise InvalidInputError(f"Field '{where}' must be an object, not {route!r}.")
        for key in ("name", "revision"):
            if not isinstance(route.get(key), str) or not route[key]:
                raise InvalidInputError(f"Field '{where}.{key}' must be a non-empty string.")
        matches = route.get("match")
        if not isinstance(matches, list) or not matches:
            raise InvalidInputError(f"Field '{where}.match' must be a non-empty list.")
        for j, match in enumerate(matches):
            _check_match(f"{where}.match[{j}]", match)


def _check_match(where: str, match: object) -> None:
    if not isinstance(match, dict):
        raise InvalidInputError(f"Field '{where}' must be an object, not {match!r}.")
    name = match.get("headerName")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"Field '{where}.headerName' must be a non-empty string.")
    value = match.get("headerValue")
    kinds = [k for k in ("exact", "prefix", "regex") if isinstance(value, dict) and k in value]
    if not isinstance(value, dict) or len(kinds) != 1 or len(value) != 1:
        raise InvalidInputError(
            f"Field '{where}.headerValue' must have exactly one of 'exact', 'prefix' or "
            f"'regex', not {value!r}."
        )
    kind = kinds[0]
    text = value[kind]
    if not isinstance(text, str):
        raise InvalidInputError(f"Field '{where}.headerValue.{kind}' must be a string.")
    if kind == "regex":
        try:
            re.compile(text)
        except re.error as exc:
            raise InvalidInputError(
                f"Field '{where}.headerValue.regex' is not a valid regular expression "
                f"({text!r}: {exc})."
            ) from None


def _check_mirror(mirror: object) -> None:
    if mirror is None:
        return
    if not isinstance(mirror, dict):
        raise InvalidInputError(f"Field 'mirror' must be an object or null, not {mirror!r}.")
    rev, percent = mirror.get("revision"), mirror.get("percent")
    if not isinstance(rev, str) or not rev:
        raise InvalidInputError("Field 'mirror.revision' must be a non-empty string.")
    if type(percent) is not int or not 1 <= percent <= 100:
        raise InvalidInputError(
            f"Field 'mirror.percent' must be an integer from 1 to 100, not {percent!r}."
        )
