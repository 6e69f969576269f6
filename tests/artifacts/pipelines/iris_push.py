"""A small pipeline that trains and pushes a servable model: iris → logistic regression
(saved as a loopline bundle) → blessing → the real Pusher (model ``iris``, alias champion).

The end-to-end test on PostgreSQL + S3 runs it with ``loopline run``; every artifact goes to
``LOOPLINE_ARTIFACT_ROOT`` and every row to ``LOOPLINE_DB_URL``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.components import Pusher
from loopline.pipeline import (
    Dataset,
    Input,
    Model,
    ModelBlessing,
    Output,
    Pipeline,
    component,
)

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@component
def ingest(data: Output[Dataset]) -> None:
    """The iris flowers shipped with scikit-learn, as one Parquet file."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    columns = {name: iris.data[:, i] for i, name in enumerate(FEATURES)}
    columns["species"] = iris.target
    pq.write_table(pa.table(columns), data.path / "iris.parquet")
    data.properties["rows"] = len(iris.target)


@component
def train(data: Input[Dataset], model: Output[Model]) -> None:
    """A logistic regression, saved as a servable bundle (skops, never pickle)."""
    from sklearn.linear_model import LogisticRegression

    from loopline.bundle import infer_signature, save_model

    table = pq.read_table(data.path / "iris.parquet")
    x = np.column_stack([table[c].to_numpy() for c in FEATURES])
    y = table["species"].to_numpy()
    clf = LogisticRegression(max_iter=500).fit(x, y)
    save_model(clf, model.path, signature=infer_signature(x), input_example=x[:2])
    model.properties["train_accuracy"] = float(clf.score(x, y))


@component
def judge(model: Input[Model], blessing: Output[ModelBlessing]) -> None:
    """Blesses a model that fits its training data well."""
    recorded = model.properties.get("train_accuracy")
    accuracy = float(recorded) if isinstance(recorded, int | float) else 0.0
    blessing.properties.update(
        current_model_id=model.id,
        blessed=1 if accuracy >= 0.9 else 0,
        reasons=[] if accuracy >= 0.9 else [f"train accuracy {accuracy:.3f} < 0.9"],
    )


raw = ingest()
trained = train(data=raw.outputs.data)
judged = judge(model=trained.outputs.model)
pushed = Pusher(
    model=trained.outputs.model,
    blessing=judged.outputs.blessing,
    model_name="iris",
    require_infra_blessing=False,
)
pipeline = Pipeline("iris-push", [raw, trained, judged, pushed])
