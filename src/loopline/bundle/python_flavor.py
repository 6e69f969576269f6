"""The ``python`` flavor: any framework's model that can save itself.

The model object has ``save(directory)`` and its class a ``load(directory)`` classmethod (or
staticmethod) returning the model. The bundle records the class as ``module:QualName`` (the
*loader*), so loading imports code — never unknown bytes — and only code the operator
trusts: the loader must be in :attr:`Trust.loaders <loopline.bundle.trust.Trust.loaders>`
(``LOOPLINE_TRUSTED_LOADERS``), checked before anything is imported, and after every file's
digest was checked against the manifest (and the registry's tree digest, when given).
``load(directory)`` receives a private copy of what was verified, removed once it returns:
it must read what it needs before returning.

A fitted scikit-learn ``transform`` may travel with it (saved with skops, allow-listed
types only): the served model is then ``model.<method>(transform.transform(x))``, the
preprocessing training used.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.bundle import sklearn_flavor
from loopline.bundle.trust import Trust
from loopline.errors import InvalidInputError

MODEL_DIR = "model"
TRANSFORM_FILE = "transform.skops"


def loader_of(model: Any) -> str:
    """The ``module:QualName`` of a model that can save and load itself.

    Raises:
        InvalidInputError: the model lacks ``save``/``load``, or its class is not importable
            by name (defined in ``__main__`` or inside a function).
    """
    cls = type(model)
    if not callable(getattr(model, "save", None)) or not callable(getattr(cls, "load", None)):
        raise InvalidInputError(
            f"{cls.__name__} cannot be saved with flavor 'python': it needs a save(directory) "
            "method and a load(directory) classmethod returning the model."
        )
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise InvalidInputError(
            f"{cls.__qualname__} is defined in {cls.__module__!r}; model servers load it by "
            "name, so define the class in an importable module of your project."
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def save(model: Any, directory: Path, *, transform: Any = None) -> tuple[list[str], str]:
    """Let the model write itself under ``directory/model``; return (files, loader)."""
    loader = loader_of(model)
    (directory / MODEL_DIR).mkdir()
    model.save(directory / MODEL_DIR)
    if transform is not None:
        sklearn_flavor.save(transform, directory, name=TRANSFORM_FILE)
    files = sorted(
        Path(dirpath, f).relative_to(directory).as_posix()
        for dirpath, _, filenames in os.walk(directory)
        for f in filenames
    )
    if not any(f.startswith(f"{MODEL_DIR}/") for f in files):
        raise InvalidInputError(
            f"{type(model).__name__}.save wrote no file under the directory it was given."
        )
    return files, loader


def load(
    directory: Path,
    loader: str,
    *,
    with_transform: bool,
    trust: Trust,
    shown_as: Path | None = None,
) -> Any:
    """Import the loader class and load the model (digests were checked by the caller).

    Raises:
        InvalidInputError: ``loader`` is not in ``trust.loaders`` (nothing was imported), it
            cannot be imported, or its ``load`` raised on the bundle's files.
    """
    trust.check_loader(loader, repr(str(shown_as or directory)))
    module_name, _, qualname = loader.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(
            f"The bundle's loader {loader!r} cannot be imported ({exc}); install the project "
            "that defines it where the model is served."
        ) from exc
    try:
        model = target.load(directory / MODEL_DIR)
    except Exception as exc:  # the loader's own error on these bytes: a damaged bundle
        raise InvalidInputError(
            f"The loader {loader!r} could not load the bundle {str(shown_as or directory)!r} "
            f"({type(exc).__name__}: {exc}); the bundle is damaged or was saved by another "
            "version of that class."
        ) from exc
    if not with_transform:
        return model
    transform = sklearn_flavor.load(
        directory, name=TRANSFORM_FILE, trust=trust, shown_as=shown_as
    )
    return TransformThen(transform=transform, model=model)


@dataclass(frozen=True)
class TransformThen:
    """``model.<method>(transform.transform(x))`` for every method the model has."""

    transform: Any
    model: Any

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.model, name)
        if not callable(method) or name.startswith("_"):
            return method

        def call(x: Any) -> Any:
            return method(self.transform.transform(x))

        return call
