"""The Chicago taxi example end to end: train and push, rerun from cache, a shifted span
blocked at the gate, then overridden (recorded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from loopline.pipeline import RunStatus
from loopline.pipeline.loader import load_pipeline
from loopline.registry import ModelRegistry
from tests.components.conftest import Harness

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "taxi"


@pytest.mark.slow
def test_taxi_pipeline_trains_pushes_caches_and_gates_a_shifted_span(
    harness: Harness, tmp_path: Path
) -> None:
    copy = tmp_path / "taxi"
    copy.mkdir()
    for name in ("pipeline.py", "taxi_utils.py", "taxi_data.py", "schema.yaml"):
        shutil.copy(EXAMPLE / name, copy / name)
    try:
        pipeline = load_pipeline(copy / "pipeline.py")
        fast = {"tuner_trials": 1}  # the example's default is 4; one keeps the test short
        first = harness.runner.run(pipeline, params=fast)
        assert first.ok, {k: v.error for k, v in first.steps.items() if v.error}
        registry = ModelRegistry(harness.metadata, harness.artifacts)
        assert registry.get_model("taxi").aliases == {"champion": 1, "challenger": 1}

        again = harness.runner.run(load_pipeline(copy / "pipeline.py"), params=fast)
        ran = {k for k, s in again.steps.items() if not s.cached}
        assert ran <= {"previous_statistics", "baseline_model", "Evaluator"}

        import taxi_data

        taxi_data.make_shifted_span(copy / "data")
        blocked = harness.runner.run(load_pipeline(copy / "pipeline.py"), params=fast)
        assert blocked.status is RunStatus.BLOCKED
        error = harness.error(blocked, "ExampleValidator")
        assert "feature 'distance' drifted: normalized_wasserstein" in error
        assert "feature 'company' drifted" in error
        assert blocked.steps["Trainer"].state.value == "canceled"

        overridden = harness.runner.run(
            load_pipeline(copy / "pipeline.py"),
            params={**fast, "allow_anomalies": True, "override_reason": "fleet change, reviewed"},
        )
        assert overridden.ok, {k: v.error for k, v in overridden.steps.items() if v.error}
        anomalies = harness.artifact(overridden, "ExampleValidator", "anomalies")
        assert anomalies.properties["overridden"] is True
        assert anomalies.properties["override_reason"] == "fleet change, reviewed"
        assert harness.artifact(overridden, "ExampleGen", "examples").properties["span"] == 2
    finally:
        for name in ("taxi_utils", "taxi_data"):
            sys.modules.pop(name, None)
        while str(copy) in sys.path:
            sys.path.remove(str(copy))
