"""``loopline artifacts list|show``."""

from __future__ import annotations

import click
from rich.table import Table

from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.errors import InvalidInputError
from loopline.metadata.entities import Artifact, ArtifactState
from loopline.platform import Platform
from loopline.types import Json


def artifact_json(a: Artifact) -> dict[str, Json]:
    """An artifact as JSON."""
    return {
        "id": a.id,
        "type": a.type_name,
        "name": a.name,
        "uri": a.uri,
        "state": a.state.value,
        "digest": a.digest,
        "properties": dict(a.properties),
        "created_at": a.created_at.isoformat(),
    }


@click.group("artifacts")
def artifacts() -> None:
    """Artifacts recorded in the metadata store."""


@artifacts.command("list")
@click.option("--type", "type_name", default=None, help="Only this type, e.g. Model.")
@click.option("--state", default=None, help="pending, live or deleted.")
@click.option("--limit", default=50, show_default=True)
@json_option
@handle_errors
def list_artifacts(type_name: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """Newest artifacts first."""
    try:
        wanted = ArtifactState(state) if state else None
    except ValueError:
        raise InvalidInputError(
            f"--state {state!r} is not a state; use pending, live or deleted."
        ) from None
    with Platform.from_env() as platform:
        found = platform.metadata.list_artifacts(type_name=type_name, state=wanted, limit=limit)
    if as_json:
        print_json([artifact_json(a) for a in found])
        return
    table = Table(title="artifacts")
    for col in ("id", "type", "name", "state", "digest", "created"):
        table.add_column(col)
    for a in found:
        table.add_row(
            str(a.id),
            a.type_name,
            a.name or "",
            a.state.value,
            (a.digest or "")[:19],
            a.created_at.isoformat()[:19],
        )
    console.print(table)


@artifacts.command("show")
@click.argument("artifact_id", type=int)
@json_option
@handle_errors
def show_artifact(artifact_id: int, as_json: bool) -> None:
    """One artifact with its properties and the contexts it belongs to."""
    with Platform.from_env() as platform:
        a = platform.metadata.get_artifact(artifact_id)
        contexts = platform.metadata.contexts_of_artifact(artifact_id)
    data = artifact_json(a)
    data["contexts"] = [f"{c.type_name}:{c.name}" for c in contexts]
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        console.print(f"[bold]{key}[/]: {value}")
