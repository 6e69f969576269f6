"""The ``xgboost`` flavor: XGBoost models saved as UBJSON and loaded by XGBoost itself.

``model.ubj`` is ``Booster.save_model`` (trees, objective, feature names and types, the
categories of categorical features); ``estimator.json`` is what ``XGBClassifier`` /
``XGBRegressor`` add (:class:`~loopline.bundle.native.NativeSpec`). Loading parses both from
the verified private copy (``Booster().load_model(bytes)``): nothing is executed.

Served as the scikit-learn wrappers predict: ``inplace_predict`` with the estimator's
``missing`` value and, after early stopping, its best iteration (``iteration_range``); a raw
``Booster`` uses every tree, as ``Booster.predict`` does. Each loaded booster predicts on one
thread (``nthread=1``): server workers are processes, one per core, and the batches they see
(tens of rows) are too small for threads to pay (measured in ``benchmarks/serving``, see its
README).

Supported: ``XGBClassifier`` (objectives ``binary:*`` and ``multi:softprob``), ``XGBRegressor``,
their random-forest variants, and ``Booster``; tree boosters only (``gbtree``, ``dart``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopline.bundle.native import (
    SPEC_FILE,
    BoosterModel,
    NativeSpec,
    Refusing,
    check_classes,
    check_methods,
    classes_of,
    read_file,
    read_spec,
    served,
    served_columns,
)
from loopline.bundle.signature import Signature
from loopline.errors import InvalidInputError, require

MODEL_FILE = "model.ubj"
FLAVOR = "xgboost"
#: Threads per loaded booster (see the module docstring).
THREADS = 1


def wrap(model: Any, *, signature: Signature | None, methods: Sequence[str]) -> BoosterModel:
    """The served form of a fitted XGBoost ``model``, checked against ``signature`` (None when
    a transform precedes the model) and the ``methods`` to serve.

    Raises:
        InvalidInputError: an unsupported estimator, objective or booster; an unfitted model;
            a signature that does not fit the model's features.
    """
    require("xgboost", FLAVOR, "Saving XGBoost models")
    import xgboost as xgb

    name = f"XGBoost {type(model).__name__}"
    if isinstance(model, xgb.Booster):
        booster, kind = model, "booster"
    elif isinstance(model, xgb.XGBClassifier | xgb.XGBRegressor):
        kind = "classifier" if isinstance(model, xgb.XGBClassifier) else "regressor"
        try:
            booster = model.get_booster()
        except Exception as exc:  # NotFittedError
            raise InvalidInputError(f"The {name} is not fitted; fit it before saving.") from exc
        if callable(model.objective):
            raise InvalidInputError(
                f"The {name} has a custom objective function, which a bundle cannot hold; "
                "save its Booster (model.get_booster()) to serve the raw scores."
            )
    else:
        raise InvalidInputError(
            f"The xgboost flavor saves XGBClassifier, XGBRegressor and Booster, not "
            f"{type(model).__name__}."
        )
    learner = json.loads(booster.save_config())["learner"]
    if learner["gradient_booster"]["name"] == "gblinear":
        raise InvalidInputError(
            f"The {name} uses booster 'gblinear'; the xgboost flavor serves tree boosters "
            "(gbtree, dart). Save a linear model with scikit-learn instead."
        )
    if int(learner["learner_model_param"].get("num_target", "1")) != 1:
        raise InvalidInputError(
            f"The {name} predicts several targets; the xgboost flavor serves one target."
        )
    objective = str(learner["learner_train_param"]["objective"])
    classes: tuple[Any, ...] = ()
    classes_dtype = None
    if kind == "classifier":
        if not (objective.startswith("binary:") or objective == "multi:softprob"):
            raise InvalidInputError(
                f"The {name} has objective {objective!r}; the xgboost flavor serves "
                "classifiers with 'binary:*' or 'multi:softprob' (the default), whose predict "
                "is the argmax of predict_proba."
            )
        classes, classes_dtype = classes_of(model)
    check_methods(name, kind, methods)
    types = booster.feature_types or []
    columns, categorical = served_columns(
        signature,
        model=name,
        n_features=booster.num_features(),
        names=booster.feature_names,
        categorical=[i for i, t in enumerate(types) if t == "c"],
    )
    if categorical:
        _check_recodes(xgb.__version__, name)
    iteration_range = [0, 0]
    missing: float | None = None
    if kind != "booster":
        try:
            iteration_range = [0, int(model.best_iteration) + 1]
        except AttributeError:  # no early stopping: every tree
            pass
        missing = None if math.isnan(model.missing) else float(model.missing)
    spec = NativeSpec(
        library=FLAVOR,
        kind=kind,
        classes=classes,
        classes_dtype=classes_dtype,
        columns=columns,
        categorical=categorical,
        options={"iteration_range": list(iteration_range), "missing": missing},
    )
    return served(spec, booster, _prediction(booster, spec))


def _check_recodes(version: str, what: str) -> None:
    """Refuse categorical data on an XGBoost that does not map categories by value (< 3.1:
    it would read the request's own category codes as the training codes)."""
    release = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if release < (3, 1):
        raise InvalidInputError(
            f"The {what} has categorical columns, which XGBoost {version} cannot serve from "
            "strings (it maps categories by code, not by value); install xgboost-cpu>=3.1."
        )


def _prediction(booster: Any, spec: NativeSpec) -> Refusing:
    import xgboost as xgb

    missing = spec.options.get("missing")
    if missing is not None and not isinstance(missing, int | float):
        raise InvalidInputError(
            f"estimator.json option 'missing' is {missing!r}, not a number or null; the "
            "bundle is damaged."
        )
    call = functools.partial(
        booster.inplace_predict,
        iteration_range=_iteration_range(spec),
        missing=math.nan if missing is None else float(missing),
        validate_features=True,
    )
    return Refusing(call=call, library="XGBoost", error=xgb.core.XGBoostError)


def _iteration_range(spec: NativeSpec) -> tuple[int, int]:
    value = spec.options.get("iteration_range")
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and v >= 0 for v in value)
    ):
        raise InvalidInputError(
            f"estimator.json option 'iteration_range' is {value!r}, not two iteration "
            "numbers; the bundle is damaged."
        )
    start, end = value
    assert isinstance(start, int) and isinstance(end, int)
    return start, end


def save(model: BoosterModel, directory: Path) -> list[str]:
    """Write ``model.ubj`` and ``estimator.json`` into ``directory``; their names."""
    model.booster.save_model(str(directory / MODEL_FILE))
    (directory / SPEC_FILE).write_bytes(model.spec.to_json())
    return [MODEL_FILE, SPEC_FILE]


def load(directory: Path, *, shown_as: Path | None = None) -> BoosterModel:
    """Load the XGBoost model of the verified private copy ``directory``.

    Raises:
        DependencyMissingError: xgboost is not installed (names the extra).
        InvalidInputError: the files are not an XGBoost model and its description.
    """
    require("xgboost", FLAVOR, "Loading XGBoost models")
    import xgboost as xgb

    spec = read_spec(directory, FLAVOR, shown_as=shown_as)
    data = read_file(directory, MODEL_FILE, shown_as=shown_as)
    shown = str((shown_as or directory) / MODEL_FILE)
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as exc:
        raise InvalidInputError(f"{shown!r} could not be loaded by XGBoost ({exc}).") from exc
    booster.set_param({"nthread": THREADS})
    learner = json.loads(booster.save_config())["learner"]
    check_classes(spec, int(learner["learner_model_param"].get("num_class", "0")), shown=shown)
    if spec.categorical:
        _check_recodes(xgb.__version__, f"model {shown!r}")
    if spec.columns and list(booster.feature_names or ()) != list(spec.columns):
        raise InvalidInputError(
            f"{shown!r} has features {booster.feature_names} but its estimator.json lists "
            f"{list(spec.columns)}; the bundle is damaged."
        )
    return served(spec, booster, _prediction(booster, spec))
