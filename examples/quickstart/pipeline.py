"""Quickstart: ingest → split → two trainers in parallel (fan-out) → compare.

Run it with ``loopline run examples/quickstart/pipeline.py``; run it again and every step
comes from the cache; change ``--param c=0.5`` and only what depends on it runs again.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.pipeline import (
    Dataset,
    Input,
    Metrics,
    Model,
    Output,
    Param,
    Pipeline,
    StepContext,
    component,
)

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _read(path: str) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(path)
    x = np.column_stack([table[c].to_numpy() for c in FEATURES])
    return x, table["species"].to_numpy()


@component
def ingest(data: Output[Dataset]) -> None:
    """Load the iris flowers shipped with scikit-learn into a Parquet file."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    columns = {name: iris.data[:, i] for i, name in enumerate(FEATURES)}
    columns["species"] = iris.target
    pq.write_table(pa.table(columns), data.path / "iris.parquet")
    data.properties["rows"] = len(iris.target)


@component
def split(
    data: Input[Dataset], train: Output[Dataset], test: Output[Dataset], seed: int = 7
) -> None:
    """Deterministic 2:1 split."""
    table = pq.read_table(data.path / "iris.parquet")
    order = np.random.default_rng(seed).permutation(table.num_rows)
    cut = table.num_rows * 2 // 3
    pq.write_table(table.take(order[:cut]), train.path / "data.parquet")
    pq.write_table(table.take(order[cut:]), test.path / "data.parquet")
    train.properties["rows"], test.properties["rows"] = cut, table.num_rows - cut


@component
def train_logreg(
    train: Input[Dataset], model: Output[Model], ctx: StepContext, c: float = 1.0
) -> None:
    """A logistic regression, saved with skops (never pickle)."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x, y = _read(str(train.path / "data.parquet"))
    clf = LogisticRegression(C=c, max_iter=500).fit(x, y)
    sio.dump(clf, model.path / "model.skops")
    ctx.log_params(c=c)
    ctx.log_metrics(train_accuracy=float(clf.score(x, y)))


@component
def train_tree(
    train: Input[Dataset], model: Output[Model], ctx: StepContext, max_depth: int = 3
) -> None:
    """A decision tree, saved with skops."""
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    x, y = _read(str(train.path / "data.parquet"))
    clf = DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(x, y)
    sio.dump(clf, model.path / "model.skops")
    ctx.log_metrics(train_accuracy=float(clf.score(x, y)))


@component
def compare(
    test: Input[Dataset],
    logreg: Input[Model],
    tree: Input[Model],
    report: Output[Metrics],
    ctx: StepContext,
) -> None:
    """Accuracy of both models on the held-out split."""
    import skops.io as sio

    x, y = _read(str(test.path / "data.parquet"))
    scores = {}
    for name, art in (("logreg", logreg), ("tree", tree)):
        file = art.path / "model.skops"
        clf = sio.load(file, trusted=sio.get_untrusted_types(file=file))
        scores[name] = float(clf.score(x, y))
    (report.path / "metrics.json").write_text(json.dumps(scores, indent=2))
    report.properties.update(scores)
    ctx.log_metrics({f"{k}_accuracy": v for k, v in scores.items()})
    print("test accuracy:", scores)


raw = ingest()
parts = split(data=raw.outputs.data)
logreg = train_logreg(train=parts.outputs.train, c=Param("c", 1.0))
tree = train_tree(train=parts.outputs.train, max_depth=Param("max_depth", 3))
pipeline = Pipeline(
    "quickstart",
    [
        raw,
        parts,
        logreg,
        tree,
        compare(test=parts.outputs.test, logreg=logreg.outputs.model, tree=tree.outputs.model),
    ],
    description="iris: two models trained in parallel and compared",
)
