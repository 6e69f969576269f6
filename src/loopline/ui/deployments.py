"""The deployment page, read through the control plane's operations on either engine.

:class:`DeploymentReads` makes the calls the API's GET routes make (``get_deployment``,
``revisions``, ``replicas``, ``list_events``, ``rollout_status``) and reads their views with
:mod:`loopline.ui.rollout`, so the page is the same on a local control plane and on one that
drives a Kubernetes namespace (``loopline controlplane --engine kubernetes``). What the engine
does not have is listed on the page as *not on this engine*, with the reason and where to look
instead, never an error:

- **replicas** and their logs: on Kubernetes they are the cluster's pods (``kubectl``);
- **the router**: on Kubernetes the Gateway's HTTPRoute (or, without a Gateway, the two tracks'
  replica ratio) carries the split, and request statistics are the Gateway's and Prometheus';
- **autoscaler decisions**: on Kubernetes the cluster's HorizontalPodAutoscaler makes them; the
  page shows its bounds and its current and desired replicas.

Every method blocks (cluster or store reads): the routes call them on the thread pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from loopline.controlplane import ControlPlane
from loopline.types import JsonDict
from loopline.ui.actions import ActionState, action_states
from loopline.ui.rollout import (
    Autoscaler,
    Rollout,
    TrafficRow,
    at,
    autoscaler_of,
    describe,
    rollout_of,
    step_of,
    traffic_of,
)

LOCAL = "local"
KUBERNETES = "kubernetes"


@dataclass(frozen=True, slots=True)
class DeploymentScreen:
    view: JsonDict
    step: str  # "step 2/4 (pause)", "preview", or "" at rest
    revisions: tuple[JsonDict, ...]
    replicas: tuple[JsonDict, ...]
    events: tuple[JsonDict, ...]
    actions: tuple[ActionState, ...]
    steps: tuple[str, ...]  # the canary steps, described
    numbers: dict[str, int]  # revision hash → number
    engine: str = LOCAL  # LOCAL or KUBERNETES
    rollout: Rollout | None = None
    traffic: tuple[TrafficRow, ...] = ()
    autoscaler: Autoscaler | None = None
    message: str = ""  # what ``loopline rollout status`` says
    paused: bool = False
    absent: Mapping[str, str] | None = None  # replicas/router/autoscaler → why not here


def engine_of(service: ControlPlane) -> str:
    """The engine ``service`` drives: :data:`KUBERNETES` or :data:`LOCAL`."""
    from loopline.controlplane.kubernetes import KubernetesControlPlane

    return KUBERNETES if isinstance(service, KubernetesControlPlane) else LOCAL


def absent_on(engine: str, view: Mapping[str, object]) -> dict[str, str]:
    """What the deployment page cannot show for ``view`` on ``engine`` (``replicas``,
    ``router``, ``autoscaler`` decisions), each with the reason and where to look (pure)."""
    if engine != KUBERNETES:
        return {}
    name = str(at(view, "metadata", "name"))
    selector = f"app.kubernetes.io/instance={name}"
    by = (
        f"the Gateway's HTTPRoute {name!r} splits the traffic by weight"
        if at(view, "status", "traffic", "weights")
        else "the tracks' replica ratio splits the traffic (no Gateway is configured)"
    )
    notes = {
        "replicas": f"they are the cluster's pods: kubectl get pods -l {selector}; their logs: "
        f"kubectl logs -l {selector}.",
        "router": f"{by}; its request statistics are the Gateway's and Prometheus'.",
    }
    if at(view, "status", "autoscaler", "decidedBy") == "HorizontalPodAutoscaler":
        notes["autoscaler"] = (
            f"the cluster's HorizontalPodAutoscaler makes them: kubectl describe hpa {name}."
        )
    return notes


class DeploymentReads:
    """The deployment page over a control plane (local or Kubernetes)."""

    def __init__(self, service: ControlPlane) -> None:
        self.s = service
        self.engine = engine_of(service)

    def screen(self, name: str) -> DeploymentScreen:
        """Deployment ``name``'s page. Raises NotFoundError naming it when it does not exist."""
        view = self.s.get_deployment(name)
        revisions = tuple(self.s.revisions(name))
        status = self.s.rollout_status(name)
        rollout = rollout_of(view)
        paused = bool(status.get("paused"))
        canary_steps = at(view, "spec", "strategy", "canary", "steps") or ()
        return DeploymentScreen(
            view=view,
            step=step_of(view, rollout),
            revisions=revisions,
            replicas=tuple(self.s.replicas(name)),
            events=tuple(reversed(self.s.list_events(name, 50))),
            actions=action_states(view, len(revisions), rollout, paused),
            steps=tuple(describe(s) for s in canary_steps if isinstance(s, dict)),
            numbers={str(at(r, "hash")): int(at(r, "number")) for r in revisions},
            engine=self.engine,
            rollout=rollout,
            traffic=traffic_of(view, revisions, rollout),
            autoscaler=autoscaler_of(view),
            message=str(status.get("message") or ""),
            paused=paused,
            absent=absent_on(self.engine, view),
        )
