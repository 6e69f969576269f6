"""The deployment page's actions: when each applies, why it is disabled, and the CLI command
that does the same.

Each action calls the same :class:`~loopline.controlplane.ControlPlane` operation as the API
route of the same verb (``scale`` ↔ ``PUT /v1/deployments/{name}/scale``, ``promote`` ↔
``POST …/rollout/promote`` …). Whether a button is enabled is decided here, purely, from the
deployment's API view; the operation itself still refuses what is not allowed (a 409 naming
why), so a stale page cannot do harm.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopline.errors import InvalidInputError, shown
from loopline.ui.rollout import Rollout

VERBS = ("scale", "pause", "resume", "promote", "promote-full", "abort", "retry", "undo")


@dataclass(frozen=True, slots=True)
class ActionState:
    """One button: its verb, label, whether it applies now and, if not, why."""

    verb: str
    label: str
    enabled: bool
    why_not: str
    command: str


def cli_command(verb: str, name: str, value: int | None = None) -> str:
    """The ``loopline`` command line equivalent to ``verb`` on deployment ``name``."""
    target = shlex.quote(f"deployment/{name}")
    if verb == "scale":
        return f"loopline scale {target} --replicas {value if value is not None else 'N'}"
    if verb == "promote-full":
        return f"loopline rollout promote {target} --full"
    if verb == "undo":
        suffix = f" --to-revision {value}" if value else ""
        return f"loopline rollout undo {target}{suffix}"
    return f"loopline rollout {verb} {target}"


def alias_command(model: str, alias: str, version: int, why: str) -> str:
    """The ``loopline models alias set`` command equivalent to an alias move."""
    parts = ["loopline", "models", "alias", "set", model, alias, str(version), "--why", why]
    return " ".join(shlex.quote(p) for p in parts)


def action_states(
    view: Mapping[str, Any], revision_count: int, rollout: Rollout | None, paused: bool
) -> tuple[ActionState, ...]:
    """Every action on the deployment whose API view is ``view``, with its rollout read on
    either engine (:func:`loopline.ui.rollout.rollout_of`) and whether it is paused (the
    rollout status's ``paused``)."""
    name = str((view.get("metadata") or {}).get("name"))
    in_flight = rollout is not None and rollout.in_flight
    aborted = rollout is not None and rollout.aborted
    rows = [
        ("scale", "Scale", True, ""),
        ("pause", "Pause", not paused, "the deployment is already paused"),
        ("resume", "Resume", paused, "the deployment is not paused"),
        ("promote", "Promote", in_flight and not aborted,
         "no canary or preview rollout is in progress"),
        ("promote-full", "Promote full", in_flight and not aborted,
         "no canary or preview rollout is in progress"),
        ("abort", "Abort", in_flight and not aborted, "no rollout is in progress"),
        ("retry", "Retry", aborted, "the rollout was not aborted"),
        ("undo", "Undo", revision_count > 1 and not paused,
         "the deployment is paused" if paused else "there is no earlier revision"),
    ]  # fmt: skip
    return tuple(
        ActionState(verb, label, enabled, "" if enabled else why, cli_command(verb, name))
        for verb, label, enabled, why in rows
    )


def form_int(form: Mapping[str, str], field: str, *, minimum: int, default: int | None) -> int:
    """An integer form field.

    Raises:
        InvalidInputError: missing (without a default) or not an integer ≥ ``minimum``; the
            message names the field.
    """
    raw = form.get(field, "").strip()
    if raw == "" and default is not None:
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 9 or int(raw) < minimum:
        raise InvalidInputError(
            f"{field} = {shown(raw)} is invalid: it must be an integer at least {minimum}."
        )
    return int(raw)
