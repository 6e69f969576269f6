"""A faster ``predict`` for fitted scikit-learn forests, with bit-identical outputs.

A ``RandomForest*``/``ExtraTrees*`` model spends almost all of a ``predict`` call outside
the trees: scikit-learn dispatches every tree through joblib, and each dispatch enters a
``config_context`` and a ``warnings.catch_warnings`` (≈ 80 µs per tree, so ≈ 8 ms for 100
trees whether the batch has 1 row or 64). The trees themselves — each fitted tree's own
Cython ``tree_.predict`` — take ≈ 5 µs. :class:`ForestPredictor` runs exactly what
scikit-learn's sequential path runs (same input validation, the same trees in the same order,
the same float64 accumulation and division, the same ``argmax``/``classes_`` lookup) without
the per-tree dispatch, so the outputs are identical bit for bit.

It applies to single-output ``RandomForestClassifier``, ``ExtraTreesClassifier``,
``RandomForestRegressor`` and ``ExtraTreesRegressor``, alone or as the last step of a
``Pipeline``; :func:`fast_methods` returns nothing for anything else, and the caller keeps
the estimator's own methods. The caller checks the result against the original methods on a
probe batch before using it (see :mod:`loopline.bundle.load`), so a scikit-learn release
that changes these internals falls back instead of answering differently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Method = Callable[[Any], Any]

_CLASSIFIERS = frozenset({"RandomForestClassifier", "ExtraTreesClassifier"})
_REGRESSORS = frozenset({"RandomForestRegressor", "ExtraTreesRegressor"})
_MODULE = "sklearn.ensemble._forest"


@dataclass(frozen=True, slots=True, eq=False)
class ForestPredictor:
    """The trees of one fitted single-output forest, called directly."""

    forest: Any
    trees: tuple[Any, ...]
    classifier: bool
    n_classes: int

    @classmethod
    def of(cls, forest: Any) -> ForestPredictor | None:
        """The predictor of ``forest``, or None when it is not a supported fitted forest."""
        kind = type(forest)
        if kind.__module__ != _MODULE or kind.__name__ not in _CLASSIFIERS | _REGRESSORS:
            return None
        estimators = getattr(forest, "estimators_", None)
        if not estimators or getattr(forest, "n_outputs_", None) != 1:
            return None
        if not callable(getattr(forest, "_validate_X_predict", None)):
            return None
        trees = tuple(getattr(e, "tree_", None) for e in estimators)
        if any(t is None or not callable(getattr(t, "predict", None)) for t in trees):
            return None
        classifier = kind.__name__ in _CLASSIFIERS
        n_classes = int(forest.n_classes_) if classifier else 0
        return cls(forest=forest, trees=trees, classifier=classifier, n_classes=n_classes)

    def _validated(self, x: Any) -> Any:
        # The forest's own validation: float32 conversion, feature count/names, finiteness.
        return self.forest._validate_X_predict(x)

    def predict_proba(self, x: Any) -> np.ndarray[Any, Any]:
        """Mean of the trees' class probabilities (``ForestClassifier.predict_proba``)."""
        x = self._validated(x)
        k = self.n_classes
        out = np.zeros((x.shape[0], k), dtype=np.float64)
        for tree in self.trees:
            out += tree.predict(x)[:, :k]
        out /= len(self.trees)
        return out

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        """Class labels (classifiers) or the mean of the trees' values (regressors)."""
        if self.classifier:
            proba = self.predict_proba(x)
            return np.asarray(self.forest.classes_.take(np.argmax(proba, axis=1), axis=0))
        x = self._validated(x)
        out = np.zeros(x.shape[0], dtype=np.float64)
        for tree in self.trees:
            out += tree.predict(x)[:, 0]
        out /= len(self.trees)
        return out

    def method(self, name: str) -> Method | None:
        if name == "predict":
            return self.predict
        if name == "predict_proba" and self.classifier:
            return self.predict_proba
        return None


def fast_methods(estimator: Any, methods: Sequence[str]) -> dict[str, Method]:
    """Faster equivalents of ``estimator``'s ``methods`` where a forest allows them.

    ``estimator`` may be the forest or a scikit-learn ``Pipeline`` ending in one (its other
    steps run as ``Pipeline.predict`` runs them: ``transform`` in order).
    """
    prefix: Any = None
    forest = estimator
    steps = getattr(estimator, "steps", None)
    kind = type(estimator)
    if (kind.__module__, kind.__name__) == ("sklearn.pipeline", "Pipeline") and steps:
        prefix = estimator[:-1] if len(steps) > 1 else None
        forest = steps[-1][1]
    predictor = ForestPredictor.of(forest)
    if predictor is None:
        return {}
    out: dict[str, Method] = {}
    for name in methods:
        fast = predictor.method(name)
        if fast is None:
            continue
        out[name] = fast if prefix is None else _after(prefix, fast)
    return out


def _after(prefix: Any, fast: Method) -> Method:
    def call(x: Any) -> Any:
        return fast(prefix.transform(x))

    return call
