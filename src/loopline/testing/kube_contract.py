"""Conformance suite for :class:`~loopline.deploy.engines.kubernetes.cluster.Cluster`.

Every implementation passes it, against the fake API server (:mod:`loopline.testing.kube`)
in CI and against a real cluster when ``KUBECONFIG`` reaches one. Subclass it, set
``__test__ = True`` and provide a ``cluster`` fixture; the suite makes a namespace of its own
for each test (``loopline-conformance-…``) and deletes it afterwards.

The checks use objects no controller rewrites (ConfigMaps) where a real cluster's
controllers would add events or versions, and Deployments with the pause image where the
subresources and ``generation`` matter.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from loopline.deploy.engines.kubernetes.cluster import (
    FIELD_MANAGER,
    Cluster,
    EventType,
    ObjectRef,
    WatchEvent,
)
from loopline.errors import ConflictError, NotFoundError
from loopline.types import JsonDict

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def config_map(namespace: str, name: str = "settings", **data: str) -> JsonDict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "data": dict(data) or {"mode": "fast"}}  # fmt: skip


def deployment(namespace: str, name: str = "web", *, replicas: int = 0,
               min_ready_seconds: int = 0) -> JsonDict:  # fmt: skip
    labels: JsonDict = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready_seconds,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "main", "image": PAUSE_IMAGE}]}},
        },
    }  # fmt: skip


def at(obj: JsonDict, *path: str) -> Any:
    """``obj[path[0]][path[1]]…`` (tests read objects the cluster returned)."""
    node: Any = obj
    for part in path:
        node = node[part]
    return node


def managers(obj: JsonDict) -> dict[tuple[Any, Any], Any]:
    """``managedFields`` as {(manager, operation): fieldsV1}."""
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    entries = meta.get("managedFields") or []
    assert isinstance(entries, list)
    return {(e["manager"], e["operation"]): e.get("fieldsV1", {}) for e in entries
            if isinstance(e, dict)}  # fmt: skip


class ClusterContract:
    """The behaviour loopline relies on; see the module docstring."""

    __test__ = False

    @pytest.fixture
    def namespace(self, cluster: Cluster) -> Iterator[str]:
        name = f"loopline-conformance-{uuid.uuid4().hex[:8]}"
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        yield name
        cluster.delete(ObjectRef("v1", "Namespace", name))

    # ---- apply ---------------------------------------------------------------------------

    def test_apply_creates_an_object_owned_by_the_loopline_field_manager(
        self, cluster: Cluster, namespace: str
    ) -> None:
        obj = cluster.apply(config_map(namespace))
        assert obj["data"] == {"mode": "fast"}
        assert at(obj, "metadata", "uid")
        assert at(obj, "metadata", "resourceVersion")
        assert (FIELD_MANAGER, "Apply") in managers(obj)
        assert cluster.get(ObjectRef.of(obj))["data"] == {"mode": "fast"}

    def test_applying_the_same_object_again_changes_nothing(
        self, cluster: Cluster, namespace: str
    ) -> None:
        first = cluster.apply(config_map(namespace))
        again = cluster.apply(config_map(namespace))
        assert at(again, "metadata", "resourceVersion") == at(first, "metadata", "resourceVersion")

    def test_applying_without_a_field_the_manager_set_removes_it(
        self, cluster: Cluster, namespace: str
    ) -> None:
        cluster.apply(config_map(namespace, mode="fast", level="3"))
        obj = cluster.apply(config_map(namespace, mode="fast"))
        assert obj["data"] == {"mode": "fast"}

    def test_apply_conflicts_with_another_managers_change_unless_forced(
        self, cluster: Cluster, namespace: str
    ) -> None:
        cluster.apply(deployment(namespace, min_ready_seconds=0))
        ref = ObjectRef("apps/v1", "Deployment", "web", namespace)
        cluster.patch(ref, {"spec": {"minReadySeconds": 5}}, field_manager="someone-else")
        with pytest.raises(ConflictError, match="Deployment/web"):
            cluster.apply(deployment(namespace, min_ready_seconds=0), force=False)
        obj = cluster.apply(deployment(namespace, min_ready_seconds=0), force=True)
        assert at(obj, "spec", "minReadySeconds") == 0
        theirs = managers(obj).get(("someone-else", "Update"), {})
        assert "f:minReadySeconds" not in theirs.get("f:spec", {})

    # ---- get, list, patch, delete --------------------------------------------------------

    def test_get_of_a_missing_object_raises_not_found_naming_it(
        self, cluster: Cluster, namespace: str
    ) -> None:
        with pytest.raises(NotFoundError, match="ConfigMap/nothing"):
            cluster.get(ObjectRef("v1", "ConfigMap", "nothing", namespace))

    def test_list_selects_by_labels_and_gives_a_version_to_watch_from(
        self, cluster: Cluster, namespace: str
    ) -> None:
        cluster.apply(config_map(namespace, "a"))
        cluster.apply(config_map(namespace, "b"))
        found = cluster.list("v1", "ConfigMap", namespace=namespace, labels={"app": "b"})
        assert [at(o, "metadata", "name") for o in found.items] == ["b"]
        assert found.resource_version

    def test_merge_patch_changes_fields_and_null_removes_them(
        self, cluster: Cluster, namespace: str
    ) -> None:
        cluster.apply(config_map(namespace, mode="fast", level="3"))
        ref = ObjectRef("v1", "ConfigMap", "settings", namespace)
        obj = cluster.patch(ref, {"data": {"mode": "slow", "level": None}})
        assert obj["data"] == {"mode": "slow"}
        assert ("loopline-rollout", "Update") in managers(obj)

    def test_patch_of_a_missing_object_raises_not_found(
        self, cluster: Cluster, namespace: str
    ) -> None:
        with pytest.raises(NotFoundError, match="ConfigMap/nothing"):
            cluster.patch(ObjectRef("v1", "ConfigMap", "nothing", namespace), {"data": {}})

    def test_delete_removes_the_object_and_a_second_delete_raises_not_found(
        self, cluster: Cluster, namespace: str
    ) -> None:
        ref = ObjectRef.of(cluster.apply(config_map(namespace)))
        cluster.delete(ref)
        with pytest.raises(NotFoundError):
            cluster.get(ref)
        with pytest.raises(NotFoundError):
            cluster.delete(ref)

    # ---- generation and scale ------------------------------------------------------------

    def test_spec_changes_bump_the_generation_and_label_changes_do_not(
        self, cluster: Cluster, namespace: str
    ) -> None:
        first = cluster.apply(deployment(namespace))
        ref = ObjectRef.of(first)
        labelled = cluster.patch(ref, {"metadata": {"labels": {"team": "ml"}}})
        assert at(labelled, "metadata", "generation") == at(first, "metadata", "generation")
        changed = cluster.patch(ref, {"spec": {"minReadySeconds": 3}})
        assert at(changed, "metadata", "generation") == at(first, "metadata", "generation") + 1

    def test_the_scale_subresource_sets_and_reads_replicas(
        self, cluster: Cluster, namespace: str
    ) -> None:
        ref = ObjectRef.of(cluster.apply(deployment(namespace, replicas=0)))
        assert cluster.get_scale(ref) == 0
        assert cluster.scale(ref, 2) == 2
        obj = cluster.get(ref)
        assert at(obj, "spec", "replicas") == 2
        assert cluster.get_scale(ref) == 2

    # ---- watch ---------------------------------------------------------------------------

    def _changes(self, cluster: Cluster, namespace: str) -> None:
        ref = ObjectRef.of(cluster.apply(config_map(namespace, "watched")))
        cluster.patch(ref, {"data": {"mode": "slow"}})
        cluster.delete(ref)

    @staticmethod
    def _until_deleted(events: Iterator[WatchEvent], name: str) -> list[EventType]:
        seen = []
        for event in events:
            if at(event.object, "metadata", "name") == name:
                seen.append(event.type)
                if event.type is EventType.DELETED:
                    break
        return seen

    def test_a_watch_replays_added_modified_deleted_after_a_resource_version(
        self, cluster: Cluster, namespace: str
    ) -> None:
        since = cluster.list("v1", "ConfigMap", namespace=namespace).resource_version
        self._changes(cluster, namespace)
        events = cluster.watch("v1", "ConfigMap", namespace=namespace, resource_version=since,
                               timeout=30)  # fmt: skip
        assert self._until_deleted(events, "watched") == [
            EventType.ADDED, EventType.MODIFIED, EventType.DELETED]  # fmt: skip

    def test_a_watch_sees_changes_made_while_it_runs(
        self, cluster: Cluster, namespace: str
    ) -> None:
        since = cluster.list("v1", "ConfigMap", namespace=namespace).resource_version
        seen: list[EventType] = []
        events = cluster.watch("v1", "ConfigMap", namespace=namespace, resource_version=since,
                               timeout=30)  # fmt: skip
        watcher = threading.Thread(target=lambda: seen.extend(self._until_deleted(events,
                                                                                  "watched")))
        watcher.start()
        self._changes(cluster, namespace)
        watcher.join(timeout=60)
        assert not watcher.is_alive()
        assert seen == [EventType.ADDED, EventType.MODIFIED, EventType.DELETED]

    def test_a_watch_ends_at_its_timeout_when_nothing_changes(
        self, cluster: Cluster, namespace: str
    ) -> None:
        since = cluster.list("v1", "Secret", namespace=namespace).resource_version
        events = list(cluster.watch("v1", "Secret", namespace=namespace,
                                    resource_version=since, timeout=0.5))  # fmt: skip
        assert events == []
