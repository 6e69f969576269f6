"""``loopline render -f deployment.yaml --target kubernetes``: the manifests of a deployment.

Renders every Deployment document of the file to Kubernetes objects
(:mod:`loopline.deploy.engines.kubernetes`), validates them offline for the oldest and newest
supported Kubernetes versions (``--no-validate`` skips it; the ``k8s-validate`` extra brings
the schemas) and prints them as multi-document YAML that ``kubectl apply -f -`` reads, or as
a ``v1 List`` in JSON. What does not map exactly (canary granularity without a Gateway, an
unpinned model, …) is printed as warnings on stderr, so stdout stays a clean manifest.

``--pin`` resolves the model reference through the registry (``LOOPLINE_DB_URL``) and
renders the version and digest it points at now; ``--model-dir`` serves a model baked into
the image at that path instead of loading it from the registry (it needs the digest, so
``--pin``).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from loopline import __version__
from loopline.cli.output import err_console, handle_errors
from loopline.deploy.images import default_tag
from loopline.errors import InvalidDefinitionError, shown

if TYPE_CHECKING:
    from loopline.deploy import DeploymentSpec
    from loopline.deploy.engines.kubernetes import ModelSource

DEFAULT_IMAGE = default_tag(__version__)
"""The tag loopline build gives the image."""


@click.command("render")
@click.option("-f", "--filename", required=True, help="Deployment YAML file ('-' for stdin).")
@click.option("--target", type=click.Choice(["kubernetes"]), default="kubernetes",
              show_default=True, help="What to render for.")  # fmt: skip
@click.option("--image", default=DEFAULT_IMAGE, show_default=True,
              help="The loopline image the pods run (loopline build prints it).")  # fmt: skip
@click.option("-n", "--namespace", default="default", show_default=True,
              help="Namespace of the objects.")  # fmt: skip
@click.option("--gateway", default=None, metavar="[NS/]NAME[#LISTENER]",
              help="Gateway API Gateway for canary/blue-green routes (exact weights); "
                   "without one, canaries split by replica ratio.")  # fmt: skip
@click.option("--pin", is_flag=True,
              help="Resolve the model through the registry and render its version and digest.")
@click.option("--model-dir", default=None, metavar="PATH",
              help="Serve the model baked into the image at PATH (needs --pin for its digest).")
@click.option("--stores-secret", default="loopline-stores", show_default=True,
              help="Secret with LOOPLINE_DB_URL and LOOPLINE_ARTIFACT_ROOT for registry models.")
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="Output format.")  # fmt: skip
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Validate the manifests (Kubernetes 1.25 and 1.37 schemas, the HTTPRoute "
                   "CRD, loopline's checks) before printing them.")  # fmt: skip
@handle_errors
def render(filename: str, target: str, image: str, namespace: str, gateway: str | None,
           pin: bool, model_dir: str | None, stores_secret: str, fmt: str,
           validate: bool) -> None:  # fmt: skip
    """Print the Kubernetes manifests of the Deployments in a file."""
    from loopline.cli.deploy import read_documents
    from loopline.deploy import DeploymentSpec
    from loopline.deploy.engines.kubernetes import GatewayRef, render_manifests
    from loopline.deploy.engines.kubernetes import validate as validate_objects

    if model_dir is not None and not pin:
        raise InvalidDefinitionError(
            f"--model-dir {model_dir!r} serves a model baked into the image, which the server "
            "checks against its digest; add --pin to read the digest from the registry."
        )
    docs = read_documents(filename)
    specs = []
    for i, doc in enumerate(docs):
        if doc.get("kind") != "Deployment":
            raise InvalidDefinitionError(
                f"Document {i + 1} of {filename} is a {shown(doc.get('kind'))}; render --target "
                f"{target} renders Deployments only (apply the others with loopline apply)."
            )
        specs.append(DeploymentSpec.from_dict(doc))
    route = None if gateway is None else GatewayRef.parse(gateway)
    objects: list[dict[str, Any]] = []
    for spec in specs:
        source = _model_source(spec, model_dir) if pin else None
        manifests = render_manifests(spec, image=image, namespace=namespace, gateway=route,
                                     model=source, stores_secret=stores_secret)  # fmt: skip
        for warning in manifests.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        objects += manifests.objects
    if validate:
        validate_objects(objects)
    if fmt == "json":
        body = {"apiVersion": "v1", "kind": "List", "items": objects}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True))


def _model_source(spec: DeploymentSpec, model_dir: str | None) -> ModelSource:
    """The spec's model pinned through the registry: its version, its digest."""
    from loopline.deploy.engines.kubernetes import ModelSource
    from loopline.platform import Platform

    with Platform.from_env() as platform:
        resolved = platform.registry.resolve(spec.model)
    digest = resolved.artifact.digest
    if model_dir is not None:
        return ModelSource(model_dir, digest=digest, in_image=True)
    return ModelSource(f"{resolved.name}/{resolved.version}", digest=digest)
