"""``loopline build``: the loopline image, built here (docker, podman or buildah) or by Cloud Build.

Writes the build context (:mod:`loopline.deploy.images`: Dockerfile, pinned requirements,
loopline's source, the wheels, the project files of ``--app``, a model baked with
``--model``) into ``--context`` and builds it, showing the builder's output on stderr. Where
no registry with Python images answers (no docker.io), the base is a Debian image made once
with debootstrap (``localhost/loopline-base:bookworm``, its root file system cached under
``--base-cache``). ``--push REGISTRY`` pushes it and prints ``REGISTRY/NAME@sha256:…``; with
``--model`` the image (pushed digest, or local image id) is recorded in the registry as
serving that version. ``--cloudbuild`` writes ``cloudbuild.yaml`` (test → build → push →
deploy to GKE, the manifests of ``--deployment`` rendered into ``k8s/``) and builds nothing
here. stdout carries only the result: the image reference, or the context's path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from loopline import __version__
from loopline.cli.output import handle_errors
from loopline.deploy.images import DEFAULT_EXTRAS, default_tag
from loopline.errors import InvalidInputError

if TYPE_CHECKING:
    from loopline.deploy.images import BakedModel, ImageRecipe
    from loopline.platform import Platform

AUTO = "auto"


def _default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "loopline")


@click.command("build")
@click.option("--tag", "-t", default=default_tag(__version__), show_default=True,
              help="Name:tag of the image (loopline render --image takes it).")  # fmt: skip
@click.option("--context", "context_dir", default="build/image", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory the build context is written to (replaced on each build).")
@click.option("--extras", default=",".join(DEFAULT_EXTRAS), show_default=True,
              help="loopline extras the image installs, comma-separated.")  # fmt: skip
@click.option("--model", "model_ref", default=None, metavar="REF",
              help="Bake this registered model (taxi@champion, taxi/3) into /models/NAME, serve "
                   "it by default, and record the image in the registry.")  # fmt: skip
@click.option("--app", "app_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Project directory (pipeline code) copied to /app, the working directory.")
@click.option("--base-image", default=AUTO, show_default=True,
              help="Base image with Python 3.11 (auto: python:3.11-slim when docker.io answers, "
                   "else a Debian base made with debootstrap).")  # fmt: skip
@click.option("--base-cache", default=_default_cache, show_default="~/.cache/loopline",
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the debootstrap base's root file system is cached.")  # fmt: skip
@click.option("--builder", "builder_kind", default=AUTO, show_default=True,
              type=click.Choice([AUTO, "docker", "podman", "buildah"]),
              help="Tool that builds (auto: docker with a daemon, else podman, else buildah).")
@click.option("--wheelhouse/--no-wheelhouse", default=None,
              help="Download every wheel here so the build needs no package index (default; "
                   "off with --cloudbuild, whose builders reach PyPI).")  # fmt: skip
@click.option("--push", "registry", default=None, metavar="REGISTRY",
              help="Push to REGISTRY (host[:port][/path]) and print the image by digest.")
@click.option("--dockerfile-only", is_flag=True,
              help="Write the build context and its Dockerfile; build nothing.")
@click.option("--cloudbuild", is_flag=True,
              help="Write cloudbuild.yaml (test, build, push, deploy) into the context for "
                   "gcloud builds submit; needs --push (e.g. REGION-docker.pkg.dev/PROJECT/REPO).")
@click.option("--deployment", "deployment_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --cloudbuild: render this Deployment YAML into k8s/ and deploy it.")
@click.option("--region", default="us-central1", show_default=True, help="Cloud Build: GKE region.")
@click.option("--cluster", default="ml-prod", show_default=True, help="Cloud Build: GKE cluster.")
@click.option("-n", "--namespace", default="default", show_default=True,
              help="Cloud Build: namespace of the rendered objects.")  # fmt: skip
@click.option("--test-command", default=None,
              help="Cloud Build: bash command of the test step (default: install and run "
                   "loopline --version).")  # fmt: skip
@handle_errors
def build(
    tag: str, context_dir: Path, extras: str, model_ref: str | None, app_dir: Path | None,
    base_image: str, base_cache: Path, builder_kind: str, wheelhouse: bool | None,
    registry: str | None, dockerfile_only: bool, cloudbuild: bool,
    deployment_file: Path | None, region: str, cluster: str, namespace: str,
    test_command: str | None,
) -> None:  # fmt: skip
    """Build the loopline image (serve, step exec, control plane), or write its Dockerfile."""
    from loopline.deploy.images import (
        DEFAULT_BASE_IMAGE,
        ImageRecipe,
        base_image_name,
        docker_hub_reachable,
        download_wheels,
        loopline_source,
        pinned_requirements,
        write_context,
    )

    _check_tag(tag)
    if cloudbuild and registry is None:
        raise InvalidInputError(
            "--cloudbuild pushes to a registry Cloud Build can reach; pass --push with it, e.g. "
            "--push us-central1-docker.pkg.dev/PROJECT/REPO."
        )
    if deployment_file is not None and not cloudbuild:
        raise InvalidInputError(
            f"--deployment {str(deployment_file)!r} is rendered for Cloud Build's deploy step "
            "only; add --cloudbuild, or render it with loopline render --image."
        )
    wanted = tuple(e.strip() for e in extras.split(",") if e.strip())
    pins = pinned_requirements(wanted)
    use_wheels = (not cloudbuild) if wheelhouse is None else wheelhouse
    debootstrap_base = False
    if cloudbuild or base_image != AUTO:
        base = DEFAULT_BASE_IMAGE if base_image == AUTO else base_image
    elif dockerfile_only or docker_hub_reachable():
        base = DEFAULT_BASE_IMAGE
    else:
        base, debootstrap_base = base_image_name(), True
    source = loopline_source()

    with _model(model_ref) as (platform, baked, model_dir):
        recipe = ImageRecipe(
            version=__version__, extras=wanted, from_source=source is not None,
            base_image=base, app=app_dir is not None, model=baked, wheelhouse=use_wheels,
        )  # fmt: skip
        dockerfile = write_context(context_dir, recipe, pins, source=source, app=app_dir,
                                   model=model_dir)  # fmt: skip
        if use_wheels:
            download_wheels(context_dir, source=source, version=__version__, progress=_progress)
        if cloudbuild:
            assert registry is not None
            _write_cloudbuild(context_dir, recipe, f"{registry.rstrip('/')}/{_name(tag)}",
                              deployment_file, region=region, cluster=cluster,
                              namespace=namespace, test_command=test_command)  # fmt: skip
            click.echo(
                f"wrote {context_dir / 'cloudbuild.yaml'}; submit it with: gcloud builds submit "
                f"--config {context_dir / 'cloudbuild.yaml'} {context_dir}",
                err=True,
            )
            click.echo(str(context_dir))
            return
        if dockerfile_only:
            click.echo(f"wrote {dockerfile}", err=True)
            click.echo(str(context_dir))
            return
        reference, digest, pushed = _build_and_push(
            context_dir, recipe, tag, builder_kind=builder_kind, registry=registry,
            debootstrap_base=debootstrap_base, base_cache=base_cache,
        )  # fmt: skip
        if baked is not None and platform is not None:
            from loopline.registry import record_image

            record = record_image(
                platform.registry, baked.reference, reference=reference, digest=digest,
                pushed=pushed, who=platform.settings.user, why=f"loopline build --tag {tag}",
            )  # fmt: skip
            kind = "pushed digest" if pushed else "local image id"
            click.echo(f"recorded {record.reference} ({kind} {digest}) as serving "
                       f"{baked.reference}", err=True)  # fmt: skip
    click.echo(reference)


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _check_tag(tag: str) -> None:
    import re

    if not re.fullmatch(r"[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?", tag):  # fmt: skip
        raise InvalidInputError(
            f"Tag {tag!r} is not an image name: write [host[:port]/]name[:tag] in lowercase, "
            "e.g. loopline:0.1.0 or registry.example.com/ml/loopline:1."
        )


def _name(tag: str) -> str:
    """The last path component of ``tag``, without its tag: ``a/b/loopline:1`` → loopline."""
    from loopline.deploy.images import strip_tag

    return strip_tag(tag).rsplit("/", 1)[-1]


@contextlib.contextmanager
def _model(ref: str | None) -> Iterator[tuple[Platform | None, BakedModel | None, Path | None]]:
    """The platform, the baked model and its local bundle directory, for ``--model``."""
    if ref is None:
        yield None, None, None
        return
    from loopline.deploy.images import BakedModel
    from loopline.platform import Platform

    with Platform.from_env() as platform:
        resolved = platform.registry.resolve(ref)
        digest = resolved.artifact.digest
        if digest is None:
            raise InvalidInputError(f"Model {resolved} has no digest; register it again.")
        baked = BakedModel(resolved.name, f"{resolved.name}/{resolved.version}", digest)
        with platform.artifacts.open_local(resolved.artifact.uri) as directory:
            yield platform, baked, directory


def _build_and_push(
    context: Path, recipe: ImageRecipe, tag: str, *, builder_kind: str, registry: str | None,
    debootstrap_base: bool, base_cache: Path,
) -> tuple[str, str, bool]:  # fmt: skip
    """Build (and push); return the image reference, its digest and whether it was pushed."""
    from loopline.deploy.images import ensure_base_image, find_builder

    builder = find_builder(None if builder_kind == AUTO else builder_kind)
    click.echo(f"building {tag} with {builder.kind} from {context}", err=True)
    if debootstrap_base:
        ensure_base_image(builder, cache=base_cache, progress=_progress)
    image_id = builder.build(context, tag, build_args={"BASE_IMAGE": recipe.base_image},
                             progress=_progress)  # fmt: skip
    click.echo(f"built {tag} (image id {image_id})", err=True)
    if registry is None:
        return tag, image_id, False
    destination = f"{registry.rstrip('/')}/{tag.rsplit('/', 1)[-1]}"
    digest = builder.push(tag, destination, progress=_progress)
    from loopline.deploy.images import strip_tag

    return f"{strip_tag(destination)}@{digest}", digest, True


def _write_cloudbuild(
    context: Path, recipe: ImageRecipe, image: str, deployment: Path | None, *, region: str,
    cluster: str, namespace: str, test_command: str | None,
) -> None:  # fmt: skip
    import yaml

    from loopline.deploy.images import (
        MANIFESTS_DIR,
        CloudBuildPlan,
        cloudbuild_config,
        default_test_command,
        validate_cloudbuild,
    )

    if deployment is not None:
        objects = _render(deployment, image=f"{image}:{recipe.version}", namespace=namespace,
                          recipe=recipe)  # fmt: skip
        (context / MANIFESTS_DIR).mkdir(exist_ok=True)
        text = yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True)
        (context / MANIFESTS_DIR / "manifests.yaml").write_text(text)
    plan = CloudBuildPlan(
        image=image,
        test_command=test_command or default_test_command(from_source=recipe.from_source),
        deploy=deployment is not None, region=region, cluster=cluster, namespace=namespace,
    )  # fmt: skip
    config = cloudbuild_config(plan)
    validate_cloudbuild(config)
    (context / "cloudbuild.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _render(deployment: Path, *, image: str, namespace: str, recipe: ImageRecipe) -> list[Any]:
    """The Kubernetes objects of the Deployments in ``deployment``, validated; a baked model
    is served from the image."""
    from loopline.cli.deploy import read_documents
    from loopline.deploy import DeploymentSpec
    from loopline.deploy.engines.kubernetes import ModelSource, render_manifests, validate

    objects: list[Any] = []
    for doc in read_documents(str(deployment)):
        spec = DeploymentSpec.from_dict(doc)
        source = None
        if recipe.model is not None:
            source = ModelSource(recipe.model.path, digest=recipe.model.digest, in_image=True)
        manifests = render_manifests(spec, image=image, namespace=namespace, model=source)
        for warning in manifests.warnings:
            click.echo(f"warning: {warning}", err=True)
        objects += manifests.objects
    validate(objects)
    return objects
