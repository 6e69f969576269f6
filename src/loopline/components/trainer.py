"""Trainer: run the user's training function and save a model bundle.

``train_fn(x, y, hyperparameters) -> estimator`` receives the *transformed* train split (a
dense float matrix) when a TransformGraph is connected, else the raw feature DataFrame, and
returns a fitted scikit-learn estimator. The bundle (``loopline.bundle``, skops, never pickle)
holds ``Pipeline([("transform", fitted transform), ("model", estimator)])``, so its signature
is the raw feature columns and serving applies the very transform training used; the
manifest records the package versions. An XGBoost or LightGBM model (or a Pipeline ending
in one) is saved in its library's own format instead (flavors ``xgboost``/``lightgbm``, which
load without running code), the transform beside it. Hyperparameters: the
``hyperparameters`` parameter, overridden by the Tuner's best ones when
``tuned_hyperparameters`` is connected.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from loopline.bundle import infer_signature, load_model, native_flavor, save_model
from loopline.components.example_validator import require_validated
from loopline.components.metrics import compute_metrics
from loopline.components.training_data import fitted_transform, load_split
from loopline.components.user_code import bind, unbound
from loopline.errors import ComponentError, InvalidInputError
from loopline.pipeline import (
    Component,
    ExampleAnomalies,
    Examples,
    HyperParameters,
    Input,
    Model,
    Output,
    Step,
    StepContext,
    TransformGraph,
    component,
)
from loopline.types import Json

_TRAIN_FN = unbound("train_fn")
BEST_FILE = "hyperparameters.json"


def read_hyperparameters(tuned: Input[HyperParameters] | None) -> dict[str, Json]:
    """The Tuner's best hyperparameters, or {}."""
    if tuned is None:
        return {}
    data = json.loads((tuned.path / BEST_FILE).read_text())
    best = data.get("best")
    if not isinstance(best, dict):
        raise InvalidInputError(f"{tuned.uri!r} has no 'best' hyperparameters.")
    return best


@component(name="Trainer")
def trainer_template(
    examples: Input[Examples],
    model: Output[Model],
    ctx: StepContext,
    label: str,
    transform_graph: Input[TransformGraph] | None = None,
    tuned_hyperparameters: Input[HyperParameters] | None = None,
    hyperparameters: dict[str, Json] | None = None,
    train_split: str = "train",
    anomalies: Input[ExampleAnomalies] | None = None,
) -> None:
    """Fit ``train_fn`` on ``train_split`` and save the bundle to ``model``."""
    require_validated(anomalies)
    transform, columns = fitted_transform(transform_graph)
    data = load_split(examples, train_split, label, transform, columns)
    if len(data.y) == 0:
        raise InvalidInputError(f"Split {train_split!r} is empty; there is nothing to train on.")
    params: dict[str, Json] = {
        **(hyperparameters or {}),
        **read_hyperparameters(tuned_hyperparameters),
    }
    try:
        estimator = _TRAIN_FN(data.x, data.y, dict(params))
    except Exception as exc:
        raise ComponentError(f"train_fn raised {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(estimator, "predict", None)):
        raise ComponentError(
            f"train_fn returned {estimator!r}; it must return a fitted estimator with predict."
        )
    served: Any = estimator
    raw, columns = data.raw, list(data.columns)
    fitted_on = getattr(estimator, "feature_names_in_", None)
    if transform is None and fitted_on is not None:
        # train_fn chose a subset of the columns (LightGBM reports spaces in names as "_")
        spaced = {c.replace(" ", "_"): c for c in columns}
        columns = [str(c) if str(c) in raw.columns else spaced.get(str(c), str(c))
                   for c in fitted_on]  # fmt: skip
        raw = raw[columns]
    # scikit-learn estimators are saved with skops, the transform composed in; XGBoost and
    # LightGBM models (or a Pipeline ending in one) in their library's format, and a model of
    # any other framework saves itself (flavor "python"), with the transform beside them.
    flavor = native_flavor(estimator) or (
        "sklearn" if hasattr(estimator, "get_params") else "python"
    )
    if transform is not None and flavor == "sklearn":
        from sklearn.pipeline import Pipeline as SkPipeline

        served = SkPipeline([("transform", transform), ("model", estimator)])
    methods = ["predict"]
    if hasattr(estimator, "classes_") and callable(getattr(estimator, "predict_proba", None)):
        methods.append("predict_proba")
    save_model(
        served,
        model.path,
        signature=infer_signature(raw),
        methods=methods,
        flavor=flavor,
        transform=transform if flavor != "sklearn" else None,
        metadata={
            "label": label,
            "hyperparameters": params,
            "examples": examples.uri,
            "examples_digest": examples.digest,
            "span": examples.properties.get("span"),
            "transform_digest": transform_graph.digest if transform_graph else None,
        },
        input_example=raw.head(5),
    )
    if flavor not in ("sklearn", "python"):  # measured as served: strings → categoricals
        served = load_model(model.path).estimator
    elif flavor == "python" and transform is not None:
        from loopline.bundle.python_flavor import TransformThen

        served = TransformThen(transform=transform, model=estimator)
    train_metrics = compute_metrics(served, raw, data.y)
    ctx.log_params(hyperparameters=params)
    ctx.log_metrics({f"train_{k}": v for k, v in train_metrics.items() if v == v})
    model.properties.update(
        label=label,
        framework=flavor if flavor != "python" else type(estimator).__module__.split(".")[0],
        flavor=flavor,
        estimator=type(estimator).__name__,
        hyperparameters=params,
        feature_columns=list[Json](columns),
        train_rows=len(data.y),
        span=examples.properties.get("span"),
        methods=list(methods),
    )


def Trainer(
    *,
    examples: Any,
    train_fn: Callable[..., Any],
    label: str,
    transform_graph: Any = None,
    tuned_hyperparameters: Any = None,
    hyperparameters: dict[str, Json] | None = None,
    train_split: str = "train",
    anomalies: Any = None,
    id: str = "Trainer",
) -> Step:
    """A Trainer step running ``train_fn`` (hashed into the cache key)."""
    comp: Component = bind(trainer_template, _TRAIN_FN=train_fn)
    return comp(
        examples=examples,
        label=label,
        transform_graph=transform_graph,
        tuned_hyperparameters=tuned_hyperparameters,
        hyperparameters=hyperparameters,
        train_split=train_split,
        anomalies=anomalies,
    ).with_id(id)
