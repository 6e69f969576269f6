"""Where a deployment's requests should go, as the controller decides it.

:class:`Traffic` is part of the deployment status: exact per-revision weights, header routes,
a mirror and the blue-green preview revision. The sync loop turns it, with the ready
replicas, into the router's :class:`~loopline.deploy.route_table.RouteTable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopline.types import JsonDict


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """One header condition (Argo Rollouts' ``headerValue``: exactly one of the three)."""

    header: str  # the header name, lower-cased
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None  # Python ``re`` syntax, matched with ``fullmatch``

    def to_dict(self) -> JsonDict:
        value: JsonDict = {k: v for k, v in (("exact", self.exact), ("prefix", self.prefix),
                                             ("regex", self.regex)) if v is not None}  # fmt: skip
        return {"headerName": self.header, "headerValue": value}

    @classmethod
    def from_dict(cls, data: Any) -> HeaderMatch:
        value = data["headerValue"]
        assert isinstance(value, dict)
        return cls(str(data["headerName"]).lower(), value.get("exact"), value.get("prefix"),
                   value.get("regex"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class HeaderRoute:
    """Requests matching every condition go to ``revision`` (weights do not apply to them)."""

    name: str
    revision: str
    matches: tuple[HeaderMatch, ...]

    def to_dict(self) -> JsonDict:
        return {"name": self.name, "revision": self.revision,
                "match": [m.to_dict() for m in self.matches]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> HeaderRoute:
        matches = data["match"]
        assert isinstance(matches, list)
        return cls(str(data["name"]), str(data["revision"]),
                   tuple(HeaderMatch.from_dict(m) for m in matches))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mirror:
    """A copy of ``percent`` % of the requests served by other revisions goes to
    ``revision``; its answers are compared with the served ones and then dropped."""

    revision: str
    percent: int  # 1..100


@dataclass(frozen=True, slots=True)
class Traffic:
    """The controller's routing decision. ``weights`` None: spread over every ready replica
    by load (a Kubernetes Service); else revision hash → exact share (any total)."""

    weights: tuple[tuple[str, int], ...] | None = None
    header_routes: tuple[HeaderRoute, ...] = ()
    mirror: Mirror | None = None
    preview: str | None = None

    def weight_map(self) -> dict[str, int] | None:
        return None if self.weights is None else dict(self.weights)

    def to_dict(self) -> JsonDict:
        return {
            "weights": None if self.weights is None else dict(self.weights),
            "headerRoutes": [r.to_dict() for r in self.header_routes],
            "mirror": None if self.mirror is None
            else {"revision": self.mirror.revision, "percent": self.mirror.percent},
            "preview": self.preview,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> Traffic:
        if not data:
            return cls()
        weights = data.get("weights")
        mirror = data.get("mirror")
        routes = data.get("headerRoutes") or []
        assert isinstance(routes, list)
        return cls(
            weights=None if not isinstance(weights, dict)
            else tuple(sorted((str(k), int(v)) for k, v in weights.items())),
            header_routes=tuple(HeaderRoute.from_dict(r) for r in routes),
            mirror=None if not isinstance(mirror, dict)
            else Mirror(str(mirror["revision"]), int(mirror["percent"])),
            preview=None if data.get("preview") is None else str(data["preview"]),
        )  # fmt: skip
