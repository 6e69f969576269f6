"""The reference of one model version, found through lineage: what the model was trained on.

From the registry's model artifact the walk goes up to the Trainer execution that produced it
and its ``examples`` input, then down from those Examples to the newest live
``ExampleStatistics`` (StatisticsGen) and from those to the ``Schema`` (SchemaGen)::

    Model ◄─out── Trainer ──in─► Examples ──in─► StatisticsGen ─out─► ExampleStatistics
                                                  ExampleStatistics ──in─► SchemaGen ─out─► Schema

* Feature reference: the statistics' reference split (``train``), restricted to the model's
  scalar inputs (and to ``spec.features``). Every window is bucketed on its edges.
* Calibration rows: the same split's rows (``<examples>/<split>.parquet``), for
  :func:`loopline.data.calibrate`.
* Prediction reference: the model's own predictions on the ``eval`` split (else ``train``),
  computed once by loading the bundle with its digest checked and the operator's ``Trust``
  (passed down from the composition root) — the same code the server runs. When the bundle
  cannot be loaded here, the prediction reference is the version's first window (the
  runner's fallback; ``prediction`` is then None).
* CBPE (classifiers with ``predict_proba``): fitted on the eval split's scores, predictions
  and labels; class order is the estimator's ``classes_``.

Layout facts read here (monitor may not import components): Examples hold
``<split>.parquet``; statistics hold ``<split>.json`` and the property ``reference_split``;
the schema is ``schema.yaml``; the Trainer's label column is the model property ``label``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from loopline.artifacts import ArtifactStore
from loopline.data import (
    Calibration,
    Profile,
    Schema,
    calibrate,
    calibrate_from_profile,
    load_profile,
    load_schema,
    profile_table,
)
from loopline.errors import InvalidInputError, LooplineError, NotFoundError
from loopline.metadata import Artifact, ArtifactState, Direction, EventType, MetadataStore
from loopline.monitor.cbpe import CBPE
from loopline.registry import ModelRegistry

if TYPE_CHECKING:
    from loopline.bundle import Trust

log = logging.getLogger(__name__)

MAX_CALIBRATION_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class Reference:
    """Everything a window of one model version is compared with."""

    model: str
    version: str
    model_artifact: Artifact
    profile: Profile  # the monitored features, training split
    schema: Schema | None
    rows: pl.DataFrame | None  # training rows of those features, for calibration
    prediction: Profile | None  # column ``predict`` on the eval split; None: first window
    classes: tuple[str, ...] | None = None  # estimator.classes_, as strings
    label: str | None = None
    eval_scores: np.ndarray[Any, Any] | None = None  # positive-class scores on eval
    eval_predictions: np.ndarray[Any, Any] | None = None
    eval_labels: np.ndarray[Any, Any] | None = None
    sources: tuple[int, ...] = ()  # artifact ids of the examples, statistics and schema

    @property
    def features(self) -> tuple[str, ...]:
        return self.profile.names


def find_reference(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    model: str,
    version: str,
    features: tuple[str, ...] | None = None,
    *,
    registry: ModelRegistry | None = None,
    trust: Trust | None = None,
) -> Reference:
    """The reference of ``model`` version ``version``, through the registry and lineage.

    ``trust`` is what loading the bundle may run (the operator's, as for serving; None:
    loopline's built-in trust only).

    Raises:
        NotFoundError: the version is not registered, or its lineage has no Trainer examples
            or no statistics (the message says which, and what to run).
    """
    registry = registry if registry is not None else ModelRegistry(metadata, artifacts)
    resolved = registry.resolve(f"{model}/{version}")
    art = resolved.artifact
    examples = _producer_input(metadata, art, "examples")
    if examples is None:
        raise NotFoundError(
            f"Model {model!r} version {version} (artifact {art.id}) has no Trainer examples in "
            "its lineage; a monitor needs a model trained by a loopline pipeline (Trainer "
            "with ExampleGen examples) to find its reference."
        )
    stats = _consumer_output(metadata, examples, "ExampleStatistics")
    if stats is None:
        raise NotFoundError(
            f"The examples {examples.uri!r} of model {model!r} version {version} have no live "
            "ExampleStatistics; add StatisticsGen to the pipeline that trained it."
        )
    schema_art = _consumer_output(metadata, stats, "Schema")
    split = str(stats.properties.get("reference_split") or "train")
    with artifacts.open_local(stats.uri) as local:
        full = load_profile(Path(local) / f"{split}.json")
    schema = None
    if schema_art is not None:
        with artifacts.open_local(schema_art.uri) as local:
            path = Path(local) / "schema.yaml"
            schema = load_schema(path) if path.is_file() else None
    label = art.properties.get("label")
    label = str(label) if isinstance(label, str) else None
    with artifacts.open_local(art.uri) as local:
        bundle = _load_bundle(Path(local), art.digest, trust)
    inputs = _model_inputs(bundle, full, label)
    monitored = _monitored(inputs, features, model, version)
    profile = Profile(full.num_rows, tuple(f for f in full.features if f.name in monitored))
    with artifacts.open_local(examples.uri) as local:
        root = Path(local)
        rows = _rows(root / f"{split}.parquet", monitored)
        eval_path = root / "eval.parquet"
        scored = _score(
            bundle, eval_path if eval_path.is_file() else root / f"{split}.parquet", label
        )
    prediction, classes, scores, preds, labels = scored
    sources = tuple(a.id for a in (examples, stats, schema_art) if a is not None)
    return Reference(
        model,
        version,
        art,
        profile,
        schema,
        rows,
        prediction,
        classes,
        label,
        scores,
        preds,
        labels,
        sources,
    )


def _producer_input(metadata: MetadataStore, art: Artifact, port: str) -> Artifact | None:
    """The ``port`` input of the execution that produced ``art``."""
    graph = metadata.lineage(artifact_id=art.id, direction=Direction.UPSTREAM, hops=2)
    producers = {
        e.execution_id
        for e in graph.events
        if e.artifact_id == art.id and e.type is EventType.OUTPUT
    }
    ids = [
        e.artifact_id
        for e in graph.events
        if e.execution_id in producers and e.type is EventType.INPUT and e.port == port
    ]
    found = [a for a in graph.artifacts if a.id in ids]
    return max(found, key=lambda a: a.id) if found else None


def _consumer_output(metadata: MetadataStore, art: Artifact, type_name: str) -> Artifact | None:
    """The newest live ``type_name`` artifact made by an execution that read ``art``."""
    graph = metadata.lineage(artifact_id=art.id, direction=Direction.DOWNSTREAM, hops=2)
    consumers = {
        e.execution_id
        for e in graph.events
        if e.artifact_id == art.id and e.type is EventType.INPUT
    }
    outputs = {
        e.artifact_id
        for e in graph.events
        if e.execution_id in consumers and e.type is EventType.OUTPUT
    }
    found = [
        a
        for a in graph.artifacts
        if a.id in outputs and a.type_name == type_name and a.state is ArtifactState.LIVE
    ]
    return max(found, key=lambda a: a.id) if found else None


def _load_bundle(path: Path, digest: str | None, trust: Trust | None) -> Any:
    """The loaded bundle, or None when it cannot be loaded here (then no prediction reference)."""
    from loopline.bundle import Trust, load_model

    try:
        return load_model(
            path, expected_digest=digest, trust=trust if trust is not None else Trust()
        )
    except (LooplineError, ImportError, OSError, ValueError) as exc:
        log.warning(
            "The model bundle at %s cannot be loaded here (%s); the prediction "
            "reference will be the version's first window.",
            path,
            exc,
        )
        return None


def _model_inputs(bundle: Any, full: Profile, label: str | None) -> tuple[str, ...]:
    if bundle is not None:
        return tuple(s.name for s in bundle.signature.inputs if len(s.shape) == 1)
    return tuple(n for n in full.names if n != label)


def _monitored(
    inputs: tuple[str, ...], features: tuple[str, ...] | None, model: str, version: str
) -> tuple[str, ...]:
    if features is None:
        return inputs
    unknown = [f for f in features if f not in inputs]
    if unknown:
        raise NotFoundError(
            f"Monitor field spec.features names {unknown}, which model {model!r} version "
            f"{version} does not take as inputs; its inputs are {list(inputs)}."
        )
    return features


def _rows(path: Path, columns: tuple[str, ...]) -> pl.DataFrame | None:
    if not path.is_file():
        return None
    frame = pl.from_arrow(pq.read_table(path, columns=list(columns)))
    assert isinstance(frame, pl.DataFrame)
    if frame.height > MAX_CALIBRATION_ROWS:
        frame = frame.sample(MAX_CALIBRATION_ROWS, seed=0)
    return frame


def _score(bundle: Any, path: Path, label: str | None) -> tuple[Any, ...]:
    """(prediction profile, classes, positive scores, predictions, labels) on ``path``."""
    if bundle is None or not path.is_file():
        return None, None, None, None, None
    table = pq.read_table(path)
    names = [s.name for s in bundle.signature.inputs]
    batch = {n: table.column(n).to_numpy(zero_copy_only=False) for n in names}
    out = bundle.predict(batch)
    preds = np.asarray(out["predict"])
    prediction = profile_table(pl.DataFrame({"predict": pl.Series(preds)}))
    classes_attr = getattr(bundle.estimator, "classes_", None)
    classes = None if classes_attr is None else tuple(str(c) for c in classes_attr)
    labels = None
    if label is not None and label in table.column_names:
        labels = np.asarray(table.column(label).to_numpy(zero_copy_only=False))
    proba = out.get("predict_proba")
    scores = None if proba is None else np.asarray(proba, dtype=np.float64)
    return prediction, classes, scores, preds, labels


def positive_class(ref: Reference, wanted: str | None) -> str | None:
    """``wanted`` (the spec's ``label.positiveClass``), else the second of two classes
    (scikit-learn's ``predict_proba[:, 1]``); None when neither says."""
    if wanted is not None:
        return wanted
    if ref.classes is not None and len(ref.classes) == 2:
        return ref.classes[1]
    return None


def positive_index(ref: Reference, positive: str | None) -> int | None:
    """The ``predict_proba`` column of ``positive`` (None when unknown)."""
    if ref.classes is None or positive is None or positive not in ref.classes:
        return None
    return ref.classes.index(positive)


def round_size(rows: int) -> int:
    """Duration windows vary in size: calibrate on a √2 grid of sizes."""
    return max(round(2 ** (round(2 * math.log2(max(rows, 1))) / 2)), 1)


def calibrate_reference(
    ref: Reference, window_rows: int, false_alarm_rate: float, chunks: int
) -> Calibration:
    """Thresholds for windows of ``window_rows`` rows: from the reference rows when they are
    available, else from the reference profile (``loopline.data.calibrate_from_profile``)."""
    if ref.rows is not None and ref.rows.height > 0:
        return calibrate(
            ref.rows,
            ref.profile,
            window_rows=window_rows,
            false_alarm_rate=false_alarm_rate,
            chunks=chunks,
            schema=ref.schema,
        )
    return calibrate_from_profile(
        ref.profile,
        window_rows,
        false_alarm_rate=false_alarm_rate,
        chunks=chunks,
        schema=ref.schema,
    )


def fit_cbpe(ref: Reference, positive: str | None, window_rows: int) -> CBPE | None:
    """CBPE fitted on the eval split (binary classifiers with scores), chunks of the window's
    size (at most half the eval rows); None when it does not apply or cannot be fitted."""
    index = positive_index(ref, positive)
    if (
        ref.eval_scores is None
        or ref.eval_labels is None
        or ref.eval_predictions is None
        or positive is None
        or index is None
        or ref.classes is None
        or len(ref.classes) != 2
    ):
        return None
    chunk = min(window_rows, max(len(ref.eval_labels) // 2, 1))
    try:
        return CBPE.fit(
            ref.eval_scores[:, index],
            _str(ref.eval_predictions),
            _str(ref.eval_labels),
            positive_class=positive,
            chunk_size=chunk,
        )
    except InvalidInputError as exc:
        log.warning("CBPE cannot be fitted for %s version %s: %s", ref.model, ref.version, exc)
        return None


def _str(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray([str(v) for v in values.tolist()], dtype=object)
