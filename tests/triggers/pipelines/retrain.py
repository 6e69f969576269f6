"""A small, fast retraining pipeline for the trigger tests: ExampleGen on one span, a "model"
(the span's mean), a blessing the ``bless`` parameter decides, and the real Pusher.

Its data directory is ``$RETRAIN_DATA`` (files ``span-N/rows.csv`` with a column ``x``).
"""

from __future__ import annotations

import json
import os
import time

import pyarrow.parquet as pq

from loopline.components import ExampleGen, Pusher
from loopline.pipeline import (
    Examples,
    Input,
    Model,
    ModelBlessing,
    Output,
    Param,
    Pipeline,
    component,
)

DATA = os.environ["RETRAIN_DATA"]


@component
def fit(
    examples: Input[Examples],
    model: Output[Model],
    fail: bool = False,
    tag: str = "",
    hold: str = "",
) -> None:
    """The mean of ``x`` over the span's train split (``tag`` is recorded: another tag is
    another model, not a cache hit). With ``hold``, the step waits until that file exists
    (a test keeps the run in flight while it restarts the control plane)."""
    while hold and not os.path.exists(hold):
        time.sleep(0.05)
    if fail:
        raise RuntimeError("the training data is unusable (asked to fail)")
    table = pq.read_table(examples.path / "train.parquet")
    mean = sum(table["x"].to_pylist()) / max(1, table.num_rows)
    (model.path / "model.json").write_text(json.dumps({"mean": mean, "tag": tag}))
    model.properties.update(spans=examples.properties.get("spans"), tag=tag)


@component
def judge(model: Input[Model], blessing: Output[ModelBlessing], bless: bool = True) -> None:
    """Blesses the model unless ``bless`` is false (then says why, as the Evaluator does)."""
    blessing.properties.update(
        current_model_id=model.id,
        blessed=1 if bless else 0,
        reasons=[] if bless else ["overall auc 0.51 < 0.58 (threshold lower)"],
    )


gen = ExampleGen(
    input_dir=DATA, pattern="span-{SPAN}/rows.csv", span=Param("span", None), splits={"train": 1}
)
trained = fit(
    examples=gen.outputs.examples,
    fail=Param("fail", False),
    tag=Param("tag", ""),
    hold=Param("hold", ""),
)
judged = judge(model=trained.outputs.model, bless=Param("bless", True))
push = Pusher(
    model=trained.outputs.model,
    blessing=judged.outputs.blessing,
    model_name="taxi",
    require_infra_blessing=False,
)
pipeline = Pipeline("retrain", [gen, trained, judged, push])
