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
@click.option("-f", "--filename", default=None,
              help="Deployment YAML file ('-' for stdin); not with --controller.")
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
@click.option("--controller", is_flag=True,
              help="Render the control plane in-cluster instead: ServiceAccount, Role, "
                   "RoleBinding, Deployment and Service (docs/kubernetes.md).")  # fmt: skip
@click.option("--create-namespace", is_flag=True,
              help="With --controller: begin with the Namespace object.")  # fmt: skip
@click.option("--token-secret", default=None, metavar="NAME",
              help="With --controller: the Secret with the API token under key 'token' "
                   "(default loopline-controlplane-token).")  # fmt: skip
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="Output format.")  # fmt: skip
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Validate the manifests (Kubernetes 1.25 and 1.37 schemas, the HTTPRoute "
                   "CRD, loopline's checks) before printing them.")  # fmt: skip
@handle_errors
def render(filename: str | None, target: str, image: str, namespace: str,
           gateway: str | None, pin: bool, model_dir: str | None, stores_secret: str,
           controller: bool, create_namespace: bool, token_secret: str | None, fmt: str,
           validate: bool) -> None:  # fmt: skip
    """Print the Kubernetes manifests of the Deployments in a file, or (--controller) of the
    control plane in-cluster."""
    from loopline.deploy.engines.kubernetes import GatewayRef, render_manifests
    from loopline.deploy.engines.kubernetes import validate as validate_objects

    if controller:
        installed = _controller_objects(filename, image=image, namespace=namespace,
                                      gateway=gateway, pin=pin, model_dir=model_dir,
                                      create_namespace=create_namespace,
                                      stores_secret=stores_secret, token_secret=token_secret)
        if validate:
            validate_objects(installed)
        _print(installed, fmt)
        return
    if filename is None:
        raise InvalidDefinitionError(
            "render needs -f FILE with the Deployments to render, or --controller for the "
            "control plane in-cluster."
        )
    for flag, given in (("--create-namespace", create_namespace),
                        ("--token-secret", token_secret is not None)):  # fmt: skip
        if given:
            raise InvalidDefinitionError(f"{flag} applies to --controller only.")
    from loopline.cli.deploy import read_documents
    from loopline.deploy import DeploymentSpec

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
    _print(objects, fmt)


def _print(objects: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        body = {"apiVersion": "v1", "kind": "List", "items": objects}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True))


def _controller_objects(filename: str | None, *, image: str, namespace: str,
                        gateway: str | None, pin: bool, model_dir: str | None,
                        create_namespace: bool, stores_secret: str,
                        token_secret: str | None) -> list[dict[str, Any]]:  # fmt: skip
    """The control plane's manifest; the Deployment-only flags are refused, naming them."""
    from loopline.deploy.engines.kubernetes import GatewayRef
    from loopline.deploy.engines.kubernetes.controlplane_manifest import (
        TOKEN_SECRET,
        controlplane_manifests,
    )

    for flag, given in (("-f/--filename", filename is not None), ("--pin", pin),
                        ("--model-dir", model_dir is not None)):  # fmt: skip
        if given:
            raise InvalidDefinitionError(
                f"{flag} renders model-server Deployments; --controller renders the control "
                "plane, which applies those itself. Run the two renders separately."
            )
    if gateway is not None:
        GatewayRef.parse(gateway)  # refused here, naming it, rather than at the pod's start
    return controlplane_manifests(image=image, namespace=namespace,
                                  create_namespace=create_namespace, gateway=gateway,
                                  stores_secret=stores_secret,
                                  token_secret=token_secret or TOKEN_SECRET)  # fmt: skip


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
