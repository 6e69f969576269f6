"""``loopline rollout status|history|pause|resume|undo|promote|abort|retry deployment/NAME``."""

from __future__ import annotations

import re
import time

import click

from loopline.cli import kube
from loopline.cli.connect import connect
from loopline.cli.deploy_output import (
    emit,
    machine_format,
    output_options,
    revisions_table,
    split_resource,
)
from loopline.cli.output import console, err_console, handle_errors
from loopline.deploy.duration import parse_duration as parse_seconds
from loopline.errors import (
    InvalidDefinitionError,
    InvalidInputError,
    NotFoundError,
    StepTimeoutError,
)

_NUMBER = re.compile(r"\d+(?:\.\d+)?")

def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``500ms`` → seconds; ``0`` means no limit."""
    clean = text.strip()
    try:
        return parse_seconds(float(clean) if _NUMBER.fullmatch(clean) else clean, "--timeout")
    except InvalidDefinitionError:
        message = f"Duration {text!r} is invalid; write e.g. 90s, 5m or 1h."
        raise InvalidInputError(message) from None


@click.group("rollout")
def rollout() -> None:
    """Watch, pause, resume, promote, abort, retry and undo rollouts of a deployment."""


@rollout.command("status")
@click.argument("resource", nargs=-1, required=True)
@click.option("--timeout", default="10m", show_default=True,
              help="How long to wait (e.g. 90s, 5m; 0 waits without limit).")  # fmt: skip
@click.option("-w", "--watch/--no-watch", default=True, show_default=True,
              help="Wait for the rollout to finish; --no-watch reports once.")  # fmt: skip
@kube.on_engine(kube.rollout_status)
@handle_errors
def status(resource: tuple[str, ...], timeout: str, watch: bool) -> None:
    """Wait for the rollout to finish; exit 1 if it fails (progress deadline) or times out."""
    name = split_resource(resource)
    limit = parse_duration(timeout)
    deadline = None if limit == 0 else time.monotonic() + limit
    delay, last = 0.1, ""
    with connect() as client:
        while True:
            s = client.rollout_status(name)
            message = s.message
            if message != last:
                console.print(message)
                last = message
            if s.done:
                return
            if s.failed:
                raise SystemExit(1)
            if not watch:
                raise SystemExit(1)
            if deadline is not None and time.monotonic() >= deadline:
                exc = StepTimeoutError(
                    f"Timed out waiting for the rollout of deployment {name!r} after {timeout}."
                )
                err_console.print(f"[red]error:[/] {exc}")
                raise SystemExit(1)
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)


@rollout.command("history")
@click.argument("resource", nargs=-1, required=True)
@click.option("--revision", default=None, type=click.IntRange(1),
              help="Show one revision in full.")  # fmt: skip
@output_options
@kube.on_engine(kube.rollout_history)
@handle_errors
def history(resource: tuple[str, ...], revision: int | None, output: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Revisions of a deployment with the model each one pins and what caused it."""
    name = split_resource(resource)
    with connect() as client:
        revisions = client.revisions(name)
    if revision is not None:
        matches = [r for r in revisions if r.number == revision]
        if not matches:
            known = sorted(r.number for r in revisions)
            raise NotFoundError(
                f"Deployment {name!r} has no revision {revision}; known revisions: {known}."
            )
        emit(matches[0], machine_format(output, as_json) or "yaml")
        return
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit({"items": revisions}, fmt)
        return
    console.print(f"deployment/{name}")
    console.print(revisions_table(revisions))


@rollout.command("pause")
@click.argument("resource", nargs=-1, required=True)
@kube.on_engine(kube.rollout_pause)
@handle_errors
def pause(resource: tuple[str, ...]) -> None:
    """Pause: template changes wait (scaling still applies) until resumed."""
    name = split_resource(resource)
    with connect() as client:
        client.pause(name)
    console.print(f"deployment/{name} paused")


@rollout.command("resume")
@click.argument("resource", nargs=-1, required=True)
@kube.on_engine(kube.rollout_resume)
@handle_errors
def resume(resource: tuple[str, ...]) -> None:
    """Resume a paused deployment; pending template changes roll out."""
    name = split_resource(resource)
    with connect() as client:
        client.resume(name)
    console.print(f"deployment/{name} resumed")


@rollout.command("promote")
@click.argument("resource", nargs=-1, required=True)
@click.option("--full", is_flag=True, help="Skip every remaining step (Canary).")
@kube.on_engine(kube.rollout_promote)
@handle_errors
def promote(resource: tuple[str, ...], full: bool) -> None:
    """Canary: go past the current pause, analysis or step; BlueGreen: switch traffic."""
    name = split_resource(resource)
    with connect() as client:
        client.promote(name, full)
    console.print(f"deployment/{name} {'fully ' if full else ''}promoted")


@rollout.command("abort")
@click.argument("resource", nargs=-1, required=True)
@kube.on_engine(kube.rollout_abort)
@handle_errors
def abort(resource: tuple[str, ...]) -> None:
    """Send all traffic back to the stable revision at once; the canary scales down after
    its delay and the deployment is Degraded until a retry or a new apply."""
    name = split_resource(resource)
    with connect() as client:
        client.abort(name)
    console.print(f"deployment/{name} aborted")


@rollout.command("retry")
@click.argument("resource", nargs=-1, required=True)
@handle_errors
def retry(resource: tuple[str, ...]) -> None:
    """Start an aborted rollout over from its first step."""
    name = split_resource(resource)
    with connect() as client:
        client.retry(name)
    console.print(f"deployment/{name} retried")


@rollout.command("undo")
@click.argument("resource", nargs=-1, required=True)
@click.option("--to-revision", default=0, show_default=True, type=click.IntRange(0),
              help="Revision to return to (0: the previous one).")  # fmt: skip
@kube.on_engine(kube.rollout_undo)
@handle_errors
def undo(resource: tuple[str, ...], to_revision: int) -> None:
    """Roll back to an earlier revision's model and template."""
    name = split_resource(resource)
    with connect() as client:
        result = client.undo(name, to_revision)
    if result.skipped:
        console.print(f"deployment/{name} skipped rollback (current template already matches)")
    else:
        console.print(f"deployment/{name} rolled back")
