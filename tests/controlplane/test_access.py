"""Who may talk to the control plane: the ``Host`` allow-list (DNS rebinding) and the token.

A page on ``http://attacker.example:PORT`` whose name is re-pointed at 127.0.0.1 reaches
the control plane from a loopback client, but its requests carry ``Host:
attacker.example:PORT``; they are refused before any route runs (issue #11).
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from tests.controlplane.conftest import TOKEN, FakeCluster

from loopline.controlplane.access import host_name
from loopline.controlplane.api import create_app
from loopline.controlplane.client import ControlPlaneClient
from loopline.errors import ConfigurationError

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_rebound_page_cannot_read_through_a_loopback_connection(
    fake_cluster: FakeCluster,
) -> None:
    for path in ("/v1/deployments", "/v1/replicas", "/healthz"):
        r = httpx.get(fake_cluster.url + path, headers={"Host": "attacker.example:7471"})
        assert r.status_code == 421
        body = r.json()
        assert body["reason"] == "MisdirectedRequest"
        assert "'attacker.example:7471'" in body["error"]
        assert "LOOPLINE_CONTROLPLANE_HOSTS" in body["error"]


def test_a_bad_host_is_refused_even_with_the_token(fake_cluster: FakeCluster) -> None:
    r = httpx.get(
        fake_cluster.url + "/v1/deployments", headers={"Host": "attacker.example", **AUTH}
    )
    assert r.status_code == 421


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:7471", "localhost", "LOCALHOST:80", "[::1]", "[::1]:7471"],
)
def test_loopback_hosts_read_without_a_token(fake_cluster: FakeCluster, host: str) -> None:
    r = httpx.get(fake_cluster.url + "/v1/deployments", headers={"Host": host})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1.attacker.example", "localhost.attacker.example", "attacker.example#@localhost",
     "localhost:http", "localhost:", "local host", "[::1", "::1", "127.0.0.1.", "localhost."],
)  # fmt: skip
def test_look_alike_hosts_are_refused(fake_cluster: FakeCluster, host: str) -> None:
    r = httpx.get(fake_cluster.url + "/v1/deployments", headers={"Host": host})
    assert r.status_code == 421, host


def test_a_request_without_a_host_is_refused(fake_cluster: FakeCluster) -> None:
    port = int(fake_cluster.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /v1/deployments HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 421 "), reply[:100]
    assert b"carries no Host header" in reply


def _remote_get(app: object, host: str, headers: dict[str, str]) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
            return await c.get("/v1/deployments", headers=headers)

    return asyncio.run(get())


def test_a_configured_name_is_allowed_but_its_reads_need_the_token(
    fake_cluster: FakeCluster,
) -> None:
    app = create_app(fake_cluster.service, token=TOKEN, allowed_hosts=("cp.internal",))
    assert _remote_get(app, "cp.internal:7471", {}).status_code == 401
    assert _remote_get(app, "cp.internal:7471", AUTH).status_code == 200
    assert _remote_get(app, "other.internal", AUTH).status_code == 421


def test_a_loopback_host_from_a_remote_client_still_needs_the_token(
    fake_cluster: FakeCluster,
) -> None:
    app = create_app(fake_cluster.service, token=TOKEN)
    assert _remote_get(app, "127.0.0.1:7471", {}).status_code == 401
    assert _remote_get(app, "127.0.0.1:7471", AUTH).status_code == 200


def test_a_non_loopback_host_from_a_loopback_client_needs_the_token_for_reads(
    fake_cluster: FakeCluster,
) -> None:
    app = create_app(fake_cluster.service, token=TOKEN, allowed_hosts=("cp.internal",))

    async def get(headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cp.internal") as c:
            return await c.get("/v1/deployments", headers=headers)

    denied = asyncio.run(get({}))
    assert denied.status_code == 401
    assert "reads through a Host other than 127.0.0.1/localhost" in denied.json()["error"]
    assert asyncio.run(get(AUTH)).status_code == 200


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:80", "127.0.0.1"), ("[::1]:8", "::1"), ("LocalHost", "localhost"),
     ("cp.internal", "cp.internal"), ("a:b", None), ("[::1]x", None), ("", None),
     ("é.example", None), ("x:99999999", None)],
)  # fmt: skip
def test_the_host_header_is_parsed_strictly(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_the_client_says_which_setting_to_change_on_a_421(fake_cluster: FakeCluster) -> None:
    port = fake_cluster.url.rsplit(":", 1)[1]
    transport = httpx.HTTPTransport()
    with ControlPlaneClient(f"http://127.0.0.1:{port}", token=TOKEN) as client:
        client._http = httpx.Client(
            base_url=client.url, transport=transport, headers={"Host": "cp.internal", **AUTH}
        )
        with pytest.raises(ConfigurationError, match="LOOPLINE_CONTROLPLANE_HOSTS"):
            client.list_deployments()
