"""A faster ``predict`` for fitted scikit-learn linear classifiers, with bit-identical outputs.

A ``StandardScaler`` + ``LogisticRegression`` pipeline spends almost all of a ``predict``
call in scikit-learn's per-call machinery, not in arithmetic: ``validate_data`` twice
(dtype, finiteness, feature count and names), array-API namespace look-ups, ``check_is_fitted``
(≈ 300–450 µs per call here whether the batch has 1 row or 64). The arithmetic is one
subtraction, one division, one matrix product and one comparison (≈ 10–25 µs).
:class:`LinearPredictor` runs that arithmetic exactly as scikit-learn does (``X -= mean_``,
``X /= scale_`` on a float64 copy, ``X @ coef_.T + intercept_``, ``scores > 0`` or
``argmax``, ``classes_.take``), so the outputs are identical bit for bit.

It applies to ``LogisticRegression``, alone or as the last step of a ``Pipeline`` whose
other steps are ``StandardScaler`` s, fitted on arrays (no ``feature_names_in_``: scikit-learn
would check column names) and dense. Only plain input takes the fast path: a 2-D float64
``ndarray`` with the fitted number of columns and only finite values; anything else (lists,
other dtypes, NaN, a wrong width, a DataFrame) goes to the estimator's own ``predict``, which
converts, warns or raises exactly as before. :func:`fast_methods` returns nothing for other
models; the caller checks the result against the original on the example batch before using
it (:func:`loopline.bundle.load.checked_fast_methods`), so a scikit-learn release that changes
these internals falls back instead of answering differently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Method = Callable[[Any], Any]

_SCALER = ("sklearn.preprocessing._data", "StandardScaler")
_CLASSIFIER = ("sklearn.linear_model._logistic", "LogisticRegression")
_PIPELINE = ("sklearn.pipeline", "Pipeline")


def _kind(obj: Any) -> tuple[str, str]:
    t = type(obj)
    return (t.__module__, t.__name__)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class LinearPredictor:
    """The fitted arrays of ``[StandardScaler…] + LogisticRegression``, applied directly."""

    estimator: Any  # the original (Pipeline or LogisticRegression): the slow path
    scalers: tuple[tuple[np.ndarray[Any, Any] | None, np.ndarray[Any, Any] | None], ...]
    coef_t: np.ndarray[Any, Any]
    intercept: np.ndarray[Any, Any]
    classes: np.ndarray[Any, Any]
    n_features: int

    @classmethod
    def of(cls, estimator: Any) -> LinearPredictor | None:
        """The predictor of ``estimator``, or None when it is not a supported fitted model."""
        steps: list[Any] = [estimator]
        if _kind(estimator) == _PIPELINE:
            steps = [s for _, s in getattr(estimator, "steps", ())]
            if not steps or any(s is None or s == "passthrough" for s in steps):
                return None
        *prefix, clf = steps
        if _kind(clf) != _CLASSIFIER or any(_kind(s) != _SCALER for s in prefix):
            return None
        scalers = []
        for s in prefix:
            if hasattr(s, "feature_names_in_"):
                return None
            mean = s.mean_ if s.with_mean else None
            scale = s.scale_ if s.with_std else None
            for a in (mean, scale):
                if a is not None and (not isinstance(a, np.ndarray) or a.dtype != np.float64):
                    return None
            scalers.append((mean, scale))
        coef = getattr(clf, "coef_", None)
        intercept = getattr(clf, "intercept_", None)
        classes = getattr(clf, "classes_", None)
        if hasattr(clf, "feature_names_in_") or not all(
            isinstance(a, np.ndarray) for a in (coef, intercept, classes)
        ):
            return None
        assert isinstance(coef, np.ndarray) and isinstance(classes, np.ndarray)
        if coef.dtype != np.float64 or coef.ndim != 2 or len(classes) < 2:
            return None
        return cls(
            estimator=estimator,
            scalers=tuple(scalers),
            coef_t=coef.T if coef.ndim == 2 else coef,
            intercept=np.asarray(intercept),
            classes=classes,
            n_features=int(coef.shape[1]),
        )

    def predict(self, x: Any) -> Any:
        """Class labels, as ``estimator.predict(x)`` (which answers any non-plain input)."""
        if (
            type(x) is not np.ndarray
            or x.dtype != np.float64
            or x.ndim != 2
            or x.shape[1] != self.n_features
            or x.shape[0] == 0
            or not np.isfinite(x).all()
        ):
            return self.estimator.predict(x)
        for mean, scale in self.scalers:
            x = x.copy()  # StandardScaler.transform(copy=True) works on a copy
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
        scores = x @ self.coef_t + self.intercept
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.reshape((-1,))
        if scores.ndim == 1:
            indices = (scores > 0).astype(np.intp)
        else:
            indices = np.argmax(scores, axis=1)
        return self.classes.take(indices, axis=0)

    def method(self, name: str) -> Method | None:
        return self.predict if name == "predict" else None


def fast_methods(estimator: Any, methods: Sequence[str]) -> dict[str, Method]:
    """Faster equivalents of ``estimator``'s ``methods`` where a linear model allows them."""
    predictor = LinearPredictor.of(estimator)
    if predictor is None:
        return {}
    out: dict[str, Method] = {}
    for name in methods:
        fast = predictor.method(name)
        if fast is not None:
            out[name] = fast
    return out
