"""Close the loop: triggers start retraining runs and roll their blessed models out.

A ``kind: Trigger`` (:class:`TriggerSpec`) names an event source — a cron ``schedule``, a
``newSpan`` of data, a monitor ``alert``, a ``decay`` alert on a performance metric, a
``registry`` event — a pipeline ``run`` with a parameter template, a ``cooldown`` and an
optional ``rollout``. Key contracts:

- :func:`decide` is pure (``now`` is a parameter): de-duplication by key ("span 42 already
  trained"), one run per model at a time, cooldown, coalescing; a fake-clock simulator
  drives it in tests.
- :class:`TriggerStore` (in memory, or SQL in the metadata database) reserves a run's keys
  and checks its model is free in one atomic step, so a run is never launched twice, even
  across restarts; runs move through :class:`RunState` by compare-and-set.
- :class:`TriggerController` launches each run as ``python -m loopline.cli run FILE --json``
  in its own session, records it as a ``TriggerRun`` execution whose inputs are the events'
  artifacts (an Alert, a DataSpan, a ScheduleTick, a Model), rolls a pushed challenger out
  through :class:`Rollouts` and, when the rollout ends Healthy, moves ``champion`` with
  compare-and-set, the run's ``TriggerOutcome`` as evidence.

Sits above ``deploy`` in the layers; imports monitor (the Alert type), registry, metadata,
components (span discovery), errors, types.
"""

from loopline.triggers.controller import TriggerController
from loopline.triggers.decide import (
    Action,
    Cause,
    Defer,
    Launch,
    Skip,
    TriggerEvent,
    TriggerState,
    consumed_up_to,
    decide,
)
from loopline.triggers.process import ProcessLauncher
from loopline.triggers.records import OUTCOME_TYPE, TRIGGER_CONTEXT_TYPE, TRIGGER_RUN_TYPE
from loopline.triggers.rollout import RolloutObservation, RolloutPhase, Rollouts, Verdict, judge
from loopline.triggers.run import RunState, TriggerRun
from loopline.triggers.sources import Observation, observe
from loopline.triggers.spec import OnKind, TriggerSpec, yaml_on
from loopline.triggers.sql_store import SqlTriggerStore
from loopline.triggers.store import InMemoryTriggerStore, StoredTrigger, TriggerStore

__all__ = [
    "OUTCOME_TYPE",
    "TRIGGER_CONTEXT_TYPE",
    "TRIGGER_RUN_TYPE",
    "Action",
    "Cause",
    "Defer",
    "InMemoryTriggerStore",
    "Launch",
    "Observation",
    "OnKind",
    "ProcessLauncher",
    "RolloutObservation",
    "RolloutPhase",
    "Rollouts",
    "RunState",
    "Skip",
    "SqlTriggerStore",
    "StoredTrigger",
    "TriggerController",
    "TriggerEvent",
    "TriggerRun",
    "TriggerSpec",
    "TriggerState",
    "TriggerStore",
    "Verdict",
    "consumed_up_to",
    "decide",
    "judge",
    "observe",
    "yaml_on",
]
