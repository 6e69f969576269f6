"""The graph both sides of the lineage benchmark build: many runs of a TFX-shaped pipeline.

Plain data, no imports, so the MLMD peer (in its own virtual environment) shares it with
``lineage.py``. One run: (component, inputs, outputs); input names are local to the run,
``prev:`` is the previous run's artifact (the Evaluator's baseline model).
"""

from __future__ import annotations

RUN: list[tuple[str, list[str], list[tuple[str, str]]]] = [
    ("ExampleGen", [], [("examples", "Examples")]),
    ("StatisticsGen", ["examples"], [("statistics", "ExampleStatistics")]),
    ("SchemaGen", ["statistics"], [("schema", "Schema")]),
    ("ExampleValidator", ["statistics", "schema"], [("anomalies", "ExampleAnomalies")]),
    (
        "Transform",
        ["examples", "schema"],
        [("transformed", "Examples"), ("graph", "TransformGraph")],
    ),
    ("Trainer", ["transformed", "graph", "schema"], [("model", "Model"), ("run", "ModelRun")]),
    (
        "Evaluator",
        ["examples", "model", "prev:model"],
        [("evaluation", "ModelEvaluation"), ("blessing", "ModelBlessing")],
    ),
    ("Pusher", ["model", "blessing"], [("pushed", "PushedModel")]),
]
PER_RUN = sum(len(outputs) for _, _, outputs in RUN)
