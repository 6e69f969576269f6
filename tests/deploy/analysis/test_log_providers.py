"""Prediction drift and online accuracy over real Parquet logs written by the model server's
SegmentWriter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from loopline.data import compare, jensen_shannon_distance, profile_table, psi
from loopline.deploy.analysis import (
    AnalysisTemplate,
    MeasureContext,
    Metric,
    RevisionModel,
    provider_for,
)
from loopline.errors import BackendError, InvalidInputError
from loopline.serving import LogOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter

T0 = 1_700_000_000.0
CANARY = RevisionModel("new1", "taxi", "2")
STABLE = RevisionModel("old1", "taxi", "1")


def metric(provider: dict[str, Any]) -> Metric:
    return AnalysisTemplate.from_dict({
        "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
        "spec": {"metrics": [{"name": "m", "provider": provider}]},
    }).metrics[0]  # fmt: skip


def context(directory: Path | None, *, start: float = T0, end: float = T0 + 600,
            stable: RevisionModel | None = STABLE) -> MeasureContext:  # fmt: skip
    return MeasureContext("taxi", CANARY, stable, None, directory, start, end)


def write(directory: Path, stream: str, side: RevisionModel, columns: dict[str, np.ndarray],
          *, ts: float = T0 + 10, ids: str = "req", per_request: int = 1) -> None:  # fmt: skip
    """Log ``columns`` (all one length) as requests of ``per_request`` rows each."""
    writer = SegmentWriter(directory, stream, LogOptions(directory, flush_seconds=3600))
    writer.start()
    n = len(next(iter(columns.values())))
    key = "label" if stream == "feedback" else "outputs"
    for i, lo in enumerate(range(0, n, per_request)):
        part = {k: v[lo:lo + per_request] for k, v in columns.items()}
        cols: dict[str, Any] = {key: part}
        if key == "outputs":
            cols["inputs"] = {"x": np.arange(len(part[next(iter(part))]), dtype=np.float64)}
        assert writer.offer(LogRecord(f"{ids}-{i}", ts, side.model, side.version,
                                      len(part[next(iter(part))]), cols))  # fmt: skip
    writer.close()
    assert writer.written == n and writer.dropped == 0


def labels(yes: int, no: int) -> np.ndarray:
    return np.array(["yes"] * yes + ["no"] * no, dtype=object)


# ---- prediction drift ------------------------------------------------------------------------


def test_categorical_drift_is_the_data_packages_distance_on_category_counts(
    tmp_path: Path,
) -> None:
    write(tmp_path, "predictions", STABLE, {"predict": labels(700, 300)}, ids="s")
    write(tmp_path, "predictions", CANARY, {"predict": labels(100, 100)}, ids="c")
    js = metric({"predictionDrift": {"measure": "jensenShannon"}})
    out = provider_for(js).measure(js, context(tmp_path))
    assert out.samples == 200
    assert out.value == pytest.approx(jensen_shannon_distance([300, 700], [100, 100]))
    p = metric({"predictionDrift": {"measure": "psi"}})
    assert provider_for(p).measure(p, context(tmp_path)).value == pytest.approx(
        psi([300, 700], [100, 100]))  # fmt: skip


def test_the_same_distribution_has_no_drift(tmp_path: Path) -> None:
    write(tmp_path, "predictions", STABLE, {"predict": labels(700, 300)}, ids="s")
    write(tmp_path, "predictions", CANARY, {"predict": labels(70, 30)}, ids="c", per_request=7)
    m = metric({"predictionDrift": {}})
    assert provider_for(m).measure(m, context(tmp_path)).value == pytest.approx(0.0, abs=1e-12)


def test_numeric_drift_uses_the_stable_sides_buckets_and_std(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    stable, canary = rng.normal(10, 2, 4000), rng.normal(12, 2, 3000)
    write(tmp_path, "predictions", STABLE, {"fare": stable}, ids="s", per_request=50)
    write(tmp_path, "predictions", CANARY, {"fare": canary}, ids="c", per_request=50)
    ref = profile_table(pa.table({"fare": stable}))
    expected = compare(ref, profile_table(pa.table({"fare": canary}), ref)).features[0].metrics
    for measure, key in (("wasserstein", "normalized_wasserstein"),
                         ("jensenShannon", "jensen_shannon"), ("psi", "psi")):  # fmt: skip
        m = metric({"predictionDrift": {"measure": measure}})
        out = provider_for(m).measure(m, context(tmp_path))
        assert out.samples == 3000
        assert out.value == pytest.approx(expected[key])  # type: ignore[index]
    m = metric({"predictionDrift": {"measure": "wasserstein"}})
    assert provider_for(m).measure(m, context(tmp_path)).value == pytest.approx(1.0, abs=0.1)


def test_only_predictions_inside_the_window_count(tmp_path: Path) -> None:
    write(tmp_path, "predictions", STABLE, {"predict": labels(50, 50)}, ids="s")
    write(tmp_path, "predictions", CANARY, {"predict": labels(40, 0)}, ids="old", ts=T0 - 60)
    write(tmp_path, "predictions", CANARY, {"predict": labels(5, 5)}, ids="c")
    m = metric({"predictionDrift": {}})
    out = provider_for(m).measure(m, context(tmp_path))
    assert out.samples == 10 and out.value == pytest.approx(0.0, abs=1e-12)
    later = provider_for(m).measure(m, context(tmp_path, start=T0 + 20))
    assert (later.value, later.samples) == (None, 0)


def test_drift_picks_the_named_output(tmp_path: Path) -> None:
    both = {"predict": labels(50, 50), "score": np.linspace(0, 1, 100)}
    write(tmp_path, "predictions", STABLE, both, ids="s")
    write(tmp_path, "predictions", CANARY, both, ids="c")
    m = metric({"predictionDrift": {"measure": "wasserstein", "output": "score"}})
    assert provider_for(m).measure(m, context(tmp_path)).value == pytest.approx(0.0, abs=1e-9)
    bad = metric({"predictionDrift": {"output": "proba"}})
    with pytest.raises(InvalidInputError, match=r"outputs \['predict', 'score'\], not 'proba'"):
        provider_for(bad).measure(bad, context(tmp_path))


def test_drift_errors_name_what_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "predictions", STABLE, {"predict": labels(5, 5)}, ids="s")
    write(tmp_path, "predictions", CANARY, {"predict": labels(5, 5)}, ids="c")
    w = metric({"predictionDrift": {"measure": "wasserstein"}})
    with pytest.raises(InvalidInputError, match="is categorical, and wasserstein needs numbers"):
        provider_for(w).measure(w, context(tmp_path))
    m = metric({"predictionDrift": {}})
    with pytest.raises(BackendError, match="reads prediction logs, but deployment 'taxi' has"):
        provider_for(m).measure(m, context(None))
    with pytest.raises(InvalidInputError, match="has no stable revision"):
        provider_for(m).measure(m, context(tmp_path, stable=None))


# ---- accuracy --------------------------------------------------------------------------------


def test_accuracy_joins_feedback_with_the_canarys_predictions(tmp_path: Path) -> None:
    write(tmp_path, "predictions", CANARY, {"predict": labels(60, 40)}, ids="req", per_request=4)
    truth = labels(60, 40)
    truth[:20] = "no"  # 20 of the 60 "yes" predictions were wrong
    write(tmp_path, "feedback", STABLE, {"label": truth}, ids="req", ts=T0 + 100, per_request=4)
    write(tmp_path, "predictions", STABLE, {"predict": labels(0, 100)}, ids="other")
    m = metric({"accuracy": {"metric": "accuracy"}})
    out = provider_for(m).measure(m, context(tmp_path))
    assert (out.value, out.samples) == (pytest.approx(0.8), 100)


def test_the_latest_label_wins_and_unlabelled_predictions_do_not_count(tmp_path: Path) -> None:
    write(tmp_path, "predictions", CANARY, {"predict": labels(10, 0)}, ids="req")
    write(tmp_path, "feedback", CANARY, {"label": labels(0, 4)}, ids="req", ts=T0 + 50)
    write(tmp_path, "feedback", CANARY, {"label": labels(2, 0)}, ids="req", ts=T0 + 60)
    m = metric({"accuracy": {}})
    out = provider_for(m).measure(m, context(tmp_path))
    assert (out.value, out.samples) == (pytest.approx(0.5), 4)


def test_rmse_and_mae_for_numeric_predictions(tmp_path: Path) -> None:
    write(tmp_path, "predictions", CANARY, {"fare": np.array([10.0, 20.0, 30.0, 40.0])})
    write(tmp_path, "feedback", CANARY, {"label": np.array([11.0, 18.0, 30.0, 44.0])}, ts=T0 + 70)
    rmse, mae = metric({"accuracy": {"metric": "rmse"}}), metric({"accuracy": {"metric": "mae"}})
    assert provider_for(rmse).measure(rmse, context(tmp_path)).value == pytest.approx(
        np.sqrt((1 + 4 + 0 + 16) / 4))  # fmt: skip
    out = provider_for(mae).measure(mae, context(tmp_path))
    assert (out.value, out.samples) == (pytest.approx(7 / 4), 4)


def test_accuracy_without_data_is_no_value_and_rmse_needs_numbers(tmp_path: Path) -> None:
    m = metric({"accuracy": {}})
    (tmp_path / "predictions").mkdir()
    assert provider_for(m).measure(m, context(tmp_path)).samples == 0
    write(tmp_path, "predictions", CANARY, {"predict": labels(3, 3)}, ids="req")
    assert provider_for(m).measure(m, context(tmp_path)).samples == 0  # no feedback yet
    write(tmp_path, "feedback", CANARY, {"label": labels(3, 3)}, ids="zzz", ts=T0 + 70)
    assert provider_for(m).measure(m, context(tmp_path)).samples == 0  # none matches
    write(tmp_path, "feedback", CANARY, {"label": labels(3, 3)}, ids="req", ts=T0 + 80)
    rmse = metric({"accuracy": {"metric": "rmse"}})
    with pytest.raises(InvalidInputError, match="rmse needs numeric predictions and labels"):
        provider_for(rmse).measure(rmse, context(tmp_path))
