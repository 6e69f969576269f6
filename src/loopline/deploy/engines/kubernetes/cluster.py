"""The narrow contract loopline needs from a Kubernetes API server: :class:`Cluster`.

Objects cross it as plain dicts (what :func:`~loopline.deploy.engines.kubernetes.render`
returns), named by :class:`ObjectRef`. Six verbs, nothing else:

- ``apply``: server-side apply (``application/apply-patch+yaml``) with a field manager —
  ``loopline`` for manifests (:data:`FIELD_MANAGER`), forced by default so loopline takes back
  the fields it renders; another manager's change to them is then overwritten, as
  ``kubectl apply --server-side --force-conflicts`` does;
- ``get`` and ``list`` (label selector, with the list's ``resourceVersion`` to watch from);
- ``patch``: a JSON merge patch (RFC 7386: ``None`` deletes), recorded under its manager —
  rollout verbs use ``loopline-rollout`` (:data:`ROLLOUT_FIELD_MANAGER`), so
  ``managedFields`` say which changes were a rollout's;
- ``delete``;
- ``watch``: the events after a ``resourceVersion``, for at most ``timeout`` seconds (never
  an unbounded wait);
- ``scale`` / ``get_scale``: the ``/scale`` subresource.

Failures are loopline errors: a missing object :class:`~loopline.errors.NotFoundError`, a
conflict (field ownership, an expired ``resourceVersion``)
:class:`~loopline.errors.ConflictError`, an object the server refuses
:class:`~loopline.errors.InvalidDefinitionError`, anything else
:class:`~loopline.errors.BackendError`. Implementations: :mod:`.cluster_lightkube` (the
``k8s`` extra); ``loopline.testing.kube`` serves a fake API server, and
``loopline.testing.kube_contract`` is the suite every implementation passes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum

from loopline.errors import InvalidDefinitionError
from loopline.types import Json, JsonDict

FIELD_MANAGER = "loopline"
"""The field manager of everything ``loopline apply --engine kubernetes`` applies."""
ROLLOUT_FIELD_MANAGER = "loopline-rollout"
"""The field manager of rollout verbs' patches (weights, replicas, pause)."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object: ``apiVersion`` (``apps/v1``), ``kind``, name and namespace (None for
    cluster-scoped kinds such as Namespace)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Json]) -> ObjectRef:
        """The reference of a manifest. Raises InvalidDefinitionError naming what is missing."""
        meta = obj.get("metadata")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        name = meta.get("name") if isinstance(meta, dict) else None
        namespace = meta.get("namespace") if isinstance(meta, dict) else None
        for field, value in (("apiVersion", api_version), ("kind", kind),
                             ("metadata.name", name)):  # fmt: skip
            if not isinstance(value, str) or not value:
                raise InvalidDefinitionError(
                    f"A Kubernetes object needs a string {field}; got {value!r} in an object "
                    f"of kind {kind!r}."
                )
        assert isinstance(api_version, str) and isinstance(kind, str) and isinstance(name, str)
        if namespace is not None and not isinstance(namespace, str):
            raise InvalidDefinitionError(
                f"{kind}/{name}: metadata.namespace must be a string, not {namespace!r}."
            )
        return cls(api_version, kind, name, namespace)

    def __str__(self) -> str:
        where = f" in namespace {self.namespace!r}" if self.namespace else ""
        return f"{self.kind}/{self.name}{where}"


class EventType(Enum):
    """What a watch event says happened."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change: the object as it is after it (as it was, for DELETED)."""

    type: EventType
    object: JsonDict

    @property
    def resource_version(self) -> str:
        meta = self.object.get("metadata")
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        return version if isinstance(version, str) else ""


@dataclass(frozen=True, slots=True)
class ObjectList:
    """The objects of one kind and the ``resourceVersion`` to watch for what comes after."""

    items: tuple[JsonDict, ...]
    resource_version: str


class Cluster(ABC):
    """A Kubernetes API server, as loopline uses it (see the module docstring)."""

    @abstractmethod
    def apply(
        self, obj: JsonDict, *, field_manager: str = FIELD_MANAGER, force: bool = True
    ) -> JsonDict:
        """Server-side apply ``obj`` (created when missing); returns the object as stored.

        Raises:
            ConflictError: ``force`` is False and another manager owns a field ``obj`` sets
                to another value.
            InvalidDefinitionError: the server refuses the object.
        """

    @abstractmethod
    def get(self, ref: ObjectRef) -> JsonDict:
        """The object. Raises NotFoundError when it does not exist."""

    @abstractmethod
    def list(
        self, api_version: str, kind: str, *, namespace: str | None,
        labels: Mapping[str, str] | None = None,
    ) -> ObjectList:  # fmt: skip
        """The objects of ``kind`` in ``namespace`` whose labels include ``labels``."""

    @abstractmethod
    def patch(
        self, ref: ObjectRef, patch: JsonDict, *, field_manager: str = ROLLOUT_FIELD_MANAGER
    ) -> JsonDict:
        """Apply a JSON merge patch; returns the object. Raises NotFoundError when missing."""

    @abstractmethod
    def delete(self, ref: ObjectRef) -> None:
        """Delete the object. Raises NotFoundError when it does not exist."""

    @abstractmethod
    def watch(
        self, api_version: str, kind: str, *, namespace: str | None, resource_version: str,
        timeout: float,
    ) -> Iterator[WatchEvent]:  # fmt: skip
        """The changes to ``kind`` after ``resource_version``, as they happen, until
        ``timeout`` seconds have passed (the iterator then ends).

        Raises:
            ConflictError: ``resource_version`` is too old (410 Gone): list again.
        """

    @abstractmethod
    def get_scale(self, ref: ObjectRef) -> int:
        """``spec.replicas`` through the ``/scale`` subresource."""

    @abstractmethod
    def scale(
        self, ref: ObjectRef, replicas: int, *, field_manager: str = ROLLOUT_FIELD_MANAGER
    ) -> int:
        """Set ``spec.replicas`` through the ``/scale`` subresource; returns it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (default: nothing to release)."""

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
