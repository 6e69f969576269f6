"""Read a model bundle once, verify what was read, and load from exactly those bytes.

``load_model`` copies the bundle into a private temporary directory (mode 0700), hashing each
file as it copies it, so the digests it checks are the digests of the bytes it deserialises:
whoever can write the store folder cannot swap a file between the check and the load (the
time-of-check/time-of-use gap of loading the live folder after hashing it). The copy is
removed once the model is loaded; a bundle needs its size again in temporary space meanwhile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from loopline.artifacts.digest import CHUNK, combine
from loopline.bundle import (
    compiler,
    derived_predict,
    lightgbm_flavor,
    linear,
    native,
    onnx_flavor,
    python_flavor,
    sklearn_flavor,
    xgboost_flavor,
)
from loopline.bundle.forest import Method, fast_methods
from loopline.bundle.manifest import MANIFEST_NAME, Manifest
from loopline.bundle.model import LoadedModel
from loopline.bundle.trust import BUILT_IN_TRUST, Trust
from loopline.errors import InvalidInputError, NotFoundError, PathTraversalError

log = logging.getLogger(__name__)


def _inside(root: Path, rel: str) -> str:
    parts = Path(rel).parts
    if not rel or os.path.isabs(rel) or ".." in parts or "\\" in rel or "\0" in rel:
        raise PathTraversalError(
            f"Bundle file {rel!r} points outside the bundle {str(root)!r}; refusing to read it."
        )
    return Path(rel).as_posix()


def _copy_hashing(root: Path, dest: Path) -> dict[str, str]:
    """Copy every regular file of ``root`` into ``dest``; relative path → hex sha256 of the
    bytes written (each file read once).

    Raises:
        InvalidInputError: the tree holds a symbolic link or a special file.
    """
    hashes: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_dir = base.relative_to(root)
        for name in dirnames:
            if not stat.S_ISDIR(os.lstat(base / name).st_mode):
                _refuse_link(root, base / name)
        (dest / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            src = base / name
            try:  # no links followed; O_NONBLOCK: a FIFO must not block the open
                fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as exc:
                _refuse_link(root, src)
                raise InvalidInputError(
                    f"Bundle {str(root)!r} holds {str(src.relative_to(root))!r}, which cannot "
                    f"be read ({exc.strerror}); refusing to load it."
                ) from exc
            with open(fd, "rb") as fin:
                if not stat.S_ISREG(os.fstat(fin.fileno()).st_mode):
                    _refuse_link(root, src)
                h = hashlib.sha256()
                with open(dest / rel_dir / name, "xb") as fout:
                    while chunk := fin.read(CHUNK):
                        h.update(chunk)
                        fout.write(chunk)
            hashes[(rel_dir / name).as_posix()] = h.hexdigest()
    return hashes


def _refuse_link(root: Path, path: Path) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
        raise InvalidInputError(
            f"Bundle {str(root)!r} holds {str(path.relative_to(root))!r}, {kind}; bundles hold "
            "regular files only. Refusing to load it."
        )


def load_model(
    path: str | os.PathLike[str],
    *,
    expected_digest: str | None = None,
    trust: Trust | None = BUILT_IN_TRUST,
    fast: bool = True,
    compiled: bool = True,
) -> LoadedModel:
    """Load the bundle at ``path``.

    The bundle is read once into a private copy; every check below is made on the bytes of
    that copy, and the model is loaded from it. With ``fast`` (the default), scikit-learn
    forests predict through :class:`~loopline.bundle.forest.ForestPredictor` (identical
    outputs, checked here on the example batch; ~10× less time per call), and scaled
    logistic regressions through :class:`~loopline.bundle.linear.LinearPredictor` (the same
    arithmetic without scikit-learn's per-call validation; ~20× less), and a classifier
    serving ``predict`` and ``predict_proba`` runs once per batch
    (:mod:`~loopline.bundle.derived_predict`). With ``compiled`` (the default), a
    scikit-learn bundle whose manifest says its ONNX model serves answers through
    onnxruntime, once that model answers the stored input example within the tolerance
    recorded at save (:mod:`~loopline.bundle.compiler`; else scikit-learn serves, warned).

    Checks, in order: ``expected_digest`` (the registry's ``sha256:<hex>`` tree digest, see
    :func:`~loopline.bundle.tree_digest`) if given; each flavor file's sha256 against the
    manifest, and that no unlisted file is present; a ``python``-flavor loader against
    ``trust.loaders``; then loads, skops trusting only its defaults and the exact names of
    :data:`~loopline.bundle.trust.TRUSTED_TYPES` and ``trust.types``.
    ``trust=None`` is the built-in trust (a step's ``ctx.trust`` when no setting is made).

    Raises:
        NotFoundError: no bundle (or a listed file is missing) at ``path``.
        InvalidInputError: a digest mismatch, a damaged manifest, an untrusted type or loader.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError(f"No model bundle at {str(root)!r}: not a directory.")
    with tempfile.TemporaryDirectory(prefix="loopline-bundle-") as private:
        copy = Path(private) / "bundle"
        hashes = _copy_hashing(root, copy)
        digest = combine(hashes.items())
        if expected_digest is not None and digest != expected_digest:
            raise InvalidInputError(
                f"Bundle {str(root)!r} has digest {digest} but the registry recorded "
                f"{expected_digest}; the files changed after registration. Refusing to load it."
            )
        if MANIFEST_NAME not in hashes:
            raise NotFoundError(
                f"{str(root)!r} is not a model bundle: it has no {MANIFEST_NAME}. "
                "Save models with loopline.bundle.save_model."
            )
        manifest = Manifest.parse((copy / MANIFEST_NAME).read_bytes(), path=root / MANIFEST_NAME)
        estimator = _load_verified(root, copy, manifest, hashes, trust or BUILT_IN_TRUST)
        onnx = compiler.load_compiled(root, copy, manifest) if compiled else None
    for method in manifest.methods:
        if not callable(getattr(estimator, method, None)):
            raise InvalidInputError(
                f"Bundle {str(root)!r} serves {method!r} but the loaded "
                f"{type(estimator).__name__} has no such method."
            )
    model = LoadedModel(path=root, manifest=manifest, digest=digest, estimator=estimator)
    if isinstance(estimator, onnx_flavor.OnnxPredictor):
        return dataclasses.replace(model, compiled=estimator)
    if onnx is not None and (onnx := compiler.checked_compiled(model, onnx)) is not None:
        return dataclasses.replace(model, compiled=onnx)
    if not fast:
        return model
    calls = checked_fast_methods(model)
    argmax = derived_predict.proba_argmax(estimator, manifest.methods)
    return dataclasses.replace(model, calls=calls, argmax=argmax)


def _load_verified(
    root: Path, copy: Path, manifest: Manifest, hashes: dict[str, str], trust: Trust
) -> object:
    """The estimator of the private ``copy`` of ``root``, once its files match the manifest."""
    if manifest.flavor not in ("sklearn", "python", *native.FLAVORS, "onnx"):
        raise InvalidInputError(
            f"Bundle {str(root)!r} has flavor {manifest.flavor!r}; loopline loads "
            f"{['sklearn', 'python', *native.FLAVORS, 'onnx']}."
        )
    for rel, want in manifest.files.items():
        got = hashes.get(_inside(root, rel))
        if got is None:
            raise NotFoundError(f"Bundle {str(root)!r} lists {rel!r} but the file is missing.")
        if got != want:
            raise InvalidInputError(
                f"Bundle file {rel!r} has sha256 {got} but the manifest records {want}; "
                "the bundle was modified or damaged. Refusing to load it."
            )
    listed = {_inside(root, rel) for rel in manifest.files}
    unlisted = sorted(f for f in hashes if f != MANIFEST_NAME and f not in listed)
    if unlisted:
        raise InvalidInputError(
            f"Bundle {str(root)!r} holds {unlisted[0]!r}, which its manifest does not list; "
            "refusing to load files whose digest was never recorded."
        )
    if manifest.flavor == "python":
        if manifest.loader is None:
            raise InvalidInputError(f"Bundle {str(root)!r} (flavor python) names no loader.")
        trust.check_loader(manifest.loader, repr(str(root)))
        return python_flavor.load(
            copy, manifest.loader, with_transform=manifest.has_transform, trust=trust,
            shown_as=root,
        )  # fmt: skip
    if manifest.flavor in native.FLAVORS:
        flavor = xgboost_flavor if manifest.flavor == "xgboost" else lightgbm_flavor
        for name in (flavor.MODEL_FILE, native.SPEC_FILE):
            if name not in manifest.files:
                raise InvalidInputError(
                    f"Bundle {str(root)!r} does not list {name!r} in its manifest."
                )
        booster = flavor.load(copy, shown_as=root)
        return native.with_transform(booster, copy, manifest.files, trust=trust, shown_as=root)
    if manifest.flavor == "onnx":
        part = manifest.onnx
        if part is None or part.file is None or part.file not in manifest.files:
            raise InvalidInputError(
                f"Bundle {str(root)!r} (flavor onnx) lists no ONNX file in its manifest."
            )
        return onnx_flavor.load(
            copy, part, manifest.signature, sha256=manifest.files[part.file], shown_as=root
        )
    if sklearn_flavor.MODEL_FILE not in manifest.files:
        raise InvalidInputError(
            f"Bundle {str(root)!r} does not list {sklearn_flavor.MODEL_FILE!r} in its manifest."
        )
    return sklearn_flavor.load(copy, trust=trust, shown_as=root)


def checked_fast_methods(model: LoadedModel) -> dict[str, Method]:
    """The faster methods of :func:`fast_methods` that answer exactly as the originals.

    Both run on the model's example batch; a method whose output differs in any bit, dtype
    or shape (or that raises) is dropped with a warning, and the original serves.
    """
    candidates = fast_methods(model.estimator, model.methods) or linear.fast_methods(
        model.estimator, model.methods
    )
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
