"""Helpers for the trigger tests: Trigger documents."""

from __future__ import annotations

from typing import Any

from loopline.triggers import TriggerSpec

SPANS = {"newSpan": {"inputDir": "data", "pattern": "span-{SPAN}/*.csv"}}


def trigger_doc(
    on: dict[str, Any] | None = None,
    *,
    name: str = "retrain",
    params: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Trigger document for model ``taxi`` (by default on new spans, ``span: {{span}}``)."""
    on = on if on is not None else SPANS
    if params is None:
        params = {"span": "{{span}}"} if "newSpan" in on else {}
    body: dict[str, Any] = {
        "model": "taxi",
        "on": on,
        "run": {"pipeline": "pipeline.py", "params": params},
        **spec,
    }
    return {
        "apiVersion": "loopline/v1",
        "kind": "Trigger",
        "metadata": {"name": name},
        "spec": body,
    }


def trigger(on: dict[str, Any] | None = None, **kwargs: Any) -> TriggerSpec:
    return TriggerSpec.from_dict(trigger_doc(on, **kwargs))
