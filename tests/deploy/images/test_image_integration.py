"""The taxi example from ``loopline compile`` and ``loopline build`` to manifests that validate
and an image that serves, for real: the session's image (conftest.py: the taxi pipeline run
here registers taxi/1, ``loopline build --model taxi@champion --app … --push`` bakes it)
is pushed by digest to a local registry (Debian's docker-registry) and recorded in the model
registry; the taxi pipeline compiles against that image reference and its first task runs in
the image from the IR's command and an ExecutorInput; ``loopline render``
writes manifests for it that validate; podman pulls what the registry holds and runs the
rendered Deployment's own container (command, args, env, user, read-only root, emptyDirs)
and it answers a V2 request on 127.0.0.1.

Needs buildah or podman (and runc), podman, docker-registry, and debootstrap or a cached base;
.ci/run installs them. Skipped, with the reason, when one is missing.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy.images.image_session import BuiltImage, answers, free_port, loopline, wait_for

# Building the first time takes minutes (the base image, then ~900 MB of layers).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TRIP = {"distance": ("FP64", [1.2, 14.8]), "company": ("BYTES", ["Flash Cab", "other"]),
        "local": ("BYTES", ["no", "yes"]), "dow": ("BYTES", ["Fri", "Mon"]),
        "month": ("BYTES", ["Mar", "Jan"]), "hour": ("INT64", [17, 3])}  # fmt: skip


def _podman_args(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """``podman run`` options that give the container what its pod spec gives it: the user,
    a read-only root file system with the emptyDir volumes writable, no capabilities, the
    environment."""
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    args = ["--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for mount in container.get("volumeMounts", []):
        assert mount["name"] in empty, f"volume {mount['name']!r} is not an emptyDir"
        args += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777"]
    for cap in security.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", cap]
    for var in container.get("env", []):
        args += ["--env", f"{var['name']}={var['value']}"]
    return args


def _run_task_in_image(ir: dict[str, Any], task: str, image: str, out: Path) -> dict[str, Any]:
    """Run one compiled task in ``image`` as KFP would: the executor's command and args with
    the ExecutorInput (``{{$}}``) built from the task's constants; outputs go to ``out``."""
    spec = ir["root"]["dag"]["tasks"][task]
    comp = ir["components"][spec["componentRef"]["name"]]
    container = ir["deploymentSpec"]["executors"][comp["executorLabel"]]["container"]
    out.mkdir()
    out.chmod(0o777)  # the image's user writes here
    executor_input = {
        "inputs": {"parameterValues": {
            k: v["runtimeValue"]["constant"]
            for k, v in spec.get("inputs", {}).get("parameters", {}).items() if "runtimeValue" in v
        }},
        "outputs": {"outputFile": str(out / "executor_output.json"), "artifacts": {
            port: {"artifacts": [{"name": port, "type": d["artifactType"], "uri": str(out / port)}]}
            for port, d in comp["outputDefinitions"]["artifacts"].items()
        }},
    }  # fmt: skip
    args = [a.replace("{{$}}", json.dumps(executor_input)).replace("{{$.pipeline_job_name}}",
                                                                   "taxi-it")
            for a in [*container["command"], *container["args"]]]  # fmt: skip
    proc = subprocess.run(
        ["podman", "--runtime", "runc", "run", "--rm", "--network", "none",
         "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000",
         "-v", f"{out}:{out}", image, *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads((out / "executor_output.json").read_text())
    return result


def test_the_taxi_example_compiles_builds_and_serves_from_manifests_that_validate(
    loopline_image: BuiltImage, tmp_path: Path
) -> None:
    from loopline.deploy.engines.kubernetes import validate
    from loopline.metadata.urls import open_store
    from loopline.registry import ModelRegistry, model_images

    image, env = loopline_image, loopline_image.env
    repository, _, digest = image.reference.partition("@")
    assert repository == f"{image.registry}/ml/loopline-test"
    assert digest.startswith("sha256:")
    assert "STEP" in image.build_log  # the builder's progress was shown

    # The registry holds that manifest, and the model registry recorded that digest.
    request = urllib.request.Request(
        f"http://{image.registry}/v2/ml/loopline-test/manifests/{digest}", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Docker-Content-Digest"] == digest
    metadata = open_store(env["LOOPLINE_DB_URL"])
    try:
        from loopline.artifacts import FsspecArtifactStore

        registry = ModelRegistry(metadata, FsspecArtifactStore(env["LOOPLINE_ARTIFACT_ROOT"]))
        [record] = model_images(registry, "taxi")
        assert (record.version, record.digest, record.reference, record.pushed) == (
            1, digest, image.reference, True)
        model_digest = registry.resolve("taxi@champion").artifact.digest
    finally:
        metadata.close()

    # The taxi pipeline compiles against the pushed image (its paths inside the image's /app).
    ir_file = tmp_path / "taxi.yaml"
    loopline("compile", str(image.project / "taxi" / "pipeline.py"), "--app", str(image.project),
             "--image", image.reference, "-o", str(ir_file), env=env, cwd=tmp_path)  # fmt: skip
    ir = yaml.safe_load(ir_file.read_text())
    executors = ir["deploymentSpec"]["executors"].values()
    assert {e["container"]["image"] for e in executors} == {image.reference}
    gen = ir["root"]["dag"]["tasks"]["examplegen"]["inputs"]["parameters"]
    assert gen["input_dir"]["runtimeValue"]["constant"] == "/app/taxi/data"
    # Its first task runs in the image as the IR says: the data under /app, the step's code
    # and the data's fingerprint as compiled.
    produced = _run_task_in_image(ir, "examplegen", image.tag, tmp_path / "kfp-out")
    [examples] = produced["artifacts"]["examples"]["artifacts"]
    assert examples["metadata"]["loopline.type"] == "Examples"
    assert examples["metadata"]["span"] == 1

    # The manifests for that image and the baked model validate (render validates them
    # against the Kubernetes 1.25 and 1.37 schemas and loopline's checks; so does this test).
    rendered = loopline("render", "-f", str(image.project / "taxi" / "deployment.yaml"), "--pin",
                        "--model-dir", "/models/taxi", "--image", image.reference, "-o", "json",
                        env=env, cwd=tmp_path)  # fmt: skip
    objects = json.loads(rendered)["items"]
    assert sorted(o["kind"] for o in objects) == ["Deployment", "PodDisruptionBudget", "Service"]
    validate(objects)
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == image.reference
    assert container["args"][container["args"].index("--expected-digest") + 1] == model_digest

    # podman runs what the registry holds (pulled by digest) with the Deployment's own
    # container: no ENTRYPOINT is in the way, and it runs as the image's non-root user.
    subprocess.run(["podman", "pull", "--tls-verify=false", image.reference], check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    port = free_port()
    name = f"loopline-it-{port}"
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            ["podman", "--runtime", "runc", "run", "--rm", "--name", name, "--network", "host",
             "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000",
             *_podman_args(container, pod), image.reference,
             *container["command"], *container["args"], "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/v2/health/ready") or
                 server.poll() is not None, 180, "the server in the container getting ready")
        assert server.poll() is None, log.read_text()[-4000:]
        body = json.dumps({"inputs": [
            {"name": k, "shape": [2], "datatype": t, "data": v} for k, (t, v) in TRIP.items()
        ]}).encode()  # fmt: skip
        infer = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/taxi/infer",
                                       data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(infer, timeout=30) as answer:
            outputs = {o["name"]: o["data"] for o in json.load(answer)["outputs"]}
        assert set(outputs["predict"]) <= {"yes", "no"} and len(outputs["predict"]) == 2
        whoami = subprocess.run(["podman", "exec", name, "id", "-u"], capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        assert whoami.stdout.strip() == "65532"
    finally:
        subprocess.run(["podman", "stop", "--time", "10", name], capture_output=True,
                       timeout=120, check=False)  # fmt: skip
        server.wait(timeout=120)
        # The pulled copy goes; the built layers stay in storage as the next build's cache.
        subprocess.run(["podman", "rmi", image.reference], capture_output=True, timeout=120,
                       check=False)  # fmt: skip
