"""Read verbs: ``get deployments|deployment NAME|replicas``, ``describe deployment``, ``logs``."""

from __future__ import annotations

import sys

import click

from loopline.cli.connect import connect
from loopline.cli.deploy_output import (
    KINDS,
    deployments_table,
    describe,
    emit,
    machine_format,
    output_options,
    replicas_table,
    split_resource,
    templates_table,
)
from loopline.cli.output import console, handle_errors
from loopline.errors import InvalidInputError


@click.command("get")
@click.argument("kind")
@click.argument("name", required=False)
@output_options
@handle_errors
def get(kind: str, name: str | None, output: str | None, as_json: bool) -> None:
    """List deployments or replicas, or show one deployment.

    \b
    loopline get deployments
    loopline get deployment NAME -o yaml
    loopline get replicas [DEPLOYMENT]
    loopline get analysistemplates [NAME]
    loopline get triggers [NAME]
    loopline get monitors [NAME]
    """
    if "/" in kind and name is None:
        kind, _, name = kind.partition("/")
    resource = KINDS.get(kind)
    if resource is None:
        raise InvalidInputError(
            f"Unknown resource type {kind!r}; use deployments, replicas, analysistemplates, "
            "triggers or monitors."
        )
    fmt = machine_format(output, as_json)
    with connect() as client:
        if resource == "analysistemplate":
            templates = [client.get_template(name)] if name else client.list_templates()
            if fmt is not None:
                emit(templates[0] if name else {"items": templates}, fmt)
            elif not templates:
                console.print("No analysis templates found.")
            else:
                console.print(templates_table(templates))
            return
        if resource == "trigger":
            from loopline.cli.triggers import triggers_table

            found = [client.get_trigger(name)] if name else client.list_triggers()
            if fmt is not None:
                emit(found[0] if name else {"items": found}, fmt)
            elif not found:
                console.print("No triggers found.")
            else:
                console.print(triggers_table(found))
            return
        if resource == "monitor":
            from loopline.cli.monitor import monitors_table

            monitors = [client.get_monitor(name)] if name else client.list_monitors()
            if fmt is not None:
                emit(monitors[0] if name else {"items": monitors}, fmt)
            elif not monitors:
                console.print("No monitors found.")
            else:
                console.print(monitors_table(monitors))
            return
        if resource == "replica":
            items = client.replicas(name)
            if fmt is not None:
                emit({"items": items}, fmt)
            elif not items:
                console.print("No replicas found.")
            else:
                console.print(replicas_table(items))
            return
        if name is not None:
            d = client.get_deployment(name)
            if fmt is not None:
                emit(d, fmt)
            else:
                console.print(deployments_table([d]))
            return
        deployments = client.list_deployments()
    if fmt is not None:
        emit({"items": deployments}, fmt)
    elif not deployments:
        console.print("No deployments found.")
    else:
        console.print(deployments_table(deployments))


@click.command("describe")
@click.argument("resource", nargs=-1, required=True)
@click.option("--events", "n_events", default=20, show_default=True, type=click.IntRange(0),
              help="How many recent events to show.")  # fmt: skip
@handle_errors
def describe_cmd(resource: tuple[str, ...], n_events: int) -> None:
    """Spec, conditions with reasons, revisions, replicas and recent events of a deployment."""
    name = split_resource(resource)
    with connect() as client:
        d = client.get_deployment(name)
        revisions = client.revisions(name)
        replicas = client.replicas(name)
        events = client.events(name, limit=n_events) if n_events else []
    describe(d, revisions, replicas, events)


@click.command("logs")
@click.argument("replica")
@click.option("--tail", default=None, type=click.IntRange(0),
              help="Only the last N lines.")  # fmt: skip
@handle_errors
def logs(replica: str, tail: int | None) -> None:
    """Print a replica's log file (name it as 'get replicas' lists it)."""
    if replica.startswith(("replica/", "replicas/")):
        replica = replica.partition("/")[2]
    with connect() as client:
        text = client.replica_log(replica, tail)
    sys.stdout.write(text)
