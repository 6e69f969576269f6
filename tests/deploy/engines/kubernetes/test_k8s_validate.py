"""validate: schemas for 1.25 and 1.37, the HTTPRoute CRD, and loopline's own checks —
each with a broken manifest that fails naming the object and the field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from loopline.deploy import DeploymentSpec
from loopline.deploy.engines.kubernetes import GatewayRef, check, render, validate
from loopline.errors import InvalidDefinitionError, InvalidInputError

Objects = list[dict[str, Any]]


def rendered(strategy: dict[str, Any] | None = None, **extra: Any) -> Objects:
    spec = DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
        "spec": {"model": "taxi/3", "replicas": 2,
                 "strategy": strategy or {"type": "RollingUpdate"}, **extra},
    })  # fmt: skip
    gateway = GatewayRef("public") if strategy else None
    return render(spec, image="img:1", namespace="ml", gateway=gateway)


def canary() -> Objects:
    return rendered({"type": "Canary", "canary": {"steps": [{"setWeight": 50}]}})


def find(objects: Objects, ref: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if f"{o['kind']}/{o['metadata']['name']}" == ref]
    return obj


def container(objects: Objects) -> dict[str, Any]:
    return find(objects, "Deployment/taxi")["spec"]["template"]["spec"]["containers"][0]


def set_(ref: str, path: str, value: Any) -> Callable[[Objects], None]:
    def edit(objects: Objects) -> None:
        node: Any = find(objects, ref)
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        last = keys[-1]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return edit


def test_rendered_manifests_validate() -> None:
    validate(rendered())
    validate(canary())


# (what is broken, the edit, the object, the field, words of the message, the checker)
BROKEN: list[tuple[str, Callable[[], Objects], Callable[[Objects], None], str, str, str, str]] = [
    ("schema: a string replica count", rendered, set_("Deployment/taxi", "spec.replicas", "two"),
     "Deployment/taxi", "spec.replicas", "'two' is not of type", "Kubernetes 1.25 schema"),
    ("schema (strict): a misspelled field", rendered,
     set_("Deployment/taxi", "spec.template.spec.containers.0.imagee", "x"),
     "Deployment/taxi", "spec.template.spec.containers[0]", "'imagee' was unexpected",
     "Kubernetes 1.37 schema"),
    ("schema: a removed API version", rendered,
     set_("PodDisruptionBudget/taxi", "apiVersion", "policy/v1beta1"),
     "PodDisruptionBudget/taxi", "apiVersion", "Kubernetes 1.25 has no policy/v1beta1",
     "Kubernetes 1.25 schema"),
    ("CRD: a negative weight", canary,
     set_("HTTPRoute/taxi", "spec.rules.0.backendRefs.0.weight", -1),
     "HTTPRoute/taxi", "spec.rules[0].backendRefs[0].weight", "-1 is less than the minimum",
     "HTTPRoute CRD v1.6.1"),
    ("CRD: a misspelled field", canary, set_("HTTPRoute/taxi", "spec.rulez", []),
     "HTTPRoute/taxi", "spec", "'rulez' was unexpected", "HTTPRoute CRD v1.6.1"),
    ("own: a name that is not DNS-1123", rendered,
     set_("PodDisruptionBudget/taxi", "metadata.name", "Taxi_PDB!"),
     "PodDisruptionBudget/Taxi_PDB!", "metadata.name", "not a DNS-1123 subdomain", "loopline"),
    ("own: a Service name that is not DNS-1035", rendered,
     set_("Service/taxi", "metadata.name", "1taxi"),
     "Service/1taxi", "metadata.name", "not a DNS-1035 label", "loopline"),
    ("own: a namespace that is not DNS-1123", rendered,
     set_("Service/taxi", "metadata.namespace", "ML"),
     "Service/taxi", "metadata.namespace", "'ML' is not a DNS-1123 label", "loopline"),
    ("own: a label value too long", rendered,
     set_("Service/taxi", "metadata.labels.team", "x" * 64),
     "Service/taxi", "metadata.labels.team", "label value", "loopline"),
    ("own: a selector outside the template's labels", rendered,
     set_("Deployment/taxi", "spec.selector.matchLabels.tier", "gold"),
     "Deployment/taxi", "spec.selector.matchLabels.tier", "is not among the pod template's labels",
     "loopline"),
    ("own: a Service selecting no pod", rendered,
     set_("Service/taxi", "spec.selector", {"app": "nothing"}),
     "Service/taxi", "spec.selector", "matches no pod template", "loopline"),
    ("own: a CPU request that is not a quantity", rendered,
     set_("Deployment/taxi", "spec.template.spec.containers.0.resources.requests.cpu", "lots"),
     "Deployment/taxi", "spec.template.spec.containers[0].resources.requests.cpu",
     "'lots' is not a resource quantity", "loopline"),
    ("own: a memory request above its limit", rendered,
     set_("Deployment/taxi", "spec.template.spec.containers.0.resources.requests.memory", "2Gi"),
     "Deployment/taxi", "spec.template.spec.containers[0].resources.requests.memory",
     "exceeds the limit", "loopline"),
    ("own: a container port out of range", rendered,
     set_("Deployment/taxi", "spec.template.spec.containers.0.ports.0.containerPort", 99999),
     "Deployment/taxi", "spec.template.spec.containers[0].ports[0].containerPort",
     "99999 is not a port number", "loopline"),
    ("own: a Service port out of range", rendered,
     set_("Service/taxi", "spec.ports.0.port", 0),
     "Service/taxi", "spec.ports[0].port", "0 is not a port number", "loopline"),
    ("own: a target port the pods do not have", rendered,
     set_("Service/taxi", "spec.ports.0.targetPort", "grpc"),
     "Service/taxi", "spec.ports[0].targetPort", "'grpc' names no container port", "loopline"),
    ("own: a PDB asking for more pods than there are", rendered,
     set_("PodDisruptionBudget/taxi", "spec.minAvailable", 3),
     "PodDisruptionBudget/taxi", "spec.minAvailable", "3 exceeds the 2 replicas", "loopline"),
    ("own: a route to a port the Service lacks", canary,
     set_("HTTPRoute/taxi", "spec.rules.0.backendRefs.1.port", 8080),
     "HTTPRoute/taxi", "spec.rules[0].backendRefs[1].port", "8080 is not a port of Service/",
     "loopline"),
]


@pytest.mark.parametrize(("what", "make", "edit", "obj", "field", "words", "source"), BROKEN,
                         ids=[b[0] for b in BROKEN])  # fmt: skip
def test_a_broken_manifest_fails_naming_the_object_and_field(
    what: str, make: Callable[[], Objects], edit: Callable[[Objects], None], obj: str,
    field: str, words: str, source: str,
) -> None:
    objects = copy.deepcopy(make())
    edit(objects)
    problems = check(objects)
    assert any(p.object == obj and p.field == field and words in p.message
               and p.source == source for p in problems), problems  # fmt: skip
    with pytest.raises(InvalidDefinitionError, match="problem"):
        validate(objects)


def test_an_autoscaled_deployment_counts_its_hpa_floor_for_the_pdb() -> None:
    objects = rendered(autoscaling={"minReplicas": 3, "maxReplicas": 6})
    set_("PodDisruptionBudget/taxi", "spec.minAvailable", 4)(objects)
    messages = [str(p) for p in check(objects)]
    assert messages == ["PodDisruptionBudget/taxi spec.minAvailable: 4 exceeds the 3 replicas it "
                        "covers: no pod could ever be evicted, and node drains would hang "
                        "[loopline]"]  # fmt: skip


def test_an_hpa_whose_floor_is_above_its_ceiling_or_whose_target_is_missing_fails() -> None:
    objects = rendered(autoscaling={"minReplicas": 2, "maxReplicas": 6})
    set_("HorizontalPodAutoscaler/taxi", "spec.minReplicas", 9)(objects)
    set_("HorizontalPodAutoscaler/taxi", "spec.scaleTargetRef.name", "taxy")(objects)
    fields = {p.field for p in check(objects) if p.object == "HorizontalPodAutoscaler/taxi"}
    assert {"spec.minReplicas", "spec.scaleTargetRef.name"} <= fields


def test_an_unknown_custom_kind_cannot_be_validated_and_fails() -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "taxi"}, "spec": {}}  # fmt: skip
    (problem,) = check([rollout])
    assert (problem.object, problem.field) == ("Rollout/taxi", "apiVersion")
    assert "no schema is shipped for argoproj.io/v1alpha1 Rollout" in problem.message


def test_an_unsupported_kubernetes_version_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInputError, match="'1.99' is not one kubernetes-validate has"):
        check(rendered(), versions=("1.99",))


def test_the_error_lists_every_problem_one_per_line() -> None:
    objects = rendered()
    set_("Service/taxi", "spec.ports.0.port", 70000)(objects)
    set_("PodDisruptionBudget/taxi", "spec.minAvailable", 5)(objects)
    with pytest.raises(InvalidDefinitionError) as info:
        validate(objects)
    text = str(info.value)
    assert "Service/taxi spec.ports[0].port: 70000 is not a port number" in text
    assert "PodDisruptionBudget/taxi spec.minAvailable: 5 exceeds the 2 replicas" in text


def test_without_the_extra_validation_says_which_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from loopline.errors import DependencyMissingError

    monkeypatch.setitem(sys.modules, "kubernetes_validate", None)
    with pytest.raises(DependencyMissingError, match=r"pip install 'loopline\[k8s-validate\]'"):
        check(rendered())
