"""render: every strategy to Kubernetes objects that validate for 1.25 and 1.37."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.deploy import DeploymentSpec
from loopline.deploy.engines.kubernetes import (
    INSTANCE_LABEL,
    TRACK_LABEL,
    GatewayRef,
    ModelSource,
    RolloutPosition,
    check,
    render,
    render_manifests,
)
from loopline.errors import InvalidDefinitionError

DIGEST = "sha256:" + "ab" * 32
IMAGE = "registry.example.com/ml/loopline:1.0"
STRATEGIES: dict[str, dict[str, Any]] = {
    "rolling": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    "recreate": {"type": "Recreate"},
    "canary": {"type": "Canary", "canary": {"steps": [
        {"setMirror": 50}, {"setWeight": 20}, {"pause": {}},
        {"setHeaderRoute": {"name": "qa", "match": [
            {"headerName": "X-Canary", "headerValue": {"exact": "1"}},
            {"headerName": "X-Team", "headerValue": {"prefix": "ml."}}]}},
        {"setWeight": 60}, {"setWeight": 100}]}},
    "blueGreen": {"type": "BlueGreen", "blueGreen": {"previewReplicaCount": 1}},
}  # fmt: skip


def spec(strategy: str = "rolling", replicas: int = 3, **extra: Any) -> DeploymentSpec:
    return DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
        "spec": {"model": "taxi/3", "replicas": replicas, "strategy": STRATEGIES[strategy],
                 **extra},
    })  # fmt: skip


def by_name(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


AUTOSCALING = {"minReplicas": 2, "maxReplicas": 8, "behavior": {
    "scaleUp": {"stabilizationWindowSeconds": 15, "policies": [
        {"type": "Pods", "value": 2, "periodSeconds": 30}]},
    "scaleDown": {"selectPolicy": "Min"}}}  # fmt: skip


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("gateway", [None, GatewayRef.parse("infra/public#https")])
@pytest.mark.parametrize("autoscaled", [False, True])
def test_every_strategy_renders_manifests_that_validate_on_1_25_and_1_37(
    strategy: str, gateway: GatewayRef | None, autoscaled: bool
) -> None:
    extra = {"autoscaling": AUTOSCALING} if autoscaled else {}
    objects = render(spec(strategy, **extra), image=IMAGE, namespace="ml", gateway=gateway,
                     model=ModelSource("taxi/3", digest=DIGEST))  # fmt: skip
    assert check(objects) == []
    assert {o["metadata"]["namespace"] for o in objects} == {"ml"}


def test_rolling_update_maps_surge_and_unavailability_and_pins_the_digest() -> None:
    objects = by_name(render(spec(), image=IMAGE, model=ModelSource("taxi/3", digest=DIGEST)))
    assert list(objects) == ["Deployment/taxi", "Service/taxi", "PodDisruptionBudget/taxi"]
    deployment = objects["Deployment/taxi"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert deployment["metadata"]["annotations"]["loopline.dev/model-digest"] == DIGEST
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["loopline.dev/model-digest"] == DIGEST
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["loopline", "serve"]
    assert container["args"][:3] == ["taxi/3", "--host", "0.0.0.0"]
    assert container["envFrom"] == [{"secretRef": {"name": "loopline-stores"}}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 65532
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert objects["PodDisruptionBudget/taxi"]["spec"]["minAvailable"] == 2


def test_recreate_maps_to_recreate_and_workers_scale_the_cpu_request() -> None:
    objects = by_name(render(spec("recreate", template={"workers": 2}), image=IMAGE))
    deployment = objects["Deployment/taxi"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "1024Mi"},
                                      "limits": {"memory": "2Gi"}}  # fmt: skip
    assert "--workers" in container["args"]


def test_a_model_baked_into_the_image_is_served_from_its_directory_with_its_digest() -> None:
    source = ModelSource("/models/taxi", digest=DIGEST, in_image=True)
    container = render(spec(), image=IMAGE, model=source)[0]["spec"]["template"]["spec"][
        "containers"][0]  # fmt: skip
    assert container["args"][0] == "/models/taxi"
    assert container["args"][container["args"].index("--expected-digest") + 1] == DIGEST
    assert "envFrom" not in container


def test_a_baked_model_without_its_digest_is_refused() -> None:
    with pytest.raises(InvalidDefinitionError, match="needs its digest"):
        ModelSource("/models/taxi", in_image=True)


def test_the_autoscaler_maps_metrics_and_behavior_and_the_deployment_leaves_replicas_to_it(
) -> None:  # fmt: skip
    objects = by_name(render(spec(autoscaling=AUTOSCALING), image=IMAGE))
    assert "replicas" not in objects["Deployment/taxi"]["spec"]
    hpa = objects["HorizontalPodAutoscaler/taxi"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "taxi"}  # fmt: skip
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    assert hpa["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert hpa["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 15,
        "selectPolicy": "Max", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}]}
    assert hpa["behavior"]["scaleDown"]["selectPolicy"] == "Min"
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert objects["PodDisruptionBudget/taxi"]["spec"]["minAvailable"] == 1


def test_what_the_autoscaler_cannot_map_is_a_warning() -> None:
    scaling = {"minReplicas": 0, "maxReplicas": 4,
               "behavior": {"scaleUp": {"tolerance": "0.05"}}}  # fmt: skip
    manifests = render_manifests(spec(autoscaling=scaling), image=IMAGE)
    hpa = by_name(list(manifests.objects))["HorizontalPodAutoscaler/taxi"]["spec"]
    assert hpa["minReplicas"] == 1
    assert "tolerance" not in hpa["behavior"]["scaleUp"]
    assert any("HPAScaleToZero" in w for w in manifests.warnings)
    assert any("tolerance" in w for w in manifests.warnings)
    assert check(list(manifests.objects)) == []


def test_a_canary_at_rest_sends_everything_to_stable_through_exact_route_weights() -> None:
    objects = by_name(render(spec("canary"), image=IMAGE, gateway=GatewayRef("public")))
    assert objects["Deployment/taxi-stable"]["spec"]["replicas"] == 3
    assert objects["Deployment/taxi-canary"]["spec"]["replicas"] == 0
    assert "Service/taxi" not in objects
    route = objects["HTTPRoute/taxi"]["spec"]
    assert route["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                    "name": "public"}]  # fmt: skip
    assert route["rules"] == [{"backendRefs": [{"name": "taxi-stable", "port": 80, "weight": 100},
                                               {"name": "taxi-canary", "port": 80, "weight": 0}]}]


def test_a_canary_in_progress_renders_the_weights_mirror_and_header_routes_of_its_step(
) -> None:  # fmt: skip
    position = RolloutPosition(ModelSource("taxi/2", digest=DIGEST), step_index=4)
    objects = by_name(render(spec("canary"), image=IMAGE, gateway=GatewayRef("public"),
                             position=position))  # fmt: skip
    stable, canary = objects["Deployment/taxi-stable"], objects["Deployment/taxi-canary"]
    assert stable["spec"]["template"]["spec"]["containers"][0]["args"][0] == "taxi/2"
    assert canary["spec"]["template"]["spec"]["containers"][0]["args"][0] == "taxi/3"
    assert stable["spec"]["replicas"] == 3
    assert canary["spec"]["replicas"] == 2  # ceil(3 × 60 %) for the setWeight 60 coming next
    header_rule, weighted = objects["HTTPRoute/taxi"]["spec"]["rules"]
    assert header_rule["matches"] == [{"headers": [
        {"type": "Exact", "name": "x-canary", "value": "1"},
        {"type": "RegularExpression", "name": "x-team", "value": "^ml\\..*"}]}]
    assert header_rule["backendRefs"] == [{"name": "taxi-canary", "port": 80, "weight": 1}]
    assert [b["weight"] for b in weighted["backendRefs"]] == [80, 20]
    assert weighted["filters"] == [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "taxi-canary", "port": 80}, "percent": 50}}]
    assert check(list(objects.values())) == []


def test_without_a_gateway_a_canary_splits_by_replica_ratio_and_says_the_granularity() -> None:
    manifests = render_manifests(spec("canary"), image=IMAGE)
    objects = by_name(list(manifests.objects))
    service = objects["Service/taxi"]["spec"]["selector"]
    assert TRACK_LABEL not in service and service[INSTANCE_LABEL] == "taxi"
    assert (
        "No Gateway is configured, so the canary's share of traffic is its share of the 3 "
        "replicas (per connection): steps of 33.3 %. setWeight 20 → 33.3 % (1 of 3 pods), "
        "setWeight 60 → 66.7 % (2 of 3 pods), setWeight 100 → 100 % (3 of 3 pods)."
    ) in manifests.warnings[-2]
    assert "setHeaderRoute and setMirror steps cannot be rendered" in manifests.warnings[-1]
    at_60 = render(spec("canary"), image=IMAGE,
                   position=RolloutPosition(ModelSource("taxi/2"), step_index=5))  # fmt: skip
    replicas = {o["metadata"]["name"]: o["spec"]["replicas"] for o in at_60
                if o["kind"] == "Deployment"}  # fmt: skip
    assert replicas == {"taxi-stable": 1, "taxi-canary": 2}


def test_blue_green_without_a_gateway_points_the_active_service_at_the_stable_track() -> None:
    position = RolloutPosition(ModelSource("taxi/2"))
    objects = by_name(render(spec("blueGreen"), image=IMAGE, position=position))
    assert objects["Service/taxi"]["spec"]["selector"][TRACK_LABEL] == "stable"
    assert objects["Service/taxi-canary"]["spec"]["selector"][TRACK_LABEL] == "canary"
    assert objects["Deployment/taxi-canary"]["spec"]["replicas"] == 1  # previewReplicaCount
    assert check(list(objects.values())) == []


def test_a_rollout_position_past_the_last_step_is_refused() -> None:
    with pytest.raises(InvalidDefinitionError, match="step index 7 is out of range"):
        render(spec("canary"), image=IMAGE, gateway=GatewayRef("gw"),
               position=RolloutPosition(ModelSource("taxi/2"), step_index=7))  # fmt: skip


def test_a_rollout_position_for_a_rolling_update_is_refused() -> None:
    with pytest.raises(InvalidDefinitionError, match="applies only to Canary and BlueGreen"):
        render(spec(), image=IMAGE, position=RolloutPosition(ModelSource("taxi/2")))


def test_a_name_kubernetes_cannot_use_is_refused_when_rendering() -> None:
    bad = DeploymentSpec.from_dict({"apiVersion": "loopline/v1", "kind": "Deployment",
                                    "metadata": {"name": "Taxi_V2"},
                                    "spec": {"model": "taxi/3"}})  # fmt: skip
    with pytest.raises(InvalidDefinitionError, match="'Taxi_V2' cannot name Kubernetes objects"):
        render(bad, image=IMAGE)


def test_an_unpinned_model_and_prediction_logging_are_warnings() -> None:
    unpinned = DeploymentSpec.from_dict({
        "apiVersion": "loopline/v1", "kind": "Deployment", "metadata": {"name": "taxi"},
        "spec": {"model": "taxi@champion", "template": {"logging": {"enabled": True}}},
    })  # fmt: skip
    warnings = render_manifests(unpinned, image=IMAGE).warnings
    assert "Model 'taxi@champion' is not pinned" in warnings[0]
    assert "emptyDir" in warnings[1]


@pytest.mark.parametrize("text", ["Public", "a/b/c", "ns/", "gw#Bad"])
def test_a_malformed_gateway_is_refused_naming_it(text: str) -> None:
    with pytest.raises(InvalidDefinitionError, match="is not a DNS-1123 label"):
        GatewayRef.parse(text)
