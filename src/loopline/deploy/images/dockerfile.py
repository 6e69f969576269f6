"""The Dockerfile ``loopline build`` writes: a pure function of an :class:`ImageRecipe`.

Three stages. ``deps`` makes a virtual environment at :data:`VENV` and installs the pinned
third-party requirements into it; ``app`` builds loopline's wheel (from its source in the
context, or takes the released version from the package index) and installs it, with no
dependencies, into :data:`APP_DIR`, which a ``.pth`` file in the venv puts on ``sys.path``.
The final stage starts again from the same base, so no compiler, pip cache or source tree
reaches it, and its layers are ordered from the least to the most often changing:

1. the non-root user (uid/gid 65532) and the environment;
2. the venv with the dependencies (changes when an installed version changes);
3. loopline itself (changes with its code, a few MB);
4. the project's files in ``/app`` (``--app``), then the baked model in ``/models/NAME``.

There is no ``ENTRYPOINT``: Kubernetes' ``command``, KFP and ``kfp.local`` (which passes its
command as Docker's CMD) run ``loopline serve``, ``loopline step exec`` or the control plane
as given. The CMD serves the baked model, or prints ``loopline --help``. The base image is a
build argument (``BASE_IMAGE``, ``python:3.11-slim`` elsewhere; a Debian base made with
debootstrap where no registry with Python images is reachable).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from loopline.errors import InvalidInputError

DEFAULT_BASE_IMAGE = "python:3.11-slim"
VENV = "/opt/loopline"
APP_DIR = "/opt/loopline-app"
PROJECT_DIR = "/app"
MODELS_DIR = "/models"
USER_ID = 65532
"""The non-root uid and gid of the image (the pods' ``runAsUser``)."""
SERVE_PORT = 8080
SOURCE_DIR = "loopline"
"""Where, inside the build context, loopline's source tree is copied."""
REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"
"""Context folder of the pinned requirements' wheels (with a wheelhouse)."""
BUILD_WHEELS = "build-wheels"
"""Context folder of what builds loopline's wheel (with a wheelhouse)."""
_NAME = re.compile(r"[a-z0-9]([-a-z0-9._]*[a-z0-9])?")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BakedModel:
    """A model bundle copied into the image at ``/models/<name>``.

    Attributes:
        name: the served model name (the directory name under /models).
        reference: the registry version it is (``taxi/3``), for the image's labels.
        digest: its tree digest (``sha256:…``), which the server checks at start.
    """

    name: str
    reference: str
    digest: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidInputError(
                f"Model name {self.name!r} cannot name a directory of the image; use lowercase "
                "letters, digits, '-', '_' and '.'."
            )
        if not _DIGEST.fullmatch(self.digest):
            raise InvalidInputError(
                f"Model digest {self.digest!r} is not sha256: followed by 64 hex digits."
            )

    @property
    def path(self) -> str:
        """The model's directory inside the image."""
        return f"{MODELS_DIR}/{self.name}"

    @property
    def context_path(self) -> str:
        """The model's directory inside the build context."""
        return f"models/{self.name}"


@dataclass(frozen=True, slots=True)
class ImageRecipe:
    """What goes into the image.

    Attributes:
        version: loopline's version (a label; the requirement when ``from_source`` is off).
        extras: loopline's extras the image installs (their requirements are pinned).
        from_source: the context holds loopline's source at :data:`SOURCE_DIR` (a checkout);
            otherwise ``loopline[extras]==version`` comes from the package index.
        base_image: the default of the ``BASE_IMAGE`` build argument.
        app: the context holds project files at ``app/`` that go to ``/app``.
        model: a model baked into the image, which the CMD then serves.
        wheelhouse: the context holds every wheel (:mod:`~loopline.deploy.images.wheelhouse`)
            and the build installs them with no package index.
    """

    version: str
    extras: tuple[str, ...] = ("serve", "sklearn")
    from_source: bool = True
    base_image: str = DEFAULT_BASE_IMAGE
    app: bool = False
    model: BakedModel | None = None
    wheelhouse: bool = True

    def cmd(self) -> list[str]:
        """The image's CMD: serve the baked model on every interface, or the CLI's help."""
        if self.model is None:
            return ["loopline", "--help"]
        return [
            "loopline", "serve", self.model.path, "--name", self.model.name,
            "--expected-digest", self.model.digest,
            "--host", "0.0.0.0", "--port", str(SERVE_PORT),
        ]  # fmt: skip

    def labels(self, *, model: bool = True) -> dict[str, str]:
        """OCI annotations plus, for a baked model (unless ``model`` is off), which model and
        digest it serves (labelled after the model's layer: they change with it)."""
        out = {
            "org.opencontainers.image.title": "loopline",
            "org.opencontainers.image.version": self.version,
            "dev.loopline.extras": ",".join(self.extras),
        }
        if self.model is not None and model:
            out["dev.loopline.model"] = self.model.reference
            out["dev.loopline.model-digest"] = self.model.digest
        return out


def dockerfile(recipe: ImageRecipe) -> str:
    """The Dockerfile text of ``recipe`` (see the module docstring for its stages)."""
    extras = ",".join(recipe.extras)
    offline = ""
    build_offline = ""
    deps_copy: list[str] = []
    app_copy: list[str] = []
    if recipe.wheelhouse:
        offline = f" --no-index --find-links /tmp/{WHEELS}"
        build_offline = f" --no-index --find-links /tmp/{BUILD_WHEELS}"
        deps_copy = [f"COPY {WHEELS}/ /tmp/{WHEELS}/"]
        app_copy = [f"COPY {BUILD_WHEELS}/ /tmp/{BUILD_WHEELS}/"]
    if recipe.from_source:
        app_stage = [
            *app_copy,
            f"COPY {SOURCE_DIR}/ /src/",
            f"RUN pip wheel --no-cache-dir --no-deps{build_offline} --wheel-dir /wheels /src \\",
            f" && pip install --no-cache-dir --no-deps --target {APP_DIR} /wheels/*.whl",
        ]
    else:
        app_stage = [
            *app_copy,
            f"RUN pip install --no-cache-dir --no-deps{build_offline} --target {APP_DIR} \\",
            f' "loopline[{extras}]=={recipe.version}"',
        ]
    uid = USER_ID
    lines = [
        f"# Written by loopline build {recipe.version}; the build context is this directory.",
        f"ARG BASE_IMAGE={recipe.base_image}",
        "",
        "# deps: a venv with the pinned third-party requirements (changes when they do).",
        "FROM ${BASE_IMAGE} AS deps",
        f"ENV PATH={VENV}/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1",
        f"RUN python3 -m venv {VENV} \\",
        f" && {VENV}/bin/python -c \"import sysconfig, pathlib; pathlib.Path("
        f"sysconfig.get_paths()['purelib'], 'loopline-app.pth').write_text('{APP_DIR}\\n')\"",
        f"COPY {REQUIREMENTS} /tmp/{REQUIREMENTS}",
        *deps_copy,
        f"RUN pip install --no-cache-dir --no-deps{offline} -r /tmp/{REQUIREMENTS}",
        "",
        "# app: loopline itself, outside the venv (changes with its code).",
        "FROM deps AS app",
        *app_stage,
        "",
        "# The image: the same base, no build tools, least-changing layers first.",
        "FROM ${BASE_IMAGE}",
        _label(recipe.labels(model=False)),
        f"RUN groupadd --gid {uid} loopline \\",
        f" && useradd --uid {uid} --gid {uid} --home-dir /home/loopline --create-home "
        "--shell /usr/sbin/nologin loopline",
        f"ENV PATH={APP_DIR}/bin:{VENV}/bin:$PATH LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 "
        "PYTHONUNBUFFERED=1",
        f"COPY --from=deps {VENV} {VENV}",
        f"COPY --from=app {APP_DIR} {APP_DIR}",
    ]
    if recipe.app:
        lines.append(f"COPY app/ {PROJECT_DIR}/")
    if recipe.model is not None:
        lines.append(f"COPY {recipe.model.context_path}/ {recipe.model.path}/")
        lines.append(_label({k: v for k, v in recipe.labels().items() if "model" in k}))
    lines += [
        f"WORKDIR {PROJECT_DIR}",
        f"USER {uid}:{uid}",
        f"EXPOSE {SERVE_PORT}",
        f"CMD {json.dumps(recipe.cmd())}",
        "",
    ]
    return "\n".join(lines)


def _label(labels: dict[str, str]) -> str:
    return "LABEL " + " \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())


DOCKERIGNORE = """\
# Written by loopline build: only what the Dockerfile copies is sent to the builder.
**/__pycache__
**/*.pyc
**/.git
**/.venv
"""
