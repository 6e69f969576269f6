"""Container images of loopline: one image runs ``loopline serve``, ``loopline step exec``
and the control plane.

Key contracts:

- :func:`dockerfile` is a pure function of an :class:`ImageRecipe`: three stages (a venv
  with the pinned requirements, loopline's wheel, the final image from the same base with
  neither), least-changing layers first, non-root uid 65532, no ENTRYPOINT, ``BASE_IMAGE``
  a build argument. :func:`write_context` writes the build context around it, with the
  requirements pinned to what is installed here (:func:`pinned_requirements`), optionally
  every wheel (:func:`download_wheels`: the build then needs no index) and a baked model,
  checked against its registry digest.
- :func:`find_builder` picks docker (when its daemon answers), podman or buildah;
  :meth:`Builder.build` streams the build and returns the image id, :meth:`Builder.push`
  returns the manifest digest the registry stored.
- :func:`ensure_base_image` makes (once) a Debian base with debootstrap where no registry
  with Python images is reachable (:func:`docker_hub_reachable`).
- :func:`cloudbuild_config` writes Cloud Build's test → build → push → deploy;
  :func:`validate_cloudbuild` checks it against the schema of that subset.
"""

from loopline.deploy.images.base import base_image_name, docker_hub_reachable, ensure_base_image
from loopline.deploy.images.builder import Builder, find_builder, is_loopback, strip_tag
from loopline.deploy.images.cloudbuild import (
    MANIFESTS_DIR,
    CloudBuildPlan,
    cloudbuild_config,
    default_test_command,
    validate_cloudbuild,
)
from loopline.deploy.images.context import loopline_source, write_context
from loopline.deploy.images.dockerfile import (
    DEFAULT_BASE_IMAGE,
    MODELS_DIR,
    USER_ID,
    BakedModel,
    ImageRecipe,
    dockerfile,
)
from loopline.deploy.images.requirements import Pin, known_extras, pinned_requirements
from loopline.deploy.images.wheelhouse import download_wheels

DEFAULT_EXTRAS = ("serve", "sklearn", "postgres")
"""What the image installs unless told otherwise: the server and control plane, the
scikit-learn flavor, and PostgreSQL for a shared metadata store."""


def default_tag(version: str) -> str:
    """The tag ``loopline build`` gives the image: ``loopline:<version>``."""
    return f"loopline:{version}"


__all__ = [
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_EXTRAS",
    "MANIFESTS_DIR",
    "MODELS_DIR",
    "USER_ID",
    "BakedModel",
    "Builder",
    "CloudBuildPlan",
    "ImageRecipe",
    "Pin",
    "base_image_name",
    "cloudbuild_config",
    "default_tag",
    "default_test_command",
    "docker_hub_reachable",
    "dockerfile",
    "download_wheels",
    "ensure_base_image",
    "find_builder",
    "is_loopback",
    "known_extras",
    "loopline_source",
    "pinned_requirements",
    "strip_tag",
    "validate_cloudbuild",
    "write_context",
]
