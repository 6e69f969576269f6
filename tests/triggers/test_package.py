"""The face of ``loopline.triggers``: what other packages may import from it."""

from __future__ import annotations

import loopline.triggers


def test_the_triggers_package_exports_exactly_its_public_names() -> None:
    assert sorted(loopline.triggers.__all__) == sorted([
        "OUTCOME_TYPE", "TRIGGER_CONTEXT_TYPE", "TRIGGER_RUN_TYPE", "Action",
        "Cause", "Defer", "InMemoryTriggerStore", "Launch", "Observation", "OnKind",
        "ProcessLauncher", "RolloutObservation", "RolloutPhase", "Rollouts", "RunState", "Skip",
        "SqlTriggerStore", "StoredTrigger", "TriggerController", "TriggerEvent", "TriggerRun",
        "TriggerSpec", "TriggerState", "TriggerStore", "Verdict", "consumed_up_to", "decide",
        "judge", "observe", "yaml_on",
    ])  # fmt: skip
    assert all(hasattr(loopline.triggers, name) for name in loopline.triggers.__all__)
    assert loopline.triggers.TRIGGER_RUN_TYPE == "TriggerRun"
