"""The ONNX part of a bundle: its manifest record, and the check that decides whether it serves.

A bundle may carry ``model.onnx``: as its only model (flavor ``onnx``), or beside
``model.skops`` as the *compiled path* of a scikit-learn model (``save_model(compile=...)``,
chosen by the Trainer). The manifest's ``onnx`` entry (:class:`OnnxPart`) records the file,
which ONNX output answers each served method, which path serves (``onnx`` or ``sklearn``) and
why, and — for a compiled scikit-learn model — the check that chose it (:class:`Check`) and
scikit-learn's outputs on the example rows, which the load-time check compares against.

:func:`compare` is that check, a pure function of two sets of outputs: labels (any output that
is not floating point) must be equal row for row; floating-point outputs may differ by at most
``tolerance`` (absolute, or relative for values larger than 1 in magnitude). onnxruntime's tree
ensembles and linear classifiers answer in float32, so probabilities differ from
scikit-learn's float64 ones in the 8th digit: measured on the taxi model (6,822 rows), a
scaled logistic regression and a random forest (breast cancer), the largest difference was
under 1e-7; :data:`TOLERANCE` is ten times that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopline.errors import InvalidInputError

#: The largest difference allowed between a compiled output and scikit-learn's (see above).
TOLERANCE = 1e-6
MODEL_FILE = "model.onnx"
PATHS = ("onnx", "sklearn")


@dataclass(frozen=True, slots=True)
class Check:
    """How the compiled path compared with scikit-learn on ``rows`` rows.

    ``max_abs_diff`` is the largest difference of a floating-point output (scaled down by the
    value's magnitude where that exceeds 1); labels were equal on every row when it passed.
    """

    tolerance: float
    max_abs_diff: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance, "max_abs_diff": self.max_abs_diff, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Any) -> Check:
        if not isinstance(data, Mapping):
            raise TypeError("onnx.check")
        for key in ("tolerance", "max_abs_diff", "rows"):
            if key not in data:
                raise KeyError(f"onnx.check.{key}")
        tolerance, diff, rows = data["tolerance"], data["max_abs_diff"], data["rows"]
        for name, value in (("onnx.check.tolerance", tolerance), ("onnx.check.max_abs_diff", diff)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(name)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise TypeError("onnx.check.rows")
        return cls(tolerance=float(tolerance), max_abs_diff=float(diff), rows=rows)


@dataclass(frozen=True, slots=True)
class OnnxPart:
    """The manifest's ``onnx`` entry.

    Attributes:
        serves: ``"onnx"`` when ``file`` answers requests, ``"sklearn"`` when the scikit-learn
            model does (compiling was off, failed, or was not exact enough: ``reason`` says).
        file: the ONNX file (also listed with its sha256 in the manifest's ``files``), or None
            when there is none.
        outputs: served method → ONNX output name (``predict → label``, ``predict_proba →
            probabilities`` for skl2onnx's classifiers).
        check: the comparison with scikit-learn at save time (compiled models only).
        reason: why scikit-learn serves, in one sentence (``serves == "sklearn"`` only).
        example_outputs: scikit-learn's outputs (method → values) on the manifest's example
            rows at save: what the ONNX model is checked against at load, without running
            the estimator there (compiled models only).
    """

    serves: str
    file: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    check: Check | None = None
    reason: str | None = None
    example_outputs: Mapping[str, list[Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"serves": self.serves}
        if self.file is not None:
            out["file"] = self.file
            out["outputs"] = dict(self.outputs)
        if self.check is not None:
            out["check"] = self.check.to_dict()
        if self.reason is not None:
            out["reason"] = self.reason
        if self.example_outputs is not None:
            out["example_outputs"] = {k: list(v) for k, v in self.example_outputs.items()}
        return out

    @classmethod
    def from_dict(cls, data: Any) -> OnnxPart:
        """Raises TypeError/KeyError/ValueError naming the field (the manifest reports it)."""
        if not isinstance(data, Mapping):
            raise TypeError("onnx")
        serves = data.get("serves")
        if serves not in PATHS:
            raise ValueError("onnx.serves")
        file = data.get("file")
        outputs = data.get("outputs") or {}
        if file is not None and not (isinstance(file, str) and file):
            raise TypeError("onnx.file")
        if not isinstance(outputs, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in outputs.items()
        ):
            raise TypeError("onnx.outputs")
        if serves == "onnx" and (file is None or not outputs):
            raise KeyError("onnx.file")
        reason = data.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise TypeError("onnx.reason")
        check = data.get("check")
        example = data.get("example_outputs")
        if example is not None and not (
            isinstance(example, Mapping)
            and all(isinstance(k, str) and isinstance(v, list) for k, v in example.items())
        ):
            raise TypeError("onnx.example_outputs")
        return cls(
            serves=serves,
            file=file,
            outputs=dict(outputs),
            check=None if check is None else Check.from_dict(check),
            reason=reason,
            example_outputs=None if example is None else dict(example),
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of :func:`compare`: ``check`` when within tolerance, else ``reason``."""

    check: Check | None
    reason: str | None
    max_abs_diff: float


def compare(
    want: Mapping[str, np.ndarray[Any, Any]],
    got: Mapping[str, np.ndarray[Any, Any]],
    *,
    tolerance: float = TOLERANCE,
) -> Comparison:
    """Compare ``got`` (the compiled path's outputs) with ``want`` (scikit-learn's).

    Labels (outputs that are not floating point in ``want``) must be equal row for row;
    floating-point outputs may differ by ``tolerance × max(1, |want|)``. NaN must meet NaN.

    Example:
        >>> proba = np.array([[0.7, 0.3], [0.2, 0.8]])
        >>> want = {"predict": np.array([0, 1]), "predict_proba": proba}
        >>> got = {"predict": np.array([0, 1]), "predict_proba": proba.astype(np.float32)}
        >>> compare(want, got).check is not None
        True
    """
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidInputError(f"Tolerance {tolerance!r} must be a finite number >= 0.")
    worst = 0.0
    rows = 0
    for name, expected in want.items():
        if name not in got:
            return Comparison(None, f"the compiled model gives no {name!r} output", math.inf)
        a, b = np.asarray(expected), np.asarray(got[name])
        rows = max(rows, int(a.shape[0]) if a.ndim else 1)
        if a.shape != b.shape:
            return Comparison(
                None,
                f"its {name} has shape {list(b.shape)} where scikit-learn's has {list(a.shape)}",
                math.inf,
            )
        if a.dtype.kind not in "fc":
            same = np.asarray(a == b, dtype=bool)
            differ = int(a.size - np.count_nonzero(same))
            if differ:
                return Comparison(
                    None,
                    f"its {name} differs from scikit-learn's on {differ} of {a.size} rows",
                    math.inf,
                )
            continue
        b = b.astype(np.float64)
        a = a.astype(np.float64)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if not np.array_equal(nan_a, nan_b):
            return Comparison(None, f"its {name} has NaN where scikit-learn's has not", math.inf)
        ok = ~nan_a
        if not ok.any():
            continue
        diff = float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(a[ok]))))
        worst = max(worst, diff)
        if not diff <= tolerance:
            return Comparison(
                None,
                f"its {name} differs from scikit-learn's by up to {diff:.3g} (tolerance "
                f"{tolerance:g}) on {rows} rows",
                diff,
            )
    return Comparison(Check(tolerance=tolerance, max_abs_diff=worst, rows=rows), None, worst)
