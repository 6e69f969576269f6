"""The Cluster conformance suite: against the fake API server always, against a real cluster
when KUBECONFIG reaches one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.deploy.engines.kubernetes.cluster import Cluster
from loopline.errors import LooplineError
from loopline.testing.kube import FakeApiServer
from loopline.testing.kube_contract import ClusterContract

pytest.importorskip("lightkube", reason="the k8s extra (lightkube) is not installed")

from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


class TestLightkubeOnTheFakeApiServer(ClusterContract):
    __test__ = True

    @pytest.fixture
    def cluster(self, fake_server: FakeApiServer, tmp_path: Path) -> Iterator[Cluster]:
        kubeconfig = fake_server.write_kubeconfig(tmp_path / "kubeconfig")
        with LightkubeCluster.from_kubeconfig(kubeconfig) as cluster:
            yield cluster


class TestLightkubeOnARealCluster(ClusterContract):
    __test__ = True

    @pytest.fixture
    def cluster(self) -> Iterator[Cluster]:
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            pytest.skip("KUBECONFIG is not set, so the Cluster conformance suite ran against "
                        "the fake API server only; set it to a test cluster to run it there too")
        try:
            cluster = LightkubeCluster.from_kubeconfig()
            cluster.list("v1", "Namespace", namespace=None)
        except LooplineError as exc:
            pytest.skip(f"KUBECONFIG={kubeconfig} does not reach a cluster ({exc}); the Cluster "
                        "conformance suite ran against the fake API server only")
        with cluster:
            yield cluster
