"""The ``lightgbm`` flavor: LightGBM models saved as LightGBM's text model, loaded by LightGBM.

``model.txt`` is ``Booster.model_to_string()`` (trees up to the best iteration when early
stopping found one — the trees ``LGBMModel.predict`` uses —, feature names, the categories of
pandas categorical columns); ``estimator.json`` is what ``LGBMClassifier`` /
``LGBMRegressor`` add (:class:`~loopline.bundle.native.NativeSpec`). Loading parses both from
the verified private copy (``Booster(model_str=...)``): nothing is executed.

Each loaded booster predicts on one thread (``num_threads=1``): server workers are processes,
one per core, and LightGBM's OpenMP threads on a busy core cost far more than they save on
the batches a server sees (measured in ``benchmarks/serving``, see its README).

LightGBM stores feature names with spaces replaced by ``_``; the signature's column names are
compared with that rule.
"""

from __future__ import annotations

import functools
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

MODEL_FILE = "model.txt"
FLAVOR = "lightgbm"
#: Threads per loaded booster (see the module docstring).
THREADS = 1
_CATEGORICAL = re.compile(r"^\[categorical_feature: ([0-9,]*)\]$", re.MULTILINE)


def _same_name(column: str, feature: str) -> bool:
    return column.replace(" ", "_") == feature


def _categorical_positions(text: str) -> list[int]:
    """The positions of the categorical features in a LightGBM text model."""
    found = _CATEGORICAL.search(text)
    if found is None or not found.group(1):
        return []
    return [int(i) for i in found.group(1).split(",")]


def _prediction(booster: Any) -> Refusing:
    import lightgbm as lgb

    call = functools.partial(booster.predict, num_threads=THREADS)
    return Refusing(call=call, library="LightGBM", error=lgb.basic.LightGBMError)


def wrap(model: Any, *, signature: Signature | None, methods: Sequence[str]) -> BoosterModel:
    """The served form of a fitted LightGBM ``model``, checked against ``signature`` (None
    when a transform precedes the model) and the ``methods`` to serve.

    Raises:
        InvalidInputError: an unsupported estimator, an unfitted model, a custom objective,
            a signature that does not fit the model's features.
    """
    require("lightgbm", FLAVOR, "Saving LightGBM models")
    import lightgbm as lgb

    name = f"LightGBM {type(model).__name__}"
    if isinstance(model, lgb.Booster):
        booster, kind = model, "booster"
    elif isinstance(model, lgb.LGBMClassifier | lgb.LGBMRegressor):
        kind = "classifier" if isinstance(model, lgb.LGBMClassifier) else "regressor"
        if not model.__sklearn_is_fitted__():
            raise InvalidInputError(f"The {name} is not fitted; fit it before saving.")
        if callable(model.objective):
            raise InvalidInputError(
                f"The {name} has a custom objective function, which a bundle cannot hold; "
                "save its Booster (model.booster_) to serve the raw scores."
            )
        booster = model.booster_
    else:
        raise InvalidInputError(
            f"The lightgbm flavor saves LGBMClassifier, LGBMRegressor and Booster, not "
            f"{type(model).__name__}."
        )
    classes: tuple[Any, ...] = ()
    classes_dtype = None
    if kind == "classifier":
        classes, classes_dtype = classes_of(model)
    check_methods(name, kind, methods)
    features = list(booster.feature_name())
    fitted_on_array = features == [f"Column_{i}" for i in range(len(features))]
    pandas_categorical = booster.pandas_categorical or []
    positions = _categorical_positions(booster.model_to_string(num_iteration=1))
    if pandas_categorical and len(positions) != len(pandas_categorical):
        raise InvalidInputError(
            f"The {name} mixes pandas categorical columns with categorical_feature given by "
            "position or name; fit it with one of the two (pandas 'category' columns, or "
            "integer codes named in categorical_feature)."
        )
    columns, categorical = served_columns(
        signature,
        model=name,
        n_features=booster.num_feature(),
        names=None if fitted_on_array else features,
        categorical=positions if pandas_categorical else [],
        same=_same_name,
    )
    spec = NativeSpec(
        library=FLAVOR,
        kind=kind,
        classes=classes,
        classes_dtype=classes_dtype,
        columns=columns,
        categorical=categorical,
    )
    return served(spec, booster, _prediction(booster))


def save(model: BoosterModel, directory: Path) -> list[str]:
    """Write ``model.txt`` and ``estimator.json`` into ``directory``; their names."""
    text = model.booster.model_to_string()
    (directory / MODEL_FILE).write_text(text, encoding="utf-8")
    (directory / SPEC_FILE).write_bytes(model.spec.to_json())
    return [MODEL_FILE, SPEC_FILE]


def load(directory: Path, *, shown_as: Path | None = None) -> BoosterModel:
    """Load the LightGBM model of the verified private copy ``directory``.

    Raises:
        DependencyMissingError: lightgbm is not installed (names the extra).
        InvalidInputError: the files are not a LightGBM model and its description.
    """
    require("lightgbm", FLAVOR, "Loading LightGBM models")
    import lightgbm as lgb

    spec = read_spec(directory, FLAVOR, shown_as=shown_as)
    shown = str((shown_as or directory) / MODEL_FILE)
    try:
        text = read_file(directory, MODEL_FILE, shown_as=shown_as).decode("utf-8")
        booster = lgb.Booster(model_str=text)
    except (UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
        raise InvalidInputError(f"{shown!r} could not be loaded by LightGBM ({exc}).") from exc
    check_classes(spec, booster.num_model_per_iteration(), shown=shown)
    features = booster.feature_name()
    if spec.columns and (
        len(features) != len(spec.columns)
        or not all(_same_name(c, f) for c, f in zip(spec.columns, features, strict=True))
    ):
        raise InvalidInputError(
            f"{shown!r} has features {features} but its estimator.json lists "
            f"{list(spec.columns)}; the bundle is damaged."
        )
    return served(spec, booster, _prediction(booster))
