"""``loopline models list|show`` and ``loopline models alias set|unset|undo|history``."""

from __future__ import annotations

import click
from rich.table import Table

from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.platform import Platform
from loopline.registry.entities import AliasMove
from loopline.types import Json


@click.group("models")
def models() -> None:
    """Registered models, their versions and aliases."""


@models.command("list")
@json_option
@handle_errors
def list_models(as_json: bool) -> None:
    """Every registered model with its latest version and aliases."""
    with Platform.from_env() as platform:
        summaries = platform.registry.list_models()
    if as_json:
        print_json(
            [
                {
                    "name": s.name,
                    "latest_version": s.latest_version,
                    "versions": s.version_count,
                    "aliases": dict(s.aliases),
                }
                for s in summaries
            ]
        )
        return
    table = Table(title="models")
    for col in ("name", "latest", "versions", "aliases"):
        table.add_column(col)
    for s in summaries:
        table.add_row(
            s.name,
            str(s.latest_version),
            str(s.version_count),
            ", ".join(f"{a}→{v}" for a, v in sorted(s.aliases.items())),
        )
    console.print(table)


@models.command("show")
@click.argument("name")
@json_option
@handle_errors
def show_model(name: str, as_json: bool) -> None:
    """Versions and aliases of one model."""
    with Platform.from_env() as platform:
        model = platform.registry.get_model(name)
        arts = {v.version: platform.metadata.get_artifact(v.artifact_id) for v in model.versions}
    by_version: dict[int, list[str]] = {}
    for alias, version in model.aliases.items():
        by_version.setdefault(version, []).append(alias)
    if as_json:
        print_json(
            {
                "name": model.name,
                "aliases": dict(model.aliases),
                "versions": [
                    {
                        "version": v.version,
                        "artifact_id": v.artifact_id,
                        "digest": arts[v.version].digest,
                        "uri": arts[v.version].uri,
                        "description": v.description,
                        "created_at": v.created_at.isoformat(),
                        "aliases": list[Json](sorted(by_version.get(v.version, []))),
                    }
                    for v in model.versions
                ],
            }
        )
        return
    table = Table(title=f"model {model.name}")
    for col in ("version", "aliases", "artifact", "digest", "created", "description"):
        table.add_column(col, overflow="fold")
    for v in model.versions:
        table.add_row(
            str(v.version),
            ", ".join(sorted(by_version.get(v.version, []))),
            f"#{v.artifact_id}",
            (arts[v.version].digest or "")[:19],
            v.created_at.isoformat()[:19],
            v.description,
        )
    console.print(table)


@models.command("register")
@click.argument("name")
@click.argument("artifact_id", type=int)
@click.option("--why", required=True, help="The reason, recorded with the registration.")
@click.option("--who", default=None, help="Who registers it (default: LOOPLINE_USER).")
@click.option("--description", default="", help="Free text shown by models show.")
@json_option
@handle_errors
def register(
    name: str, artifact_id: int, why: str, who: str | None, description: str, as_json: bool
) -> None:
    """Register the LIVE Model artifact ARTIFACT_ID as the next version of NAME."""
    with Platform.from_env() as platform:
        version = platform.registry.register(
            name, artifact_id, description=description, who=_who(platform, who), why=why
        )
    if as_json:
        print_json(
            {"name": version.name, "version": version.version, "artifact_id": version.artifact_id}
        )
    else:
        console.print(f"registered artifact #{artifact_id} as {version.name}/{version.version}")


@models.group("alias")
def alias() -> None:
    """Move, remove, undo and audit aliases such as champion and challenger."""


def _move_json(m: AliasMove) -> dict[str, Json]:
    return {
        "execution_id": m.execution_id,
        "model": m.model,
        "alias": m.alias,
        "action": m.action.value,
        "from_version": m.from_version,
        "to_version": m.to_version,
        "who": m.who,
        "why": m.why,
        "evidence": list(m.evidence),
        "at": m.at.isoformat(),
        "undoes": m.undoes,
    }


def _print_move(m: AliasMove, as_json: bool) -> None:
    if as_json:
        print_json(_move_json(m))
    else:
        console.print(
            f"{m.model}@{m.alias}: {m.from_version or '∅'} → {m.to_version or '∅'} "
            f"({m.action.value} by {m.who}: {m.why}; recorded as execution {m.execution_id})"
        )


def _who(platform: Platform, who: str | None) -> str:
    return who or platform.settings.user


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=int)
@click.option("--why", required=True, help="The reason, recorded with the move.")
@click.option("--who", default=None, help="Who moves it (default: LOOPLINE_USER or OS user).")
@click.option(
    "--evidence",
    multiple=True,
    type=int,
    metavar="ARTIFACT_ID",
    help="Artifact ids that justify the move, e.g. a ModelBlessing (repeatable).",
)
@click.option(
    "--expect",
    type=click.IntRange(min=0),
    default=None,
    metavar="VERSION",
    help="Move only if the alias is at VERSION now (0: not set); else fail naming where it is.",
)
@json_option
@handle_errors
def alias_set(
    name: str,
    alias_name: str,
    version: int,
    why: str,
    who: str | None,
    evidence: tuple[int, ...],
    expect: int | None,
    as_json: bool,
) -> None:
    """Point NAME@ALIAS at VERSION (with --expect: only if it is at the expected version)."""
    with Platform.from_env() as platform:
        move = platform.registry.set_alias(
            name,
            alias_name,
            version,
            who=_who(platform, who),
            why=why,
            evidence=evidence,
            expect=expect,
        )
    _print_move(move, as_json)


@alias.command("unset")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--why", required=True, help="The reason, recorded with the move.")
@click.option("--who", default=None, help="Who removes it.")
@click.option(
    "--expect",
    type=click.IntRange(min=0),
    default=None,
    metavar="VERSION",
    help="Move only if the alias is at VERSION now (0: not set); else fail naming where it is.",
)
@json_option
@handle_errors
def alias_unset(
    name: str, alias_name: str, why: str, who: str | None, expect: int | None, as_json: bool
) -> None:
    """Remove NAME@ALIAS (recorded, and undoable)."""
    with Platform.from_env() as platform:
        move = platform.registry.unset_alias(
            name, alias_name, who=_who(platform, who), why=why, expect=expect
        )
    _print_move(move, as_json)


@alias.command("undo")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--why", required=True, help="The reason, recorded with the move.")
@click.option("--who", default=None, help="Who undoes it.")
@click.option(
    "--expect",
    type=click.IntRange(min=0),
    default=None,
    metavar="VERSION",
    help="Move only if the alias is at VERSION now (0: not set); else fail naming where it is.",
)
@json_option
@handle_errors
def alias_undo(
    name: str, alias_name: str, why: str, who: str | None, expect: int | None, as_json: bool
) -> None:
    """Put NAME@ALIAS back where it was before its latest move."""
    with Platform.from_env() as platform:
        move = platform.registry.undo(
            name, alias_name, who=_who(platform, who), why=why, expect=expect
        )
    _print_move(move, as_json)


@alias.command("history")
@click.argument("name")
@click.argument("alias_name", metavar="[ALIAS]", required=False)
@json_option
@handle_errors
def alias_history(name: str, alias_name: str | None, as_json: bool) -> None:
    """Every move of NAME's aliases (or of one alias), newest first, with who, why and
    evidence."""
    with Platform.from_env() as platform:
        moves = platform.registry.alias_history(name, alias_name)
    if as_json:
        print_json([_move_json(m) for m in moves])
        return
    table = Table(title=f"alias history of {name}" + (f"@{alias_name}" if alias_name else ""))
    for col in ("when", "alias", "action", "from", "to", "who", "why", "evidence", "execution"):
        table.add_column(col, overflow="fold")
    for m in moves:
        table.add_row(
            m.at.isoformat()[:19],
            m.alias,
            m.action.value,
            str(m.from_version or "∅"),
            str(m.to_version or "∅"),
            m.who,
            m.why,
            ", ".join(f"#{e}" for e in m.evidence),
            str(m.execution_id),
        )
    console.print(table)
