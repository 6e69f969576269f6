"""Pusher: register a blessed, infra-blessed model as a registry version and move an alias.

The model must carry a ``ModelBlessing`` with ``blessed == 1`` for this very model and, unless
``require_infra_blessing`` is False, an ``InfraBlessing`` with ``blessed == 1``; otherwise the
step raises GateFailedError with the reasons and the run ends BLOCKED. A pushed model becomes
the next version of ``model_name`` (or keeps its version if this artifact is already
registered: pushing is idempotent) and ``alias`` (default ``challenger``) moves to it; when the
model has no ``champion`` yet, the first pushed version becomes ``champion`` too. Every move
records who (the pipeline run), why, and the blessings as evidence.

The registry is built from ``ctx.metadata``/``ctx.artifacts``, so the Pusher runs with
``isolation="thread"`` (the default).
"""

from __future__ import annotations

import json

from loopline.errors import GateFailedError, InvalidDefinitionError
from loopline.pipeline import (
    InfraBlessing,
    Input,
    Model,
    ModelBlessing,
    Output,
    PushedModel,
    StepContext,
    component,
)
from loopline.registry import ModelRegistry
from loopline.types import Json

PUSHED_FILE = "pushed.json"


def _reasons(blessing: Input[ModelBlessing]) -> str:
    reasons = blessing.properties.get("reasons")
    if isinstance(reasons, list) and reasons:
        shown = "; ".join(str(r) for r in reasons[:5])
        more = f" (and {len(reasons) - 5} more)" if len(reasons) > 5 else ""
        return f"{shown}{more}"
    return "see the blessing artifact"


@component(name="Pusher")
def Pusher(
    model: Input[Model],
    blessing: Input[ModelBlessing],
    pushed: Output[PushedModel],
    ctx: StepContext,
    model_name: str,
    infra_blessing: Input[InfraBlessing] | None = None,
    alias: str = "challenger",
    champion_alias: str = "champion",
    require_infra_blessing: bool = True,
) -> None:
    """Register ``model`` as a version of ``model_name`` and point ``alias`` at it."""
    if blessing.properties.get("current_model_id") != model.id:
        raise GateFailedError(
            f"Blessing {blessing.id} judged model {blessing.properties.get('current_model_id')}, "
            f"not model {model.id}; wire the Evaluator's blessing of this model."
        )
    if blessing.properties.get("blessed") != 1:
        raise GateFailedError(
            f"Model {model.id} is not blessed, so it is not pushed: {_reasons(blessing)}."
        )
    if infra_blessing is None and require_infra_blessing:
        raise GateFailedError(
            f"Model {model.id} has no infra blessing; connect InfraValidator's output or set "
            "require_infra_blessing=False."
        )
    if infra_blessing is not None and infra_blessing.properties.get("blessed") != 1:
        raise GateFailedError(
            f"Model {model.id} failed infra validation, so it is not pushed: "
            f"{infra_blessing.properties.get('reason')}."
        )
    if ctx.metadata is None or ctx.artifacts is None:
        raise InvalidDefinitionError(
            "Pusher needs the run's stores (ctx.metadata/ctx.artifacts), which only "
            "isolation='thread' steps get; do not run it in a child process."
        )
    registry = ModelRegistry(ctx.metadata, ctx.artifacts)
    who = f"pipeline run {ctx.run_name} (step {ctx.step_id})"
    evidence = [blessing.id, *([infra_blessing.id] if infra_blessing is not None else [])]
    why = f"blessed by ModelBlessing {blessing.id}" + (
        f" and InfraBlessing {infra_blessing.id}" if infra_blessing is not None else ""
    )
    existing = [
        v for v in ctx.metadata.list_model_versions(model_name) if v.artifact_id == model.id
    ]
    if existing:
        version = existing[0].version
        newly = False
    else:
        version = registry.register(model_name, model.id, who=who, why=why).version
        newly = True
    aliases = {a.alias: a.version for a in ctx.metadata.list_model_aliases(model_name)}
    moved: list[Json] = []
    targets = [alias] + ([champion_alias] if champion_alias not in aliases else [])
    for name in targets:
        if aliases.get(name) == version:
            continue
        why_alias = why if name == alias else f"{why}; first pushed version becomes {name}"
        registry.set_alias(model_name, name, version, who=who, why=why_alias, evidence=evidence)
        moved.append(name)
    record: dict[str, Json] = {
        "pushed": True,
        "model": model_name,
        "version": version,
        "registered": newly,
        "aliases_moved": moved,
        "evidence": list[Json](evidence),
        "model_digest": model.digest,
    }
    (pushed.path / PUSHED_FILE).write_text(json.dumps(record, indent=2))
    pushed.properties.update(record)
    pushed.properties["model_id"] = model.id
    ctx.set_tags(pushed_version=f"{model_name}/{version}")
