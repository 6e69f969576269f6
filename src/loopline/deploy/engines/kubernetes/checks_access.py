"""loopline's own checks of the access objects of a manifest (the control plane's, from
``loopline render --controller``): what the schemas let through about RBAC and secrets.

- a ``Role``'s rules: no wildcard (``*``) in ``apiGroups``, ``resources`` or ``verbs`` (least
  privilege is spelled out), only the verbs Kubernetes knows, and no access to ``secrets``
  (the control plane reads its own through ``secretKeyRef``, never through the API);
- a ``RoleBinding``'s ``roleRef`` names a Role of the set, and each ``ServiceAccount``
  subject is one of the set, in the namespace it says;
- a pod's ``serviceAccountName`` (other than ``default``) is a ServiceAccount of the set in
  the pod's namespace;
- secret values never inline: a ``Secret`` object with ``data`` or ``stringData``, or a
  container ``env`` entry whose name says it holds a secret (``LOOPLINE_DB_URL``, ``*TOKEN*``,
  ``*PASSWORD*``, ``*SECRET*``) with a ``value`` rather than ``valueFrom.secretKeyRef``, is a
  problem; ``secretKeyRef``/``secretRef`` names are DNS-1123 subdomains and keys valid.

Pure functions over plain dicts, like :mod:`.checks`, whose :func:`~.checks.check_objects`
runs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from loopline.deploy.engines.kubernetes.checks import _SUBDOMAIN as SUBDOMAIN
from loopline.deploy.engines.kubernetes.checks import SOURCE, Problem, object_id
from loopline.deploy.engines.kubernetes.checks import _get as get
from loopline.deploy.engines.kubernetes.checks import _items as items
from loopline.types import JsonDict

VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete",
                   "deletecollection", "bind", "escalate", "impersonate", "use",
                   "approve", "sign"})  # fmt: skip
_SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|SECRET|PASSWD)|^LOOPLINE_DB_URL$", re.IGNORECASE)
_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def check_access(objects: Sequence[JsonDict]) -> Iterator[Problem]:
    """Every problem of the rules above in ``objects``."""
    roles = {(get(o, "metadata", "namespace"), get(o, "metadata", "name"))
             for o in objects if o.get("kind") == "Role"}  # fmt: skip
    accounts = {(get(o, "metadata", "namespace"), get(o, "metadata", "name"))
                for o in objects if o.get("kind") == "ServiceAccount"}  # fmt: skip
    for obj in objects:
        who = object_id(obj)
        kind = obj.get("kind")
        if kind == "Role":
            yield from _role(who, obj)
        elif kind == "RoleBinding":
            yield from _binding(who, obj, roles, accounts)
        elif kind == "Secret":
            for field in ("data", "stringData"):
                if obj.get(field):
                    yield Problem(who, field, "holds secret values inline; leave the Secret out "
                                  "of the manifest and create it with kubectl create secret "
                                  "generic", SOURCE)  # fmt: skip
        elif kind == "Deployment":
            yield from _pod(who, obj, accounts)


def _role(who: str, obj: Mapping[str, Any]) -> Iterator[Problem]:
    rules = items(obj.get("rules"))
    if not rules:
        yield Problem(who, "rules", "is empty: the Role grants nothing", SOURCE)
    for i, rule in enumerate(rules):
        at = f"rules[{i}]"
        for field in ("apiGroups", "resources", "verbs"):
            values = items(get(rule, field))
            if not values:
                yield Problem(who, f"{at}.{field}", "is empty", SOURCE)
            if "*" in values:
                yield Problem(who, f"{at}.{field}", "has the wildcard '*'; list what is needed "
                              "(least privilege)", SOURCE)  # fmt: skip
        for verb in items(get(rule, "verbs")):
            if verb != "*" and verb not in VERBS:
                yield Problem(who, f"{at}.verbs", f"{verb!r} is not a Kubernetes verb (one of "
                              f"{', '.join(sorted(VERBS))})", SOURCE)  # fmt: skip
        if "secrets" in items(get(rule, "resources")):
            yield Problem(who, f"{at}.resources", "grants access to secrets; the control plane "
                          "reads its own through secretKeyRef and needs none", SOURCE)  # fmt: skip


def _binding(who: str, obj: Mapping[str, Any], roles: set[tuple[Any, Any]],
             accounts: set[tuple[Any, Any]]) -> Iterator[Problem]:  # fmt: skip
    namespace = get(obj, "metadata", "namespace")
    ref = get(obj, "roleRef")
    if get(ref, "kind") == "Role" and (namespace, get(ref, "name")) not in roles:
        yield Problem(who, "roleRef.name", f"{get(ref, 'name')!r} is not a Role of this "
                      f"manifest in namespace {namespace!r}", SOURCE)  # fmt: skip
    for i, subject in enumerate(items(get(obj, "subjects"))):
        if get(subject, "kind") != "ServiceAccount":
            continue
        key = (get(subject, "namespace") or namespace, get(subject, "name"))
        if key not in accounts:
            yield Problem(who, f"subjects[{i}]", f"ServiceAccount {key[1]!r} in namespace "
                          f"{key[0]!r} is not in this manifest", SOURCE)  # fmt: skip


def _pod(who: str, obj: Mapping[str, Any], accounts: set[tuple[Any, Any]]) -> Iterator[Problem]:
    pod = get(obj, "spec", "template", "spec")
    account = get(pod, "serviceAccountName")
    namespace = get(obj, "metadata", "namespace")
    if account not in (None, "default") and (namespace, account) not in accounts:
        yield Problem(who, "spec.template.spec.serviceAccountName", f"{account!r} is not a "
                      f"ServiceAccount of this manifest in namespace {namespace!r}",
                      SOURCE)  # fmt: skip
    for i, c in enumerate(items(get(pod, "containers"))):
        at = f"spec.template.spec.containers[{i}]"
        for j, var in enumerate(items(get(c, "env"))):
            name = get(var, "name")
            if isinstance(name, str) and _SECRET_NAME.search(name) and "value" in var:
                yield Problem(who, f"{at}.env[{j}].value", f"{name} holds a secret inline; "
                              "take it from a Secret (valueFrom.secretKeyRef)", SOURCE)
            ref = get(var, "valueFrom", "secretKeyRef")
            if ref is not None:
                yield from _secret_ref(who, f"{at}.env[{j}].valueFrom.secretKeyRef", ref)
        for j, source in enumerate(items(get(c, "envFrom"))):
            ref = get(source, "secretRef")
            if ref is not None:
                yield from _secret_ref(who, f"{at}.envFrom[{j}].secretRef", ref, key=False)


def _secret_ref(who: str, at: str, ref: Any, key: bool = True) -> Iterator[Problem]:
    name = get(ref, "name")
    if not isinstance(name, str) or len(name) > 253 or not SUBDOMAIN.fullmatch(name):
        yield Problem(who, f"{at}.name", f"{name!r} is not a Secret name (a DNS-1123 "
                      "subdomain)", SOURCE)  # fmt: skip
    value = get(ref, "key")
    if key and (not isinstance(value, str) or not _KEY.fullmatch(value)):
        yield Problem(who, f"{at}.key", f"{value!r} is not a Secret key (letters, digits, "
                      "'-', '_' and '.')", SOURCE)  # fmt: skip
