"""``predict`` derived from ``predict_proba`` for classifiers, with the same labels.

A bundle serving both ``predict`` and ``predict_proba`` ran the whole pipeline twice per batch
(the taxi model's ColumnTransformer alone costs ~4 ms a run). For the scikit-learn classifiers
below, ``predict`` is ``classes_[argmax(predict_proba)]``, so the pipeline runs once:

- forests (``RandomForestClassifier``, ``ExtraTreesClassifier``) and the XGBoost/LightGBM
  classifiers of the native flavors (:class:`~loopline.bundle.native.BoosterClassifier`,
  alone or after their transform): their ``predict`` *is*
  ``classes_.take(argmax(predict_proba(X)))`` — the same labels by construction.
- the others decide on a score of which ``predict_proba`` is a per-row increasing function
  (``LogisticRegression``: ``score > 0`` / ``argmax(scores)``, probabilities ``expit`` /
  ``softmax`` of the scores; (histogram) gradient boosting: the same on raw predictions;
  trees, k-neighbours, naive Bayes, MLP: normalised counts, likelihoods, outputs). Their
  labels agree with the argmax except where rounding ties two probabilities: a score of
  ``1e-17 > 0`` gives ``expit = 0.5`` exactly, and the argmax's first-maximum rule (NumPy's and
  scikit-learn's) picks class 0 where ``predict`` says class 1; gradient boosting even says
  ``raw >= 0`` for binary models. So rows whose two largest probabilities are within
  :data:`NEAR_TIE` of each other are answered by the estimator's own ``predict`` (on those
  rows only): the labels are the same on every row.

Anything else (SVMs, whose Platt-scaled probabilities can disagree with ``predict``; unknown
estimators; multi-output models) keeps calling both methods.

Nothing is run to decide: the derivation follows from the estimator's type, whose
``predict`` was read in scikit-learn's source (1.9), and the tests compare the labels with
``predict`` on real data for each family, so an upgrade that changed one fails there. Running
the estimator at load to check would be worse than useless in a model server: the server
loads once and forks its workers, and a histogram gradient boosting or k-neighbours
``predict`` in the parent starts OpenMP, after which the workers' first ``predict`` hangs
(GNU OpenMP does not survive ``fork``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Rows whose two largest probabilities differ by at most this are labelled by ``predict``.
NEAR_TIE = 1e-9
_ARGMAX = frozenset({"RandomForestClassifier", "ExtraTreesClassifier"})
_MONOTONE = frozenset(
    {
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "GaussianNB",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "KNeighborsClassifier",
        "LogisticRegression",
        "LogisticRegressionCV",
        "MLPClassifier",
    }
)


@dataclass(frozen=True, slots=True, eq=False)
class ProbaArgmax:
    """Labels from probabilities: ``classes[argmax]``, near-ties asked of ``predict``."""

    classes: np.ndarray[Any, Any]
    exact: bool  # predict is literally classes_.take(argmax(predict_proba)): no near-ties

    def labels(
        self, proba: np.ndarray[Any, Any], x: Any, predict: Callable[[Any], Any]
    ) -> np.ndarray[Any, Any]:
        """The labels ``predict(x)`` returns, given ``proba = predict_proba(x)``."""
        labels: np.ndarray[Any, Any] = np.asarray(
            self.classes.take(np.argmax(proba, axis=1), axis=0)
        )
        if self.exact or proba.shape[0] == 0:
            return labels
        if proba.shape[1] == 2:
            margin = np.abs(proba[:, 1] - proba[:, 0])
        else:
            top = np.partition(proba, -2, axis=1)
            margin = top[:, -1] - top[:, -2]
        near = np.flatnonzero(~(margin > NEAR_TIE))  # NaN counts as near
        if near.size:
            rows = x.iloc[near] if hasattr(x, "iloc") else x[near]
            labels[near] = np.asarray(predict(rows))
        return labels


_NATIVE = ("loopline.bundle.native", "BoosterClassifier")
_THEN = ("loopline.bundle.python_flavor", "TransformThen")


def _final(estimator: Any) -> Any:
    """The model that answers last: the end of scikit-learn Pipelines, the model after a
    bundle's transform."""
    kind = type(estimator)
    while (kind.__module__, kind.__name__) in (("sklearn.pipeline", "Pipeline"), _THEN):
        if (kind.__module__, kind.__name__) == _THEN:
            estimator = estimator.model
        else:
            steps = getattr(estimator, "steps", None)
            if not steps:
                return None
            estimator = steps[-1][1]
        kind = type(estimator)
    return estimator


def proba_argmax(estimator: Any, methods: tuple[str, ...]) -> ProbaArgmax | None:
    """The derivation for ``estimator`` (a classifier above, or a Pipeline ending in one)
    when it serves both ``predict`` and ``predict_proba``; else None."""
    if "predict" not in methods or "predict_proba" not in methods:
        return None
    final = _final(estimator)
    kind = type(final)
    native = (kind.__module__, kind.__name__) == _NATIVE
    known = kind.__module__.startswith("sklearn.") and kind.__name__ in _ARGMAX | _MONOTONE
    if not (native or known):
        return None
    classes = getattr(final, "classes_", None)
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or len(classes) < 2:
        return None  # multi-output models hold a list of class arrays
    if getattr(final, "n_outputs_", 1) != 1:
        return None
    return ProbaArgmax(classes=classes, exact=native or kind.__name__ in _ARGMAX)
