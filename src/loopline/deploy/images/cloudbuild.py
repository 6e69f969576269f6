"""``cloudbuild.yaml`` for Cloud Build: test → build → push → deploy to GKE.

The config builds the context ``loopline build`` wrote (submit it with ``gcloud builds
submit --config cloudbuild.yaml .`` from that directory):

- ``test`` runs a command in ``python:3.11-slim`` (by default: install the pinned
  requirements and loopline, then ``loopline --version``);
- ``build`` runs ``docker build`` with ``BASE_IMAGE`` = the public Python image, starting at
  once (``waitFor: ["-"]``) beside the test;
- ``push`` pushes ``${_IMAGE}:$BUILD_ID`` once both passed;
- ``deploy`` (when manifests were rendered into ``k8s/``) runs ``gke-deploy run``, which
  pins the image by digest in the manifests whose image has the name ``${_IMAGE}``, applies
  them to ``${_CLUSTER}`` in ``${_REGION}`` and waits for them to be ready.

``validate_cloudbuild`` checks a config against the JSON schema of this subset
(``schemas/cloudbuild.schema.json``, package data): unknown keys, substitution names, step
ids, ``waitFor`` targets and durations (which gcloud's own loader leaves to the server).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from loopline.deploy.images.dockerfile import DEFAULT_BASE_IMAGE, REQUIREMENTS, SOURCE_DIR
from loopline.errors import InvalidDefinitionError, require

MANIFESTS_DIR = "k8s"
DOCKER_BUILDER = "gcr.io/cloud-builders/docker"
GKE_DEPLOY_BUILDER = "gcr.io/cloud-builders/gke-deploy"
TAG = "${_IMAGE}:$BUILD_ID"


@dataclass(frozen=True, slots=True)
class CloudBuildPlan:
    """What the generated config does.

    Attributes:
        image: the image's repository without a tag (``REGION-docker.pkg.dev/PROJECT/REPO/
            loopline``): the ``_IMAGE`` substitution, and the name the manifests use.
        test_command: the bash command of the ``test`` step, run in the context.
        deploy: manifests were rendered into ``k8s/``; add the ``deploy`` step.
        region, cluster, namespace: the GKE cluster's location and name, the namespace.
        timeout_seconds: the whole build's timeout.
    """

    image: str
    test_command: str
    deploy: bool = False
    region: str = "us-central1"
    cluster: str = "ml-prod"
    namespace: str = "default"
    base_image: str = DEFAULT_BASE_IMAGE
    timeout_seconds: int = 1800


def default_test_command(*, from_source: bool) -> str:
    """Install what the image installs on the public Python image and run loopline."""
    project = f" ./{SOURCE_DIR}" if from_source else ""
    return (
        f"pip install --quiet --no-cache-dir --no-deps -r {REQUIREMENTS}{project}"
        " && loopline --version"
    )


def cloudbuild_config(plan: CloudBuildPlan) -> dict[str, Any]:
    """The build config of ``plan`` as a dict (``yaml.safe_dump`` it to write the file)."""
    steps: list[dict[str, Any]] = [
        {"id": "test", "name": plan.base_image, "entrypoint": "bash",
         "args": ["-c", plan.test_command]},
        {"id": "build", "name": DOCKER_BUILDER, "waitFor": ["-"],
         "args": ["build", "--build-arg", f"BASE_IMAGE={plan.base_image}", "-t", TAG, "."]},
        {"id": "push", "name": DOCKER_BUILDER, "waitFor": ["test", "build"],
         "args": ["push", TAG]},
    ]  # fmt: skip
    if plan.deploy:
        steps.append({
            "id": "deploy", "name": GKE_DEPLOY_BUILDER, "waitFor": ["push"],
            "args": ["run", f"--filename={MANIFESTS_DIR}/", f"--image={TAG}",
                     "--location=${_REGION}", "--cluster=${_CLUSTER}",
                     "--namespace=${_NAMESPACE}"],
        })  # fmt: skip
    return {
        "substitutions": {
            "_IMAGE": plan.image,
            "_REGION": plan.region,
            "_CLUSTER": plan.cluster,
            "_NAMESPACE": plan.namespace,
        },
        "options": {"logging": "CLOUD_LOGGING_ONLY"},
        "timeout": f"{plan.timeout_seconds}s",
        "steps": steps,
        "images": [TAG],
    }


def validate_cloudbuild(config: dict[str, Any]) -> None:
    """Check ``config`` against the schema of the subset loopline writes, and that every
    ``waitFor`` names an earlier step (or is ``-``).

    Raises:
        InvalidDefinitionError: naming the field and what is wrong with it.
        DependencyMissingError: jsonschema is not installed.
    """
    require("jsonschema", "cloudbuild", "checking cloudbuild.yaml")
    import jsonschema

    text = resources.files("loopline.deploy.images").joinpath("schemas",
                                                            "cloudbuild.schema.json")  # fmt: skip
    schema = json.loads(text.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(the document)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidDefinitionError(
            f"cloudbuild.yaml {where}: {first.message}{more}; fix the field as Cloud Build's "
            "build config schema says."
        )
    seen: set[str] = set()
    for i, step in enumerate(config["steps"]):
        for target in step.get("waitFor", []):
            if target != "-" and target not in seen:
                raise InvalidDefinitionError(
                    f"cloudbuild.yaml steps.{i}.waitFor: {target!r} is not the id of an earlier "
                    "step; name one of " + (", ".join(sorted(seen)) or "none (use '-')") + "."
                )
        if "id" in step:
            seen.add(step["id"])
