"""Compiling a scikit-learn model when it is saved: convert to ONNX, run both, compare, decide.

``save_model(compile="auto" | "require")`` calls :func:`compile_sklearn`: the model is
converted with skl2onnx (:mod:`loopline.bundle.sklearn_onnx`; :data:`CANDIDATES` in order),
both the model and the ONNX model answer the check rows (the caller's data, up to
:data:`MAX_CHECK_ROWS` of them taken evenly, converted exactly as a request is), and
:func:`~loopline.bundle.onnx_part.compare` decides: labels equal on every row, probabilities
and regression values within the tolerance. The outcome is an
:class:`~loopline.bundle.onnx_part.OnnxPart` for the manifest — which path serves, the check, or
the reason in one sentence — and the ONNX bytes when they serve. Nothing here raises for a
model that cannot be compiled; ``require`` is the caller's decision.

At load, :func:`load_compiled` reads the compiled path from the verified copy and
:func:`checked_compiled` runs it on the bundle's stored input example and compares with
scikit-learn's outputs on those rows recorded at save, with the tolerance recorded then; if
either fails, scikit-learn serves and a warning says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loopline.bundle.batch import Batch, coerce_batch
from loopline.bundle.manifest import Manifest
from loopline.bundle.model import LoadedModel, model_input
from loopline.bundle.onnx_flavor import OnnxPredictor, session
from loopline.bundle.onnx_flavor import load as load_onnx
from loopline.bundle.onnx_part import MODEL_FILE, TOLERANCE, OnnxPart, compare
from loopline.bundle.signature import Signature, _columns_of
from loopline.errors import DependencyMissingError, InvalidInputError, require

log = logging.getLogger(__name__)

#: ``compile`` values: try and keep what passes / never / fail unless it passes.
MODES = ("auto", "off", "require")
#: At most this many rows of the check data are compared (taken evenly across it).
MAX_CHECK_ROWS = 10_000
#: The conversions tried, in order, until one passes: (name, float32, ints as floats).
#: ``double`` inputs are exact for scikit-learn's float64 arithmetic; integer columns stay
#: int64 unless that conversion fails; ``float`` is skl2onnx's most tested path.
CANDIDATES = (
    ("double", False, False),
    ("double (integers as double)", False, True),
    ("float", True, False),
)


@dataclass(frozen=True, slots=True)
class Compilation:
    """The manifest's ``onnx`` entry, and the ONNX model's bytes when it serves."""

    part: OnnxPart
    data: bytes | None

    @property
    def serves(self) -> str:
        return self.part.serves


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`.

    Raises:
        InvalidInputError: names the value and the choices.
    """
    if mode not in MODES:
        raise InvalidInputError(f"compile={mode!r} is not one of {list(MODES)}.")
    return mode


def check_batch(signature: Signature, data: Any) -> Batch:
    """Up to :data:`MAX_CHECK_ROWS` rows of ``data`` (a frame, a column mapping or a 2-D
    array), evenly spaced, as a request batch.

    Raises:
        InvalidInputError: the data does not fit the signature (names the column).
    """
    cols = _columns_of(data)
    if cols is None:
        cols = [(signature.inputs[0].name, np.asarray(data))]
    n = len(cols[0][1]) if cols else 0
    rows = np.unique(np.linspace(0, n - 1, min(n, MAX_CHECK_ROWS)).round().astype(np.intp))
    batch, _ = coerce_batch(signature, {name: np.asarray(v)[rows] for name, v in cols})
    return batch


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first[:240]}" if first else type(exc).__name__


def compile_sklearn(
    model: Any,
    signature: Signature,
    input_kind: str,
    methods: Sequence[str],
    data: Any,
    *,
    example: Mapping[str, list[Any]] | None = None,
    tolerance: float = TOLERANCE,
) -> Compilation:
    """Compile ``model`` to ONNX and keep it if it answers as ``model`` does on ``data`` and
    on ``example`` (the manifest's example rows), whose scikit-learn outputs are recorded for
    the load-time check (:func:`checked_compiled`)."""

    def refused(reason: str) -> Compilation:
        return Compilation(OnnxPart(serves="sklearn", reason=reason), None)

    try:
        for module in ("skl2onnx", "onnxruntime", "onnx"):
            require(module, "onnx", "Compiling scikit-learn models to ONNX")
    except DependencyMissingError:
        return refused("the onnx extra is not installed (pip install 'loopline[onnx]')")
    if data is None:
        return refused("there are no rows to check the compiled model on")
    try:
        batch = check_batch(signature, data)
        x = model_input(signature, input_kind, batch)
        want = {m: np.asarray(getattr(model, m)(x)) for m in methods}
        rows: Batch | None = None
        want_rows: dict[str, np.ndarray[Any, Any]] = {}
        if example is not None:
            rows, _ = coerce_batch(signature, example)
            x = model_input(signature, input_kind, rows)
            want_rows = {m: np.asarray(getattr(model, m)(x)) for m in methods}
    except Exception as exc:  # the model's own failure on its data is reported, not raised
        return refused(f"the model could not answer the check rows ({_one_line(exc)})")
    from loopline.bundle.sklearn_onnx import convert

    reasons: list[str] = []
    for inputs, float32, ints_as_floats in CANDIDATES:
        if ints_as_floats and not any(s.dtype == "int64" for s in signature.inputs):
            continue
        try:
            converted = convert(
                model, signature, methods, float32=float32, ints_as_floats=ints_as_floats
            )
        except Exception as exc:  # skl2onnx raises anything from RuntimeError to KeyError
            reasons.append(f"skl2onnx cannot convert it ({_one_line(exc)})")
            continue
        try:
            sess = session(converted.data, "the converted model")
            predictor = OnnxPredictor.of(sess, signature, converted.outputs, "the converted model")
            got = predictor.run(batch, list(methods))
            got_rows = predictor.run(rows, list(methods)) if rows is not None else {}
        except Exception as exc:
            reasons.append(f"onnxruntime cannot run it ({_one_line(exc)})")
            continue
        outcome = compare(want, got, tolerance=tolerance)
        if outcome.check is None:
            reasons.append(f"with {inputs} inputs {outcome.reason}")
            continue
        on_example = compare(want_rows, got_rows, tolerance=tolerance)
        if on_example.check is None:
            reasons.append(f"with {inputs} inputs, on the example rows, {on_example.reason}")
            continue
        part = OnnxPart(
            serves="onnx",
            file=MODEL_FILE,
            outputs=converted.outputs,
            check=outcome.check,
            example_outputs=(
                {m: v.tolist() for m, v in want_rows.items()} if rows is not None else None
            ),
        )
        return Compilation(part, converted.data)
    return refused("; ".join(dict.fromkeys(reasons)))


def load_compiled(root: Path, copy: Path, manifest: Manifest) -> OnnxPredictor | None:
    """The compiled path of a scikit-learn bundle (``copy`` is its verified private copy), or
    None when it has none or it cannot load here (warned: scikit-learn serves).

    Raises:
        InvalidInputError: ``model.onnx`` does not match its recorded sha256.
    """
    part = manifest.onnx
    if manifest.flavor != "sklearn" or part is None or part.serves != "onnx" or not part.file:
        return None
    if part.file not in manifest.files:
        raise InvalidInputError(
            f"Bundle {str(root)!r} serves {part.file!r} but its manifest lists no digest for it."
        )
    try:
        return load_onnx(
            copy, part, manifest.signature, sha256=manifest.files[part.file], shown_as=root
        )
    except DependencyMissingError as exc:
        log.warning("%s; serving %s with scikit-learn.", exc, root)
    except InvalidInputError as exc:
        if "sha256" in str(exc):
            raise
        log.warning("%s; serving %s with scikit-learn.", exc, root)
    return None


def checked_compiled(model: LoadedModel, predictor: OnnxPredictor) -> OnnxPredictor | None:
    """``predictor`` if it answers the bundle's example rows as scikit-learn did at save
    (``example_outputs``), within the tolerance recorded then; else None, with a warning
    (scikit-learn serves).

    The estimator itself is not run: a model server loads before it forks its workers, and
    some estimators (histogram gradient boosting) start OpenMP, which hangs the workers'
    first prediction after ``fork``.
    """
    part = model.manifest.onnx
    tolerance = part.check.tolerance if part is not None and part.check else TOLERANCE
    expected = part.example_outputs if part is not None else None
    if not expected or model.manifest.example is None:
        log.warning(
            "The compiled ONNX model of %s comes without scikit-learn's outputs on the "
            "example rows to check it against; serving with scikit-learn.",
            model.path,
        )
        return None
    try:
        want = {m: np.asarray(v) for m, v in expected.items()}
        got = predictor.run(model.example_batch(), list(want))
        outcome = compare(want, got, tolerance=tolerance)
    except Exception as exc:
        log.warning(
            "Checking the compiled ONNX model of %s raised (%s); serving with scikit-learn.",
            model.path,
            _one_line(exc),
        )
        return None
    if outcome.check is None:
        log.warning(
            "The compiled ONNX model of %s does not answer as scikit-learn on the example "
            "batch: %s; serving with scikit-learn.",
            model.path,
            outcome.reason,
        )
        return None
    return predictor
