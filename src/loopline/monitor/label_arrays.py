"""Checked NumPy views of what the metrics are given: class labels, predictions and scores.

Class labels are strings, integers or booleans, all of one kind per array (an object array of
Python strings, as Arrow and pandas hand them over, becomes a string array). Missing values,
empty arrays, mismatched lengths and mixed kinds raise
:class:`~loopline.errors.InvalidInputError` naming the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInputError

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Scalar = str | int | float | bool  # a class label


def vector(values: npt.ArrayLike, field: str) -> npt.NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError(f"{field} must be a 1-d array; got shape {arr.shape}.")
    if arr.size == 0:
        raise InvalidInputError(f"{field} is empty; a metric needs at least one row.")
    return arr


def same_length(a: npt.NDArray[Any], b: npt.NDArray[Any], fa: str, fb: str) -> None:
    if len(a) != len(b):
        raise InvalidInputError(
            f"{fa} has {len(a)} rows but {fb} has {len(b)}; pass one of each per row."
        )


def class_array(values: npt.ArrayLike, field: str) -> npt.NDArray[Any]:
    """Class labels as a NumPy array of one kind: strings (``U``) or numbers/booleans."""
    arr = vector(values, field)
    if arr.dtype.kind == "O":
        items = arr.tolist()
        missing = sum(1 for v in items if v is None)
        if missing:
            raise InvalidInputError(
                f"{field} has {missing} missing value(s) (None); drop unlabelled rows first."
            )
        kinds = {type(v) for v in items}
        if kinds <= {str}:
            arr = arr.astype(str)
        elif kinds <= {int, bool}:
            arr = arr.astype(np.int64)
        elif kinds <= {int, bool, float}:
            arr = arr.astype(np.float64)
        else:
            names = ", ".join(sorted(k.__name__ for k in kinds))
            raise InvalidInputError(
                f"{field} mixes value types ({names}); class labels must be all strings or all "
                "numbers."
            )
    if arr.dtype.kind == "f":
        nan = int(np.sum(np.isnan(arr)))
        if nan:
            raise InvalidInputError(
                f"{field} has {nan} missing value(s) (NaN); drop unlabelled rows first."
            )
    if arr.dtype.kind not in "UbiuSf":
        raise InvalidInputError(
            f"{field} has values of dtype {arr.dtype}; class labels must be strings or numbers."
        )
    return arr


def encode(
    labels: npt.ArrayLike, predictions: npt.ArrayLike, pred_field: str = "predictions"
) -> tuple[Ints, Ints, npt.NDArray[Any]]:
    """Labels and predictions as codes into their sorted union of classes."""
    y = class_array(labels, "labels")
    p = class_array(predictions, pred_field)
    same_length(y, p, "labels", pred_field)
    if (y.dtype.kind in "US") != (p.dtype.kind in "US"):
        raise InvalidInputError(
            f"labels are {'strings' if y.dtype.kind in 'US' else 'numbers'} but {pred_field} "
            f"are {'strings' if p.dtype.kind in 'US' else 'numbers'}; compare like with like "
            "(map the model's output to the label values)."
        )
    classes, codes = np.unique(np.concatenate([y, p]), return_inverse=True)
    return codes[: len(y)].astype(np.int64), codes[len(y) :].astype(np.int64), classes


def positive_index(classes: npt.NDArray[Any], positive_class: Any, field: str) -> int | None:
    """Index of the positive class; None for a macro average over more than two classes."""
    if positive_class is None:
        values = set(classes.tolist())
        if values <= {0, 1} or values <= {False, True}:
            return int(np.flatnonzero(classes == 1)[0]) if 1 in values else -1
        if len(classes) > 2:
            return None
        raise InvalidInputError(
            f"Name the positive class (positive_class=...) for {field}: the classes are "
            f"{classes.tolist()!r}."
        )
    check_positive_kind(classes, positive_class)
    hit = np.flatnonzero(classes == positive_class)
    if hit.size == 0:
        return -1  # never seen: every row is negative
    return int(hit[0])


def check_positive_kind(classes: npt.NDArray[Any], positive_class: Any) -> None:
    textual = classes.dtype.kind in "US"
    if textual != isinstance(positive_class, str):
        raise InvalidInputError(
            f"positive_class {positive_class!r} is "
            f"{'a string' if isinstance(positive_class, str) else 'a number'} but the classes are "
            f"{'strings' if textual else 'numbers'} ({classes[:5].tolist()!r}); name it as it "
            "appears in the labels."
        )


def confusion(y: Ints, p: Ints, k: int) -> Ints:
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def numbers(values: npt.ArrayLike, field: str) -> Floats:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise InvalidInputError(f"{field} must be numbers; got values of dtype {arr.dtype}.")
    out = arr.astype(np.float64)
    if out.size == 0:
        raise InvalidInputError(f"{field} is empty; a metric needs at least one row.")
    if not np.all(np.isfinite(out)):
        bad = int(np.sum(~np.isfinite(out)))
        raise InvalidInputError(f"{field} has {bad} missing or infinite value(s) (NaN/inf).")
    return out


def probabilities(values: npt.ArrayLike, field: str) -> Floats:
    """Probabilities of the positive class: finite numbers in [0, 1]."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(f"{field} must be a non-empty 1-d array; got shape {arr.shape}.")
    if arr.dtype.kind not in "fiu":
        raise InvalidInputError(
            f"{field} must be the positive class's probabilities; got dtype {arr.dtype}."
        )
    out = arr.astype(np.float64)
    bad = int(np.count_nonzero(~np.isfinite(out) | (out < 0) | (out > 1)))
    if bad:
        raise InvalidInputError(
            f"{field} has {bad} value(s) outside [0, 1] or missing; CBPE needs the positive "
            "class's probability per row (predict_proba[:, positive column])."
        )
    return out


def class_membership(
    values: npt.ArrayLike, positive_class: Scalar, field: str, n: int
) -> npt.NDArray[np.bool_]:
    """Whether each of ``n`` binary class labels is ``positive_class``."""
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise InvalidInputError(
            f"{field} must be a 1-d array with one value per score ({n}); got shape {arr.shape}."
        )
    if arr.dtype.kind == "O":
        items = arr.tolist()
        if any(v is None for v in items):
            raise InvalidInputError(f"{field} has missing values (None); drop those rows first.")
        arr = np.asarray(items)
    textual = arr.dtype.kind in "US"
    if textual != isinstance(positive_class, str):
        raise InvalidInputError(
            f"{field} are {'strings' if textual else 'numbers'} but positive_class "
            f"{positive_class!r} is not; name the positive class as it appears in {field}."
        )
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise InvalidInputError(f"{field} has missing values (NaN); drop those rows first.")
    first = arr[:1]
    others = arr[arr != first[0]]
    if others.size and np.any(others != others[0]):
        classes = np.unique(arr)
        raise InvalidInputError(
            f"{field} hold {len(classes)} classes ({classes[:5].tolist()!r}…); CBPE here is "
            "for binary classifiers."
        )
    return np.asarray(arr == positive_class, dtype=bool)
