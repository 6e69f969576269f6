"""Define versus run: typed components, an immutable validated DAG, and the local runner.

Key contracts:
- ``component.py``, ``step.py`` and ``graph.py`` define; they never import ``runner.py``.
  ``Pipeline(...)`` raises InvalidDefinitionError naming the step and port.
- ``runner.LocalRunner`` is the only executor; every step is recorded in the metadata store
  with its cache key parts, so ``loopline runs why`` can explain a re-run.
- Outputs become visible (LIVE) only after the step returned and the bytes were published.
"""

from loopline.pipeline.artifact_types import (
    ArtifactType,
    Dataset,
    ExampleAnomalies,
    Examples,
    ExampleStatistics,
    HyperParameters,
    InfraBlessing,
    Metrics,
    Model,
    ModelBlessing,
    ModelEvaluation,
    PushedModel,
    Schema,
    TransformGraph,
)
from loopline.pipeline.component import Component, component
from loopline.pipeline.context import StepContext
from loopline.pipeline.graph import Pipeline
from loopline.pipeline.ports import Input, Output
from loopline.pipeline.results import RunResult, RunStatus, StepResult
from loopline.pipeline.step import OutputRef, Param, Step

__all__ = [
    "ArtifactType",
    "Component",
    "Dataset",
    "ExampleAnomalies",
    "ExampleStatistics",
    "Examples",
    "HyperParameters",
    "InfraBlessing",
    "Input",
    "Metrics",
    "Model",
    "ModelBlessing",
    "ModelEvaluation",
    "Output",
    "OutputRef",
    "Param",
    "Pipeline",
    "PushedModel",
    "RunResult",
    "RunStatus",
    "Schema",
    "Step",
    "StepContext",
    "StepResult",
    "TransformGraph",
    "component",
]
