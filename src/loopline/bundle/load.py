"""Read a model bundle, verifying every digest before any byte is deserialised."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from loopline.bundle import python_flavor, sklearn_flavor
from loopline.bundle.digest import file_sha256, tree_digest
from loopline.bundle.forest import Method, fast_methods
from loopline.bundle.manifest import Manifest
from loopline.bundle.model import LoadedModel
from loopline.errors import InvalidInputError, NotFoundError, PathTraversalError

log = logging.getLogger(__name__)


def _inside(root: Path, rel: str) -> Path:
    p = (root / rel).resolve()
    if os.path.isabs(rel) or ".." in Path(rel).parts or not p.is_relative_to(root.resolve()):
        raise PathTraversalError(
            f"Bundle file {rel!r} points outside the bundle {str(root)!r}; refusing to read it."
        )
    return p


def load_model(
    path: str | os.PathLike[str], *, expected_digest: str | None = None, fast: bool = True
) -> LoadedModel:
    """Load the bundle at ``path``.

    With ``fast`` (the default), scikit-learn forests predict through
    :class:`~loopline.bundle.forest.ForestPredictor` (identical outputs, checked here on the
    example batch; ~10× less time per call).

    Checks, in order: ``expected_digest`` (the registry's ``sha256:<hex>`` tree digest, see
    :func:`tree_digest`) if given; each flavor file's sha256 against the manifest; then loads
    with skops, trusting only allow-listed types.

    Raises:
        NotFoundError: no bundle (or a listed file is missing) at ``path``.
        InvalidInputError: a digest mismatch, a damaged manifest, a disallowed type.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError(f"No model bundle at {str(root)!r}: not a directory.")
    digest = tree_digest(root)
    if expected_digest is not None and digest != expected_digest:
        raise InvalidInputError(
            f"Bundle {str(root)!r} has digest {digest} but the registry recorded "
            f"{expected_digest}; the files changed after registration. Refusing to load it."
        )
    manifest = Manifest.read(root)
    if manifest.flavor not in ("sklearn", "python"):
        raise InvalidInputError(
            f"Bundle {str(root)!r} has flavor {manifest.flavor!r}; loopline loads "
            "['sklearn', 'python']."
        )
    for rel, want in manifest.files.items():
        p = _inside(root, rel)
        if not p.is_file():
            raise NotFoundError(f"Bundle {str(root)!r} lists {rel!r} but the file is missing.")
        got = file_sha256(p)
        if got != want:
            raise InvalidInputError(
                f"Bundle file {rel!r} has sha256 {got} but the manifest records {want}; "
                "the bundle was modified or damaged. Refusing to load it."
            )
    unlisted = _unlisted_files(root, manifest)
    if unlisted:
        raise InvalidInputError(
            f"Bundle {str(root)!r} holds {unlisted[0]!r}, which its manifest does not list; "
            "refusing to load files whose digest was never recorded."
        )
    if manifest.flavor == "python":
        if manifest.loader is None:
            raise InvalidInputError(f"Bundle {str(root)!r} (flavor python) names no loader.")
        estimator = python_flavor.load(root, manifest.loader, with_transform=manifest.has_transform)
    else:
        if sklearn_flavor.MODEL_FILE not in manifest.files:
            raise InvalidInputError(
                f"Bundle {str(root)!r} does not list {sklearn_flavor.MODEL_FILE!r} in its manifest."
            )
        estimator = sklearn_flavor.load(root)
    for method in manifest.methods:
        if not callable(getattr(estimator, method, None)):
            raise InvalidInputError(
                f"Bundle {str(root)!r} serves {method!r} but the loaded "
                f"{type(estimator).__name__} has no such method."
            )
    model = LoadedModel(path=root, manifest=manifest, digest=digest, estimator=estimator)
    if not fast:
        return model
    calls = checked_fast_methods(model)
    return dataclasses.replace(model, calls=calls) if calls else model


def checked_fast_methods(model: LoadedModel) -> dict[str, Method]:
    """The faster methods of :func:`fast_methods` that answer exactly as the originals.

    Both run on the model's example batch; a method whose output differs in any bit, dtype
    or shape (or that raises) is dropped with a warning, and the original serves.
    """
    candidates = fast_methods(model.estimator, model.methods)
    if not candidates:
        return {}
    try:
        probe = model.model_input(model.example_batch())
    except Exception:  # the warm-up will report the problem with the model itself
        return {}
    kept: dict[str, Method] = {}
    for name, call in candidates.items():
        try:
            want = np.asarray(getattr(model.estimator, name)(probe))
            got = np.asarray(call(probe))
            if want.dtype != got.dtype or want.shape != got.shape:
                same = False
            elif want.dtype.kind == "O":  # Python objects (string labels): compare values
                same = bool(np.array_equal(want, got))
            else:
                same = want.tobytes() == got.tobytes()
        except Exception:
            log.warning(
                "Checking the fast %s of %s raised; using its own.", name, model.path, exc_info=True
            )
            continue
        if same:
            kept[name] = call
        else:
            log.warning(
                "The fast %s of %s differs from the estimator's own on the example batch; "
                "using its own.",
                name,
                model.path,
            )
    return kept


def _unlisted_files(root: Path, manifest: Manifest) -> list[str]:
    """Files in the bundle that are neither the manifest nor listed in it."""
    from loopline.bundle.manifest import MANIFEST_NAME

    present = sorted(
        Path(dirpath, f).relative_to(root).as_posix()
        for dirpath, _, filenames in os.walk(root)
        for f in filenames
    )
    return [f for f in present if f != MANIFEST_NAME and f not in manifest.files]
