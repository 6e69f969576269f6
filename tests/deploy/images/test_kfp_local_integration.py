"""Parity: the compiled quickstart run by Kubeflow Pipelines' own local runner
(``kfp.local.DockerRunner``) in the session's loopline image, through podman's
Docker-compatible API, gives the same artifacts as ``loopline run`` of the same file.

podman's API runs as a child process (``podman system service --time=0 unix://…``, stopped
by its pid) with a containers.conf that makes it work on this kind of host: runtime runc
(crun fails on hybrid cgroups), ulimits at or below the hard limits, no network
(docs/kubeflow.md). kfp.local mounts its pipeline root into each container at the same path;
the image's user (uid 65532) writes the outputs there.

Compared, per step and output: the same files, the same properties, and the same content
digest where the step is deterministic — the iris data set, both halves of the seeded
split and the comparison report. The two models are skops zips whose entries carry the time
they were written and names made of object ids, so their digests differ run to run (also
between two local runs); for them the arrays inside are compared, and the report computed
from them (same accuracies) has the same digest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.deploy.images.image_session import BuiltImage, loopline, store_env, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
netns = "none"

[engine]
runtime = "runc"
"""
DETERMINISTIC = {("ingest", "data"), ("split", "train"), ("split", "test"),
                 ("compare", "report")}  # fmt: skip
MODELS = {("train_logreg", "model"), ("train_tree", "model")}
RUN_KFP = """\
import sys
from kfp import components, local
local.init(runner=local.DockerRunner(), pipeline_root=sys.argv[2])
components.load_component_from_file(sys.argv[1])()
"""


def _pings(sock: Path) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=f"unix://{sock}", timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # the socket is not there yet, or does not answer yet
        return False


@pytest.fixture(scope="module")
def podman_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """podman's Docker-compatible API on a unix socket, as a child process."""
    pytest.importorskip("docker", reason="the docker SDK (dev extra) is not installed")
    root = tmp_path_factory.mktemp("podman")
    conf = root / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    sock = root / "podman.sock"
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    log = (root / "service.log").open("w")
    proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(lambda: _pings(sock) or proc.poll() is not None, 60, "podman's API answering")
        assert proc.poll() is None, (root / "service.log").read_text()[-3000:]
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def _files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _arrays(zip_path: Path) -> list[bytes]:
    with zipfile.ZipFile(zip_path) as z:
        return sorted(z.read(n) for n in z.namelist() if n.endswith(".npy"))


def test_the_compiled_quickstart_on_kfp_local_docker_runner_equals_loopline_run(
    loopline_image: BuiltImage, podman_socket: Path, tmp_path: Path
) -> None:
    pytest.importorskip("kfp.local", reason="kfp (dev extra) is not installed")
    from loopline.artifacts import FsspecArtifactStore
    from loopline.artifacts.digest import tree_digest
    from loopline.metadata.urls import open_store

    pipeline_file = loopline_image.project / "quickstart" / "pipeline.py"
    env = store_env(tmp_path / "local")
    ir = tmp_path / "quickstart.yaml"
    loopline("compile", str(pipeline_file), "--app", str(loopline_image.project), "--image",
             loopline_image.tag, "-o", str(ir), env=env, cwd=tmp_path)  # fmt: skip

    # kfp.local: the pipeline root must be writable by the image's user.
    kfp_root = Path(tempfile.mkdtemp(prefix="kfp-root-", dir=tmp_path))
    kfp_root.chmod(0o777)
    kfp = subprocess.run(
        [sys.executable, "-c", RUN_KFP, str(ir), str(kfp_root)],
        env={**env, "DOCKER_HOST": f"unix://{podman_socket}"}, cwd=tmp_path,
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    shown = (kfp.stdout + kfp.stderr)[-6000:]
    assert kfp.returncode == 0, shown
    assert "Pipeline 'quickstart' finished with status SUCCESS" in _plain(kfp.stdout), shown
    [run_dir] = kfp_root.iterdir()

    # The local runner, same file.
    local = json.loads(loopline("run", str(pipeline_file), "--json", env=env, cwd=tmp_path))
    assert local["status"] == "succeeded"
    metadata = open_store(env["LOOPLINE_DB_URL"])
    store = FsspecArtifactStore(env["LOOPLINE_ARTIFACT_ROOT"])
    compared: set[tuple[str, str]] = set()
    try:
        for step in local["steps"]:
            task = step["name"].replace("_", "-")
            output = json.loads((run_dir / task / "executor_output.json").read_text())
            for port, artifact_id in step["outputs"].items():
                mine = metadata.get_artifact(artifact_id)
                [theirs] = output["artifacts"][port]["artifacts"]
                kfp_dir = Path(theirs["uri"])
                meta = theirs["metadata"]
                where = f"{step['name']}.{port}"
                assert kfp_dir.is_relative_to(run_dir), where
                assert meta["loopline.type"] == mine.type_name, where
                assert meta["loopline.digest"] == tree_digest(kfp_dir), where
                props = {k: v for k, v in meta.items() if not k.startswith("loopline.")}
                assert props == {k: mine.properties.get(k) for k in props}, where
                with store.open_local(mine.uri) as local_dir:
                    assert _files(kfp_dir) == _files(local_dir), where
                    if (step["name"], port) in DETERMINISTIC:
                        assert meta["loopline.digest"] == mine.digest, where
                    else:
                        assert (step["name"], port) in MODELS, where
                        for name in _files(kfp_dir):
                            assert _arrays(kfp_dir / name) == _arrays(local_dir / name), where
                compared.add((step["name"], port))
    finally:
        metadata.close()
    assert compared == DETERMINISTIC | MODELS


def _plain(text: str) -> str:
    """kfp.local's log without its ANSI colours."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
