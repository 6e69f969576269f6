"""``--engine kubernetes`` for the deployment verbs: ``apply``, ``rollout …``, ``scale``,
``autoscale deployment``.

:func:`on_engine` adds ``--engine local|kubernetes`` (default ``local``), ``--namespace`` and
``--context`` to a verb and sends it to its Kubernetes form here when asked; the local form is
untouched. The cluster is the kubeconfig's (``KUBECONFIG``, then ``~/.kube/config``, then the
in-cluster service account), through lightkube (the ``k8s`` extra).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from loopline.cli.deploy_output import emit, machine_format, split_resource
from loopline.cli.output import console, err_console, handle_errors
from loopline.errors import InvalidDefinitionError, InvalidInputError, StepTimeoutError, shown

if TYPE_CHECKING:  # the engine is imported only when a verb runs on it
    from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer

F = TypeVar("F", bound=Callable[..., Any])


def on_engine(
    kubernetes: Callable[..., None], **extra: Callable[[Any], Any]
) -> Callable[[F], F]:
    """Give a verb ``--engine/--namespace/--context`` (and the Kubernetes-only ``extra``
    options by parameter name, default None) and run ``kubernetes(**kwargs)`` for
    ``--engine kubernetes``."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, engine: str, namespace: str | None, context: str | None,
                **kwargs: Any) -> Any:  # fmt: skip
            only = {k: kwargs.pop(k) for k in extra}
            if engine == "kubernetes":
                return kubernetes(namespace=namespace, context=context, **only, **kwargs)
            given = [f"--{k.replace('_', '-')}" for k, v in
                     {"namespace": namespace, "context": context, **only}.items()
                     if v is not None]  # fmt: skip
            if given:
                raise InvalidInputError(f"{', '.join(given)} apply to --engine kubernetes only.")
            return command(*args, **kwargs)

        run = handle_errors(run)  # the Kubernetes verbs' errors too
        for option in reversed(extra.values()):
            run = option(run)
        run = click.option("--context", default=None,
                           help="kubeconfig context (--engine kubernetes).")(run)  # fmt: skip
        run = click.option("--namespace", default=None,
                           help="Namespace (--engine kubernetes; default: the context's).")(run)
        run = click.option("--engine", type=click.Choice(["local", "kubernetes"]),
                           default="local", show_default=True,
                           help="Where the deployment runs: local processes or a Kubernetes "
                                "cluster (the kubeconfig's).")(run)  # fmt: skip
        return run  # type: ignore[return-value]

    return decorate


image_option = click.option("--image", default=None,
                            help="The loopline image the pods run (--engine kubernetes; default "
                                 "loopline:<version>).")  # fmt: skip
gateway_option = click.option("--gateway", default=None, metavar="[NS/]NAME[#LISTENER]",
                              help="Gateway API Gateway for canary weights (--engine "
                                   "kubernetes).")  # fmt: skip


@contextmanager
def deployer(namespace: str | None, context: str | None) -> Iterator[KubernetesDeployer]:
    from loopline.deploy.engines.kubernetes.cluster_lightkube import LightkubeCluster
    from loopline.deploy.engines.kubernetes.deployer import KubernetesDeployer

    cluster = LightkubeCluster.from_kubeconfig(context=context, namespace=namespace)
    with cluster:
        yield KubernetesDeployer(cluster, namespace or cluster.namespace)


# ---- verbs --------------------------------------------------------------------------------


def apply(*, filename: str, output: str | None, as_json: bool, namespace: str | None,
          context: str | None, image: str | None, gateway: str | None) -> None:  # fmt: skip
    from loopline.cli.deploy import read_documents
    from loopline.cli.render import DEFAULT_IMAGE
    from loopline.deploy import DeploymentSpec
    from loopline.deploy.engines.kubernetes import GatewayRef

    specs = []
    for i, doc in enumerate(read_documents(filename)):
        if doc.get("kind") != "Deployment":
            raise InvalidDefinitionError(
                f"Document {i + 1} of {filename} is a {shown(doc.get('kind'))}; --engine "
                "kubernetes applies Deployments (AnalysisTemplates, Monitors and Triggers run "
                "on the control plane: apply them without --engine)."
            )
        specs.append(DeploymentSpec.from_dict(doc))
    route = None if gateway is None else GatewayRef.parse(gateway)
    results: list[dict[str, Any]] = []
    with deployer(namespace, context) as d:
        for spec in specs:
            applied = d.apply(spec, image=image or DEFAULT_IMAGE, gateway=route)
            for warning in applied.warnings:
                err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
            results.append({"deployment": spec.name, "rollout": applied.rollout, "objects": [
                {"kind": r.kind, "name": r.name, "namespace": r.namespace, "outcome": outcome}
                for r, outcome in applied.objects]})  # fmt: skip
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit(results if len(results) > 1 else results[0], fmt)
        return
    for result in results:
        for obj in result["objects"]:
            console.print(f"{obj['kind'].lower()}/{obj['name']} {obj['outcome']}")
        if result["rollout"]:
            console.print(f"deployment/{result['deployment']} rollout started")


def rollout_status(*, resource: tuple[str, ...], timeout: str, watch: bool,
                   namespace: str | None, context: str | None) -> None:  # fmt: skip
    from loopline.cli.rollout import parse_duration

    name = split_resource(resource)
    limit = parse_duration(timeout)
    deadline = None if limit == 0 else time.monotonic() + limit
    delay, last = 0.2, ""
    with deployer(namespace, context) as d:
        while True:
            status = d.status(name, now=time.time())
            if status.message != last:
                console.print(status.message)
                last = status.message
            if status.done:
                return
            if status.failed or not watch:
                raise SystemExit(1)
            if deadline is not None and time.monotonic() >= deadline:
                exc = StepTimeoutError(f"Timed out waiting for the rollout of deployment "
                                       f"{name!r} after {timeout}.")
                err_console.print(f"[red]error:[/] {exc}")
                raise SystemExit(1)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)


def rollout_history(*, resource: tuple[str, ...], revision: int | None, output: str | None,
                    as_json: bool, namespace: str | None, context: str | None) -> None:  # fmt: skip
    from loopline.errors import NotFoundError

    name = split_resource(resource)
    with deployer(namespace, context) as d:
        history = [r.to_dict() for r in d.history(name)]
    if revision is not None:
        matches = [r for r in history if r["number"] == revision]
        if not matches:
            raise NotFoundError(f"Deployment {name!r} has no revision {revision}; known "
                                f"revisions: {[r['number'] for r in history]}.")  # fmt: skip
        emit(matches[0], machine_format(output, as_json) or "yaml")
        return
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit({"items": history}, fmt)
        return
    console.print(f"deployment/{name}")
    console.print("REVISION  MODEL  CHANGE-CAUSE", highlight=False)
    for r in history:
        console.print(f"{r['number']}  {r['model'] or '<none>'}  {r['changeCause'] or '<none>'}")


def _simple(verb: str) -> Callable[..., None]:
    def run(*, resource: tuple[str, ...], namespace: str | None, context: str | None,
            **kwargs: Any) -> None:  # fmt: skip
        name = split_resource(resource)
        with deployer(namespace, context) as d:
            if verb in ("paused", "resumed"):
                d.set_paused(name, verb == "paused")
            elif verb == "aborted":
                d.abort(name)
            elif verb == "promoted":
                d.promote(name, now=time.time(), full=bool(kwargs.get("full")))
            elif verb == "rolled back":
                if not d.undo(name, int(kwargs.get("to_revision") or 0)):
                    console.print(f"deployment/{name} skipped rollback (current template "
                                  "already matches)")  # fmt: skip
                    return
        console.print(f"deployment/{name} {verb}")

    return run


rollout_pause, rollout_resume = _simple("paused"), _simple("resumed")
rollout_promote, rollout_abort, rollout_undo = (_simple("promoted"), _simple("aborted"),
                                                _simple("rolled back"))  # fmt: skip


def scale(*, resource: tuple[str, ...], replicas: int, output: str | None, as_json: bool,
          namespace: str | None, context: str | None) -> None:  # fmt: skip
    name = split_resource(resource)
    with deployer(namespace, context) as d:
        now = d.scale(name, replicas)
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit({"deployment": name, "replicas": now}, fmt)
        return
    console.print(f"deployment/{name} scaled")


def autoscale(*, name: str, off: bool, namespace: str | None, context: str | None,
              **flags: Any) -> None:  # fmt: skip
    from loopline.cli.autoscale import autoscaling_block

    block = None if off else autoscaling_block(name=name, **flags)
    with deployer(namespace, context) as d:
        d.autoscale(name, block)
    if block is None:
        console.print(f"horizontalpodautoscaler/{name} deleted")
    else:
        console.print(f"horizontalpodautoscaler/{name} applied ({block['minReplicas']}.."
                      f"{block['maxReplicas']} replicas)")  # fmt: skip
