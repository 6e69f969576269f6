"""The stores at scale, end to end: a pipeline run with its metadata on PostgreSQL and its
artifacts on S3 (moto's server), then ``loopline serve iris@champion`` loads the pushed model
from S3 through the registry and answers a V2 request.

Needs ``LOOPLINE_TEST_DATABASE_URL`` (CI starts PostgreSQL with scripts/postgres.sh) and
moto's server (loopline[dev]); each is skipped with the reason when absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loopline.metadata import open_store
from loopline.testing.artifacts import wait_for
from loopline.testing.s3 import MotoS3Server

PG_ENV = "LOOPLINE_TEST_DATABASE_URL"
PIPELINE = Path(__file__).parent / "pipelines" / "iris_push.py"

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (start one with scripts/postgres.sh).")
    base = make_url(url).set(drivername="postgresql+psycopg")
    name = f"loopline_s3_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _env(tmp_path: Path, s3: dict[str, str], **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "AWS_"))}
    return {**env, **s3, "LOOPLINE_HOME": str(tmp_path / "home"), **settings}


def _loopline(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"loopline {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _predict(url: str, rows: list[list[float]]) -> list[int]:
    flat = [v for row in rows for v in row]
    tensor = {"name": "input", "shape": [len(rows), 4], "datatype": "FP64", "data": flat}
    body = {"inputs": [tensor]}
    request = urllib.request.Request(
        f"{url}/v2/models/iris/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        outputs = {o["name"]: o["data"] for o in json.load(answer)["outputs"]}
    return list(outputs["predict"])


def test_a_pipeline_on_postgresql_and_s3_pushes_a_model_that_serve_loads_from_s3(
    tmp_path: Path, postgres_url: str, moto_s3: MotoS3Server, s3_bucket: str
) -> None:
    root = f"s3://{s3_bucket}/loopline"
    secret = f"never-logged-{uuid.uuid4().hex}"  # moto takes any key; this one must not leak
    s3 = {**moto_s3.environ(), "AWS_SECRET_ACCESS_KEY": secret}
    env = _env(tmp_path, s3, LOOPLINE_DB_URL=postgres_url, LOOPLINE_ARTIFACT_ROOT=root)
    ran = _loopline(env, tmp_path, "run", str(PIPELINE), "--json")
    assert secret not in ran.stdout + ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded", run
    assert {s["name"] for s in run["steps"]} == {"ingest", "train", "judge", "Pusher"}

    # Every row is in PostgreSQL, every byte in the bucket; nothing was written locally.
    store = open_store(postgres_url)
    try:
        (champion,) = [a for a in store.list_model_aliases("iris") if a.alias == "champion"]
        (version,) = [v for v in store.list_model_versions("iris") if v.version == champion.version]
        model = store.get_artifact(version.artifact_id)
    finally:
        store.close()
    assert model.uri.startswith(f"{root}/Model/")
    fs = fsspec.filesystem("s3", endpoint_url=moto_s3.endpoint_url, key="testing",
                           secret="testing")  # fmt: skip
    keys = fs.find(model.uri[len("s3://") :])
    assert any(k.endswith("/_LOOPLINE_COMPLETE") for k in keys), keys
    assert not (tmp_path / "loopline_artifacts").exists()
    assert not (tmp_path / "loopline.db").exists()

    # The registry resolves iris@champion to that S3 artifact; serve downloads and verifies it.
    argv = [sys.executable, "-m", "loopline.cli", "serve", "iris@champion",
            "--host", "127.0.0.1", "--port", "0"]  # fmt: skip
    log = tmp_path / "serve.log"
    with open(log, "w") as sink, subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=sink, text=True
    ) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            assert "listening on" in line, log.read_text()[-4000:]
            url = line.split("listening on ")[1].split()[0]

            wait_for(lambda: _ready(url), timeout=120, what="the model server to be ready")
            assert _predict(url, [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]) == [0, 2]
            with urllib.request.urlopen(f"{url}/v2/models/iris", timeout=30) as meta:
                assert json.load(meta)["versions"] == [str(champion.version)]
        finally:
            server.terminate()
            server.wait(timeout=60)
    assert secret not in log.read_text()
