"""``loopline render --controller``: the control plane in-cluster as one manifest that
validates (Kubernetes 1.25 and 1.37 strict schemas, loopline's checks), grants the least the
engine needs, and carries no secret value — and a broken manifest for each access check."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from loopline.deploy.engines.kubernetes import check, controlplane_manifests
from loopline.deploy.engines.kubernetes.checks import check_objects
from loopline.deploy.engines.kubernetes.controlplane_manifest import RULES

pytest.importorskip("kubernetes_validate", reason="the k8s-validate extra is not installed")

IMAGE = "registry.example.com/ml/loopline:1.0"
Objects = list[dict[str, Any]]


def manifest(**kwargs: Any) -> Objects:
    return controlplane_manifests(image=IMAGE, namespace="ml", **kwargs)


def find(objects: Objects, kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


def pod(objects: Objects) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def problems(objects: Objects) -> list[str]:
    return [str(p) for p in check_objects(objects)]


# ---- the manifest --------------------------------------------------------------------------


def test_the_controller_manifest_validates_for_the_oldest_and_newest_kubernetes() -> None:
    objects = manifest(create_namespace=True, gateway="infra/public")
    assert [o["kind"] for o in objects] == ["Namespace", "ServiceAccount", "Role",
                                            "RoleBinding", "Deployment", "Service"]  # fmt: skip
    assert check(objects) == []


def test_the_role_grants_what_the_engine_uses_and_nothing_more() -> None:
    rules = find(manifest(), "Role")["rules"]
    grants = {(g, r): set(rule["verbs"]) for rule in rules
              for g in rule["apiGroups"] for r in rule["resources"]}  # fmt: skip
    write = {"get", "list", "watch", "create", "patch", "delete"}
    assert grants[("apps", "deployments")] == write
    assert grants[("apps", "deployments/scale")] == {"get", "patch"}
    for kind in (("", "services"), ("autoscaling", "horizontalpodautoscalers"),
                 ("policy", "poddisruptionbudgets"),
                 ("gateway.networking.k8s.io", "httproutes")):  # fmt: skip
        assert grants[kind] == write
    for read in (("apps", "replicasets"), ("", "pods"), ("", "pods/log"), ("", "events")):
        assert grants[read] == {"get", "list", "watch"}
    assert all("update" not in verbs and "*" not in verbs for verbs in grants.values())
    assert not any(r == "secrets" for _, r in grants)
    binding = find(manifest(), "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "loopline-controlplane"}  # fmt: skip
    assert len(rules) == len(RULES)


def test_the_secrets_are_referenced_never_inline() -> None:
    objects = manifest()
    assert not [o for o in objects if o["kind"] == "Secret"]
    env = {e["name"]: e for e in pod(objects)["containers"][0]["env"]}
    assert env["LOOPLINE_DB_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "loopline-stores", "key": "LOOPLINE_DB_URL"}  # fmt: skip
    assert env["LOOPLINE_CONTROLPLANE_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "loopline-controlplane-token", "key": "token"}  # fmt: skip
    assert env["LOOPLINE_ARTIFACT_ROOT"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["LOOPLINE_ENGINE"]["value"] == "kubernetes"
    other = manifest(stores_secret="prod-stores", token_secret="prod-token")
    env = {e["name"]: e for e in pod(other)["containers"][0]["env"]}
    assert env["LOOPLINE_DB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "prod-stores"
    assert env["LOOPLINE_CONTROLPLANE_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "prod-token"


def test_the_control_plane_pod_is_non_root_read_only_probed_and_bounded() -> None:
    objects = manifest()
    spec = pod(objects)
    (c,) = spec["containers"]
    assert spec["serviceAccountName"] == "loopline-controlplane"
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] == 65532
    assert c["securityContext"] == {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                                    "capabilities": {"drop": ["ALL"]}}  # fmt: skip
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"/tmp", "/var/lib/loopline"}
    assert all("emptyDir" in v for v in spec["volumes"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] == "http"
        assert get["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"] == "1Gi"
    assert c["args"] == ["--engine", "kubernetes", "--host", "0.0.0.0", "--port", "8080"]
    service = find(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    hosts = {e["name"]: e.get("value") for e in c["env"]}["LOOPLINE_CONTROLPLANE_HOSTS"]
    assert "loopline-controlplane.ml.svc" in str(hosts).split(",")


# ---- the CLI ------------------------------------------------------------------------------


def test_render_controller_prints_one_multi_document_manifest() -> None:
    from loopline.cli.main import cli as main

    result = CliRunner().invoke(main, ["render", "--controller", "-n", "ml",
                                       "--create-namespace", "--image", IMAGE,
                                       "--gateway", "infra/public"])  # fmt: skip
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert docs[0]["kind"] == "Namespace" and len(docs) == 6
    env = {e["name"]: e.get("value") for e in pod(docs)["containers"][0]["env"]}
    assert env["LOOPLINE_KUBERNETES_GATEWAY"] == "infra/public"
    assert env["LOOPLINE_KUBERNETES_IMAGE"] == IMAGE


@pytest.mark.parametrize(("args", "message"), [
    (["render"], "render needs -f FILE"),
    (["render", "--controller", "-f", "d.yaml"], "-f/--filename renders model-server"),
    (["render", "--controller", "--pin"], "--pin renders model-server"),
    (["render", "-f", "d.yaml", "--create-namespace"], "--create-namespace applies to "
     "--controller only"),
    (["render", "--controller", "--gateway", "Bad_Name"], "Bad_Name"),
])  # fmt: skip
def test_render_refuses_flags_that_do_not_go_together(args: list[str], message: str) -> None:
    from loopline.cli.main import cli as main

    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output


# ---- each access check, with a manifest that breaks it -------------------------------------


def broken(change: Any) -> list[str]:
    objects = copy.deepcopy(manifest())
    change(objects)
    return problems(objects)


def rule(objects: Objects, i: int = 0) -> dict[str, Any]:
    r: dict[str, Any] = find(objects, "Role")["rules"][i]
    return r


def env(objects: Objects, name: str) -> dict[str, Any]:
    (e,) = [e for e in pod(objects)["containers"][0]["env"] if e["name"] == name]
    return e


@pytest.mark.parametrize(("change", "expected"), [
    (lambda o: rule(o).update(verbs=["*"]),
     "Role/loopline-controlplane rules[0].verbs: has the wildcard '*'"),
    (lambda o: rule(o).update(resources=["*"]),
     "Role/loopline-controlplane rules[0].resources: has the wildcard '*'"),
    (lambda o: rule(o).update(apiGroups=[]), "rules[0].apiGroups: is empty"),
    (lambda o: rule(o).update(verbs=["get", "read"]), "'read' is not a Kubernetes verb"),
    (lambda o: rule(o, 3).update(resources=["services", "secrets"]),
     "rules[3].resources: grants access to secrets"),
    (lambda o: find(o, "Role").update(rules=[]), "rules: is empty: the Role grants nothing"),
    (lambda o: find(o, "RoleBinding")["roleRef"].update(name="admin"),
     "RoleBinding/loopline-controlplane roleRef.name: 'admin' is not a Role of this manifest"),
    (lambda o: find(o, "RoleBinding")["subjects"][0].update(namespace="default"),
     "subjects[0]: ServiceAccount 'loopline-controlplane' in namespace 'default' is not in"),
    (lambda o: pod(o).update(serviceAccountName="controller"),
     "spec.template.spec.serviceAccountName: 'controller' is not a ServiceAccount"),
    (lambda o: o.append({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "loopline-stores", "namespace": "ml"},
                         "stringData": {"LOOPLINE_DB_URL": "postgresql://u:p@db/ml"}}),
     "Secret/loopline-stores stringData: holds secret values inline"),
    (lambda o: env(o, "LOOPLINE_CONTROLPLANE_TOKEN").update(value="hunter2") or env(
        o, "LOOPLINE_CONTROLPLANE_TOKEN").pop("valueFrom"),
     "env[7].value: LOOPLINE_CONTROLPLANE_TOKEN holds a secret inline"),
    (lambda o: env(o, "LOOPLINE_DB_URL")["valueFrom"]["secretKeyRef"].update(name="Stores!"),
     "env[5].valueFrom.secretKeyRef.name: 'Stores!' is not a Secret name"),
    (lambda o: env(o, "LOOPLINE_DB_URL")["valueFrom"]["secretKeyRef"].update(key="db url"),
     "secretKeyRef.key: 'db url' is not a Secret key"),
])  # fmt: skip
def test_a_broken_access_object_fails_naming_the_object_and_the_field(
    change: Any, expected: str
) -> None:
    found = broken(change)
    assert any(expected in p for p in found), found


def test_the_strict_schemas_catch_a_misspelled_rbac_field() -> None:
    objects = copy.deepcopy(manifest())
    role = find(objects, "Role")
    role["rule"] = role.pop("rules")
    found = [str(p) for p in check(objects)]
    assert any("Role/loopline-controlplane" in p and "'rule' was unexpected" in p
               and "1.25" in p for p in found), found  # fmt: skip
    assert any("1.37" in p and "'rule' was unexpected" in p for p in found), found
