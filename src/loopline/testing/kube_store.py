"""The object store behind the fake Kubernetes API server (:mod:`loopline.testing.kube`).

It keeps what an API server keeps and nothing a controller does (no Deployment controller,
no garbage collector — as with kube-apiserver alone):

- objects per kind, namespace and name, with ``uid``, ``creationTimestamp``, a global
  ``resourceVersion`` bumped on every change (a write that changes nothing bumps nothing),
  and ``generation`` bumped when anything but metadata and status changes;
- server-side apply with field ownership: each manager's fields (leaves; lists are atomic)
  are tracked per operation (``Apply``/``Update``) and shown as ``managedFields``
  (``FieldsV1``); an apply that sets a field another manager owns to another value is a 409
  conflict unless forced (force moves the field); an apply that stops setting a field its
  manager alone owned removes it; an update (merge patch, replace, scale) takes the fields it
  changes from their previous owners;
- the ``status`` and ``scale`` subresources: writes to the main resource keep the stored
  status; ``/status`` writes change only the status;
- namespaces must exist (``default`` does from the start); deleting one deletes its objects;
- a bounded event log for ``?watch`` from a ``resourceVersion`` (older: 410 Gone).

Errors are :class:`ApiStatus` exceptions that the server turns into ``Status`` bodies.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from loopline.types import Json, JsonDict

Path = tuple[str, ...]
Key = tuple[str, str, str, str]  # api version, kind, namespace ("" if cluster-scoped), name
_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


@dataclass(frozen=True, slots=True)
class Kind:
    """A resource the fake serves."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "Namespace", "namespaces", namespaced=False, subresources=("status",)),
    Kind("", "v1", "ConfigMap", "configmaps"),
    Kind("", "v1", "Secret", "secrets"),
    Kind("", "v1", "Service", "services", subresources=("status",)),
    Kind("apps", "v1", "Deployment", "deployments", subresources=("status", "scale"),
         generation=True),
    Kind("apps", "v1", "ReplicaSet", "replicasets", subresources=("status", "scale"),
         generation=True),
    Kind("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
         subresources=("status",), generation=True),
    Kind("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
         subresources=("status",), generation=True),
    Kind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes",
         subresources=("status",), generation=True),
)


class ApiStatus(Exception):
    """A failure the API server answers with a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> JsonDict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Event:
    version: int
    type: str
    key: Key
    object: JsonDict


class KubeStore:
    """Thread-safe objects, field ownership and the event log (see the module docstring)."""

    def __init__(self, *, history: int = 10_000) -> None:
        self._cond = threading.Condition()
        self._objects: dict[Key, JsonDict] = {}
        self._owners: dict[Key, dict[tuple[str, str], set[Path]]] = {}
        self._events: deque[Event] = deque(maxlen=history)
        self._versions = itertools.count(1)
        self.version = 0
        self.closed = False
        self.create(_kind("Namespace"), "", {"metadata": {"name": "default"}}, None)

    # ---- reads ---------------------------------------------------------------------------------

    def get(self, kind: Kind, namespace: str, name: str) -> JsonDict:
        with self._cond:
            return self._render(self._require(kind, namespace, name))

    def list_objects(self, kind: Kind, namespace: str, labels: Mapping[str, str] | None = None,
             name: str | None = None) -> tuple[list[JsonDict], str]:  # fmt: skip
        with self._cond:
            items = [self._render(k) for k in sorted(self._objects)
                     if k[:2] == (kind.api_version, kind.kind)
                     and (not namespace or k[2] == namespace) and (name is None or k[3] == name)
                     and _matches(self._objects[k], labels)]  # fmt: skip
            return items, str(self.version)

    def events_after(self, kind: Kind, namespace: str, version: int, timeout: float) -> list[Event]:
        """Events of ``kind`` after ``version``; waits up to ``timeout`` for the first one.
        Raises ApiStatus 410 when ``version`` is older than the log."""
        with self._cond:
            if self._events and version < self._events[0].version - 1:
                raise ApiStatus(410, "Expired", f"too old resource version: {version} "
                                f"({self._events[0].version - 1})")  # fmt: skip
            def found() -> list[Event]:
                return [e for e in self._events if e.version > version
                        and e.key[:2] == (kind.api_version, kind.kind)
                        and (not namespace or e.key[2] == namespace)]  # fmt: skip
            self._cond.wait_for(lambda: bool(found()) or self.closed, timeout=timeout)
            return found()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    # ---- writes --------------------------------------------------------------------------------

    def create(self, kind: Kind, namespace: str, body: JsonDict, manager: str | None) -> JsonDict:
        name = _name(body)
        with self._cond:
            if _key(kind, namespace, name) in self._objects:
                raise ApiStatus(409, "AlreadyExists",
                                f'{kind.plural} "{name}" already exists')  # fmt: skip
            return self._update(kind, namespace, name, lambda _: body, manager, create=True)

    def replace(self, kind: Kind, namespace: str, name: str, body: JsonDict,
                manager: str | None, sub: str = "") -> JsonDict:  # fmt: skip
        _check_name(body, name)
        with self._cond:
            current = self._objects.get(_key(kind, namespace, name))
            wanted = _str(_meta(body).get("resourceVersion"))
            if current is not None and wanted and wanted != _meta(current)["resourceVersion"]:
                raise ApiStatus(409, "Conflict", f'Operation cannot be fulfilled on {kind.plural} '
                                f'"{name}": the object has been modified; please apply your '
                                "changes to the latest version and try again")  # fmt: skip
            if current is None and sub:
                raise _not_found(kind, name)
            return self._update(kind, namespace, name, lambda _: body, manager,
                                create=current is None, sub=sub)  # fmt: skip

    def merge_patch(self, kind: Kind, namespace: str, name: str, patch: JsonDict,
                    manager: str | None, sub: str = "") -> JsonDict:  # fmt: skip
        with self._cond:
            self._require(kind, namespace, name)
            return self._update(kind, namespace, name, lambda cur: merge(cur, patch), manager,
                                sub=sub)  # fmt: skip

    def apply(self, kind: Kind, namespace: str, name: str, body: JsonDict, manager: str,
              force: bool) -> JsonDict:  # fmt: skip
        _check_name(body, name)
        if kind.api_version != body.get("apiVersion") or kind.kind != body.get("kind"):
            raise ApiStatus(400, "BadRequest", f"the applied object is a "
                            f"{body.get('apiVersion')} {body.get('kind')}, not a "
                            f"{kind.api_version} {kind.kind}")  # fmt: skip
        with self._cond:
            key = _key(kind, namespace, name)
            current = self._objects.get(key)
            owners = self._owners.setdefault(key, {})
            mine = owners.get((manager, "Apply"), set())
            new = _fields(body, kind)
            conflicts: list[tuple[str, Path]] = []
            if current is not None:
                conflicts = sorted(
                    (o, p) for (o, op), paths in owners.items() if o != manager
                    for p in paths & new if _get(current, p) != _get(body, p)
                )  # fmt: skip
                if conflicts and not force:
                    listed = "; ".join(f'conflict with "{o}": .{".".join(p)}'
                                       for o, p in conflicts)  # fmt: skip
                    raise ApiStatus(409, "Conflict", f"Apply failed with {len(conflicts)} "
                                    f"conflict(s): {listed}")  # fmt: skip
            others = set().union(*(p for (o, op), p in owners.items() if (o, op) != (manager,
                                                                                   "Apply")))
            dropped = mine - new - others

            def applied(cur: JsonDict) -> JsonDict:
                out = copy.deepcopy(cur)
                for path in sorted(dropped, key=len, reverse=True):
                    _delete(out, path)
                merged = merge(out, body, nulls_delete=False)
                assert isinstance(merged, dict)
                return merged

            self._update(kind, namespace, name, applied, None, create=current is None)
            for o, path in conflicts:  # forced: the field moves to this manager
                for (other, _), paths in owners.items():
                    if other == o:
                        paths.discard(path)
            for owner in [k for k, p in owners.items() if not p and k != (manager, "Apply")]:
                del owners[owner]
            owners[(manager, "Apply")] = new
            return self._render(key)

    def delete(self, kind: Kind, namespace: str, name: str) -> JsonDict:
        with self._cond:
            key = _key(kind, namespace, name)
            obj = self._render(self._require(kind, namespace, name))
            if kind.kind == "Namespace":
                for other in [k for k in self._objects if k[2] == name]:
                    self._remove(other)
            self._remove(key)
            return obj

    # ---- internals (called with the lock held) -------------------------------------------------

    def _require(self, kind: Kind, namespace: str, name: str) -> Key:
        key = _key(kind, namespace, name)
        if key not in self._objects:
            raise _not_found(kind, name)
        return key

    def _update(self, kind: Kind, namespace: str, name: str, change: object, manager: str | None,
                *, create: bool = False, sub: str = "") -> JsonDict:  # fmt: skip
        key = _key(kind, namespace, name)
        if kind.namespaced and (("v1", "Namespace", "", namespace) not in self._objects):
            raise ApiStatus(404, "NotFound", f'namespaces "{namespace}" not found')
        before = self._objects.get(key, {})
        assert callable(change)
        after = copy.deepcopy(change(copy.deepcopy(before)))
        if not isinstance(after, dict):
            raise ApiStatus(400, "BadRequest", "the body is not a JSON object")
        if sub == "status":  # only the status changes
            after = {**copy.deepcopy(before), "status": after.get("status", {})}
        elif "status" in kind.subresources:  # the main resource keeps the stored status
            after.pop("status", None)
            if "status" in before:
                after["status"] = copy.deepcopy(before["status"])
        meta = after.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiStatus(400, "BadRequest", "metadata must be an object")
        for field in _SERVER_META:
            if field in _meta(before):
                meta[field] = _meta(before)[field]
            else:
                meta.pop(field, None)
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = namespace
        after["apiVersion"], after["kind"] = kind.api_version, kind.kind
        changed = _diff(before, after)
        if not create and not changed:
            return self._render(key)
        if create:
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=stamp)
            if kind.generation:
                meta["generation"] = 1
        elif kind.generation and any(p[0] not in ("metadata", "status") for p in changed):
            meta["generation"] = int(_meta(before).get("generation", 0)) + 1  # type: ignore[arg-type]
        self.version = next(self._versions)
        meta["resourceVersion"] = str(self.version)
        self._objects[key] = after
        if manager is not None:  # an update takes the fields it changed
            owners = self._owners.setdefault(key, {})
            taken = {p for p in changed if p[0] != "metadata" or p[1] in ("labels", "annotations")}
            for paths in owners.values():
                paths -= taken
            owners.setdefault((manager, "Update"), set()).update(
                p for p in taken if _get(after, p) is not _MISSING)  # fmt: skip
            for owner in [o for o, p in owners.items() if not p]:
                del owners[owner]
        self._log("ADDED" if create else "MODIFIED", key)
        return self._render(key)

    def _remove(self, key: Key) -> None:
        self.version = next(self._versions)
        obj = self._render(key)
        meta = obj["metadata"]
        assert isinstance(meta, dict)
        meta["resourceVersion"] = str(self.version)
        del self._objects[key]
        self._owners.pop(key, None)
        self._events.append(Event(self.version, "DELETED", key, obj))
        self._cond.notify_all()

    def _log(self, kind: str, key: Key) -> None:
        self._events.append(Event(self.version, kind, key, self._render(key)))
        self._cond.notify_all()

    def _render(self, key: Key) -> JsonDict:
        obj = copy.deepcopy(self._objects[key])
        managed: list[Json] = []
        meta = obj["metadata"]
        assert isinstance(meta, dict)
        for (manager, op), paths in sorted(self._owners.get(key, {}).items()):
            managed.append({"manager": manager, "operation": op, "apiVersion": obj["apiVersion"],
                            "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(paths),
                            "time": meta.get("creationTimestamp")})  # fmt: skip
        if managed:
            meta["managedFields"] = managed
        return obj


# ---- helpers ---------------------------------------------------------------------------------

_MISSING = object()


def _kind(name: str) -> Kind:
    return next(k for k in KINDS if k.kind == name)


def _key(kind: Kind, namespace: str, name: str) -> Key:
    return (kind.api_version, kind.kind, namespace if kind.namespaced else "", name)


def _meta(obj: Mapping[str, Json]) -> dict[str, Json]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _str(value: Json) -> str:
    return value if isinstance(value, str) else ""


def _name(body: JsonDict) -> str:
    name = _meta(body).get("name")
    if not isinstance(name, str) or not name:
        raise ApiStatus(422, "Invalid", "metadata.name: Required value: name is required")
    return name


def _check_name(body: JsonDict, name: str) -> None:
    given = _meta(body).get("name")
    if given is not None and given != name:
        raise ApiStatus(400, "BadRequest", f"the name of the object ({given}) does not match the "
                        f"name on the URL ({name})")  # fmt: skip


def _not_found(kind: Kind, name: str) -> ApiStatus:
    group = f".{kind.group}" if kind.group else ""
    return ApiStatus(404, "NotFound", f'{kind.plural}{group} "{name}" not found')


def _matches(obj: JsonDict, labels: Mapping[str, str] | None) -> bool:
    have = _meta(obj).get("labels")
    have = have if isinstance(have, dict) else {}
    return all(have.get(k) == v for k, v in (labels or {}).items())


def merge(target: Json, patch: Json, *, nulls_delete: bool = True) -> Json:
    """RFC 7386 JSON merge patch (lists replace; ``None`` deletes unless ``nulls_delete`` is
    False, for applied configurations)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None and nulls_delete:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v, nulls_delete=nulls_delete)
    return out


def _fields(obj: Json, kind: Kind, prefix: Path = ()) -> set[Path]:
    """The leaf paths ``obj`` sets (lists and empty maps are leaves), without what the server
    owns (identity, server metadata, status)."""
    out: set[Path] = set()
    if not isinstance(obj, dict) or (prefix and not obj):
        return {prefix}
    for k, v in obj.items():
        path = (*prefix, k)
        if path in (("apiVersion",), ("kind",), ("status",), ("metadata", "name"),
                    ("metadata", "namespace")) or (prefix == ("metadata",)
                                                   and k in _SERVER_META):  # fmt: skip
            continue
        out |= _fields(v, kind, path)
    return out


def _get(obj: Json, path: Path) -> object:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


def _delete(obj: JsonDict, path: Path) -> None:
    parents: list[tuple[JsonDict, str]] = []
    node: Json = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return
        parents.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, part in reversed(parents):  # prune maps the removal emptied
        if parent[part] == {}:
            del parent[part]


def _diff(before: Json, after: Json, prefix: Path = ()) -> set[Path]:
    """Leaf paths whose values differ (server metadata ignored)."""
    if prefix[:1] == ("metadata",) and len(prefix) == 2 and prefix[1] in _SERVER_META:
        return set()
    if isinstance(before, dict) and isinstance(after, dict) and (before or after):
        out: set[Path] = set()
        for k in set(before) | set(after):
            out |= _diff(before.get(k, _MISSING_JSON), after.get(k, _MISSING_JSON), (*prefix, k))
        return out
    return set() if before == after else {prefix}


_MISSING_JSON: Json = "\0missing"  # never equal to a value a client sends


def _fields_v1(paths: set[Path]) -> JsonDict:
    out: JsonDict = {}
    for path in sorted(paths):
        node = out
        for part in path:
            child = node.setdefault(f"f:{part}", {})
            assert isinstance(child, dict)
            node = child
    return out
