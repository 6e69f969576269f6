"""Tuner: hyperparameter search with optuna (TPE, seeded); the best set feeds the Trainer.

``search_space(trial) -> dict`` suggests one candidate (``trial.suggest_float(...)``);
``train_fn`` is the Trainer's function. Each trial fits on ``train`` and scores ``metric`` on
``eval`` (transformed when a TransformGraph is connected). Output ``hyperparameters.json``:
``best``, ``best_value``, ``metric``, ``direction`` and every trial.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Literal

from loopline.components.metrics import HIGHER_IS_BETTER, LOWER_IS_BETTER, compute_metrics
from loopline.components.trainer import BEST_FILE
from loopline.components.training_data import fitted_transform, load_split
from loopline.components.user_code import bind, unbound
from loopline.errors import ComponentError, InvalidInputError, require
from loopline.pipeline import (
    Component,
    Examples,
    HyperParameters,
    Input,
    Output,
    Step,
    StepContext,
    TransformGraph,
    component,
)
from loopline.types import Json

_TRAIN_FN = unbound("train_fn")
_SEARCH_SPACE = unbound("search_space")


@component(name="Tuner")
def tuner_template(
    examples: Input[Examples],
    best_hyperparameters: Output[HyperParameters],
    ctx: StepContext,
    label: str,
    metric: str,
    transform_graph: Input[TransformGraph] | None = None,
    n_trials: int = 10,
    seed: int = 0,
    positive_label: str | None = None,
) -> None:
    """Search ``n_trials`` candidates; keep the best by ``metric`` on ``eval``."""
    require("optuna", "tune", "The Tuner")
    import optuna

    if metric not in HIGHER_IS_BETTER | LOWER_IS_BETTER:
        known = sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)
        raise InvalidInputError(f"Unknown tuning metric {metric!r}; use one of {known}.")
    if n_trials < 1:
        raise InvalidInputError(f"n_trials={n_trials} must be at least 1.")
    direction: Literal["maximize", "minimize"] = (
        "maximize" if metric in HIGHER_IS_BETTER else "minimize"
    )
    transform, columns = fitted_transform(transform_graph)
    train = load_split(examples, "train", label, transform, columns)
    evaluation = load_split(examples, "eval", label, transform, columns)

    def objective(trial: Any) -> float:
        params = _SEARCH_SPACE(trial)
        if not isinstance(params, dict):
            raise ComponentError(f"search_space returned {params!r}; it must return a dict.")
        estimator = _TRAIN_FN(train.x, train.y, dict(params))
        value = compute_metrics(
            estimator, evaluation.x, evaluation.y, positive_label=positive_label
        )
        if metric not in value or math.isnan(value[metric]):
            raise ComponentError(f"Metric {metric!r} cannot be computed for this model.")
        return value[metric]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, catch=())
    trials: list[Json] = [
        {"number": t.number, "params": dict(t.params), "value": t.value} for t in study.trials
    ]
    best: dict[str, Json] = dict(study.best_params)
    report: dict[str, Json] = {
        "best": best,
        "best_value": study.best_value,
        "metric": metric,
        "direction": direction,
        "trials": trials,
    }
    (best_hyperparameters.path / BEST_FILE).write_text(json.dumps(report, indent=2, sort_keys=True))
    best_hyperparameters.properties.update(
        best=best, best_value=study.best_value, metric=metric, n_trials=n_trials
    )
    ctx.log_metrics({f"best_{metric}": study.best_value})


def Tuner(
    *,
    examples: Any,
    train_fn: Callable[..., Any],
    search_space: Callable[..., Any],
    label: str,
    metric: str,
    transform_graph: Any = None,
    n_trials: int = 10,
    seed: int = 0,
    positive_label: str | None = None,
    id: str = "Tuner",
) -> Step:
    """A Tuner step; ``train_fn`` and ``search_space`` are hashed into its cache key."""
    comp: Component = bind(tuner_template, _TRAIN_FN=train_fn, _SEARCH_SPACE=search_space)
    return comp(
        examples=examples,
        label=label,
        metric=metric,
        transform_graph=transform_graph,
        n_trials=n_trials,
        seed=seed,
        positive_label=positive_label,
    ).with_id(id)
