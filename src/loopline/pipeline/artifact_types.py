"""Typed artifacts: each class is an artifact type; its name is the metadata ``type_name``.

A port declared ``Input[Dataset]`` accepts an output of type ``Dataset`` or any subclass
(``Examples`` is a ``Dataset``), checked when the pipeline is built.
"""

from __future__ import annotations

from typing import ClassVar


class ArtifactType:
    """Base of all artifact types. Subclass it to declare a type of your own."""

    type_name: ClassVar[str] = "Artifact"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__


class Dataset(ArtifactType):
    """Tabular data in any format; prefer Parquet."""


class Examples(Dataset):
    """Split examples (train/eval/…) written by ExampleGen, one Parquet file per split."""


class ExampleStatistics(ArtifactType):
    """Per-split, per-feature statistics (a mergeable profile)."""


class Schema(ArtifactType):
    """A data schema: types, presence, domains, ranges, drift thresholds (YAML)."""


class ExampleAnomalies(ArtifactType):
    """Anomalies and drift found by ExampleValidator."""


class TransformGraph(ArtifactType):
    """A fitted preprocessing transform, saved so that serving applies the same code."""


class HyperParameters(ArtifactType):
    """Hyperparameters chosen by a Tuner (JSON)."""


class Model(ArtifactType):
    """A saved model bundle (``loopline.bundle`` format)."""


class ModelEvaluation(ArtifactType):
    """Metrics overall and per slice."""


class ModelBlessing(ArtifactType):
    """The Evaluator's verdict: properties ``blessed`` (1/0), ``current_model_id``,
    ``baseline_model_id``, and the reasons of every failed threshold."""


class InfraBlessing(ArtifactType):
    """InfraValidator's verdict: property ``blessed`` (1/0)."""


class PushedModel(ArtifactType):
    """Pusher's record of a registered model version: ``pushed``, ``model``, ``version``."""


class Metrics(ArtifactType):
    """Free-form metrics (JSON)."""


STANDARD_TYPES: tuple[type[ArtifactType], ...] = (
    Dataset,
    Examples,
    ExampleStatistics,
    Schema,
    ExampleAnomalies,
    TransformGraph,
    HyperParameters,
    Model,
    ModelEvaluation,
    ModelBlessing,
    InfraBlessing,
    PushedModel,
    Metrics,
)
