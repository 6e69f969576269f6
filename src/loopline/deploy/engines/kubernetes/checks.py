"""loopline's own checks of Kubernetes manifests: what the JSON schemas let through.

The published schemas check structure only: a name ``Iris_V2!``, a selector that matches no
pod, CPU ``"lots"`` and ``containerPort: 99999`` all pass them (research: scaleout.md §1).
:func:`check_objects` finds those, each as a :class:`Problem` naming the object
(``Deployment/taxi``) and the field path (``spec.template.spec.containers[0].ports[0]``):

- names: ``metadata.name`` a DNS-1123 subdomain (Services: a DNS-1035 label), the
  namespace, container and port names (IANA service names) — the rules of
  ``k8s.io/apimachinery/pkg/util/validation``;
- label keys and values (qualified names, at most 63 characters);
- selectors: a Deployment's ``selector.matchLabels`` ⊆ its template's labels; a Service's
  and a PodDisruptionBudget's selector matches some pod template in the set;
- resource quantities (the ``resource.Quantity`` grammar) and requests ≤ limits;
- ports in 1–65535; a Service's named ``targetPort`` exists on the pods it selects; an
  HTTPRoute's backends are Services of the set with that port;
- an HPA's target is a Deployment of the set and ``minReplicas ≤ maxReplicas``;
- a PodDisruptionBudget's integer ``minAvailable`` ≤ the replicas it covers (an autoscaled
  Deployment counts with its HPA's ``minReplicas``);
- RBAC and secrets (Role rules, RoleBinding references, service accounts, no secret value
  inline): :mod:`.checks_access`.

Pure functions over plain dicts; cross-object checks only look at objects in the same set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loopline.types import JsonDict


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one object: ``Deployment/taxi spec.replicas: …``."""

    object: str  # "Kind/name"
    field: str  # dotted path with [i] indexes; "" for the whole object
    message: str
    source: str  # "loopline", "Kubernetes 1.25 schema", "HTTPRoute CRD v1.6.1"

    def __str__(self) -> str:
        where = f"{self.object} {self.field}" if self.field else self.object
        return f"{where}: {self.message} [{self.source}]"


SOURCE = "loopline"
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_LABEL = re.compile(_DNS1123_LABEL)
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_IANA = re.compile(r"[-a-z0-9]+")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_QUANTITY = re.compile(
    r"(?P<num>[+-]?(\d+(\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?"
)
_SCALE = {None: Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
          "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
          "P": Decimal("1e15"), "E": Decimal("1e18"), "Ki": Decimal(2) ** 10,
          "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
          "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}  # fmt: skip


def object_id(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"{obj.get('kind', '?')}/{name if name is not None else '?'}"


def parse_quantity(text: object) -> Decimal | None:
    """The value of a Kubernetes quantity (``"500m"``, ``"1Gi"``, ``2``), None if malformed."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return Decimal(str(text))
    if not isinstance(text, str):
        return None
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    suffix = match.group("suffix")
    if suffix is not None and suffix[0] in "eE" and len(suffix) > 1:
        return Decimal(match.group("num")) * Decimal(10) ** int(suffix[1:])
    return Decimal(match.group("num")) * _SCALE[suffix]


def check_objects(objects: Sequence[JsonDict]) -> list[Problem]:
    """Every problem loopline's own rules find in ``objects`` (empty: none), the access
    objects' (RBAC, Secrets: :mod:`.checks_access`) included."""
    from loopline.deploy.engines.kubernetes.checks_access import check_access

    mappings = [o for o in objects if isinstance(o, Mapping)]
    return [*_Checker(objects).run(), *check_access(mappings)]


def _get(data: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(key, int):
            data = data[key] if isinstance(data, list) and key < len(data) else None
        else:
            data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _items(data: Any) -> list[Any]:
    return data if isinstance(data, list) else []


def _matches(selector: Any, labels: Any) -> bool:
    return (isinstance(selector, Mapping) and isinstance(labels, Mapping) and bool(selector)
            and all(labels.get(k) == v for k, v in selector.items()))  # fmt: skip


class _Checker:
    def __init__(self, objects: Sequence[JsonDict]) -> None:
        self.objects = [o for o in objects if isinstance(o, Mapping)]
        self.deployments = [o for o in self.objects if o.get("kind") == "Deployment"]
        self.services = [o for o in self.objects if o.get("kind") == "Service"]
        self.hpas = [o for o in self.objects if o.get("kind") == "HorizontalPodAutoscaler"]

    def run(self) -> Iterator[Problem]:
        for obj in self.objects:
            self.obj = object_id(obj)
            yield from self.metadata(obj)
            kind = obj.get("kind")
            if kind == "Deployment":
                yield from self.deployment(obj)
            elif kind == "Service":
                yield from self.service(obj)
            elif kind == "HorizontalPodAutoscaler":
                yield from self.hpa(obj)
            elif kind == "PodDisruptionBudget":
                yield from self.pdb(obj)
            elif kind == "HTTPRoute":
                yield from self.route(obj)

    def problem(self, field: str, message: str) -> Problem:
        return Problem(self.obj, field, message, SOURCE)

    # ---- names and labels --------------------------------------------------------------------

    def metadata(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        name = _get(obj, "metadata", "name")
        if obj.get("kind") == "Service":
            if not isinstance(name, str) or len(name) > 63 or not _DNS1035.fullmatch(name):
                yield self.problem("metadata.name", f"{name!r} is not a DNS-1035 label (at most "
                                   "63 lower-case letters, digits and '-', starting with a "
                                   "letter), which Service names must be")  # fmt: skip
        elif not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
            yield self.problem("metadata.name", f"{name!r} is not a DNS-1123 subdomain (at most "
                               "253 lower-case letters, digits, '-' and '.')")  # fmt: skip
        namespace = _get(obj, "metadata", "namespace")
        if namespace is not None and (not isinstance(namespace, str) or len(namespace) > 63
                                      or not _LABEL.fullmatch(namespace)):  # fmt: skip
            yield self.problem("metadata.namespace", f"{namespace!r} is not a DNS-1123 label")
        yield from self.labels("metadata.labels", _get(obj, "metadata", "labels"))

    def labels(self, path: str, labels: Any) -> Iterator[Problem]:
        if not isinstance(labels, Mapping):
            return
        for key, value in labels.items():
            prefix, slash, name = str(key).rpartition("/")
            if (len(name) > 63 or not _QUALIFIED.fullmatch(name)
                    or (slash and (len(prefix) > 253 or not _SUBDOMAIN.fullmatch(prefix)))):
                yield self.problem(f"{path}.{key}", f"label key {key!r} is not a qualified "
                                   "name ([prefix/]name, the name at most 63 characters)")
            if not isinstance(value, str) or len(value) > 63 or (
                    value and not _QUALIFIED.fullmatch(value)):  # fmt: skip
                yield self.problem(f"{path}.{key}", f"label value {value!r} is not valid (at "
                                   "most 63 letters, digits, '-', '_' and '.', starting and "
                                   "ending with a letter or digit)")  # fmt: skip

    # ---- kinds -------------------------------------------------------------------------------

    def deployment(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        selector = _get(obj, "spec", "selector", "matchLabels")
        labels = _get(obj, "spec", "template", "metadata", "labels")
        yield from self.labels("spec.template.metadata.labels", labels)
        if not isinstance(selector, Mapping) or not selector:
            yield self.problem("spec.selector.matchLabels", "is empty: it would select every "
                               "pod of the namespace")  # fmt: skip
        else:
            for key, value in selector.items():
                if not isinstance(labels, Mapping) or labels.get(key) != value:
                    got = labels.get(key) if isinstance(labels, Mapping) else None
                    yield self.problem(f"spec.selector.matchLabels.{key}",
                                       f"{value!r} is not among the pod template's labels "
                                       f"(spec.template.metadata.labels.{key} = {got!r}); the "
                                       "selector must be a subset of them")  # fmt: skip
        pod = "spec.template.spec"
        for i, c in enumerate(_items(_get(obj, "spec", "template", "spec", "containers"))):
            at = f"{pod}.containers[{i}]"
            name = _get(c, "name")
            if not isinstance(name, str) or len(name) > 63 or not _LABEL.fullmatch(name):
                yield self.problem(f"{at}.name", f"{name!r} is not a DNS-1123 label")
            for j, port in enumerate(_items(_get(c, "ports"))):
                yield from self.port(f"{at}.ports[{j}].containerPort", _get(port, "containerPort"))
                if _get(port, "name") is not None:
                    yield from self.port_name(f"{at}.ports[{j}].name", _get(port, "name"))
            yield from self.resources(f"{at}.resources", _get(c, "resources"))

    def port(self, path: str, value: Any) -> Iterator[Problem]:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            yield self.problem(path, f"{value!r} is not a port number (1-65535)")

    def port_name(self, path: str, name: Any) -> Iterator[Problem]:
        if (not isinstance(name, str) or not 1 <= len(name) <= 15 or not _IANA.fullmatch(name)
                or "--" in name or name[0] == "-" or name[-1] == "-"
                or not re.search("[a-z]", name)):  # fmt: skip
            yield self.problem(path, f"{name!r} is not an IANA service name (1-15 lower-case "
                               "letters, digits and '-', with a letter, no '--', not starting "
                               "or ending with '-')")  # fmt: skip

    def resources(self, path: str, resources: Any) -> Iterator[Problem]:
        values: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
        for part in ("requests", "limits"):
            block = _get(resources, part)
            if not isinstance(block, Mapping):
                continue
            for resource, text in block.items():
                value = parse_quantity(text)
                if value is None or value < 0:
                    yield self.problem(f"{path}.{part}.{resource}", f"{text!r} is not a "
                                       "resource quantity (such as '500m', '2', '512Mi')")
                else:
                    values[part][str(resource)] = value
        for resource, request in values["requests"].items():
            limit = values["limits"].get(resource)
            if limit is not None and request > limit:
                yield self.problem(f"{path}.requests.{resource}", f"{request} exceeds the limit "
                                   f"({limit})")  # fmt: skip

    def pod_templates(self, selector: Any) -> list[Mapping[str, Any]]:
        return [d for d in self.deployments
                if _matches(selector, _get(d, "spec", "template", "metadata", "labels"))]

    def service(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        selector = _get(obj, "spec", "selector")
        selected = self.pod_templates(selector)
        if self.deployments and not selected:
            yield self.problem("spec.selector", f"{dict(selector or {})!r} matches no pod "
                               "template of the Deployments rendered with it")  # fmt: skip
        names = {_get(p, "name") for d in selected
                 for c in _items(_get(d, "spec", "template", "spec", "containers"))
                 for p in _items(_get(c, "ports"))}  # fmt: skip
        for i, port in enumerate(_items(_get(obj, "spec", "ports"))):
            yield from self.port(f"spec.ports[{i}].port", _get(port, "port"))
            target = _get(port, "targetPort")
            if isinstance(target, str):
                yield from self.port_name(f"spec.ports[{i}].targetPort", target)
                if selected and target not in names:
                    yield self.problem(f"spec.ports[{i}].targetPort", f"{target!r} names no "
                                       "container port of the pods the Service selects")
            elif target is not None:
                yield from self.port(f"spec.ports[{i}].targetPort", target)

    def hpa(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        low, high = _get(obj, "spec", "minReplicas"), _get(obj, "spec", "maxReplicas")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            yield self.problem("spec.minReplicas", f"{low} exceeds maxReplicas ({high})")
        target = _get(obj, "spec", "scaleTargetRef", "name")
        if self.deployments and target not in {_get(d, "metadata", "name")
                                               for d in self.deployments}:  # fmt: skip
            yield self.problem("spec.scaleTargetRef.name", f"{target!r} is not a Deployment "
                               "rendered with it")  # fmt: skip
        for i, metric in enumerate(_items(_get(obj, "spec", "metrics"))):
            source = _get(metric, "type")
            key = source[0].lower() + source[1:] if isinstance(source, str) and source else ""
            value = _get(metric, key, "target", "averageValue")
            if value is not None and parse_quantity(value) is None:
                yield self.problem(f"spec.metrics[{i}].{key}.target.averageValue",
                                   f"{value!r} is not a quantity")  # fmt: skip

    def pdb(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        selector = _get(obj, "spec", "selector", "matchLabels")
        selected = self.pod_templates(selector)
        if self.deployments and not selected:
            yield self.problem("spec.selector.matchLabels", f"{dict(selector or {})!r} matches "
                               "no pod template of the Deployments rendered with it")  # fmt: skip
        least = _get(obj, "spec", "minAvailable")
        if not isinstance(least, int) or isinstance(least, bool) or not selected:
            return
        total = 0
        for d in selected:
            replicas = _get(d, "spec", "replicas")
            if replicas is None:  # autoscaled: the HPA's floor
                name = _get(d, "metadata", "name")
                floors = [_get(h, "spec", "minReplicas") for h in self.hpas
                          if _get(h, "spec", "scaleTargetRef", "name") == name]  # fmt: skip
                replicas = floors[0] if floors and isinstance(floors[0], int) else 1
            total += replicas if isinstance(replicas, int) else 0
        if least > total:
            yield self.problem("spec.minAvailable", f"{least} exceeds the {total} replicas it "
                               "covers: no pod could ever be evicted, and node drains would "
                               "hang")  # fmt: skip

    def route(self, obj: Mapping[str, Any]) -> Iterator[Problem]:
        services = {_get(s, "metadata", "name"): s for s in self.services}
        for i, rule in enumerate(_items(_get(obj, "spec", "rules"))):
            refs = [(f"spec.rules[{i}].backendRefs[{j}]", ref)
                    for j, ref in enumerate(_items(_get(rule, "backendRefs")))]
            refs += [(f"spec.rules[{i}].filters[{j}].requestMirror.backendRef",
                      _get(f, "requestMirror", "backendRef"))
                     for j, f in enumerate(_items(_get(rule, "filters")))
                     if _get(f, "requestMirror") is not None]  # fmt: skip
            for path, ref in refs:
                if _get(ref, "kind") not in (None, "Service") or not services:
                    continue
                service = services.get(_get(ref, "name"))
                if service is None:
                    yield self.problem(f"{path}.name", f"{_get(ref, 'name')!r} is not a "
                                       "Service rendered with the route")  # fmt: skip
                    continue
                ports = {_get(p, "port") for p in _items(_get(service, "spec", "ports"))}
                if _get(ref, "port") not in ports:
                    yield self.problem(f"{path}.port", f"{_get(ref, 'port')!r} is not a port "
                                       f"of Service/{_get(ref, 'name')} ({sorted(ports)})")
