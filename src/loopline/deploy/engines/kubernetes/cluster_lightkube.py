""":class:`~loopline.deploy.engines.kubernetes.cluster.Cluster` over lightkube (the ``k8s`` extra).

lightkube is typed, small (about 14 MiB with its models) and does server-side apply; it is
imported here only, so ``loopline render`` and the local engine never need it. Manifests stay
plain dicts at the protocol: they are read into lightkube's models for each call (built-in
kinds from ``lightkube.resources``, the Gateway API HTTPRoute as a generic resource) and
returned as dicts.

A watch runs lightkube's watch on a client of its own in a thread, with the server-side
``timeoutSeconds`` set to the caller's bound; the iterator ends at the bound even when no
event comes, and closes that client.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from loopline.deploy.engines.kubernetes.cluster import (
    FIELD_MANAGER,
    ROLLOUT_FIELD_MANAGER,
    Cluster,
    EventType,
    ObjectList,
    ObjectRef,
    WatchEvent,
)
from loopline.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    InvalidDefinitionError,
    NotFoundError,
    require,
)
from loopline.types import JsonDict

_GENERIC = {("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes"}
_END = object()


class LightkubeCluster(Cluster):
    """A cluster reached through a kubeconfig context (or from inside a pod)."""

    def __init__(self, config: Any, *, namespace: str | None = None) -> None:
        require("lightkube", "k8s", "The Kubernetes engine")
        import lightkube

        self._config = config
        self._client = lightkube.Client(config, namespace=namespace, field_manager=FIELD_MANAGER)
        self.namespace: str = self._client.namespace

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path | None = None, *, context: str | None = None,
        namespace: str | None = None,
    ) -> LightkubeCluster:  # fmt: skip
        """The cluster of ``context`` (default: the current one) in the kubeconfig at ``path``
        (default: ``KUBECONFIG``, then ``~/.kube/config``, then the in-cluster service account).

        Raises:
            ConfigurationError: no kubeconfig, or no such context; the message says which.
        """
        require("lightkube", "k8s", "The Kubernetes engine")
        from lightkube import ConfigError, KubeConfig

        from loopline.errors import ConfigurationError

        try:
            config = KubeConfig.from_file(path) if path is not None else KubeConfig.from_env()
            single = config.get(context_name=context)
        except (ConfigError, OSError) as exc:
            where = f"kubeconfig {str(path)!r}" if path is not None else "the kubeconfig"
            raise ConfigurationError(
                f"Cannot use {where}{f' context {context!r}' if context else ''}: {exc}. Pass "
                "--context NAME of a context in it, or set KUBECONFIG."
            ) from None
        return cls(single, namespace=namespace)

    @classmethod
    def in_cluster(
        cls, service_account: str | Path = "/var/run/secrets/kubernetes.io/serviceaccount", *,
        namespace: str | None = None,
    ) -> LightkubeCluster:  # fmt: skip
        """The cluster this pod runs in, as its service account: the token, CA and namespace
        under ``service_account`` and ``KUBERNETES_SERVICE_HOST``/``_PORT`` (lightkube's
        ``KubeConfig.from_service_account``).

        Raises:
            ConfigurationError: the service account's files are missing (no token mounted:
                ``automountServiceAccountToken`` is false, or this is not a pod).
        """
        require("lightkube", "k8s", "The Kubernetes engine")
        from lightkube import ConfigError, KubeConfig

        from loopline.errors import ConfigurationError

        try:
            config = KubeConfig.from_service_account(service_account)
        except (ConfigError, KeyError) as exc:
            raise ConfigurationError(
                f"Cannot use the in-cluster service account at {str(service_account)!r}: "
                f"{exc}. Mount its token (automountServiceAccountToken: true), or unset "
                "KUBERNETES_SERVICE_HOST to use KUBECONFIG."
            ) from None
        return cls(config.get(), namespace=namespace)

    def close(self) -> None:
        self._client.close()

    # ---- verbs -----------------------------------------------------------------------------

    def apply(self, obj: JsonDict, *, field_manager: str = FIELD_MANAGER,
              force: bool = True) -> JsonDict:  # fmt: skip
        ref = ObjectRef.of(obj)
        model = _model(ref.api_version, ref.kind).from_dict(obj)
        with _errors(ref):
            out = self._client.apply(model, field_manager=field_manager, force=force)
        return _dict(out)

    def get(self, ref: ObjectRef) -> JsonDict:
        with _errors(ref):
            return _dict(self._client.get(_model(ref.api_version, ref.kind), ref.name,
                                          namespace=ref.namespace))  # fmt: skip

    def list(self, api_version: str, kind: str, *, namespace: str | None,
             labels: Mapping[str, str] | None = None) -> ObjectList:  # fmt: skip
        model = _model(api_version, kind)
        with _errors(ObjectRef(api_version, kind, "*", namespace)):
            found = self._client.list(model, namespace=namespace or "",  # "" = all namespaces
                                      labels=dict(labels) if labels else None)  # fmt: skip
            items = tuple(_dict(o) for o in found)
            version = found.resourceVersion  # known once iterated, even when empty
        return ObjectList(items, version)

    def patch(self, ref: ObjectRef, patch: JsonDict, *,
              field_manager: str = ROLLOUT_FIELD_MANAGER) -> JsonDict:  # fmt: skip
        from lightkube.types import PatchType

        with _errors(ref):
            out = self._client.patch(_model(ref.api_version, ref.kind), ref.name, patch,
                                     namespace=ref.namespace, patch_type=PatchType.MERGE,
                                     field_manager=field_manager)  # fmt: skip
        return _dict(out)

    def delete(self, ref: ObjectRef) -> None:
        with _errors(ref):
            self._client.delete(_model(ref.api_version, ref.kind), ref.name,
                                namespace=ref.namespace)  # fmt: skip

    def get_scale(self, ref: ObjectRef) -> int:
        with _errors(ref):
            scale = self._client.get(_scale_model(ref), ref.name, namespace=ref.namespace)
        return int(scale.spec.replicas or 0)

    def scale(self, ref: ObjectRef, replicas: int, *,
              field_manager: str = ROLLOUT_FIELD_MANAGER) -> int:  # fmt: skip
        from lightkube.types import PatchType

        with _errors(ref):
            scale = self._client.patch(_scale_model(ref), ref.name,
                                       {"spec": {"replicas": replicas}},
                                       namespace=ref.namespace, patch_type=PatchType.MERGE,
                                       field_manager=field_manager)  # fmt: skip
        return int(scale.spec.replicas or 0)

    def watch(self, api_version: str, kind: str, *, namespace: str | None,
              resource_version: str, timeout: float) -> Iterator[WatchEvent]:  # fmt: skip
        import lightkube

        model = _model(api_version, kind)
        client = lightkube.Client(self._config, field_manager=FIELD_MANAGER)
        events: queue.Queue[object] = queue.Queue()
        deadline = time.monotonic() + timeout

        def pump() -> None:
            try:
                stream = client.watch(model, namespace=namespace or "",
                                      resource_version=resource_version or None,
                                      server_timeout=max(1, math.ceil(timeout)))  # fmt: skip
                for kind_of, obj in stream:
                    events.put((kind_of, _dict(obj)))
                    if time.monotonic() >= deadline:
                        break
            except Exception as exc:
                events.put(exc)
            events.put(_END)

        threading.Thread(target=pump, daemon=True, name=f"watch-{kind}").start()
        try:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = events.get(timeout=left)
                except queue.Empty:
                    return
                if item is _END:
                    return
                if isinstance(item, Exception):
                    with _errors(ObjectRef(api_version, kind, "*", namespace)):
                        raise item
                assert isinstance(item, tuple)
                kind_of, obj = item
                if kind_of in EventType.__members__:
                    yield WatchEvent(EventType(kind_of), obj)
        finally:
            client.close()


class _errors:
    """lightkube and HTTP errors as loopline's, naming the object."""

    def __init__(self, ref: ObjectRef) -> None:
        self.ref = ref

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:  # fmt: skip
        if exc is None:
            return
        from lightkube import ApiError

        if isinstance(exc, ApiError):
            code, message = exc.status.code, exc.status.message or str(exc)
            if code == 404:
                raise NotFoundError(f"{self.ref} does not exist ({message}).") from None
            if code == 409 and exc.status.reason == "AlreadyExists":
                raise AlreadyExistsError(f"{self.ref} already exists ({message}).") from None
            if code in (409, 410):
                raise ConflictError(
                    f"{self.ref}: {message}. Read it again and retry (or apply with force)."
                ) from None
            if code in (400, 422):
                raise InvalidDefinitionError(f"The cluster refused {self.ref}: {message}") from None
            raise BackendError(f"The cluster answered {code} for {self.ref}: {message}") from None
        if isinstance(exc, OSError | ConnectionError) or type(exc).__module__.startswith(
            ("httpx", "httpcore")
        ):
            raise BackendError(f"Cannot reach the cluster for {self.ref}: {exc}") from None


def _model(api_version: str, kind: str) -> Any:
    from lightkube.core.exceptions import LoadResourceError
    from lightkube.core.resource_registry import resource_registry
    from lightkube.generic_resource import create_namespaced_resource, get_generic_resource

    plural = _GENERIC.get((api_version, kind))
    if plural is not None:
        found = get_generic_resource(api_version, kind)  # type: ignore[no-untyped-call]
        if found is not None:
            return found
        group, _, version = api_version.partition("/")
        return create_namespaced_resource(group, version, kind, plural)
    try:
        return resource_registry.load(api_version, kind)
    except (LoadResourceError, ImportError):
        raise InvalidDefinitionError(
            f"Kind {kind!r} of apiVersion {api_version!r} is not one the Kubernetes engine "
            "knows; loopline applies the objects loopline render prints."
        ) from None


def _scale_model(ref: ObjectRef) -> Any:
    scale = getattr(_model(ref.api_version, ref.kind), "Scale", None)
    if scale is None:
        raise InvalidDefinitionError(f"{ref.kind} has no scale subresource; scale a Deployment.")
    return scale


def _dict(obj: Any) -> JsonDict:
    out = obj.to_dict()
    assert isinstance(out, dict)
    return out
