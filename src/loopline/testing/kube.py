"""A fake Kubernetes API server on 127.0.0.1 (stdlib ``http.server``), for tests with no cluster.

No kube-apiserver, envtest or kwok can be installed on this machine (research: scaleout.md
§2), so the Kubernetes engine is tested against this server, through the same client and the
same HTTP paths as a real cluster, with a kubeconfig file pointing at it::

    with FakeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        cluster = LightkubeCluster.from_kubeconfig(kubeconfig)

It serves, for the kinds in :data:`~loopline.testing.kube_store.KINDS` (core v1 Namespace,
ConfigMap, Secret, Service; apps/v1 Deployment, ReplicaSet; autoscaling/v2 HPA; policy/v1
PDB; Gateway API v1 HTTPRoute):

- discovery (``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/GROUP/VERSION``);
- list (equality ``labelSelector``, ``fieldSelector`` on ``metadata.name``), get, POST
  (create), PUT (replace, optimistic concurrency on ``resourceVersion``), DELETE;
- PATCH: ``application/apply-patch+yaml`` (server-side apply: ``fieldManager`` required, 422
  without; ``force``; ``managedFields``), ``merge-patch+json`` and ``strategic-merge-patch+json``
  (both as a JSON merge patch — a difference from a real server for lists with merge keys);
  ``json-patch+json`` is refused with 415;
- ``?watch=true`` from a ``resourceVersion`` (none or ``0``: the current objects as ADDED
  first) as chunked JSON lines, ending after ``timeoutSeconds`` (default 60); 410 Gone as an
  ERROR event when the version has left the log;
- the ``/scale`` (Deployment, ReplicaSet) and ``/status`` subresources;
- a bearer token (401 without it).

``dryRun`` is refused with 400 rather than ignored. Nothing runs controllers: a Deployment
gets no ReplicaSets or status unless a test writes them (:attr:`FakeApiServer.store`).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from loopline.testing.kube_store import KINDS, ApiStatus, Kind, KubeStore
from loopline.types import Json, JsonDict

DEFAULT_TOKEN = "loopline-fake-token"
WATCH_TIMEOUT = 60.0


class FakeApiServer:
    """The fake API server, started on a free port of 127.0.0.1 (a context manager)."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, history: int = 10_000) -> None:
        self.token = token
        self.store = KubeStore(history=history)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        handler = type("Handler", (_Handler,), {"api": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True,
                                        name="fake-kube-apiserver")  # fmt: skip

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.store.close()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kubeconfig(self, *, context: str = "loopline-fake", namespace: str = "default") -> JsonDict:
        """A kubeconfig whose current context reaches this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                       "namespace": namespace}}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: Path, **kwargs: str) -> Path:
        """Write :meth:`kubeconfig` to ``path`` (0600, as kubectl does) and return it."""
        path.write_text(yaml.safe_dump(self.kubeconfig(**kwargs)))
        path.chmod(0o600)
        return path


def _kind_by_plural(group: str, version: str, plural: str) -> Kind | None:
    return next((k for k in KINDS if (k.group, k.version, k.plural) == (group, version, plural)),
                None)  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    api: FakeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`FakeApiServer.requests` instead."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # ---- dispatch --------------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        self.api.requests.append((method, url.path))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        try:
            if self.headers.get("Authorization") != f"Bearer {self.api.token}":
                raise ApiStatus(401, "Unauthorized", "Unauthorized")
            if "dryRun" in query:
                raise ApiStatus(400, "BadRequest", "dryRun is not supported by the fake server")
            self._route(method, [p for p in url.path.split("/") if p], query, body)
        except ApiStatus as exc:
            self._send(exc.code, exc.body())

    def _route(self, method: str, parts: list[str], query: dict[str, str], body: bytes) -> None:
        if parts == ["version"]:
            return self._send(200, {"major": "1", "minor": "37", "gitVersion": "v1.37.0-fake"})
        if parts == ["api"]:
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            groups = sorted({(k.group, k.version) for k in KINDS if k.group})
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for g, v in groups]})  # fmt: skip
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self._send(200, _resource_list(group, version))
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            inner = _kind_by_plural(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        kind = _kind_by_plural(group, version, rest[0])
        if kind is None or len(rest) > 3 or (kind.namespaced and not namespace and
                                             method != "GET"):  # fmt: skip
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in kind.subresources:
            raise ApiStatus(404, "NotFound", f"{kind.plural} has no subresource {sub!r}")
        if name is None:
            return self._collection(method, kind, namespace, query, body)
        return self._item(method, kind, namespace, name, sub, query, body)

    def _collection(self, method: str, kind: Kind, namespace: str, query: dict[str, str],
                    body: bytes) -> None:  # fmt: skip
        store = self.api.store
        if method == "POST":
            obj = store.create(kind, namespace, _json(body), query.get("fieldManager", "unknown"))
            return self._send(201, obj)
        if method != "GET":
            raise ApiStatus(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
        labels = _selector(query.get("labelSelector", ""))
        fields = _selector(query.get("fieldSelector", ""))
        unknown = set(fields) - {"metadata.name", "metadata.namespace"}
        if unknown:
            raise ApiStatus(400, "BadRequest", f"field selector on {sorted(unknown)} is not "
                            "supported by the fake server (metadata.name, metadata.namespace)")
        namespace = fields.get("metadata.namespace", namespace)
        if query.get("watch") in ("true", "1"):
            return self._watch(kind, namespace, labels, fields.get("metadata.name"), query)
        found, version = store.list_objects(kind, namespace, labels, fields.get("metadata.name"))
        items: list[Json] = [*found]
        self._send(200, {"kind": f"{kind.kind}List", "apiVersion": kind.api_version,
                         "metadata": {"resourceVersion": version}, "items": items})  # fmt: skip

    def _item(self, method: str, kind: Kind, namespace: str, name: str, sub: str,
              query: dict[str, str], body: bytes) -> None:  # fmt: skip
        store = self.api.store
        manager = query.get("fieldManager")
        if sub == "scale":
            return self._scale(method, kind, namespace, name, manager, body)
        if method == "GET":
            return self._send(200, store.get(kind, namespace, name))
        if method == "DELETE":
            obj = store.delete(kind, namespace, name)
            return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                    "details": {"name": name, "kind": kind.plural,
                                                "uid": _uid(obj)}})
        if method == "PUT":
            obj = store.replace(kind, namespace, name, _json(body), manager or "unknown", sub)
            return self._send(200, obj)
        if method != "PATCH":
            raise ApiStatus(405, "MethodNotAllowed", f"{method} is not allowed on an object")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type == "application/apply-patch+yaml":
            if not manager:
                raise ApiStatus(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: '
                                "fieldManager: Required value: is required for apply patch")
            if sub:
                raise ApiStatus(415, "UnsupportedMediaType", "the fake server applies to the "
                                "main resource only")  # fmt: skip
            applied = _yaml(body)
            obj = store.apply(kind, namespace, name, applied, manager, query.get("force") == "true")
            return self._send(200, obj)
        if content_type in ("application/merge-patch+json",
                            "application/strategic-merge-patch+json"):  # fmt: skip
            obj = store.merge_patch(kind, namespace, name, _json(body), manager or "unknown", sub)
            return self._send(200, obj)
        raise ApiStatus(415, "UnsupportedMediaType", f"the fake server does not take PATCH bodies "
                        f"of type {content_type!r}; use apply, merge or strategic-merge patches")

    def _scale(self, method: str, kind: Kind, namespace: str, name: str, manager: str | None,
               body: bytes) -> None:  # fmt: skip
        store = self.api.store
        if method in ("PUT", "PATCH"):
            spec = _json(body).get("spec")
            replicas = spec.get("replicas") if isinstance(spec, dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiStatus(422, "Invalid", f"Scale.autoscaling \"{name}\" is invalid: "
                                f"spec.replicas: Invalid value: {replicas!r}: must be greater "
                                "than or equal to 0")  # fmt: skip
            store.merge_patch(kind, namespace, name, {"spec": {"replicas": replicas}},
                              manager or "unknown")  # fmt: skip
        elif method != "GET":
            raise ApiStatus(405, "MethodNotAllowed", f"{method} is not allowed on /scale")
        self._send(200, _scale(store.get(kind, namespace, name)))

    def _watch(self, kind: Kind, namespace: str, labels: dict[str, str], name: str | None,
               query: dict[str, str]) -> None:  # fmt: skip
        store = self.api.store
        try:
            timeout = float(query.get("timeoutSeconds") or WATCH_TIMEOUT)
            since = int(query.get("resourceVersion") or 0)
        except ValueError:
            raise ApiStatus(400, "BadRequest", "timeoutSeconds and resourceVersion must be "
                            "integers") from None  # fmt: skip
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if since == 0:
                items, version = store.list_objects(kind, namespace, labels, name)
                for obj in items:
                    self._chunk({"type": "ADDED", "object": obj})
                since = int(version)
            while not store.closed and (left := deadline - time.monotonic()) > 0:
                try:
                    events = store.events_after(kind, namespace, since, left)
                except ApiStatus as exc:
                    self._chunk({"type": "ERROR", "object": exc.body()})
                    break
                for event in events:
                    since = event.version
                    meta = event.object["metadata"]
                    assert isinstance(meta, dict)
                    own = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
                    assert isinstance(own, dict)
                    if (name is None or meta.get("name") == name) and all(
                        own.get(k) == v for k, v in labels.items()
                    ):
                        self._chunk({"type": event.type, "object": event.object})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    # ---- I/O -------------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _chunk(self, payload: JsonDict) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send(self, code: int, payload: JsonDict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _resource_list(group: str, version: str) -> JsonDict:
    resources: list[Any] = []
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    for k in KINDS:
        if (k.group, k.version) != (group, version):
            continue
        resources.append({"name": k.plural, "singularName": k.kind.lower(),
                          "namespaced": k.namespaced, "kind": k.kind, "verbs": verbs})  # fmt: skip
        for sub in k.subresources:
            kind = "Scale" if sub == "scale" else k.kind
            resources.append({"name": f"{k.plural}/{sub}", "singularName": "",
                              "namespaced": k.namespaced, "kind": kind,
                              "verbs": ["get", "patch", "update"]})  # fmt: skip
    if not resources:
        raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}  # fmt: skip


def _scale(obj: JsonDict) -> JsonDict:
    meta, spec, status = obj["metadata"], obj.get("spec"), obj.get("status")
    assert isinstance(meta, dict)
    spec = spec if isinstance(spec, dict) else {}
    status = status if isinstance(status, dict) else {}
    selector = spec.get("selector")
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "creationTimestamp") if k in meta},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0),
                   "selector": ",".join(f"{k}={v}" for k, v in (labels or {}).items())
                   if isinstance(labels, dict) else ""},
    }


def _uid(obj: JsonDict) -> Json:
    meta = obj.get("metadata")
    return meta.get("uid") if isinstance(meta, dict) else None


def _selector(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in text.split(","))):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if not op or "!" in key:
            raise ApiStatus(400, "BadRequest", f"selector term {term!r}: the fake server takes "
                            "equality terms only (key=value)")  # fmt: skip
        out[key.strip()] = value.strip()
    return out


def _json(body: bytes) -> JsonDict:
    try:
        obj = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiStatus(400, "BadRequest", f"the body is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ApiStatus(400, "BadRequest", "the body is not a JSON object")
    return obj


def _yaml(body: bytes) -> JsonDict:
    try:
        obj = yaml.safe_load(body or b"{}")
    except yaml.YAMLError as exc:
        raise ApiStatus(400, "BadRequest", f"the applied body is not YAML: {exc}") from None
    if not isinstance(obj, dict):
        raise ApiStatus(400, "BadRequest", "the applied body is not an object")
    return obj
