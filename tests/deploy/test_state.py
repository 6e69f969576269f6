from __future__ import annotations

import pytest

from loopline.deploy.state import DeploymentStateStore, InMemoryDeploymentStateStore
from loopline.testing.deploy import DeploymentStateStoreContract


class TestInMemoryStateStore(DeploymentStateStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self) -> DeploymentStateStore:
        return InMemoryDeploymentStateStore()
