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

``compile`` (``"auto"``, the default; ``"off"``; ``"require"``) decides whether a scikit-learn
model also gets a compiled path: the Trainer converts it to ONNX and compares both on the
training rows (``save_model(compile=...)``, :mod:`loopline.bundle.compiler`); when labels are
equal and probabilities within the tolerance, ``model.onnx`` serves. Otherwise scikit-learn
serves and one log line says why; ``"require"`` fails the step with that reason instead. The
Model artifact's ``serving`` property says which path serves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from loopline.bundle import Manifest, infer_signature, load_model, native_flavor, save_model
from loopline.bundle.compiler import check_mode
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

_log = logging.getLogger(__name__)
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
    compile: str = "auto",
) -> None:
    """Fit ``train_fn`` on ``train_split`` and save the bundle to ``model``."""
    check_mode(compile)
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
    if compile == "require" and flavor != "sklearn":
        raise InvalidInputError(
            f"compile='require' compiles scikit-learn models; train_fn returned "
            f"{type(estimator).__name__}, saved with flavor {flavor!r}. Use compile='auto'."
        )
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
        compile=compile if flavor == "sklearn" else "off",
        check_data=raw,
    )
    serving, compile_reason = _serving_path(Manifest.read(model.path), flavor, compile)
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
        serving=serving,
        **({"compile_reason": compile_reason} if compile_reason else {}),
    )


def _serving_path(manifest: Manifest, flavor: str, mode: str) -> tuple[str, str | None]:
    """Which path serves the saved bundle and, when it is not ONNX, why; logged in one line."""
    part = manifest.onnx
    if part is not None and part.serves == "onnx" and part.check is not None:
        check = part.check
        _log.info(
            "Trainer: the compiled ONNX model serves (max difference %.2g <= %g on %d rows).",
            check.max_abs_diff,
            check.tolerance,
            check.rows,
        )
        return "onnx", None
    if part is not None and part.reason:
        _log.warning("Trainer: scikit-learn serves the model, not ONNX: %s.", part.reason)
        return flavor, part.reason
    return flavor, "compile is off" if flavor == "sklearn" and mode == "off" else None


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
    compile: str = "auto",
    id: str = "Trainer",
) -> Step:
    """A Trainer step running ``train_fn`` (hashed into the cache key); ``compile`` is
    ``"auto"``, ``"off"`` or ``"require"`` (see the module docstring)."""
    check_mode(compile)
    comp: Component = bind(trainer_template, _TRAIN_FN=train_fn)
    return comp(
        examples=examples,
        label=label,
        transform_graph=transform_graph,
        tuned_hyperparameters=tuned_hyperparameters,
        hyperparameters=hyperparameters,
        train_split=train_split,
        anomalies=anomalies,
        compile=compile,
    ).with_id(id)
