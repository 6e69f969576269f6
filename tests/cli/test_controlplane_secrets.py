"""The database password never reaches a terminal or controlplane.log, and the control-plane
token never crosses a network in clear text (issue #11)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from loopline.cli.controlplane import started_message
from loopline.controlplane.client import ControlPlaneClient, check_token_transport
from loopline.errors import ConfigurationError
from loopline.settings import Settings, redact_url

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql://loop:{SECRET}@db:5432/meta", "postgresql://loop:***@db:5432/meta"),
        (f"postgresql+psycopg://loop:{SECRET}@db/meta?sslmode=require&password={SECRET}",
         "postgresql+psycopg://loop:***@db/meta?sslmode=require&password=***"),
        (f"postgresql://loop:a@{SECRET}@db/meta", "postgresql://loop:***@db/meta"),
        ("postgresql://loop@db/meta", "postgresql://loop@db/meta"),
        ("sqlite:////var/lib/loopline.db", "sqlite:////var/lib/loopline.db"),
    ],
)  # fmt: skip
def test_redact_url_hides_passwords_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_started_line_and_the_settings_repr_hide_the_password() -> None:
    settings = Settings.from_env({"LOOPLINE_DB_URL": f"postgresql://loop:{SECRET}@db/meta"})
    line = started_message("http://127.0.0.1:7471", settings)
    assert SECRET not in line
    assert "postgresql://loop:***@db/meta" in line
    assert SECRET not in repr(settings)


def test_a_control_plane_that_cannot_reach_its_database_does_not_print_the_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env["LOOPLINE_DB_URL"] = f"postgresql://loop:{SECRET}@127.0.0.1:{port}/meta"
    env["LOOPLINE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "controlplane"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert SECRET not in proc.stdout + proc.stderr
    assert "loop:***@127.0.0.1" in proc.stderr


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3:7471", "http://cp.example.com", "cp.example.com:7471",
            "http://127.0.0.1.nip.io:7471"],
)  # fmt: skip
def test_the_token_is_never_sent_over_plain_http_to_another_host(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"LOOPLINE_CONTROLPLANE_URL=.* clear text"):
        ControlPlaneClient(url, token="t0ken")


@pytest.mark.parametrize(
    "url", ["https://cp.example.com", "http://127.0.0.1:7471", "http://localhost:1",
            "http://[::1]:7471", "HTTPS://CP.example.com"],
)  # fmt: skip
def test_https_and_loopback_urls_may_carry_the_token(url: str) -> None:
    check_token_transport(url)


def test_without_a_token_any_url_may_be_read() -> None:
    ControlPlaneClient("http://10.1.2.3:7471", token=None).close()


def test_the_cli_refuses_a_plain_http_control_plane_url_naming_the_setting(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    (home / "controlplane").mkdir(parents=True, mode=0o700)
    token = home / "controlplane" / "token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env.update(LOOPLINE_HOME=str(home), LOOPLINE_CONTROLPLANE_URL="http://192.0.2.1:7471",
               COLUMNS="300")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "get", "deployments"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "LOOPLINE_CONTROLPLANE_URL='http://192.0.2.1:7471'" in proc.stderr
    assert "clear text" in proc.stderr
