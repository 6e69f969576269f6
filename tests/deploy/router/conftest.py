"""Fixtures for the router tests (helpers: ``tests.deploy.router.helpers``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.deploy.router.helpers import PreviewRouterThread, RawClient

from loopline.deploy.router.proxy import Router


@pytest.fixture
def raw_client() -> Iterator[Callable[[int], RawClient]]:
    clients: list[RawClient] = []

    def connect(port: int) -> RawClient:
        clients.append(RawClient(port))
        return clients[-1]

    yield connect
    for c in clients:
        c.close()


@pytest.fixture
def preview_router() -> Iterator[Callable[..., PreviewRouterThread]]:
    threads: list[PreviewRouterThread] = []

    def start(**kw: Any) -> PreviewRouterThread:
        rt = PreviewRouterThread(Router("web", **kw))
        rt.start()
        threads.append(rt)
        return rt

    yield start
    for rt in threads:
        rt.stop()
