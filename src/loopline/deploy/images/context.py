"""The build context ``loopline build`` writes: everything the Dockerfile copies, and nothing else.

Layout (the directory is the context of ``docker build`` / ``buildah bud``)::

    Dockerfile  .dockerignore  requirements.txt
    loopline/        loopline's source (pyproject.toml, README.md, src/loopline) from a checkout
    app/             the project's files (--app), for loopline step exec and loopline run
    models/NAME/     a baked model bundle, checked against its registry digest when copied
    .loopline-build  marks the directory as ours, so a rebuild may replace it

Files are copied with modes 0644 (0755 for directories), so the image's non-root user can
read them whatever the source's modes were.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from loopline.deploy.images.dockerfile import (
    DOCKERIGNORE,
    REQUIREMENTS,
    SOURCE_DIR,
    ImageRecipe,
    dockerfile,
)
from loopline.deploy.images.requirements import PROJECT, Pin, requirements_text
from loopline.errors import AlreadyExistsError, GateFailedError, InvalidInputError

MARKER = ".loopline-build"
_SKIPPED_NAMES = {"__pycache__", "node_modules"}
_SKIPPED_SUFFIXES = (".pyc", ".db", ".db-wal", ".db-shm", ".lock")


def loopline_source() -> Path | None:
    """The root of the loopline checkout this process runs from (editable install), or None
    when loopline is installed from a wheel (then the image takes it from the index)."""
    try:
        direct = importlib.metadata.distribution(PROJECT).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        direct = None
    if not direct:
        return None
    info = json.loads(direct)
    url = str(info.get("url", ""))
    if not url.startswith("file://") or not info.get("dir_info", {}).get("editable"):
        return None
    root = Path(url.removeprefix("file://"))
    if (root / "pyproject.toml").is_file() and (root / "src" / PROJECT).is_dir():
        return root
    return None


def write_context(
    directory: Path,
    recipe: ImageRecipe,
    pins: Sequence[Pin],
    *,
    source: Path | None = None,
    app: Path | None = None,
    model: Path | None = None,
) -> Path:
    """Write the build context of ``recipe`` into ``directory``; return the Dockerfile's path.

    Args:
        directory: created if missing; it must be empty or a context written before.
        recipe: the image; ``recipe.from_source`` needs ``source``, ``recipe.app`` needs
            ``app`` and ``recipe.model`` needs ``model``.
        pins: the third-party requirements (:func:`pinned_requirements`).
        source: loopline's checkout (:func:`loopline_source`).
        app: the project directory copied to ``/app``.
        model: the local directory of the baked model's bundle; its tree digest must be
            ``recipe.model.digest``.

    Raises:
        AlreadyExistsError: ``directory`` holds files loopline build did not write.
        InvalidInputError: a needed directory is missing or not a directory.
        GateFailedError: the model's bytes do not have the digest the registry recorded.
    """
    _check_inputs(recipe, source=source, app=app, model=model)
    _prepare(directory)
    if recipe.from_source and source is not None:
        target = directory / SOURCE_DIR
        for name in ("pyproject.toml", "README.md"):
            if (source / name).is_file():
                _copy_file(source / name, target / name)
        _copy_tree(source / "src" / PROJECT, target / "src" / PROJECT)
    if recipe.app and app is not None:
        _copy_tree(app, directory / "app", skip=directory.resolve())
    if recipe.model is not None and model is not None:
        from loopline.artifacts.digest import tree_digest

        target = directory / recipe.model.context_path
        _copy_tree(model, target, filtered=False)
        found = tree_digest(target)
        if found != recipe.model.digest:
            raise GateFailedError(
                f"The bundle of {recipe.model.reference} copied from {str(model)!r} has digest "
                f"{found}, not the registry's {recipe.model.digest}; the stored model changed "
                "since it was registered. Register it again or pick another version."
            )
    (directory / REQUIREMENTS).write_text(requirements_text(pins))
    (directory / ".dockerignore").write_text(DOCKERIGNORE)
    path = directory / "Dockerfile"
    path.write_text(dockerfile(recipe))
    return path


def _check_inputs(
    recipe: ImageRecipe, *, source: Path | None, app: Path | None, model: Path | None
) -> None:
    wanted = [
        ("loopline's source", recipe.from_source, source),
        ("the project directory (--app)", recipe.app, app),
        ("the model's bundle", recipe.model is not None, model),
    ]
    for what, needed, path in wanted:
        if needed and (path is None or not path.is_dir()):
            raise InvalidInputError(
                f"The image needs {what}, but {str(path)!r} is not a directory; pass an "
                "existing directory."
            )


def _prepare(directory: Path) -> None:
    """An empty ``directory``, or one of ours emptied; refuse anyone else's files."""
    if directory.exists():
        if not directory.is_dir():
            raise AlreadyExistsError(
                f"Build context {str(directory)!r} is a file; pass a directory with --context."
            )
        entries = list(directory.iterdir())
        if entries and not (directory / MARKER).is_file():
            raise AlreadyExistsError(
                f"Build context {str(directory)!r} already holds files loopline build did not "
                "write; pass an empty or new directory with --context."
            )
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("Written by loopline build; replaced on the next build.\n")


def _skipped(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or name in _SKIPPED_NAMES or name.endswith(_SKIPPED_SUFFIXES)


def _copy_tree(
    source: Path, target: Path, *, skip: Path | None = None, filtered: bool = True
) -> None:
    """Copy regular files, normalising modes; links are never followed, and unless
    ``filtered`` is off, dot-files, caches and databases are left out."""
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    for entry in sorted(source.iterdir()):
        if (filtered and _skipped(entry)) or entry.is_symlink() or entry.resolve() == skip:
            continue
        if entry.is_dir():
            _copy_tree(entry, target / entry.name, skip=skip, filtered=filtered)
        elif entry.is_file():
            _copy_file(entry, target / entry.name)


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o644)
