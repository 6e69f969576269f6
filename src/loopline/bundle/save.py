"""Write a model bundle: flavor files + ``loopline-model.yaml``, atomically."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from loopline.bundle import (
    compiler,
    lightgbm_flavor,
    native,
    onnx_flavor,
    python_flavor,
    sklearn_flavor,
    xgboost_flavor,
)
from loopline.bundle.batch import coerce_batch
from loopline.bundle.digest import file_sha256
from loopline.bundle.manifest import Manifest
from loopline.bundle.onnx_part import OnnxPart
from loopline.bundle.signature import Signature, TensorSpec, _columns_of, dtype_name
from loopline.errors import AlreadyExistsError, InvalidInputError

FLAVORS = ("sklearn", "python", *native.FLAVORS, "onnx")
_NATIVE = {"xgboost": xgboost_flavor, "lightgbm": lightgbm_flavor}
_ENV_PACKAGES = (
    "loopline", "scikit-learn", "numpy", "scipy", "skops", "pandas",
    "xgboost", "xgboost-cpu", "lightgbm", "onnxruntime", "skl2onnx",
)  # fmt: skip
_EXAMPLE_ROWS = 5


def _environment() -> dict[str, str]:
    env = {"python": platform.python_version()}
    for pkg in _ENV_PACKAGES:
        try:
            env[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            continue
    return env


def _complete_outputs(model: Any, signature: Signature, methods: Sequence[str]) -> Signature:
    """Add an output spec for each method the signature does not describe yet."""
    outputs = list(signature.outputs)
    known = {s.name for s in outputs}
    classes = getattr(model, "classes_", None)
    for method in methods:
        if method in known:
            continue
        if method == "predict_proba" and classes is not None:
            outputs.append(TensorSpec(method, "float64", (-1, len(classes))))
        elif method == "predict":
            dtype = dtype_name(np.asarray(classes).dtype) if classes is not None else "float64"
            outputs.append(TensorSpec(method, dtype, (-1,)))
        else:
            raise InvalidInputError(
                f"Method {method!r} has no output in the signature and loopline cannot infer "
                "one; add a TensorSpec named after the method to signature.outputs."
            )
    extra = [s.name for s in outputs if s.name not in methods]
    if extra:
        raise InvalidInputError(
            f"Signature output {extra[0]!r} is not a served method; outputs are named after "
            f"methods {list(methods)}."
        )
    return Signature(inputs=signature.inputs, outputs=tuple(outputs))


def _example(signature: Signature, input_example: Any) -> dict[str, list[Any]] | None:
    if input_example is None:
        return None
    cols = _columns_of(input_example)
    if cols is None:
        arr = np.asarray(input_example)
        cols = [(signature.inputs[0].name, arr)]
    example = {name: np.asarray(v)[:_EXAMPLE_ROWS].tolist() for name, v in cols}
    coerce_batch(signature, example)  # the example must satisfy the signature
    return example


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    signature: Signature,
    flavor: str | None = None,
    methods: Sequence[str] = ("predict",),
    metadata: Mapping[str, Any] | None = None,
    input_example: Any = None,
    transform: Any = None,
    compile: str = "off",
    check_data: Any = None,
) -> Path:
    """Save ``model`` as a bundle directory at ``path`` and return the path.

    Flavors: ``"sklearn"`` (skops; compose any preprocessing into a scikit-learn Pipeline),
    ``"python"`` (a model of any framework that saves itself, see
    :mod:`loopline.bundle.python_flavor`; a fitted scikit-learn ``transform`` may precede it),
    ``"xgboost"`` and ``"lightgbm"`` (the library's own format, see
    :mod:`loopline.bundle.native`; a ``transform``, or the steps of a ``Pipeline`` ending in
    the booster, may precede it). ``flavor`` None: the native flavor of an XGBoost or
    LightGBM model, else ``"sklearn"``. ``"onnx"``: an ONNX model (bytes, an
    ``onnx.ModelProto`` or a ``.onnx`` path) served by onnxruntime, see
    :mod:`loopline.bundle.onnx_flavor`; its outputs answer the methods by name (or skl2onnx's
    ``label``/``probabilities``/``variable``).

    ``compile`` (flavor ``sklearn``): ``"auto"`` converts the model to ONNX as well, runs
    both on ``check_data`` (default: ``input_example``, which is then also taken from the
    first rows of ``check_data`` when not given) and keeps ``model.onnx`` to serve
    when labels are equal and other outputs within the tolerance
    (:mod:`loopline.bundle.compiler`); the manifest's ``onnx`` entry records the check or why
    scikit-learn serves. ``"require"`` raises unless the compiled model passes; ``"off"``
    (the default) does not try.

    The bundle appears atomically (written under a temporary name, then renamed).
    ``methods`` are the estimator methods served, e.g. ``("predict", "predict_proba")``;
    outputs missing from ``signature`` are inferred for ``predict``/``predict_proba``.
    ``input_example`` (same kinds as :func:`infer_signature` accepts; first rows kept) is used
    for the warm-up inference that gates a server's readiness.

    Raises:
        AlreadyExistsError: ``path`` exists and is not an empty directory.
        InvalidInputError: unknown flavor, a method the model lacks, a bad example, an
            unknown ``compile`` value, or ``compile="require"`` and the model did not compile
            (the message says why).
    """
    detected = native.native_flavor(model)
    flavor = flavor or detected or "sklearn"
    if flavor not in FLAVORS:
        raise InvalidInputError(f"Unknown flavor {flavor!r}; loopline saves {list(FLAVORS)}.")
    if detected is not None and flavor != detected:
        raise InvalidInputError(
            f"{type(model).__name__} comes from {detected}; save it with flavor {detected!r} "
            f"(the default for it), which loads without running code, not {flavor!r}."
        )
    if transform is not None and flavor == "sklearn":
        raise InvalidInputError(
            "transform= goes with flavor 'python' (or 'xgboost', 'lightgbm'); for scikit-learn "
            "models compose it into the model: Pipeline([('transform', t), ('model', m)])."
        )
    if flavor == "python":
        python_flavor.loader_of(model)  # the save/load protocol, before anything else
    methods = tuple(methods)
    if not methods:
        raise InvalidInputError("Serve at least one method, e.g. methods=('predict',).")
    compiler.check_mode(compile)
    if compile != "off" and flavor != "sklearn":
        raise InvalidInputError(
            f"compile={compile!r} compiles scikit-learn models; this one has flavor {flavor!r}."
        )
    onnx_data: bytes | None = None
    onnx_part: OnnxPart | None = None
    if flavor == "onnx":
        onnx_data, signature, onnx_part = onnx_flavor.prepare(model, signature, methods)
    for method in methods if flavor != "onnx" else ():
        if not callable(getattr(model, method, None)):
            raise InvalidInputError(
                f"Model {type(model).__name__} has no method {method!r} to serve."
            )
    if flavor in _NATIVE:
        transform, model = native.split_pipeline(model, transform)
        model = _NATIVE[flavor].wrap(
            model, signature=signature if transform is None else None, methods=methods
        )
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExistsError(
            f"Cannot save a model to {str(target)!r}: it already exists. Choose a new path."
        )
    signature = _complete_outputs(model, signature, methods)
    names_in = getattr(transform if transform is not None else model, "feature_names_in_", None)
    if signature.is_tensor:
        input_kind = "array"
    elif flavor == "onnx":
        input_kind = "frame"
    elif names_in is not None or any(s.dtype == "string" for s in signature.inputs):
        input_kind = "frame"
        sig_names = [s.name for s in signature.inputs]
        if names_in is not None and list(names_in) != sig_names:
            raise InvalidInputError(
                f"The model was fitted on columns {list(names_in)} but the signature lists "
                f"{sig_names}; they must match in order."
            )
    else:
        input_kind = "array"
    example = _example(signature, input_example)
    if compile != "off":
        data = check_data if check_data is not None else input_example
        if example is None and data is not None:  # the load-time check runs on the example
            example = _example(signature, data)
        compiled = compiler.compile_sklearn(
            model, signature, input_kind, methods, data, example=example
        )
        if compile == "require" and compiled.data is None:
            raise InvalidInputError(
                f"compile='require' but {type(model).__name__} does not compile to ONNX: "
                f"{compiled.part.reason}. Use compile='auto' to serve it with scikit-learn."
            )
        onnx_data, onnx_part = compiled.data, compiled.part
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        loader: str | None = None
        if flavor == "python":
            files, loader = python_flavor.save(model, staging, transform=transform)
        elif flavor in _NATIVE:
            files = _NATIVE[flavor].save(model, staging)
            files += native.save_transform(transform, staging)
        elif flavor == "onnx":
            files = []
        else:
            files = sklearn_flavor.save(model, staging)
        if onnx_data is not None:
            files += onnx_flavor.save(onnx_data, staging)
        manifest = Manifest(
            flavor=flavor,
            signature=signature,
            methods=methods,
            input_kind=input_kind,
            files={f: file_sha256(staging / f) for f in files},
            environment=_environment(),
            metadata=dict(metadata or {}),
            example=example,
            loader=loader,
            has_transform=transform is not None,
            onnx=onnx_part,
        )
        manifest.write(staging)
        for f in staging.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
