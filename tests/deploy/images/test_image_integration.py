"""The image for real: loopline build bakes a registered model, pushes the image by digest to
a local registry (Debian's docker-registry), records the digest in the model registry, and
podman runs what the registry holds; the server answers a V2 request on 127.0.0.1.

Needs buildah or podman (and runc), podman, docker-registry, and debootstrap or a cached base;
.ci/run installs them. Skipped, with the reason, when one is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# Building the first time takes minutes (the base image, then ~900 MB of layers).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TOOLS = ("podman", "runc", "docker-registry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, deadline: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {deadline} s")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not (shutil.which("buildah") or shutil.which("podman")):
        pytest.skip(f"the image test needs {', '.join(missing)} (apt-get install -y buildah podman "
                    "runc docker-registry debootstrap; .ci/run does)")  # fmt: skip
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "registry")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))  # fmt: skip
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/v2/"), 30, "the registry answering")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_built_image_pushed_by_digest_serves_its_baked_model(
    tmp_path: Path, local_registry: str
) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from loopline.artifacts import FsspecArtifactStore
    from loopline.bundle import infer_signature, save_model
    from loopline.metadata.entities import ArtifactState
    from loopline.metadata.urls import open_store
    from loopline.registry import ModelRegistry, model_images

    x, y = load_iris(return_X_y=True)
    bundle = save_model(LogisticRegression(max_iter=300).fit(x, y), tmp_path / "iris",
                        signature=infer_signature(x), input_example=x[:2])  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env |= {"LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
            "LOOPLINE_HOME": str(tmp_path / "home")}  # fmt: skip
    metadata = open_store(env["LOOPLINE_DB_URL"])
    artifacts = FsspecArtifactStore(env["LOOPLINE_ARTIFACT_ROOT"])
    uri = artifacts.allocate("Model", "iris/model")
    with artifacts.staging() as staged:
        shutil.copytree(bundle, staged, dirs_exist_ok=True)
        model_digest = artifacts.publish(staged, uri)
    art = metadata.put_artifact("Model", uri, digest=model_digest, state=ArtifactState.LIVE)
    registry = ModelRegistry(metadata, artifacts)
    registry.register("iris", art.id, who="test", why="image test")
    registry.set_alias("iris", "champion", 1, who="test", why="image test")

    tag = "localhost/loopline-test:it"
    build = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "build", "--tag", tag, "--model", "iris@champion",
         "--extras", "serve,sklearn", "--context", str(tmp_path / "ctx"),
         "--push", f"{local_registry}/ml"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-4000:]
    reference = build.stdout.strip().splitlines()[-1]
    repository, _, digest = reference.partition("@")
    assert repository == f"{local_registry}/ml/loopline-test"
    assert digest.startswith("sha256:")
    assert "STEP" in build.stderr  # the builder's progress was shown

    # The registry holds that manifest, and the model registry recorded that digest.
    request = urllib.request.Request(
        f"http://{local_registry}/v2/ml/loopline-test/manifests/{digest}", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Docker-Content-Digest"] == digest
    [image] = model_images(registry, "iris")
    assert (image.version, image.digest, image.reference, image.pushed) == (
        1, digest, reference, True)
    metadata.close()

    # podman runs what the registry holds (pulled by digest) with its own command: no
    # ENTRYPOINT is in the way, and it runs as the image's non-root user.
    subprocess.run(["podman", "pull", "--tls-verify=false", reference], check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    port = free_port()
    name = f"loopline-it-{port}"
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            ["podman", "--runtime", "runc", "run", "--rm", "--name", name, "--network", "host",
             "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000", reference,
             "loopline", "serve", "/models/iris", "--name", "iris", "--expected-digest",
             model_digest, "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/v2/health/ready") or
                 server.poll() is not None, 180, "the server in the container getting ready")
        assert server.poll() is None, log.read_text()[-4000:]
        body = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64",
                                       "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()  # fmt: skip
        infer = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/iris/infer",
                                       data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(infer, timeout=30) as answer:
            outputs = json.load(answer)["outputs"]
        predicted = {o["name"]: o["data"] for o in outputs}
        assert predicted["predict"] == [0]
        whoami = subprocess.run(["podman", "exec", name, "id", "-u"], capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        assert whoami.stdout.strip() == "65532"
    finally:
        subprocess.run(["podman", "stop", "--time", "10", name], capture_output=True,
                       timeout=120, check=False)  # fmt: skip
        server.wait(timeout=120)
        # The pulled copy goes; the built layers stay in storage as the next build's cache.
        subprocess.run(["podman", "rmi", reference], capture_output=True, timeout=120,
                       check=False)  # fmt: skip
