"""``loopline gc``: delete old pipeline runs, never what a kept model or deployment needs.

The policy (``--keep-last``, ``--older-than``) selects runs; the protected closure
(:mod:`loopline.metadata.retention`) decides what of them stays. The roots of that closure are
gathered here, where every reference is visible:

- the model artifact of **every registered version** (a version is a promise that
  ``name/N`` resolves to live bytes, which ``undo`` and a rollback may need at any time), and
  so every alias target;
- the model of every deployment's spec and of every revision still recorded in the deploy
  state (resolved through the registry);
- the blessings (``ModelBlessing`` with ``blessed == 1``) of those models, and the latest
  blessed model (overall and per pipeline), so the next run's Evaluator compares against the
  same baseline;

plus, inside the closure, everything executions outside the selected runs touch (alias moves,
registrations, deployment pins, monitor windows and their alerts) and everything upstream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import click

from loopline.artifacts.store import ArtifactStore
from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.errors import InvalidInputError, LooplineError, NotFoundError
from loopline.metadata import (
    GcPlan,
    MetadataStore,
    RetentionGraph,
    RetentionPolicy,
    collect,
    plan_gc,
)
from loopline.metadata.collection import resume
from loopline.pipeline.recovery import sweep_orphaned_folders
from loopline.platform import Platform
from loopline.registry.registry import ModelRegistry
from loopline.types import Json, ModelRef, format_age, parse_age

_DEFAULT = RetentionPolicy()
BLESSING_TYPE = "ModelBlessing"
PIPELINE_CONTEXT_TYPE = "pipeline"


def deployed_model_refs(metadata: MetadataStore) -> set[str]:
    """The model references of every deployment spec and recorded revision."""
    from loopline.deploy.sql_state import SqlDeploymentStateStore

    refs: set[str] = set()
    for snapshot in SqlDeploymentStateStore.from_metadata(metadata).snapshot_all():
        refs.add(snapshot.deployment.spec.template.model)
        refs.update(r.template.model for r in snapshot.revisions)
    return refs


def protected_roots(
    metadata: MetadataStore, registry: ModelRegistry, deployed: Iterable[str]
) -> set[int]:
    """Artifact ids retention must keep (with everything upstream of them): see the module
    docstring."""
    models = {v.artifact_id for v in metadata.list_model_versions()}
    for ref in deployed:
        try:
            models.add(registry.resolve(ModelRef.parse(ref)).artifact.id)
        except (NotFoundError, InvalidInputError):
            continue  # a spec naming a model that is gone protects nothing
    # The baselines the next runs' Evaluators resolve: overall and per pipeline.
    scopes = [None, *(c.id for c in metadata.list_contexts(type_name=PIPELINE_CONTEXT_TYPE))]
    for scope in scopes:
        latest = metadata.latest_blessed_model(context_id=scope)
        if latest is not None:
            models.add(latest.id)
    roots = set(models)
    for blessing in metadata.list_artifacts(type_name=BLESSING_TYPE):
        model_id = blessing.properties.get("current_model_id")
        if blessing.properties.get("blessed") == 1 and model_id in models:
            roots.add(blessing.id)
    return roots


def size_of(artifacts: ArtifactStore, uri: str) -> int:
    """Bytes of a published artifact (0 when it has none)."""
    try:
        with artifacts.open_local(uri) as path:
            if path.is_file():
                return path.stat().st_size
            return sum((Path(d) / f).stat().st_size for d, _, files in os.walk(path) for f in files)
    except (LooplineError, OSError):
        return 0


def _policy(keep_last: int, older_than: str) -> RetentionPolicy:
    age = None if older_than in ("0", "none") else parse_age(older_than, "--older-than")
    return RetentionPolicy(keep_last=keep_last, older_than=age)


def _summary(graph: RetentionGraph, plan: GcPlan, freed: int) -> dict[str, Json]:
    names = {r.id: r.name for r in graph.runs}
    by_type: dict[str, int] = {}
    for artifact in plan.artifacts:
        by_type[artifact.type_name] = by_type.get(artifact.type_name, 0) + 1
    kept_runs = {
        run for e in plan.kept_executions for run in graph.runs_of.get(e, ()) if run in plan.runs
    }
    return {
        "runs": list[Json](names[r] for r in plan.runs),
        "runs_kept_in_part": list[Json](sorted(names[r] for r in kept_runs)),
        "executions": len(plan.executions),
        "executions_kept": len(plan.kept_executions),
        "artifacts": len(plan.artifacts),
        "artifacts_by_type": dict[str, Json](sorted(by_type.items())),
        "bytes_freed": freed,
    }


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


@click.command("gc")
@click.option(
    "--dry-run", is_flag=True, help="Print what would go and the bytes freed; delete nothing."
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=1),
    default=_DEFAULT.keep_last,
    show_default=True,
    help="Always keep the newest N runs of each pipeline.",
)
@click.option(
    "--older-than",
    default=format_age(_DEFAULT.older_than or 0),
    show_default=True,
    help="Only runs started longer ago than this go: 30d, 12h, 90m (0: any age).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@handle_errors
def gc(dry_run: bool, keep_last: int, older_than: str, yes: bool, as_json: bool) -> None:
    """Delete old pipeline runs: their executions, the artifacts nothing kept needs, and
    those artifacts' bytes. Never what a registered model version, a deployment revision or
    the lineage of a kept model references."""
    policy = _policy(keep_last, older_than)
    with Platform.from_env() as platform:
        metadata, artifacts = platform.metadata, platform.artifacts
        resumed = [] if dry_run else resume(metadata, artifacts.delete)
        # folders a power loss left without their rows (pipeline/recovery.py), once they are
        # LOOPLINE_ORPHAN_GRACE old (unset: the sweep's own default)
        grace = platform.settings.orphan_grace
        given = {} if grace is None else {"grace": grace}
        orphans = [] if dry_run else sweep_orphaned_folders(metadata, artifacts, **given)
        graph = metadata.retention_graph()
        roots = protected_roots(metadata, platform.registry, deployed_model_refs(metadata))
        plan = plan_gc(graph, policy, roots=roots, now=datetime.now(UTC))
        freed = sum(size_of(artifacts, uri) for uri in plan.uris)
        summary = _summary(graph, plan, freed)
        summary["resumed"] = [r.name for r in resumed]
        summary["orphaned_folders_removed"] = list[Json](orphans)
        summary["dry_run"] = dry_run
        if not as_json:
            _print(summary, resumed=len(resumed))
        if dry_run or plan.empty:
            if as_json:
                print_json(summary)
            return
        if not yes:
            if as_json or not sys.stdin.isatty():
                raise InvalidInputError(
                    "loopline gc deletes runs and bytes; pass --yes to confirm (or --dry-run "
                    "to see what would go)."
                )
            click.confirm("Delete them?", abort=True)
        results = collect(metadata, plan, delete_bytes=artifacts.delete, now=datetime.now(UTC))
    done = results[-1]
    summary["collection"] = done.name
    summary["runs_deleted"] = done.runs_deleted
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"collected {done.name}: {done.runs_deleted} run(s), {done.executions_deleted} "
            f"execution(s), {done.artifacts_deleted} artifact(s), {_human(freed)} freed"
        )


def _print(summary: dict[str, Json], *, resumed: int) -> None:
    if resumed:
        console.print(f"finished {resumed} collection(s) an earlier gc left half-done")
    orphans = summary["orphaned_folders_removed"]
    if orphans:
        assert isinstance(orphans, list)
        console.print(f"removed {len(orphans)} artifact folder(s) no row names (a power loss)")
    runs = summary["runs"]
    assert isinstance(runs, list)
    if not runs:
        console.print("nothing to collect: no run is beyond the policy")
        return
    verb = "would delete" if summary["dry_run"] else "deletes"
    by_type = summary["artifacts_by_type"]
    assert isinstance(by_type, dict)
    types = ", ".join(f"{n} {t}" for t, n in by_type.items()) or "none"
    freed = summary["bytes_freed"]
    assert isinstance(freed, int)
    console.print(
        f"gc {verb} {len(runs)} run(s): {summary['executions']} execution(s), "
        f"{summary['artifacts']} artifact(s) ({types}), {_human(freed)}"
    )
    for name in runs:
        console.print(f"  {name}")
    partial = summary["runs_kept_in_part"]
    if partial:
        assert isinstance(partial, list)
        console.print(
            f"kept {summary['executions_kept']} execution(s) of {len(partial)} of these runs: "
            "the lineage of a kept model or deployment needs them"
        )
