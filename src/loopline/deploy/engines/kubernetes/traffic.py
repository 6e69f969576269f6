"""Traffic between the stable and canary tracks of a progressive deployment on Kubernetes.

Canary and blue-green deployments render two Deployments (``NAME-stable``, ``NAME-canary``)
and a Service for each (the canary's is blue-green's preview Service). The split between
them comes from the canary step in progress (:class:`RolloutPosition`, the same
``step_index`` as the local controller's rollout state):

- **With a Gateway** (Gateway API ``HTTPRoute``, whose ``backendRefs[].weight`` is Core
  support): exact weights — the last ``setWeight`` completed; ``setMirror`` becomes a
  ``RequestMirror`` filter with ``percent`` on the weighted rule (Extended support: the copy
  is of every request the rule matches, so while the canary carries weight it also receives
  copies of its own requests); each ``setHeaderRoute`` becomes a rule of its own with header
  matches (exact → ``Exact``; regex and prefix → ``RegularExpression``, whose dialect is
  implementation-specific). The stable track keeps all its replicas; the canary runs
  ``ceil(replicas × weight / 100)`` (at least one while it carries or is about to carry
  traffic), as the local controller does.
- **Without a Gateway**: one Service ``NAME`` over both tracks, so the split is the replica
  ratio (kube-proxy balances connections, not requests): the canary runs the replica count
  closest to ``replicas × weight / 100`` (ties up; at least one on each side while
  ``0 < weight < 100`` and ``replicas > 1``) and the stable the rest, Argo Rollouts' basic
  canary. Only multiples of ``100 / replicas`` % are reachable: :func:`granularity` says
  which, step by step. Mirrors and header routes cannot be rendered without a Gateway.

Blue-green needs no weights: the active Service (or the route) points at the stable track and
the preview Service at the canary track; the switch moves all traffic at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from loopline.deploy.engines.kubernetes.pod import ModelSource
from loopline.deploy.progressive_spec import (
    CanaryStrategy,
    SetHeaderRoute,
    SetMirror,
    SetWeight,
)
from loopline.deploy.strategies.progressive import canary_replicas
from loopline.deploy.traffic import HeaderMatch
from loopline.errors import InvalidDefinitionError
from loopline.types import Json, JsonDict

GATEWAY_GROUP = "gateway.networking.k8s.io"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class GatewayRef:
    """The Gateway an HTTPRoute attaches to (``parentRefs``): ``NAME``, ``NAMESPACE/NAME``,
    optionally with a listener, ``NAME#LISTENER``."""

    name: str
    namespace: str | None = None
    section_name: str | None = None

    @classmethod
    def parse(cls, text: str) -> GatewayRef:
        """Read ``[NAMESPACE/]NAME[#LISTENER]``. Raises InvalidDefinitionError when malformed."""
        rest, _, section = text.partition("#")
        namespace, slash, name = rest.rpartition("/")
        parts = [("name", name)] + ([("namespace", namespace)] if slash else [])
        parts += [("listener", section)] if section else []
        for what, value in parts:
            if not _DNS_LABEL.fullmatch(value):
                raise InvalidDefinitionError(
                    f"Gateway {text!r}: the {what} {value!r} is not a DNS-1123 label (lower-case "
                    "letters, digits and '-', at most 63); write [NAMESPACE/]NAME[#LISTENER]."
                )
        return cls(name, namespace or None, section or None)

    def parent_ref(self) -> JsonDict:
        ref: JsonDict = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": self.name}
        if self.namespace is not None:
            ref["namespace"] = self.namespace
        if self.section_name is not None:
            ref["sectionName"] = self.section_name
        return ref


@dataclass(frozen=True, slots=True)
class RolloutPosition:
    """A progressive rollout under way: the stable track still serves ``stable``, the canary
    track serves the spec's model, and the canary steps before ``step_index`` are done
    (``len(steps)``: all done, promotion under way)."""

    stable: ModelSource
    step_index: int = 0


@dataclass(frozen=True, slots=True)
class Split:
    """Where requests go at one position: weights, a mirror, header routes, and the replicas
    of each track (None: the autoscaler owns the stable track's count)."""

    canary_weight: int
    mirror_percent: int
    header_routes: tuple[SetHeaderRoute, ...]
    stable_replicas: int | None
    canary_replicas: int


def canary_split(
    canary: CanaryStrategy, replicas: int, position: RolloutPosition | None, *,
    gateway: bool, autoscaled: bool,
) -> Split:  # fmt: skip
    """The split at ``position`` (None: nothing rolling out, all traffic on stable)."""
    stable_count = None if autoscaled else replicas
    if position is None:
        return Split(0, 0, (), stable_count, 0)
    index = position.step_index
    if not 0 <= index <= len(canary.steps):
        raise InvalidDefinitionError(
            f"Canary step index {index} is out of range: the strategy has {len(canary.steps)} "
            f"steps, so it is 0 to {len(canary.steps)}."
        )
    weight = mirror = 0
    routes: dict[str, SetHeaderRoute] = {}
    for step in canary.steps[:index]:
        if isinstance(step, SetWeight):
            weight = step.weight
        elif isinstance(step, SetMirror):
            mirror = step.percent
        elif isinstance(step, SetHeaderRoute):
            if step.matches:
                routes[step.name] = step
            else:
                routes.pop(step.name, None)
    if not gateway:
        stable_n, canary_n = ratio_replicas(replicas, weight)
        return Split(weight, 0, (), None if autoscaled else stable_n, canary_n)
    pending = canary.steps[index] if index < len(canary.steps) else None
    want = max(weight, pending.weight if isinstance(pending, SetWeight) else 0)
    return Split(weight, mirror, tuple(routes.values()), stable_count,
                 canary_replicas(replicas, want))  # fmt: skip


def ratio_replicas(replicas: int, weight: int) -> tuple[int, int]:
    """(stable, canary) replicas whose ratio comes closest to ``weight`` %."""
    if weight <= 0:
        return replicas, 0
    if weight >= 100:
        return 0, replicas
    canary = math.floor(replicas * weight / 100 + 0.5)
    if replicas > 1:
        canary = min(max(canary, 1), replicas - 1)
    return replicas - canary, canary


def granularity(canary: CanaryStrategy, replicas: int) -> str | None:
    """Without a Gateway: what each ``setWeight`` step becomes, as a warning (None when every
    weight is reachable exactly)."""
    weights = [s.weight for s in canary.steps if isinstance(s, SetWeight)]
    if not weights:
        return None
    parts, exact = [], True
    for w in weights:
        _, c = ratio_replicas(replicas, w)
        actual = 100 * c / replicas if replicas else 0.0
        exact = exact and math.isclose(actual, w)
        parts.append(f"setWeight {w} → {_percent(actual)} ({c} of {replicas} pods)")
    if exact:
        return None
    step = _percent(100 / replicas) if replicas else "100 %"
    return (
        f"No Gateway is configured, so the canary's share of traffic is its share of the "
        f"{replicas} replicas (per connection): steps of {step}. " + ", ".join(parts) + ". "
        "Pass a Gateway (--gateway NAME) for exact weights through an HTTPRoute."
    )


def _percent(value: float) -> str:
    return f"{value:.0f} %" if math.isclose(value, round(value)) else f"{value:.1f} %"


def http_route(
    *, name: str, namespace: str, labels: JsonDict, gateway: GatewayRef, port: int,
    split: Split,
) -> JsonDict:  # fmt: skip
    """The HTTPRoute sending ``split``'s share to ``NAME-canary`` and the rest to
    ``NAME-stable``."""
    stable: JsonDict = {"name": f"{name}-stable", "port": port}
    canary: JsonDict = {"name": f"{name}-canary", "port": port}
    rules: list[Json] = []
    for route in split.header_routes:
        rules.append({
            "matches": [{"headers": [_header(m) for m in route.matches]}],
            "backendRefs": [{**canary, "weight": 1}],
        })  # fmt: skip
    weighted: JsonDict = {
        "backendRefs": [
            {**stable, "weight": 100 - split.canary_weight},
            {**canary, "weight": split.canary_weight},
        ]
    }
    if split.mirror_percent > 0:
        weighted["filters"] = [{
            "type": "RequestMirror",
            "requestMirror": {"backendRef": canary, "percent": split.mirror_percent},
        }]  # fmt: skip
    rules.append(weighted)
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"parentRefs": [gateway.parent_ref()], "rules": rules},
    }


def _header(match: HeaderMatch) -> JsonDict:
    if match.exact is not None:
        return {"type": "Exact", "name": match.header, "value": match.exact}
    if match.prefix is not None:
        return {"type": "RegularExpression", "name": match.header,
                "value": "^" + re.escape(match.prefix) + ".*"}  # fmt: skip
    return {"type": "RegularExpression", "name": match.header, "value": match.regex or ""}


def unrendered_steps(canary: CanaryStrategy) -> str | None:
    """Without a Gateway: the steps that cannot be rendered, as a warning."""
    kinds = sorted({"setMirror" if isinstance(s, SetMirror) else "setHeaderRoute"
                    for s in canary.steps if isinstance(s, SetMirror | SetHeaderRoute)})
    if not kinds:
        return None
    return (
        f"No Gateway is configured, so the {' and '.join(kinds)} steps cannot be rendered (a "
        "Service only balances connections); pass a Gateway (--gateway NAME) to render them "
        "in an HTTPRoute."
    )
