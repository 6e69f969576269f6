"""Deployment verbs that change things: ``apply``, ``create``, ``delete``, ``scale``, ``set``.

They talk to the control plane over HTTP (starting it when none runs), like kubectl.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from loopline.cli import kube
from loopline.cli.connect import connect
from loopline.cli.deploy_output import emit, machine_format, output_options, split_resource
from loopline.cli.output import console, handle_errors
from loopline.controlplane.views import strip_server_fields
from loopline.controlplane.wire import (
    DeploymentApplied,
    MonitorApplied,
    TemplateApplied,
    TriggerApplied,
)
from loopline.deploy.analysis.template import AnalysisTemplate
from loopline.deploy.spec import DeploymentSpec
from loopline.errors import InvalidDefinitionError, InvalidInputError, shown
from loopline.triggers import TriggerSpec, yaml_on


def command_line() -> str:
    """This invocation, recorded as the change cause of the revision it creates."""
    return shlex.join(["loopline", *sys.argv[1:]])[:200]


def read_documents(path: str) -> list[dict[str, Any]]:
    """The YAML/JSON documents of ``path`` (``-`` for stdin); empty documents are skipped.

    Raises:
        InvalidDefinitionError: the file does not parse or a document is not a mapping.
    """
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {path!r}: {exc.strerror}.") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidDefinitionError(f"{path} does not parse as YAML: {exc}") from None
    except RecursionError:
        raise InvalidDefinitionError(f"{path} is nested too deeply to read as YAML.") from None
    if not docs:
        raise InvalidDefinitionError(f"{path} holds no document; write a Deployment.")
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise InvalidDefinitionError(
                f"Document {i + 1} of {path} is a {type(doc).__name__}, not a mapping with "
                "apiVersion, kind, metadata and spec."
            )
    return docs


def resolve_trigger_paths(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    """A Trigger's relative ``spec.run.pipeline`` and ``spec.on.newSpan.inputDir`` made
    absolute from ``base`` (the file's directory): the control plane runs elsewhere."""
    spec = yaml_on(doc.get("spec"))
    if not isinstance(spec, dict):
        return doc
    spec = dict(spec)
    run, on = spec.get("run"), spec.get("on")
    if isinstance(run, dict) and isinstance(run.get("pipeline"), str):
        spec["run"] = {**run, "pipeline": str((base / run["pipeline"]).resolve())}
    if isinstance(on, dict) and isinstance(on.get("newSpan"), dict):
        span = on["newSpan"]
        if isinstance(span.get("inputDir"), str):
            spec["on"] = {"newSpan": {**span, "inputDir": str((base / span["inputDir"]).resolve())}}
    return {**doc, "spec": spec}


# The order documents are applied in: what others name comes first.
_APPLY_ORDER = {"AnalysisTemplate": 0, "Deployment": 1, "Monitor": 2, "Trigger": 3}


@click.command("apply")
@click.option("-f", "--filename", "filename", required=True,
              help="YAML file of Deployments, AnalysisTemplates, Monitors and Triggers ('-' "
                   "reads stdin).")  # fmt: skip
@output_options
@kube.on_engine(kube.apply, image=kube.image_option, gateway=kube.gateway_option)
@handle_errors
def apply(filename: str, output: str | None, as_json: bool) -> None:
    """Create or update the Deployments, AnalysisTemplates, Monitors and Triggers described in
    a file (declarative, idempotent; templates first, so the deployments that name them find
    them, then monitors, triggers last). A Trigger's relative paths start at the file's
    directory."""
    docs = read_documents(filename)
    base = Path.cwd() if filename == "-" else Path(filename).resolve().parent
    for i, doc in enumerate(docs):
        # fail fast, before reaching (or starting) the server
        kind = doc.get("kind")
        if kind == "AnalysisTemplate":
            AnalysisTemplate.from_dict(doc)
        elif kind == "Deployment":
            DeploymentSpec.from_dict(strip_server_fields(doc))
        elif kind == "Trigger":
            docs[i] = resolve_trigger_paths(doc, base)
            TriggerSpec.from_dict(strip_server_fields(docs[i]))
        elif kind == "Monitor":
            from loopline.monitor import MonitorSpec  # only when a Monitor is applied

            MonitorSpec.from_dict(strip_server_fields(doc))
        else:
            raise InvalidDefinitionError(
                f"Document {i + 1} of {filename} has kind {shown(kind)}; loopline applies kinds "
                "'Deployment', 'AnalysisTemplate', 'Monitor' and 'Trigger'."
            )
    docs.sort(key=lambda d: _APPLY_ORDER[d["kind"]])
    results: list[TemplateApplied | TriggerApplied | MonitorApplied | DeploymentApplied] = []
    with connect() as client:
        for doc in docs:
            if doc["kind"] == "AnalysisTemplate":
                results.append(client.apply_template(doc))
            elif doc["kind"] == "Monitor":
                results.append(client.apply_monitor(doc))
            elif doc["kind"] == "Trigger":
                results.append(client.apply_trigger(doc))
            else:
                results.append(client.apply(doc, cause=command_line()))
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit(results if len(results) > 1 else results[0], fmt)
        return
    for r in results:
        if isinstance(r, TemplateApplied):
            console.print(f"analysistemplate/{r.template.metadata.name} {r.outcome}")
        elif isinstance(r, TriggerApplied):
            console.print(f"trigger/{r.trigger.metadata.name} {r.outcome}")
        elif isinstance(r, MonitorApplied):
            console.print(f"monitor/{r.monitor.metadata.name} {r.outcome}")
        else:
            console.print(f"deployment/{r.deployment.metadata.name} {r.outcome}")


@click.group("create")
def create() -> None:
    """Create a resource from flags."""


@create.command("deployment")
@click.argument("name")
@click.option("--model", required=True, help="Model reference: name@alias, name/version, name.")
@click.option("--replicas", default=1, show_default=True, type=click.IntRange(0))
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Stable router port (default: any free port).")  # fmt: skip
@click.option("--strategy", type=click.Choice(["RollingUpdate", "Recreate", "BlueGreen"]),
              default="RollingUpdate", show_default=True)  # fmt: skip
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@output_options
@handle_errors
def create_deployment(
    name: str, model: str, replicas: int, port: int | None, strategy: str, workers: int,
    output: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Create deployment NAME serving MODEL (fails if it exists)."""
    spec: dict[str, Any] = {
        "model": model,
        "replicas": replicas,
        "strategy": {"type": strategy},
        "template": {"workers": workers},
    }
    if port is not None:
        spec["port"] = port
    doc: dict[str, Any] = {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": spec,
    }
    with connect() as client:
        result = client.create(doc, cause=command_line())
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit(result, fmt)
        return
    console.print(f"deployment/{name} created")


@click.command("delete")
@click.argument("resource", nargs=-1, required=True)
@click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(1),
              help="Seconds to wait for replicas to drain and stop.")  # fmt: skip
@handle_errors
def delete(resource: tuple[str, ...], timeout: float) -> None:
    """Delete a deployment: drain and stop its replicas and its router."""
    name = split_resource(resource)
    with connect() as client:
        client.delete(name, timeout=timeout)
    console.print(f'deployment "{name}" deleted')


@click.command("scale")
@click.argument("resource", nargs=-1, required=True)
@click.option("--replicas", required=True, type=click.IntRange(0))
@output_options
@kube.on_engine(kube.scale)
@handle_errors
def scale(resource: tuple[str, ...], replicas: int, output: str | None, as_json: bool) -> None:
    """Set the number of replicas of a deployment."""
    name = split_resource(resource)
    with connect() as client:
        result = client.scale(name, replicas)
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit(result, fmt)
        return
    console.print(f"deployment/{name} scaled")


@click.group("set")
def set_() -> None:
    """Change one field of a resource."""


@set_.command("model")
@click.argument("resource")
@click.argument("model")
@output_options
@handle_errors
def set_model(resource: str, model: str, output: str | None, as_json: bool) -> None:
    """Point deployment/NAME at MODEL (a new revision when it resolves to another version)."""
    name = split_resource((resource,))
    with connect() as client:
        result = client.set_model(name, model, cause=command_line())
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit(result, fmt)
        return
    pinned = result.status.model.pinned
    console.print(f"deployment/{name} model updated to {model} ({pinned})")
